"""Fixtures for market data and venues: markets built with the ORM, a clean
quote store in Redis, and a fake clock for the feed."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from trading.marketdata import store
from trading.models import EventGroup, Instrument, Listing, Venue

# 2026-01-01T00:00:00Z: a multiple of every history bucket the tests use.
T0 = 1_767_225_600.0


class FakeClock:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self, start: float = T0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def quote_store():
    """An empty quote hash under this test process's prefix, emptied again after."""
    client = store.redis_client()
    client.delete(store.quotes_key())
    yield client
    client.delete(store.quotes_key())


def venue_get(code: str, kind: str = Venue.Kind.PREDICTION) -> Venue:
    venue, _ = Venue.objects.get_or_create(code=code, defaults={"name": code.title(), "kind": kind})
    return venue


def binary_create(symbol: str, tick: str = "0.01", *venue_codes: str) -> Instrument:
    """An open binary market listed on `venue_codes` (default: kalshi and polymarket)."""
    event, _ = EventGroup.objects.get_or_create(code="event-" + symbol.lower(), title=symbol)
    instrument = Instrument.objects.create(
        symbol=symbol,
        title=f"Will {symbol} happen?",
        kind=Instrument.Kind.BINARY,
        tick_size=Decimal(tick),
        event=event,
        expires_at=timezone.now() + timedelta(days=30),
    )
    for code in venue_codes or ("kalshi", "polymarket"):
        Listing.objects.create(
            instrument=instrument, venue=venue_get(code), venue_symbol=f"{symbol}-{code}"
        )
    return instrument


def perp_create(symbol: str, base_asset: str, tick: str = "0.5") -> Instrument:
    """An open perpetual listed on leviathan."""
    instrument = Instrument.objects.create(
        symbol=symbol,
        title=f"{base_asset} perpetual",
        kind=Instrument.Kind.PERPETUAL,
        tick_size=Decimal(tick),
        base_asset=base_asset,
        max_leverage=20,
        default_leverage=5,
        maintenance_margin_fraction=Decimal("0.03"),
        funding_interval_hours=8,
    )
    Listing.objects.create(
        instrument=instrument,
        venue=venue_get("leviathan", Venue.Kind.PERPETUALS),
        venue_symbol=symbol,
    )
    return instrument


@dataclass
class Markets:
    trump: Instrument
    btc: Instrument

    def listing(self, key: str) -> Listing:
        symbol, _, venue = key.partition("@")
        return Listing.objects.select_related("instrument", "venue").get(
            instrument__symbol=symbol, venue__code=venue
        )


@pytest.fixture
def markets(db) -> Markets:
    """TRUMP-WIN on kalshi and polymarket, BTC-PERP on leviathan."""
    return Markets(trump=binary_create("TRUMP-WIN"), btc=perp_create("BTC-PERP", "BTC"))
