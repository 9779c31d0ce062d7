"""The market-data feed end to end: simulator → Redis → subscribers → history."""

import gc
import threading
import time
import tracemalloc
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from django.db import OperationalError
from django.db.models import Max, Min

from tests.trading.conftest import T0, binary_create
from tests.trading.test_quotes import yes_quote
from trading.marketdata import store
from trading.marketdata.feed import LISTINGS_RELOAD_SECONDS, MarketDataFeed
from trading.marketdata.quotes import PublicTrade
from trading.models import Instrument, Listing, PriceTick

D = Decimal
TRUMP_KALSHI = "TRUMP-WIN@kalshi"
TRUMP_POLY = "TRUMP-WIN@polymarket"
BTC = "BTC-PERP@leviathan"


@pytest.fixture
def feed(markets, quote_store, clock) -> MarketDataFeed:
    return MarketDataFeed(seed=7, interval=1.0, history_every=5.0, clock=clock, sleep=clock.sleep)


def cycles(feed: MarketDataFeed, clock, count: int) -> list[list]:
    """Run `count` cycles one second apart, returning what each published."""
    published = []
    for _ in range(count):
        published.append(feed.cycle())
        clock.sleep(1.0)
    return published


def keys(quotes) -> set[str]:
    return {quote.listing_key for quote in quotes}


def test_runs_for_half_an_hour_in_bounded_memory(feed, clock, caplog):
    # pytest keeps every log record it captures: keep the feed's periodic
    # INFO lines out of the measurement.
    caplog.set_level("WARNING", logger="trading.marketdata.feed")
    feed.run(iterations=300)  # warm-up: caches, connections, TWAP windows fill
    gc.collect()
    tracemalloc.start()
    try:
        feed.run(iterations=600)
        gc.collect()
        middle, _ = tracemalloc.get_traced_memory()
        feed.run(iterations=900)
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Whatever the first 15 minutes allocated for good, the next 15 add nothing.
    assert middle < 256 * 1024
    assert end - middle < 16 * 1024

    stats = feed.stats
    assert (stats.cycles, stats.errors) == (1_800, 0)
    # 1,800 s of one-second ticks: the latest quote of each listing is in
    # Redis, stamped with the last tick's time.
    latest = store.quotes_all()
    assert set(latest) == {TRUMP_KALSHI, TRUMP_POLY, BTC}
    last_tick = datetime.fromtimestamp(clock.now, tz=UTC)  # no sleep after the last
    assert {quote.ts for quote in latest.values()} == {last_tick}
    # History keeps one row per listing per 5 s, not one per tick.
    for listing in Listing.objects.all():
        assert PriceTick.objects.filter(listing=listing).count() == 360
    assert stats.history_rows == 3 * 360
    binary = PriceTick.objects.filter(is_binary=True).aggregate(
        low=Min("bid"), high=Max("ask"), low_mark=Min("mark"), high_mark=Max("mark")
    )
    assert D(0) < binary["low"] and binary["high"] < D(1)
    assert binary["low_mark"] < binary["high_mark"]  # the market moved
    btc = PriceTick.objects.filter(listing__instrument__symbol="BTC-PERP")
    assert btc.aggregate(low=Min("mark"))["low"] < btc.aggregate(high=Max("mark"))["high"]


def test_subscribers_receive_every_tick_as_one_batch(feed, clock):
    with store.ticks_subscribe() as ticks:
        published = cycles(feed, clock, 3)
        batches = [ticks.get(timeout=5) for _ in range(3)]
    assert [batch.quotes for batch in batches] == [tuple(quotes) for quotes in published]
    assert keys(batches[-1].quotes) == {TRUMP_KALSHI, TRUMP_POLY, BTC}
    assert batches[-1].ts == datetime.fromtimestamp(T0 + 2, tz=UTC)
    assert store.quote_get(BTC) == {q.listing_key: q for q in published[-1]}[BTC]


def test_halted_market_keeps_its_last_quote_and_stops_moving(feed, clock, markets):
    cycles(feed, clock, 5)
    Instrument.objects.filter(pk=markets.trump.pk).update(status=Instrument.Status.HALTED)
    clock.sleep(LISTINGS_RELOAD_SECONDS)  # the next cycle re-reads the listings
    frozen = store.quote_get(TRUMP_KALSHI)
    halted_at = clock.now
    published = cycles(feed, clock, 120)
    assert all(keys(quotes) == {BTC} for quotes in published)
    assert store.quote_get(TRUMP_KALSHI) == frozen
    assert store.quote_get(BTC).ts == datetime.fromtimestamp(clock.now - 1, tz=UTC)
    assert not PriceTick.objects.filter(
        listing__instrument=markets.trump, ts__gte=datetime.fromtimestamp(halted_at, tz=UTC)
    ).exists()

    # Reopened, it resumes from where it stopped, not from a default.
    Instrument.objects.filter(pk=markets.trump.pk).update(status=Instrument.Status.OPEN)
    clock.sleep(LISTINGS_RELOAD_SECONDS)
    resumed = {quote.listing_key: quote for quote in feed.cycle()}
    assert abs(resumed[TRUMP_KALSHI].mark - frozen.mark) <= D("0.03")


def test_new_and_retired_listings_are_picked_up_without_a_restart(feed, clock, markets):
    cycles(feed, clock, 3)
    binary_create("RAIN-NYC", "0.01", "kalshi")
    Listing.objects.filter(venue__code="polymarket").update(is_active=False)
    clock.sleep(LISTINGS_RELOAD_SECONDS)
    assert keys(feed.cycle()) == {TRUMP_KALSHI, "RAIN-NYC@kalshi", BTC}


def test_markets_resume_from_their_last_quote_in_redis(markets, quote_store, clock):
    store.quotes_publish(
        [
            yes_quote(listing_key=TRUMP_KALSHI, mark=D("0.93")),
            yes_quote(listing_key=TRUMP_POLY, mark=D("0.91")),
        ],
        ts=datetime.fromtimestamp(T0 - 60, tz=UTC),
    )
    feed = MarketDataFeed(seed=7, interval=1.0, clock=clock, sleep=clock.sleep)
    quotes = {quote.listing_key: quote for quote in feed.cycle()}
    assert abs(quotes[TRUMP_KALSHI].mark - D("0.92")) <= D("0.03")


def test_markets_resume_from_stored_history_when_redis_is_empty(markets, quote_store, clock):
    old = datetime.fromtimestamp(T0 - 3600, tz=UTC)
    for listing in Listing.objects.select_related("instrument"):
        mark = D("0.12") if listing.instrument.is_binary else D("50000")
        PriceTick.objects.create(
            listing=listing, ts=old, is_binary=listing.instrument.is_binary,
            mark=mark, bid=mark, ask=mark, twap=mark,
        )  # fmt: skip
    feed = MarketDataFeed(seed=7, interval=1.0, clock=clock, sleep=clock.sleep)
    quotes = {quote.listing_key: quote for quote in feed.cycle()}
    assert abs(quotes[TRUMP_KALSHI].mark - D("0.12")) <= D("0.03")
    assert abs(quotes[BTC].mark / D("50000") - 1) < D("0.002")  # not the 95,000 default


def test_a_redis_outage_costs_cycles_not_the_feed(feed, clock, settings, caplog):
    cycles(feed, clock, 2)
    redis_url = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    assert cycles(feed, clock, 3) == [[], [], []]
    assert feed.stats.errors == 3
    settings.REDIS_URL = redis_url
    assert keys(feed.cycle()) == {TRUMP_KALSHI, TRUMP_POLY, BTC}
    assert store.quote_get(BTC).ts == datetime.fromtimestamp(clock.now, tz=UTC)
    # One error line for the outage, not one per cycle, then the recovery.
    assert [r.levelname for r in caplog.records if "failed" in r.getMessage()] == [
        "ERROR",
        "INFO",
    ]
    assert "recovered after 3 failed cycles" in caplog.text


def test_without_the_database_quotes_keep_publishing_and_history_resumes_after(
    feed, clock, monkeypatch, caplog
):
    cycles(feed, clock, 2)
    rows = feed.stats.history_rows

    def database_away(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed")

    with monkeypatch.context() as patch:
        patch.setattr(feed.history, "record", database_away)
        patch.setattr(feed, "_reload", database_away)
        clock.sleep(LISTINGS_RELOAD_SECONDS)  # a listings reload falls due too
        published = cycles(feed, clock, 3)
    assert [keys(quotes) for quotes in published] == [{TRUMP_KALSHI, TRUMP_POLY, BTC}] * 3
    assert store.quote_get(BTC).ts == datetime.fromtimestamp(clock.now - 1, tz=UTC)
    assert feed.stats.errors == 4 and feed.stats.history_rows == rows  # reload + 3 histories
    assert caplog.text.count("the database is unavailable; quotes go on") == 1

    clock.sleep(10)  # a history bucket falls due
    feed.cycle()
    assert feed.stats.history_rows > rows
    assert "marketdata: the database is back" in caplog.text


def test_a_wall_clock_stepping_back_does_not_rewind_the_market(feed, clock):
    cycles(feed, clock, 10)
    clock.now -= 5.0
    (quote,) = [q for q in feed.cycle() if q.listing_key == BTC]
    assert quote.ts == datetime.fromtimestamp(T0 + 9, tz=UTC)
    assert feed.stats.errors == 0


def test_overrun_cycles_are_not_made_up_in_a_burst(markets, quote_store):
    now = [T0]
    slept = []

    def slow_clock() -> float:
        now[0] += 0.75  # every reading costs time: cycles overrun the interval
        return now[0]

    feed = MarketDataFeed(seed=7, interval=1.0, clock=slow_clock, sleep=slept.append)
    feed.run(iterations=5)
    assert len(slept) == 4 and all(delay >= 0 for delay in slept)
    assert 0.0 in slept


def test_stop_cuts_a_sleep_short(markets, quote_store):
    feed = MarketDataFeed(seed=7, interval=3600.0)
    threading.Timer(0.2, feed.stop).start()
    started = time.monotonic()
    stats = feed.run()
    assert time.monotonic() - started < 5
    assert stats.cycles == 1


def test_the_simulators_public_trades_go_out_with_the_ticks(feed, clock):
    pubsub = store.redis_client().pubsub()
    pubsub.subscribe(store.trades_channel())
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    quotes = cycles(feed, clock, 10)
    keys_quoted = {quote.listing_key for step in quotes for quote in step}
    trades = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        trades += [PublicTrade.from_dict(item) for item in orjson.loads(message["data"])["trades"]]
    pubsub.close()
    assert trades and {trade.listing_key for trade in trades} <= keys_quoted
