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
  "7 Dec 2026, 09:03 UTC";
- messages as sentences with no machine codes (`sentence`): "card_declined: the
  card issuer declined the payment." → "The card issuer declined the payment.";
- fills as people say them (`trade`): "Buy 1,086.96 TRUMP-WIN YES at 46¢".

Nothing here raises on a value that is not a number: it is shown as it is.
"""

import re
from collections.abc import Mapping
from datetime import datetime, tzinfo
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


def grouped(number: Decimal, places: int, rounding: str = ROUND_HALF_UP) -> str:
    """`number` rounded (half up unless told) to `places` decimals with thousands
    separators; no "-0"."""
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=rounding)
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


def usdc(value: object, places: int = 2, *, rounding: str = ROUND_HALF_UP) -> str:
    """An amount of USDC: "12,345.67 USDC"; None → "—". `rounding` for a bound that
    must hold once rounded ("needs at least …": ROUND_UP; "has …": ROUND_FLOOR)."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    return f"{grouped(number, places, rounding)} {CURRENCY}"


def usdc_exact(value: object) -> str:
    """An amount where every micro-USDC counts (a refusal, a limit, a mismatch): 2 to 6
    decimals, no more than it has: "100.00 USDC", "100.000001 USDC"."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    whole, _, fraction = grouped(number, 6).partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')} {CURRENCY}"


def usdc_signed(value: object, places: int = 2) -> str:
    """A movement or a P&L with its direction: "+1,000.00 USDC", "-25.00 USDC"."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    text = grouped(number, places)
    sign = "" if text.startswith("-") or Decimal(text.replace(",", "")) == 0 else "+"
    return f"{sign}{text} {CURRENCY}"


def amount(value: object, places: int = 2) -> str:
    """An amount in a table cell whose column header names the currency: "12,345.67"."""
    number = decimal_or_none(value)
    return _shown(value) if number is None else grouped(number, places)


def amount_signed(value: object, places: int = 2) -> str:
    """A movement or a P&L in a table cell (the header names the currency): "+1,000.00"."""
    text = usdc_signed(value, places)
    return text.removesuffix(f" {CURRENCY}")


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


def quantity(value: object, places: int | None = None) -> str:
    """A number of contracts without spurious decimals: "1,000", "1,086.96"; below one
    contract (a perp's 0.001999 BTC) every significant place up to 6: "0.001999"."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    if places is None:
        places = 2 if abs(number) >= 1 else 6
    return _trimmed(number, places)


def ratio(value: object, unbounded: str = INFINITY) -> str:
    """A ratio to 2 decimals ("1.53"); None (no borrowing: unbounded) → "∞" or `unbounded`."""
    if value is None:
        return unbounded
    number = decimal_or_none(value)
    return str(value) if number is None else grouped(number, 2)


def number_exact(value: object, min_places: int = 2, max_places: int = 6) -> str:
    """A setting where every stored place counts (a policy's ratio, a rate): grouped, at
    least `min_places` decimals and no more than it has: 1.500000 → "1.50", 0.125 →
    "0.125", 1000000 → "1,000,000.00" (min_places=0: "14", "0.5")."""
    number = decimal_or_none(value)
    if number is None:
        return _shown(value)
    whole, _, fraction = grouped(number, max_places).partition(".")
    fraction = fraction.rstrip("0").ljust(min_places, "0")
    return f"{whole}.{fraction}" if fraction else whole


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


def when(value: object, zone: tzinfo | None = None) -> str:
    """A moment in the reader's time zone (or `zone`: text stored for everyone, e.g. a
    ledger memo, says UTC), with the zone: "7 Dec 2026, 09:03 UTC"."""
    moment = _aware(value)
    if moment is None:
        return _shown(value)
    return dateformat.format(timezone.localtime(moment, zone), TIME_FORMAT)


def day(value: object) -> str:
    """A date (or the date of a moment, in the reader's zone): "7 Dec 2026"."""
    moment = _aware(value)
    if moment is not None:
        value = timezone.localtime(moment).date()
    if not hasattr(value, "year"):
        return _shown(value)
    return dateformat.format(value, DATE_FORMAT)


# --- Messages ------------------------------------------------------------------------------

_CODE = r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+"
_LEADING_CODE = re.compile(rf"\A({_CODE})\s*:\s*")
_BARE_CODE = re.compile(rf"\A({_CODE})\.?\Z")
_DOUBLE_STOP = re.compile(r"(?<![.…])\.\.(?!\.)")


def _humanized(code: str) -> str:
    return code.replace("_", " ").capitalize() + "."


def sentence(text: object, known: Mapping[str, str] | None = None) -> str:
    """An error or a reason as a person reads it: no machine code, one sentence or more,
    capitalised, ending with a full stop; "" for nothing.

    A leading code ("card_declined: the issuer said no") is dropped, or replaced by its
    sentence in `known` (codes the caller can explain: a payment provider's, a
    venue's); a bare code is `known`'s sentence or the code in words ("Card declined.");
    a doubled full stop ("… the key..") is made single. Text with no code is kept as
    it is, so a sentence already written for people passes unchanged.
    """
    if text is None:
        return ""
    text = " ".join(str(text).split())
    if not text:
        return ""
    known = known or {}
    bare = _BARE_CODE.match(text)
    if bare:
        return known.get(bare.group(1)) or _humanized(bare.group(1))
    lead = _LEADING_CODE.match(text)
    if lead:
        code = lead.group(1)
        if code in known:
            return known[code]
        text = text[lead.end() :] or _humanized(code)
    text = _DOUBLE_STOP.sub(".", text)
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


def contract(symbol: str, outcome: str | None = None) -> str:
    """A contract as people name it: "TRUMP-WIN YES", "TRUMP-WIN NO", "BTC-PERP"
    (`outcome` empty or None for a perp)."""
    return f"{symbol} {outcome.upper()}" if outcome else symbol


def trade(
    side: str,
    size: object,
    symbol: str,
    at: object,
    *,
    binary: bool,
    outcome: str | None = None,
    venue: str | None = None,
) -> str:
    """A fill as people say it: "Buy 1,086.96 TRUMP-WIN YES at 46¢ on Kalshi",
    "Sell 0.5 BTC-PERP at 67,250.50" (`size` contracts at the price `at`)."""
    size_text, at_text = quantity(size), price(at, binary=binary)
    text = f"{side.capitalize()} {size_text} {contract(symbol, outcome)} at {at_text}"
    return f"{text} on {venue}" if venue else text


def duration(seconds: object) -> str:
    """A span of time as people say it, to the minute: "2 h 05 min", "45 min", "30 s"
    (under a minute), "3 d 4 h"; a negative span reads the same (say "overdue" around it)."""
    try:
        total = abs(int(float(seconds)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _shown(seconds)
    if total < 60:
        return f"{total} s"
    minutes, _ = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"
