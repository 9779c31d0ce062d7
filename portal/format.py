"""How people read numbers and times: the one formatting layer of pages, messages and emails.

The API and the streams write decimals as exact strings (`portal.money`); what a
person reads goes through here (templates through `{% load portal_format %}`,
the pages' scripts through static/js/format.js, which follows the same rules):

- money: thousands separators and 2 decimals, rounded half up as statements
  are ("12,345.67 USDC"), a negative amount keeps its sign, never "-0.00";
- prices of binary contracts in cents ("89¢", "45.36¢"), perp prices grouped
  with 2 decimals ("67,250.50");
- quantities without spurious decimals: whole numbers as they are ("1,000"),
  else at most 2 decimals ("1,086.96");
- ratios to 2 decimals, None (no borrowing) as "∞"; fractions as percentages;
- times in the reader's time zone (the `tz` cookie the pages set, activated by
  `portal.middleware.TimeZoneMiddleware`; UTC otherwise) with the zone shown:
  "7 Dec 2026, 09:03 UTC".

Nothing here raises on a value that is not a number: it is shown as it is.
"""

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils import dateformat, timezone

CURRENCY = "USDC"
DASH = "—"
INFINITY = "∞"
TIME_FORMAT = "j M Y, H:i T"
DATE_FORMAT = "j M Y"


def decimal_or_none(value: object) -> Decimal | None:
    """`value` as a finite Decimal, or None when it is not a number."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


def grouped(number: Decimal, places: int) -> str:
    """`number` rounded half up to `places` decimals with thousands separators; no "-0"."""
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)
    return f"{rounded:,.{places}f}"


def _trimmed(number: Decimal, places: int) -> str:
    """At most `places` decimals, trailing zeros (and a bare point) dropped."""
    text = grouped(number, places)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _shown(value: object) -> str:
    return DASH if value is None or value == "" else str(value)


def usdc(value: object, places: int = 2) -> str:
    """An amount of USDC: "12,345.67 USDC"; None → "—"."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    return f"{grouped(number, places)} {CURRENCY}"


def usdc_signed(value: object, places: int = 2) -> str:
    """A movement or a P&L with its direction: "+1,000.00 USDC", "-25.00 USDC"."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    text = grouped(number, places)
    sign = "" if text.startswith("-") or Decimal(text.replace(",", "")) == 0 else "+"
    return f"{sign}{text} {CURRENCY}"


def cents(value: object) -> str:
    """A binary contract's price (a probability in USDC) in cents: 0.89 → "89¢",
    0.4536 → "45.36¢", 0.005 → "0.5¢"."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    return f"{_trimmed(number * 100, 2)}¢"


def perp_price(value: object) -> str:
    """A perpetual's price: "67,250.50" (grouped, 2 decimals; 4 below 1)."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    return grouped(number, 2 if abs(number) >= 1 else 4)


def price(value: object, *, binary: bool) -> str:
    """A price as its market quotes it: cents for binary contracts, else `perp_price`."""
    return cents(value) if binary else perp_price(value)


def quantity(value: object, places: int = 2) -> str:
    """A number of contracts: "1,000", "1,086.96" (no spurious decimals)."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    return _trimmed(number, places)


def ratio(value: object, unbounded: str = INFINITY) -> str:
    """A ratio to 2 decimals ("1.53"); None (no borrowing: unbounded) → "∞" or `unbounded`."""
    if value is None:
        return unbounded
    number = decimal_or_none(value)
    return str(value) if number is None else grouped(number, 2)


def percent(value: object, places: int = 1) -> str:
    """A fraction as a percentage: 0.425 → "42.5%"; None → "—"."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    return f"{grouped(number * 100, places)}%"


def percent_signed(value: object, places: int = 1) -> str:
    """A change as a percentage with its direction: 0.05 → "+5.0%"."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    text = grouped(number * 100, places)
    sign = "" if text.startswith("-") or Decimal(text.replace(",", "")) == 0 else "+"
    return f"{sign}{text}%"


def _aware(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if timezone.is_aware(value) else timezone.make_aware(value, timezone.utc)


def when(value: object) -> str:
    """A moment in the reader's time zone, with the zone: "7 Dec 2026, 09:03 UTC"."""
    moment = _aware(value)
    if moment is None:
        return _shown(value)
    return dateformat.format(timezone.localtime(moment), TIME_FORMAT)


def day(value: object) -> str:
    """A date (or the date of a moment, in the reader's zone): "7 Dec 2026"."""
    moment = _aware(value)
    if moment is not None:
        value = timezone.localtime(moment).date()
    if not hasattr(value, "year"):
        return _shown(value)
    return dateformat.format(value, DATE_FORMAT)
