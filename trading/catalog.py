"""Instruments and their listings as every trade reads them: cached per process.

Through `portal.refdata` (versioned in Redis, dropped whenever an Instrument,
Listing, Venue, EventGroup or haircut add-on is saved or deleted: see
TradingConfig.ready), so a halt
or a resolution is seen by this process at once and by every other within
settings.REFDATA_MAX_AGE. The instances are shared: read them, never change
and save them (read the row from the database for that).
"""

from collections.abc import Iterable

from portal.refdata import refdata_get
from portal.validators import text_problem
from trading.models import Instrument, Listing, Venue


def _instrument_load(**lookup) -> Instrument | None:
    return Instrument.objects.select_related("haircut_addon").filter(**lookup).first()


def instrument_get(*, symbol: str) -> Instrument | None:
    """The instrument with `symbol` (its status, haircut add-on loaded), or None (also for
    a symbol with a control character, which no instrument has and PostgreSQL refuses)."""
    if text_problem(symbol) is not None:
        return None
    pk = refdata_get(
        "instrument_symbol",
        symbol,
        lambda: Instrument.objects.filter(symbol=symbol).values_list("pk", flat=True).first(),
    )
    return None if pk is None else instruments_get([pk]).get(pk)


def instruments_get(ids: Iterable[int]) -> dict[int, Instrument]:
    """Instruments by primary key (unknown keys left out)."""
    return {
        pk: instrument
        for pk in set(ids)
        if (instrument := refdata_get("instrument", pk, lambda pk=pk: _instrument_load(pk=pk)))
        is not None
    }


def listings_get(instrument: Instrument) -> list[Listing]:
    """`instrument`'s active listings on active venues, by venue code (venue loaded)."""
    return refdata_get(
        "listings",
        instrument.pk,
        lambda: list(
            Listing.objects.filter(
                instrument_id=instrument.pk, is_active=True, venue__is_active=True
            )
            .select_related("instrument", "venue")
            .order_by("venue__code")
        ),
    )


def venue_name(code: str | None) -> str | None:
    """A venue as people know it ("Kalshi") from its code; an unknown code as it is."""
    if code is None:
        return None
    names = refdata_get(
        "venue_names", None, lambda: dict(Venue.objects.values_list("code", "name"))
    )
    return (names or {}).get(code, code)
