"""The simulated venue: quotes from the feed, market fills walked through the book."""

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.errors import InvalidParams, NotFound
from tests.trading.conftest import FakeClock
from tests.trading.test_quotes import yes_quote
from trading.marketdata import store
from trading.marketdata.feed import MarketDataFeed
from trading.marketdata.quotes import BookLevel, OrderBook, Outcome
from trading.marketdata.store import MarketDataStale, MarketDataUnavailable
from trading.models import RiskPolicy
from trading.venues import venue_adapter
from trading.venues.base import FillEstimate, Side, book_walk
from trading.venues.simulated import SimulatedVenue

D = Decimal
BOOK = OrderBook(
    bids=(
        BookLevel(D("0.40"), D("100")),
        BookLevel(D("0.39"), D("200")),
        BookLevel(D("0.35"), D("300")),
    ),
    asks=(
        BookLevel(D("0.41"), D("100")),
        BookLevel(D("0.42"), D("200")),
        BookLevel(D("0.45"), D("300")),
    ),
)


@pytest.fixture
def trump(markets, quote_store):
    """TRUMP-WIN@kalshi with the hand-made BOOK as its live quote."""
    store.quotes_publish(
        [yes_quote(bid=D("0.40"), ask=D("0.41"), mark=D("0.405"), book=BOOK, ts=_now())],
        ts=_now(),
    )
    return markets.listing("TRUMP-WIN@kalshi")


def _now() -> datetime:
    return datetime.fromtimestamp(time.time(), tz=UTC)


def kalshi() -> SimulatedVenue:
    adapter = venue_adapter("kalshi")
    assert isinstance(adapter, SimulatedVenue)
    return adapter


def test_buying_a_quantity_walks_up_the_asks(trump):
    fill = kalshi().fill_market(trump, "buy", quantity=D("250"))
    # 100 at 0.41 and 150 at 0.42: 41 + 63 = 104 USDC for 250 contracts.
    assert fill == FillEstimate(
        side=Side.BUY,
        quantity=D("250"),
        notional=D("104.00"),
        average_price=D("0.416"),
        best_price=D("0.41"),
        worst_price=D("0.42"),
        complete=True,
        levels=((D("0.41"), D("100")), (D("0.42"), D("150"))),
    )
    # 0.416 is 146.34 bps above the 0.41 quote: a 50 bps limit would refuse it.
    assert fill.slippage_bps.quantize(D("0.01")) == D("146.34")


def test_spending_a_notional_buys_whole_quantity_steps(trump):
    fill = kalshi().fill_market(trump, Side.BUY, notional=D("50"))
    # 41 USDC buys the 100 at 0.41; the last 9 USDC buy 21.428571 at 0.42.
    assert fill.quantity == D("121.428571")
    assert fill.notional == D("49.99999982")
    assert fill.notional <= D("50")
    assert fill.average_price == D("0.41176471")
    assert fill.complete


def test_an_order_larger_than_the_book_is_reported_short(trump):
    fill = kalshi().fill_market(trump, "buy", quantity=D("700"))
    assert (fill.quantity, fill.notional, fill.worst_price) == (D("600"), D("260.00"), D("0.45"))
    assert not fill.complete
    # Spending exactly what the whole book costs fills it completely.
    assert kalshi().fill_market(trump, "buy", notional=D("260")).complete
    assert not kalshi().fill_market(trump, "buy", notional=D("260.01")).complete


def test_selling_walks_down_the_bids(trump):
    fill = kalshi().fill_market(trump, "sell", quantity=D("250"))
    # 100 at 0.40 and 150 at 0.39: 40 + 58.5 = 98.5 USDC.
    assert (fill.notional, fill.average_price, fill.worst_price) == (
        D("98.50"),
        D("0.394"),
        D("0.39"),
    )
    assert fill.slippage_bps == D("150")


def test_buying_no_takes_the_complement_of_the_yes_bids(trump):
    fill = kalshi().fill_market(trump, "buy", quantity=D("150"), outcome=Outcome.NO)
    # NO asks are 1 − YES bids: 100 at 0.60 and 50 at 0.61 = 90.5 USDC.
    assert (fill.notional, fill.average_price, fill.best_price) == (
        D("90.50"),
        D("0.60333333"),
        D("0.60"),
    )
    book = kalshi().order_book(trump, depth=1, outcome=Outcome.NO)
    assert book == OrderBook(
        bids=(BookLevel(D("0.59"), D("100")),), asks=(BookLevel(D("0.60"), D("100")),)
    )


def test_order_book_depth(trump):
    assert kalshi().order_book(trump, depth=2) == BOOK.top(2)
    assert kalshi().order_book(trump) == BOOK


@pytest.mark.parametrize(
    "size",
    [
        {},
        {"quantity": D("1"), "notional": D("1")},
        {"quantity": D("0")},
        {"notional": D("-5")},
    ],
)
def test_bad_sizes_are_invalid_params(trump, size):
    with pytest.raises(InvalidParams):
        kalshi().fill_market(trump, "buy", **size)


def test_bad_side_and_outcome_of_a_perp_are_invalid_params(trump, markets):
    with pytest.raises(InvalidParams):
        kalshi().fill_market(trump, "short", quantity=D("1"))
    btc = markets.listing("BTC-PERP@leviathan")
    store.quotes_publish(
        [yes_quote(listing_key=btc.key, is_binary=False, outcome=None, ts=_now())], ts=_now()
    )
    with pytest.raises(InvalidParams):
        venue_adapter("leviathan").order_book(btc, outcome=Outcome.NO)


def test_an_empty_side_fills_nothing():
    fill = book_walk(OrderBook(bids=(), asks=()), "sell", quantity=D("5"))
    assert (fill.quantity, fill.average_price, fill.complete) == (D("0"), None, False)
    assert fill.slippage_bps is None


def test_no_quote_yet_is_market_data_unavailable(markets, quote_store):
    with pytest.raises(MarketDataUnavailable) as caught:
        kalshi().quote(markets.listing("TRUMP-WIN@kalshi"))
    assert (caught.value.code, caught.value.status) == ("market_data_unavailable", 503)


def test_a_quote_older_than_the_policy_allows_is_refused_as_stale(trump):
    policy = RiskPolicy.objects.get_or_create(pk=1)[0]
    policy.price_stale_after_seconds = 20
    policy.save()
    late = SimulatedVenue("kalshi", clock=lambda: time.time() + 21)
    with pytest.raises(MarketDataStale, match="delayed: the last quote is from") as refused:
        late.fill_market(trump, "buy", quantity=D("1"))
    assert refused.value.code == "market_data_stale" and refused.value.status == 503
    assert "(the limit is 20 s)" in refused.value.message
    on_time = SimulatedVenue("kalshi", clock=lambda: time.time() + 19)
    assert on_time.quote(trump).ask == D("0.41")


def test_a_listing_of_another_venue_is_a_programming_error(trump):
    with pytest.raises(ValueError):
        venue_adapter("polymarket").quote(trump)
    with pytest.raises(ValueError):  # a bug in the caller, not a 400 for the user
        venue_adapter("polymarket").order_book(trump)


def test_registry_routes_every_venue_to_the_simulated_adapter(settings):
    for code in ("kalshi", "polymarket", "leviathan", "simulated"):
        adapter = venue_adapter(code)
        assert isinstance(adapter, SimulatedVenue) and adapter.code == code
    with pytest.raises(NotFound):
        venue_adapter("binance")
    settings.VENUE_ADAPTERS = {"kalshi": "kalshi-http"}
    with pytest.raises(ImproperlyConfigured):
        venue_adapter("kalshi")


def test_quotes_and_fills_from_the_live_feed(markets, quote_store):
    clock = FakeClock(time.time())
    MarketDataFeed(seed=3, interval=1.0, clock=clock, sleep=clock.sleep).run(iterations=5)
    btc = markets.listing("BTC-PERP@leviathan")
    adapter = venue_adapter("leviathan")
    quote = adapter.quote(btc)
    assert quote == store.quote_get(btc.key)
    small = adapter.fill_market(btc, "buy", quantity=quote.book.asks[0].size)
    assert (small.average_price, small.slippage_bps, small.complete) == (quote.ask, 0, True)
    # Ten million dollars of BTC takes more than the top of the book.
    large = adapter.fill_market(btc, "buy", notional=D("10000000"))
    assert not large.complete and large.worst_price == quote.book.asks[-1].price
