"""How the portal's pages write numbers: `{% load portal_format %}`.

- `{{ value|money }}` → "12,345.67 USDC": thousands separators, 2 decimals
  (`money:6` for the full USDC precision), rounded half up as statements are;
  a negative amount keeps its sign ("-1,250.00 USDC"); None → "—".
- `{{ value|money_signed }}` → "+1,000.00 USDC" / "-25.00 USDC" for movements.
- `{{ value|ratio }}` → "1.53" for Margin Health and other ratios; None means
  unbounded (no borrowing) and reads "∞", or the text given: `ratio:"No borrowing"`.
- `{{ value|percent }}` → "42.5%" for a fraction (0.425).

The filters never raise: a value that is not a number is shown as it is.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

register = template.Library()

CURRENCY = "USDC"
DASH = "—"
INFINITY = "∞"


def _decimal(value) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


def _places(arg, default: int) -> int:
    try:
        places = int(arg)
    except (TypeError, ValueError):
        return default
    return min(max(places, 0), 8)


def _grouped(number: Decimal, places: int) -> str:
    exponent = Decimal(1).scaleb(-places)
    rounded = number.quantize(exponent, rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # no "-0.00"
    return f"{rounded:,.{places}f}"


@register.filter
def money(value, places=2) -> str:
    """An amount of USDC with thousands separators: "12,345.67 USDC"."""
    number = _decimal(value)
    if number is None:
        return DASH if value is None or value == "" else str(value)
    return f"{_grouped(number, _places(places, 2))} {CURRENCY}"


@register.filter
def money_signed(value, places=2) -> str:
    """A movement of money with its direction: "+1,000.00 USDC", "-25.00 USDC"."""
    number = _decimal(value)
    if number is None:
        return DASH if value is None or value == "" else str(value)
    text = _grouped(number, _places(places, 2))
    return f"{'' if text.startswith('-') or number == 0 else '+'}{text} {CURRENCY}"


@register.filter
def ratio(value, unbounded=INFINITY) -> str:
    """A ratio to 2 decimals ("1.53"); None (no borrowing: unbounded) → "∞" or `unbounded`."""
    if value is None:
        return str(unbounded)
    number = _decimal(value)
    if number is None:
        return str(value)
    return _grouped(number, 2)


@register.filter
def percent(value, places=1) -> str:
    """A fraction as a percentage: 0.425 → "42.5%"; None → "—"."""
    number = _decimal(value)
    if number is None:
        return DASH if value is None or value == "" else str(value)
    return f"{_grouped(number * 100, _places(places, 1))}%"
