"""How the portal's pages write numbers and times: `{% load portal_format %}`.

Filters over the one formatting layer, `portal.format` (its docstring has the rules):

- `{{ value|money }}` → "12,345.67 USDC" (`money:6` for full USDC precision);
  `{{ value|money_signed }}` → "+1,000.00 USDC" for movements and P&L;
- `{{ value|amount }}` → "12,345.67", `{{ value|amount_signed }}` → "+1,000.00": money in a
  table cell whose column header says "(USDC)";
- `{{ value|cents }}` → "89¢" for a binary contract's price;
  `{{ value|perp_price }}` → "67,250.50"; `{{ value|price_for:binary }}` picks one;
- `{{ value|qty }}` → "1,086.96" (no spurious decimals);
- `{{ value|ratio }}` → "1.53", None → "∞" (or `ratio:"No borrowing"`);
- `{{ value|percent }}` → "42.5%", `{{ value|percent_signed }}` → "+5.0%";
- `{{ value|when }}` → "7 Dec 2026, 09:03 UTC" in the reader's zone; `{{ value|day }}`;
- `{{ value|money_down }}` → rounded down, for what is available ("2,900.37 USDC");
- `{{ value|money_exact }}` → "100.000001 USDC" (2 to 6 decimals, for limits and refusals);
- `{{ text|sentence }}` → a stored reason or error as a sentence with no machine code;
- `{{ value|sign }}` → "positive" / "negative" / "zero", for colouring P&L.

The filters never raise: a value that is not a number is shown as it is.
"""

from decimal import ROUND_FLOOR

from django import template

from portal import format as fmt

register = template.Library()


def _places(arg, default: int) -> int:
    try:
        places = int(arg)
    except (TypeError, ValueError):
        return default
    return min(max(places, 0), 8)


def _with_places(function, default: int):
    """`function(value, places)` as a filter whose argument is the places (`_places`)."""

    def with_places(value, places=default) -> str:
        return function(value, _places(places, default))

    return with_places


money = register.filter("money", _with_places(fmt.usdc, 2))
money_signed = register.filter("money_signed", _with_places(fmt.usdc_signed, 2))
amount = register.filter("amount", _with_places(fmt.amount, 2))
amount_signed = register.filter("amount_signed", _with_places(fmt.amount_signed, 2))
percent = register.filter("percent", _with_places(fmt.percent, 1))
percent_signed = register.filter("percent_signed", _with_places(fmt.percent_signed, 1))
cents = register.filter("cents", fmt.cents)
perp_price = register.filter("perp_price", fmt.perp_price)
money_exact = register.filter("money_exact", fmt.usdc_exact)
day = register.filter("day", fmt.day)


@register.filter
def ratio(value, unbounded=fmt.INFINITY) -> str:
    return fmt.ratio(value, str(unbounded))


@register.filter
def price_for(value, binary) -> str:
    return fmt.price(value, binary=bool(binary))


@register.filter
def qty(value, places=None) -> str:
    return fmt.quantity(value, None if places is None else _places(places, 2))


@register.filter
def when(value) -> str:
    return fmt.when(value)


@register.filter
def money_down(value) -> str:
    """An amount that must not be overstated ("available to withdraw"): rounded down."""
    return fmt.usdc(value, rounding=ROUND_FLOOR)


@register.filter
def sentence(value) -> str:
    """A stored reason or error without its machine code: "The card was declined."."""
    return fmt.sentence(value)


@register.filter
def sign(value) -> str:
    number = fmt.decimal_or_none(value)
    if number is None or number == 0:
        return "zero"
    return "positive" if number > 0 else "negative"
