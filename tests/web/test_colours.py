"""Every colour pair of the stylesheets at WCAG AA, in light and in dark mode.

The colours live in static/css/portal.css as :root variables (light), redefined under
`@media (prefers-color-scheme: dark)`; the other stylesheets use the variables only. Text
needs 4.5:1 on every background it sits on; borders of inputs and the gauge's and charts'
state strokes 3:1 (WCAG 1.4.11). The browser harness (tests/browser/test_pages_browser.py)
checks the rendered pages with axe-core in both modes too."""

import re
from pathlib import Path

import pytest
from django.conf import settings

CSS = Path(settings.BASE_DIR) / "static" / "css"

# (text, background): every text colour on every background it is used on.
TEXT_PAIRS = [
    *((text, bg) for text in ("fg", "muted", "accent") for bg in ("bg", "card", "subtle")),
    *((text, "card") for text in ("accent-dark", "ok", "warn", "danger", "info")),
    *((text, "subtle") for text in ("ok", "warn", "danger", "info")),
    *((state, "card") for state in ("green", "yellow", "orange", "red")),
    ("ok", "ok-bg"),
    ("warn", "warn-bg"),
    ("danger", "danger-bg"),
    ("info", "info-bg"),
    ("tracked", "tracked-bg"),
    ("muted", "badge-bg"),
    *(("fg", bg) for bg in ("ok-bg", "warn-bg", "danger-bg", "info-bg", "input-bg")),
    *(("muted", bg) for bg in ("ok-bg", "warn-bg", "danger-bg", "info-bg")),
    ("accent", "info-bg"),
    ("accent", "accent-soft"),
    ("accent-dark", "accent-soft"),
    *(("on-accent", bg) for bg in ("accent", "accent-dark", "danger", "danger-dark")),
    ("topbar-fg", "topbar"),
    ("topbar-muted", "topbar"),
    ("topbar-fg", "topbar-button"),
    ("topbar-fg", "topbar-input"),
    ("on-focus", "focus"),
]
# Non-text: 3:1.
SHAPE_PAIRS = [
    ("input-border", "input-bg"),
    ("input-border", "card"),
    *((state, "card") for state in ("green", "yellow", "orange", "red", "ok", "warn", "danger")),
]


def luminance(colour: str) -> float:
    colour = colour.lstrip("#")
    if len(colour) == 3:
        colour = "".join(c * 2 for c in colour)

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def variables(block: str) -> dict[str, str]:
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{3,6})\b", block))


def palettes() -> dict[str, dict[str, str]]:
    css = (CSS / "portal.css").read_text()
    start = css.index(":root {")
    light = variables(css[start : css.index("}", start)])
    media = css.index("@media (prefers-color-scheme: dark)")
    root = css.index(":root {", media)
    dark = variables(css[root : css.index("}", root)])
    return {"light": light, "dark": {**light, **dark}}


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_every_colour_pair_meets_wcag_aa(mode):
    colours = palettes()[mode]
    failures = [
        f"--{a} on --{b}: {contrast(colours[a], colours[b]):.2f}:1 (needs {need})"
        for pairs, need in ((TEXT_PAIRS, 4.5), (SHAPE_PAIRS, 3.0))
        for a, b in pairs
        if contrast(colours[a], colours[b]) < need
    ]
    assert not failures, f"{mode} mode:\n" + "\n".join(failures)


def test_dark_mode_redefines_every_colour():
    light, dark = palettes()["light"], palettes()["dark"]
    css = (CSS / "portal.css").read_text()
    media = css.index("@media (prefers-color-scheme: dark)")
    root = css.index(":root {", media)
    redefined = set(variables(css[root : css.index("}", root)]))
    # The focus ring, its text and the top bar's own colours may stay as they are.
    same_on_purpose = {"focus", "on-focus", "topbar-fg", "topbar-line"}
    assert set(light) - redefined <= same_on_purpose, set(light) - redefined - same_on_purpose
    assert dark["bg"] != light["bg"] and dark["fg"] != light["fg"]


def test_no_stylesheet_hard_codes_a_colour():
    """Colours come from the variables (so dark mode reaches them), never a literal."""
    allowed = {"portal.css": {".qr img { background: #fff;"}}  # a QR code is dark on white
    found = []
    for path in sorted(CSS.glob("*.css")):
        if path.name == "api-docs.css":  # drf-spectacular's docs page (not the portal's styles)
            continue
        css = path.read_text()
        css = re.sub(r":root\s*\{[^}]*\}", "", css)  # the variables themselves
        for line in css.splitlines():
            if re.search(r"#[0-9a-fA-F]{3,6}\b", line) and not any(
                ok in line for ok in allowed.get(path.name, ())
            ):
                found.append(f"{path.name}: {line.strip()}")
    assert not found, "\n".join(found)
