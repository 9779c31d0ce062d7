"""What free text, whole numbers and days sent to us must look like (one definition each).

The API's serializer fields (`portal.api.fields`) and the pages' form fields
(`portal.forms`) run these same checks; Django validators work in both.

- Free text (names, destinations, client order ids, labels) is printable: no
  C0/C1 control characters (NUL, tab, ESC, DEL, …) and no Unicode bidirectional
  overrides or isolates (U+202A–U+202E, U+2066–U+2069), which make text display
  as something it is not. Single-line fields also refuse line breaks
  (U+2028/U+2029 included); multi-line ones (a PEM key, a rejection note)
  allow newline, carriage return and tab.
- Whole numbers are ASCII digits with an optional sign ("10", not "١٠" or "1_0").
- Days are within [DATE_MIN, DATE_MAX], so a day after the last one can still be
  computed (9999-12-31 + 1 day overflows).
"""

import re
import unicodedata
from datetime import date

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

_CONTROL = ((0x00, 0x1F), (0x7F, 0x9F))  # C0, DEL, C1
_BIDI = ((0x202A, 0x202E), (0x2066, 0x2069))  # overrides, embeddings, isolates
_LINE_BREAKS = ((0x2028, 0x2029),)  # line and paragraph separators
_MULTI_LINE_CONTROL = ((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x9F))  # keeps \t \n \r


def _ranges(*groups: tuple[tuple[int, int], ...]) -> str:
    """A regex character-class body, as `\\uXXXX` escapes both Python and ECMA-262 read."""
    return "".join(f"\\u{low:04x}-\\u{high:04x}" for group in groups for low, high in group)


_SINGLE_LINE = _ranges(_CONTROL, _LINE_BREAKS, _BIDI)
_SINGLE_LINE_REFUSED = re.compile(f"[{_SINGLE_LINE}]")
_MULTI_LINE_REFUSED = re.compile(f"[{_ranges(_MULTI_LINE_CONTROL, _BIDI)}]")
# The OpenAPI `pattern` of a single-line text field (`portal.api.schema`).
PRINTABLE_LINE_PATTERN = f"^[^{_SINGLE_LINE}]*$"
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,30}", re.ASCII)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)

DATE_MIN = date(1970, 1, 1)
DATE_MAX = date(2999, 12, 31)

_NAMES = {"\x00": "NUL", "\t": "a tab", "\n": "a newline", "\r": "a carriage return"}


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if char in _NAMES:
        return f"{_NAMES[char]} ({code})"
    if "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
        return f"a bidirectional override ({code})"
    if char in "\u2028\u2029":
        return f"a {unicodedata.name(char).lower()} ({code})"
    return f"a control character ({code})"


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why `value` is not acceptable free text, or None when it is."""
    match = (_MULTI_LINE_REFUSED if multiline else _SINGLE_LINE_REFUSED).search(value)
    if match is None:
        return None
    kind = "printable text" if multiline else "printable text on one line"
    return f"Must be {kind}: it contains {_describe(match.group())}."


@deconstructible
class PrintableTextValidator:
    """Refuses control characters and bidirectional overrides (`text_problem`)."""

    def __init__(self, *, multiline: bool = False):
        self.multiline = multiline

    def __call__(self, value: object) -> None:
        problem = text_problem(str(value), multiline=self.multiline)
        if problem is not None:
            raise ValidationError(problem, code="control_character")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrintableTextValidator) and other.multiline == self.multiline

    def __hash__(self) -> int:
        return hash(self.multiline)


printable_text = PrintableTextValidator()
printable_multiline_text = PrintableTextValidator(multiline=True)


def whole_number_parse(value: object) -> int | None:
    """`value` as an int if it is one (not a bool) or a string of ASCII digits with an
    optional sign, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    return None


def day_text_ok(value: object) -> bool:
    """True for "YYYY-MM-DD" in ASCII digits (the only form days are read in)."""
    return isinstance(value, str) and _DAY.fullmatch(value) is not None


def day_in_range(value: date) -> None:
    """A Django validator: DATE_MIN ≤ value ≤ DATE_MAX."""
    if not DATE_MIN <= value <= DATE_MAX:
        raise ValidationError(
            f"Must be a day from {DATE_MIN.isoformat()} to {DATE_MAX.isoformat()}.",
            code="date_range",
        )
