"""Money and price precision shared by every model, service and API.

USDC amounts carry 6 decimal places; prices 8 (binary contracts live in
(0, 1), perps can be six-figure); contract quantities 6. JSON carries them
as strings at those places (`money`, `price`, `qty`).
"""

from decimal import ROUND_HALF_EVEN, Decimal

MONEY_MAX_DIGITS = 24
MONEY_DECIMAL_PLACES = 6
PRICE_MAX_DIGITS = 20
PRICE_DECIMAL_PLACES = 8
QUANTITY_MAX_DIGITS = 24
QUANTITY_DECIMAL_PLACES = 6

MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_DECIMAL_PLACES)
ZERO = Decimal("0")


def quantize_money(value: Decimal | int | str, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round an amount to USDC precision with an explicit rounding mode."""
    return Decimal(value).quantize(MONEY_QUANTUM, rounding=rounding)


def money_field_kwargs() -> dict:
    return {"max_digits": MONEY_MAX_DIGITS, "decimal_places": MONEY_DECIMAL_PLACES}


def price_field_kwargs() -> dict:
    return {"max_digits": PRICE_MAX_DIGITS, "decimal_places": PRICE_DECIMAL_PLACES}


def quantity_field_kwargs() -> dict:
    return {"max_digits": QUANTITY_MAX_DIGITS, "decimal_places": QUANTITY_DECIMAL_PLACES}


_QUANTA = {
    places: Decimal(1).scaleb(-places)
    for places in (MONEY_DECIMAL_PLACES, PRICE_DECIMAL_PLACES, QUANTITY_DECIMAL_PLACES)
}


def dec(value: Decimal | int | None, places: int | None = None) -> str | None:
    """A decimal as the API and the streams write it: a plain string ("0.00000000", never "0E-8"),
    at `places` decimals when given; None stays None."""
    if value is None:
        return None
    if places is not None:
        value = Decimal(value).quantize(_QUANTA[places])
    return format(value, "f")


def money(value: Decimal | None) -> str | None:
    return dec(value, MONEY_DECIMAL_PLACES)


def price(value: Decimal | None) -> str | None:
    return dec(value, PRICE_DECIMAL_PLACES)


def qty(value: Decimal | None) -> str | None:
    return dec(value, QUANTITY_DECIMAL_PLACES)
