"""Money and price precision shared by every model, service and API.

USDC amounts carry 6 decimal places; prices 8 (binary contracts live in
(0, 1), perps can be six-figure); contract quantities 6. JSON carries them
as strings at those places (`money`, `price`, `qty`).

Reading decimals (SPEC §2): a program sends a string of ASCII digits with an
optional sign and decimal point ("1500.00", "-0.5"), nothing else: not a JSON
number, an exponent, spaces, underscores ("1_000") or other scripts' digits
("١٢٣"), all of which Python's `Decimal()` would quietly accept
(`decimal_text_parse`; `decimal_parse` for services). A person typing into a
form may also write thousands commas, a "$" in front or "USDC" after
(`decimal_typed_parse`).
"""

import re
from decimal import ROUND_HALF_EVEN, Decimal

from portal.errors import InvalidParams

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


# ASCII digits, an optional sign and decimal point; at least one digit.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_THOUSANDS = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+", re.ASCII)
DECIMAL_TEXT_MAX_LENGTH = 64
DECIMAL_FORMAT = 'must be a decimal string of ASCII digits such as "{example}"'


def decimal_pattern(*, max_digits: int, decimal_places: int) -> str:
    """The OpenAPI `pattern` of the plain decimal form at this precision."""
    whole, places = max_digits - decimal_places, decimal_places
    return rf"^[+-]?(?:[0-9]{{1,{whole}}}(?:\.[0-9]{{0,{places}}})?|\.[0-9]{{1,{places}}})$"


def decimal_text_parse(text: str) -> Decimal | None:
    """`text` as a Decimal if it is a plain decimal ("1500.00", "-0.5", "+3"), else None."""
    if len(text) > DECIMAL_TEXT_MAX_LENGTH or not _DECIMAL_TEXT.fullmatch(text):
        return None
    return Decimal(text)


def decimal_typed_parse(text: str) -> Decimal | None:
    """A decimal as a person types it, else None: the plain form, with surrounding
    spaces, a "$" in front, "USDC" after, and commas between thousands ("1,000.50");
    never spaces inside, underscores or non-ASCII digits."""
    text = text.strip()
    if text[-4:].upper() == "USDC":
        text = text[:-4].rstrip()
    sign, text = (text[0], text[1:]) if text[:1] in ("+", "-") else ("", text)
    text = text.removeprefix("$")
    whole, point, fraction = text.partition(".")
    if "," in whole:
        if not _THOUSANDS.fullmatch(whole):
            return None
        whole = whole.replace(",", "")
    return decimal_text_parse(f"{sign}{whole}{point}{fraction}")


def decimal_parse(value: object, *, name: str, example: str = "1500.00") -> Decimal:
    """A service's decimal input: a finite Decimal or an int as is, a string only in the
    plain form (`decimal_text_parse`). Raises InvalidParams for anything else (floats:
    binary floats are not money)."""
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    parsed = decimal_text_parse(value) if isinstance(value, str) else None
    if parsed is None:
        why = ", not a float" if isinstance(value, float) else ""
        raise InvalidParams(f"{name} {DECIMAL_FORMAT.format(example=example)}{why}.")
    return parsed
