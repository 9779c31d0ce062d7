"""The quote store in Redis: latest quotes and the tick stream."""

from datetime import UTC, datetime
from decimal import Decimal

from tests.trading.test_quotes import yes_quote
from trading.marketdata import store

TS = datetime(2026, 1, 1, tzinfo=UTC)


def test_latest_quote_replaces_the_previous_one(quote_store):
    store.quotes_publish([yes_quote(mark=Decimal("0.41"))], ts=TS)
    store.quotes_publish([yes_quote(mark=Decimal("0.42"))], ts=TS)
    assert store.quote_get("TRUMP-WIN@kalshi") == yes_quote(mark=Decimal("0.42"))
    assert store.quote_get("TRUMP-WIN@polymarket") is None


def test_many_and_all(quote_store):
    kalshi = yes_quote()
    polymarket = yes_quote(listing_key="TRUMP-WIN@polymarket", bid=Decimal("0.41"))
    store.quotes_publish([kalshi, polymarket], ts=TS)
    assert store.quotes_get_many(["TRUMP-WIN@polymarket", "NOPE@kalshi"]) == {
        "TRUMP-WIN@polymarket": polymarket
    }
    assert store.quotes_get_many([]) == {}
    assert store.quotes_all() == {"TRUMP-WIN@kalshi": kalshi, "TRUMP-WIN@polymarket": polymarket}
    # Stored where other processes look for it.
    assert quote_store.hlen(store.quotes_key()) == 2


def test_a_subscriber_receives_each_batch_once(quote_store):
    with store.ticks_subscribe() as ticks:
        store.quotes_publish([yes_quote()], ts=TS)
        store.quotes_publish([], ts=TS)  # nothing moved: nothing published
        batch = ticks.get(timeout=5)
        assert batch == store.TickBatch(ts=TS, quotes=(yes_quote(),))
        assert ticks.get(timeout=0.2) is None


def test_subscribers_get_batches_in_order(quote_store):
    with store.ticks_subscribe() as ticks:
        for mark in ("0.41", "0.42"):
            store.quotes_publish([yes_quote(mark=Decimal(mark))], ts=TS)
        marks = [ticks.get(1.0).quotes[0].mark for _ in range(2)]
        assert marks == [Decimal("0.41"), Decimal("0.42")]
        assert ticks.get(0.1) is None
