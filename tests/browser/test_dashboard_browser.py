"""The margin dashboard in a real browser: log in, read the figures, watch them move.

Headless Chromium (Debian's) through Playwright against uvicorn and the margin
engine running as subprocesses on this test's committed data; prices are
published to the same Redis the engine listens to. Each test leaves a
screenshot in test-artifacts/.
"""

from decimal import ROUND_DOWN, Decimal

import httpx
import pytest

from accounts.models import Account
from tests.api.conftest import key_issue
from tests.browser.conftest import ARTIFACTS
from tests.conftest import credit_cash
from tests.factories import DEFAULT_PASSWORD, UserFactory, open_account
from tests.trading.conftest import binary_create, perp_create
from tests.trading.quoting import put_quote
from trading.models import Position, RiskPolicy
from trading.services.execute import order_execute

pytestmark = pytest.mark.browser

SUMMARY = ("deposit", "used_margin", "adjusted_equity", "available_margin")


def quote(bid: str, ask: str) -> None:
    """TRUMP-WIN's price on both venues (a tick the margin engine sees)."""
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRUMP-WIN@{venue}", bid=bid, ask=ask)


@pytest.fixture
def alice(transactional_db):
    """A margin account with 1,000 USDC that has borrowed to hold TRUMP-WIN."""
    user = UserFactory(email="alice@example.test")
    account = open_account(owner=user, margin_enabled=True, margin_override="granted")
    credit_cash(account, "1000")
    binary_create("TRUMP-WIN")
    quote("0.60", "0.61")
    order_execute(account=account, symbol="TRUMP-WIN", side="buy", notional_usdc=Decimal("1500"))
    return account


def log_in(page, portal: str, email: str) -> None:
    page.goto(f"{portal}/login/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{portal}/dashboard/")
    page.wait_for_selector("#live-status[data-socket=open]")


def figures(page) -> dict[str, str]:
    return {
        name: page.get_attribute(f"#account-summary [data-field={name}]", "data-value")
        for name in SUMMARY
    }


def api_margin(portal: str, account: Account) -> dict:
    key = key_issue([account], scopes=["intelligence", "read"])
    response = httpx.get(
        f"{portal}/v1/intelligence/margin", headers={"Authorization": f"Bearer {key}"}
    )
    response.raise_for_status()
    return response.json()


def test_the_dashboard_shows_the_apis_figures_and_follows_a_tick(portal, page, alice):
    log_in(page, portal, "alice@example.test")
    shown = figures(page)
    margin = api_margin(portal, alice)
    # Haircuts shrink as expiry nears: a second later Adjusted Equity has moved by
    # micro-dollars, nothing else has.
    for name in SUMMARY:
        assert Decimal(shown[name]) == pytest.approx(Decimal(margin[name]), abs=Decimal("0.001"))
    assert (shown["deposit"], shown["used_margin"]) == (margin["deposit"], margin["used_margin"])
    assert page.get_attribute("#margin-health", "data-borrowing") == "true"
    page.evaluate("window.__sameDocument = true")

    quote("0.50", "0.51")  # TRUMP-WIN falls: the engine pushes the new figures
    page.wait_for_function(
        "ae => document.querySelector('#account-summary [data-field=adjusted_equity]')"
        ".dataset.value !== ae",
        arg=shown["adjusted_equity"],
    )
    assert page.evaluate("window.__sameDocument") is True  # updated in place, no reload
    moved = figures(page)
    assert Decimal(moved["adjusted_equity"]) < Decimal(shown["adjusted_equity"])
    assert moved["used_margin"] == shown["used_margin"]


def test_typing_a_size_projects_health_and_a_trade_appears(portal, page, alice):
    log_in(page, portal, "alice@example.test")
    binary_rows = "#breakdown-rows [data-field=symbol]"
    assert page.locator(binary_rows).count() == 1
    page.select_option("#order-symbol", "TRUMP-WIN")  # the order ticket: market, then outcome
    page.check("#order-entry input[name=outcome][value=no]")
    page.fill("#order-notional", "50")
    projected = page.locator("#order-projection [data-field=projected_health]")
    page.wait_for_function(
        "() => !['', '—'].includes(document.querySelector("
        "'#order-projection [data-field=projected_health]').textContent.trim())"
    )
    first = projected.inner_text()
    # Buying power (health ≥ 1.2), with what the books can fill now beside it.
    power = page.locator("#order-projection [data-field=buying_power]")
    assert power.inner_text().endswith(" USDC") and Decimal(power.get_attribute("data-value")) > 0
    assert page.locator("#order-projection [data-field=buying_power_fillable]").is_visible()
    assert "fillable now at book depth" in page.locator("#order-projection").inner_text()
    page.fill("#order-notional", "400")
    page.wait_for_function(
        "first => document.querySelector("
        "'#order-projection [data-field=projected_health]').textContent.trim() !== first",
        arg=first,
    )
    assert projected.inner_text() != first
    page.fill("#order-notional", "50")
    page.click("#order-submit")
    page.wait_for_function(
        "() => document.querySelectorAll('#breakdown-rows [data-field=symbol]').length === 2"
    )
    symbols = page.locator(binary_rows).all_inner_texts()
    assert any("NO" in symbol for symbol in symbols), symbols


def test_a_margin_call_shows_the_banner_at_once(portal, page, alice):
    log_in(page, portal, "alice@example.test")
    assert page.locator("#margin-call-banner").is_hidden()
    page.evaluate("window.__sameDocument = true")
    quote("0.05", "0.06")  # collateral collapses: health falls below 1.0
    page.wait_for_selector("#margin-call-banner[data-margin-call=open]", state="visible")
    assert page.evaluate("window.__sameDocument") is True
    assert page.get_attribute("#margin-health", "data-status") == "margin_call"


def test_a_stopped_feed_shows_prices_delayed_and_live_prices_clear_it(portal, page, alice):
    policy = RiskPolicy.objects.get_or_create(pk=1)[0]
    policy.price_stale_after_seconds = 2
    policy.save()
    quote("0.60", "0.61")
    log_in(page, portal, "alice@example.test")
    banner = page.locator("#prices-banner")
    assert banner.is_hidden()

    # The feed stops: no tick, no push. The page notices by itself, without a reload.
    page.wait_for_selector("#prices-banner[data-stale=true]", state="visible", timeout=15_000)
    text = banner.inner_text()
    assert text.startswith("Prices delayed since ")
    assert "TRUMP-WIN" in text and "Orders in these markets are paused" in text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "prices-delayed-banner.png"))

    quote("0.58", "0.59")  # prices are live again: the engine's push says so
    page.wait_for_selector("#prices-banner", state="hidden", timeout=15_000)


def test_closing_half_a_position_from_its_row(portal, page, alice):
    log_in(page, portal, "alice@example.test")
    row = page.locator("#breakdown-rows tr[data-symbol=TRUMP-WIN]")
    before = Decimal(row.locator("[data-field=quantity]").get_attribute("data-value"))
    half = (before / 2).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)

    row.locator("[data-action=close-position]").click()
    panel = page.locator("form.close-panel")
    assert row.locator("[data-action=close-position]").get_attribute("aria-expanded") == "true"
    assert page.evaluate("document.activeElement.value") == "all"  # focus on the choices
    page.keyboard.press("ArrowRight")  # Close all → Reduce by %
    assert panel.get_by_label("Reduce by %").is_checked()
    panel.get_by_role("button", name="50 %").click()
    assert panel.get_by_label("Percent of the position").input_value() == "50"
    assert panel.get_by_label("Quantity to close").is_hidden()

    # The simulation of that half: health before → after, and what the books absorb.
    page.wait_for_selector(f"form.close-panel .close-simulation[data-quantity='{half:.6f}']")
    simulation = panel.locator(".close-simulation")
    assert simulation.get_attribute("data-zone") in ("ok", "warning")
    assert panel.locator("[data-field=close_health_before]").get_attribute("data-value")
    assert panel.locator("[data-field=close_health_after]").inner_text() == "No borrowing"
    assert (
        panel.locator("[data-field=close_fillable]")
        .inner_text()
        .startswith(f"Fillable now: {half:,.6f}".rstrip("0").rstrip("."))
    )
    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "close-panel.png"))

    quote("0.60", "0.61")  # a fresh price for the venue to fill on
    panel.get_by_role("button", name="Confirm close").click()
    page.wait_for_function(
        "q => document.querySelector('#breakdown-rows tr[data-symbol=TRUMP-WIN] "
        "[data-field=quantity]').dataset.value === q",
        arg=f"{before - half:.6f}",
    )
    result = page.locator("#position-breakdown [data-field=close_result]")
    assert result.inner_text().startswith(f"Sold {half:,.2f} TRUMP-WIN YES at ")
    # The position changed: its panel is gone, the button collapsed and focused.
    assert page.locator("form.close-panel").count() == 0
    assert row.locator("[data-action=close-position]").get_attribute("aria-expanded") == "false"
    assert Position.objects.get(account=alice).quantity == before - half


def test_one_close_panel_at_a_time_and_a_perp_closed_from_its_row(portal, page, alice):
    perp_create("BTC-PERP", "BTC")

    def perp_quote() -> None:
        put_quote("BTC-PERP@leviathan", bid="50000", ask="50001", binary=False, step="1")

    perp_quote()
    order_execute(account=alice, symbol="BTC-PERP", side="buy", notional_usdc=Decimal("100"))
    log_in(page, portal, "alice@example.test")
    binary = page.locator("#breakdown-rows tr[data-symbol=TRUMP-WIN]")
    perp = page.locator("#perp-rows tr[data-symbol=BTC-PERP]")
    binary.locator("[data-action=close-position]").click()
    perp.locator("[data-action=close-position]").click()
    # Opening another row's panel closes the first.
    assert page.locator("form.close-panel").count() == 1
    assert page.locator("#perp-positions form.close-panel").count() == 1
    assert binary.locator("[data-action=close-position]").get_attribute("aria-expanded") == "false"
    panel = page.locator("form.close-panel")
    size = perp.locator("[data-field=quantity]").get_attribute("data-value")
    shown = panel.locator("[data-field=close_held]").inner_text()
    assert Decimal(shown) == Decimal(size) > 0
    summary = panel.locator("[data-field=close_summary]").inner_text()
    assert summary.startswith(f"Closing {shown} of {shown} BTC-PERP (long)")
    assert panel.locator(".close-health").is_hidden()  # no health simulation for a perp
    # Escape closes it and gives focus back to its button.
    page.keyboard.press("Escape")
    assert page.locator("form.close-panel").count() == 0
    assert page.evaluate("document.activeElement.dataset.action") == "close-position"
    assert page.evaluate("document.activeElement.closest('tr').dataset.symbol") == "BTC-PERP"

    page.keyboard.press("Enter")  # open it again from the keyboard: Close all, confirm
    perp_quote()
    page.locator("form.close-panel").get_by_role("button", name="Confirm close").click()
    page.wait_for_selector("#perp-rows tr.empty")
    result = page.locator("#perp-positions [data-field=close_result]")
    assert result.inner_text().startswith(f"Sold {Decimal(size).normalize():f} BTC-PERP at ")
    perps = Position.objects.filter(account=alice, instrument__symbol="BTC-PERP")
    assert not perps.exclude(quantity=0).exists()


# --- Issue 18 (D): changed values highlighted, the gauge's ticks and markers, charts --------


def test_a_live_update_highlights_the_values_it_changed(portal, page, alice):
    log_in(page, portal, "alice@example.test")
    ae = "#account-summary [data-field=adjusted_equity]"
    flashed = page.evaluate(
        "() => [...document.querySelectorAll('.value-changed')].map(n => n.outerHTML)"
    )
    assert flashed == []  # nothing flashes on load
    before = page.get_attribute(ae, "data-value")
    page.evaluate(
        """() => { window.__changed = [];
        new MutationObserver(records => records.forEach(r => {
          if (r.target.classList && r.target.classList.contains('value-changed'))
            window.__changed.push(r.target.getAttribute('data-field'));
        })).observe(document.getElementById('dashboard'),
          {subtree: true, attributes: true, attributeFilter: ['class']}); }"""
    )
    quote("0.50", "0.51")  # TRUMP-WIN falls: figures and the row's price and P&L move
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).dataset.value !== old", arg=[ae, before]
    )
    page.wait_for_function("() => window.__changed.includes('adjusted_equity')")
    # The breakdown row's price and P&L change when the snapshot is re-read.
    page.wait_for_function(
        "() => ['collateral_price', 'pnl'].some(f => window.__changed.includes(f))",
        timeout=20_000,
    )
    price = page.locator("#breakdown-rows [data-field=collateral_price]").first.inner_text()
    assert price.endswith("¢")
    # The class goes again after ~1.5 s.
    page.wait_for_function(
        f"() => !document.querySelector('{ae}').classList.contains('value-changed')"
    )
    # Motion respected: with reduced motion the highlight is static (no animation).
    page.emulate_media(reduced_motion="reduce")
    animation = page.evaluate(
        """() => { const n = document.querySelector('#account-summary [data-field=cash]');
        n.classList.add('value-changed'); const a = getComputedStyle(n).animationName;
        n.classList.remove('value-changed'); return a; }"""
    )
    assert animation == "none"


def _rendered_font_sizes(page, selector: str) -> list[float]:
    """The on-screen size (px) of each SVG text matching `selector`."""
    return page.evaluate(
        """sel => [...document.querySelectorAll(sel)].map(t => {
          const svg = t.ownerSVGElement, box = svg.viewBox.baseVal;
          const scale = svg.getBoundingClientRect().width / box.width;
          return parseFloat(getComputedStyle(t).fontSize) * scale; })""",
        selector,
    )


def test_the_gauge_marks_no_borrowing_and_labels_its_ticks(portal, page):
    user = UserFactory(email="carol@example.test")
    account = open_account(owner=user, margin_enabled=True, margin_override="granted")
    credit_cash(account, "1000")  # cash only: health unbounded
    page.set_viewport_size({"width": 375, "height": 812})
    log_in(page, portal, "carol@example.test")
    gauge = page.locator("#health-gauge")
    assert gauge.get_attribute("data-gauge") == "unbounded"
    assert page.locator("#health-gauge .gauge-needle").count() == 0  # never drawn as 3
    assert page.locator("[data-field=gauge_marker]").inner_text() == "∞ — no borrowing"
    labels = page.evaluate(
        "() => [...document.querySelectorAll('#health-gauge .gauge-label')].map(t => t.textContent)"
    )
    assert labels == ["0", "1.0", "1.2", "1.5", "3.0"]
    for size in _rendered_font_sizes(
        page, "#health-gauge text, #equity-chart text, #health-chart text"
    ):
        assert size >= 11, size
    widths = page.evaluate(
        "() => [...document.querySelectorAll('#health-gauge, #equity-chart, #health-chart')]"
        ".map(n => n.getBoundingClientRect().right)"
    )
    assert widths and max(widths) <= 375  # the charts fit the phone's width


def test_health_above_the_scale_is_marked_not_pinned(portal, page):
    user = UserFactory(email="dave@example.test")
    account = open_account(owner=user, margin_enabled=True, margin_override="granted")
    credit_cash(account, "1000")
    binary_create("TRUMP-WIN")
    quote("0.60", "0.61")
    order_execute(account=account, symbol="TRUMP-WIN", side="buy", notional_usdc=Decimal("1050"))
    log_in(page, portal, "dave@example.test")
    assert page.get_attribute("#health-gauge", "data-gauge") == "above"
    assert page.locator("[data-field=gauge_marker]").inner_text() == "≥ 3.0"
    assert page.locator("#health-gauge .gauge-offscale-mark").count() == 1
    health = Decimal(page.get_attribute("#health-gauge .gauge-needle", "data-health"))
    assert health >= 3
    # The history chart draws its zones; the equity chart its line.
    assert page.locator("#health-chart .band").count() == 3
    quote("0.62", "0.63")  # a tick: the pushed figures become a point of both charts
    page.wait_for_selector("#equity-chart .equity-line", state="attached")
    page.wait_for_selector("#health-chart .health-line", state="attached")
