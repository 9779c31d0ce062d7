"""Limit orders (seed 002): validation, time in force, modify, cancel, history."""

from decimal import Decimal

import pytest

from accounts.services.reconciliation import ledger_reconcile
from portal.errors import Conflict, InvalidParams, NotFound
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.quoting import put_quote
from trading.models import Fill, Order, Position
from trading.selectors import TradeFilters, fill_list, order_list
from trading.services.orders import order_cancel, order_modify, order_place
from trading.venues.simulated import SimulatedVenue

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def trader(markets, quote_store):
    """1,000 USDC; TRUMP-WIN quoted on kalshi only: bids 0.40/0.39/0.38, asks 0.42/0.43/0.44,
    100 contracts per level."""
    account = open_account()
    credit_cash(account, "1000")
    markets.trump.listings.exclude(venue__code="kalshi").update(is_active=False)
    put_quote("TRUMP-WIN@kalshi", bid="0.40", ask="0.42", size="100")
    return account


def place(account, **kwargs):
    params = {"symbol": "TRUMP-WIN", "side": "buy", "quantity": D("50"), "price": D("0.30")}
    return order_place(account=account, **(params | kwargs))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"price": D("1.00")}, "strictly between 0 and 1"),
        ({"price": D("0.305")}, "tick grid"),
        ({"quantity": D("0")}, "greater than zero"),
        ({"price": None}, "needs a price"),
        ({"take_profit": D("0.20")}, "take_profit must be above"),
        ({"stop_loss": D("0.35")}, "stop_loss must be below"),
        ({"time_in_force": "DAY"}, "time_in_force must be one of"),
        ({"order_type": "market"}, "market order has no price"),
    ],
)
def test_invalid_orders_are_refused_with_a_clear_message(trader, kwargs, message):
    with pytest.raises(InvalidParams, match=message):
        place(trader, **kwargs)
    assert not Order.objects.exists()


def test_unknown_symbol_is_not_found(trader):
    with pytest.raises(NotFound):
        place(trader, symbol="NOPE")


def test_gtc_below_the_ask_rests_open(trader):
    order = place(trader, client_order_id="c-1")
    assert (order.status, order.filled_quantity, order.venue.code) == ("open", 0, "kalshi")
    assert order.outcome == "yes" and order.limit_price == D("0.30")


def test_gtc_crossing_fills_at_the_venue_and_rests_the_rest(trader, markets):
    """What crosses is sent to the venue as an immediate-or-cancel order at the limit:
    its fill is the venue's (one fill at its average), the rest rests with the broker."""
    order = place(trader, quantity=D("250"), price=D("0.43"))
    assert order.status == "partially_filled"
    assert order.filled_quantity == D("200")  # 100 @ 0.42 + 100 @ 0.43; 0.44 > limit
    (fill,) = Fill.objects.all()
    assert (fill.price, fill.liquidity) == (D("0.425"), "taker")
    placed = SimulatedVenue("kalshi").order_status(
        markets.trump.listings.get(venue__code="kalshi"), client_order_id=order.public_id
    )
    assert (placed.status, placed.quantity, fill.venue_fill_id) == (
        "filled",
        D("200"),
        placed.venue_fill_id,
    )
    assert (order.venue_sends, order.reserved_cash) == (1, 0)
    assert Position.objects.get(account=trader).quantity == D("200")
    assert ledger_reconcile().ok


def test_ioc_fills_what_crosses_and_cancels_the_rest(trader):
    order = place(trader, quantity=D("150"), price=D("0.42"), time_in_force="IOC")
    assert (order.status, order.filled_quantity) == ("cancelled", D("100"))
    assert order.reject_code == "ioc_unfilled"


def test_fok_fills_all_or_nothing(trader):
    rejected = place(trader, quantity=D("250"), price=D("0.43"), time_in_force="FOK")
    assert (rejected.status, rejected.filled_quantity) == ("rejected", 0)
    assert not Fill.objects.exists()
    filled = place(trader, quantity=D("150"), price=D("0.43"), time_in_force="FOK")
    assert (filled.status, filled.filled_quantity) == ("filled", D("150"))


def test_market_orders_are_ioc(trader):
    order = place(trader, order_type="market", price=None, quantity=D("10"))
    assert (order.time_in_force, order.status) == ("IOC", "filled")


def test_no_contract_and_sell_of_a_position(trader):
    bought = place(trader, symbol="TRUMP-WIN:NO", quantity=D("10"), price=D("0.60"))
    assert (bought.outcome, bought.status) == ("no", "filled")  # NO ask = 1 - 0.40
    with pytest.raises(InvalidParams, match="the position holds"):
        place(trader, symbol="TRUMP-WIN:NO", side="sell", quantity=D("11"), price=D("0.55"))


def test_client_order_id_is_unique_per_account(trader):
    """The same id and body return the original order (a retry); another body is a 409."""
    first = place(trader, client_order_id="dup")
    again = place(trader, client_order_id="dup", quantity="50.000")
    assert again.pk == first.pk
    assert Order.objects.filter(account=trader).count() == 1
    with pytest.raises(Conflict) as info:
        place(trader, client_order_id="dup", quantity=D("51"))
    assert (info.value.code, info.value.status) == ("duplicate_order", 409)
    other = open_account()
    credit_cash(other, "100")
    assert place(other, client_order_id="dup").status == "open"


def test_buys_pass_the_margin_check_at_the_limit_price(trader):
    with pytest.raises(Exception) as info:
        place(trader, quantity=D("100000"), price=D("0.30"))
    assert info.value.code in ("insufficient_margin", "insufficient_funds")


@pytest.mark.parametrize("status", ["halted", "resolved"])
def test_closed_markets_refuse_orders(trader, markets, status):
    markets.trump.status = status
    markets.trump.resolution = "yes" if status == "resolved" else ""
    markets.trump.save()
    with pytest.raises(Conflict) as info:
        place(trader)
    assert info.value.code == "market_closed"


@pytest.mark.parametrize("by", ["order_id", "client_order_id"])
def test_modify_and_cancel_by_either_id(trader, by):
    order = place(trader, client_order_id="mine", take_profit=D("0.50"))
    ref = {by: order.public_id if by == "order_id" else "mine"}
    modified = order_modify(account=trader, **ref, price=D("0.31"), quantity=D("60"))
    assert (modified.limit_price, modified.quantity, modified.status) == (D("0.31"), 60, "open")
    with pytest.raises(InvalidParams, match="take_profit must be above"):
        order_modify(account=trader, **ref, price=D("0.41"), take_profit=D("0.40"))
    cancelled = order_cancel(account=trader, **ref)
    assert cancelled.status == "cancelled"
    with pytest.raises(Conflict) as info:
        order_cancel(account=trader, **ref)
    assert info.value.code == "order_not_active"
    with pytest.raises(Conflict):
        order_modify(account=trader, **ref, price=D("0.32"))


def test_modify_to_a_crossing_price_fills(trader):
    order = place(trader, quantity=D("20"))
    filled = order_modify(account=trader, order_id=order.public_id, price=D("0.42"))
    assert (filled.status, filled.filled_quantity) == ("filled", D("20"))


def test_cancel_of_an_unknown_order_is_not_found(trader):
    with pytest.raises(NotFound):
        order_cancel(account=trader, order_id="ord_missing")
    other = open_account()
    order = place(trader)
    with pytest.raises(NotFound):
        order_cancel(account=other, order_id=order.public_id)


def test_order_and_fill_history(trader, django_assert_max_num_queries):
    place(trader, client_order_id="a")
    place(trader, quantity=D("10"), price=D("0.42"))
    place(trader, symbol="TRUMP-WIN:NO", quantity=D("5"), price=D("0.60"))
    with django_assert_max_num_queries(1):
        orders = order_list(account=trader).items
    assert [o["status"] for o in orders] == ["filled", "filled", "open"]
    assert orders[0]["symbol"] == "TRUMP-WIN:NO"
    assert [
        o["client_order_id"]
        for o in order_list(account=trader, filters=TradeFilters(status="open")).items
    ] == ["a"]
    assert len(order_list(account=trader, filters=TradeFilters(symbol="TRUMP-WIN")).items) == 2
    with django_assert_max_num_queries(1):
        fills = fill_list(account=trader).items
    assert [f["quantity"] for f in fills] == [D("5"), D("10")]
    assert len(fill_list(account=trader, filters=TradeFilters(symbol="TRUMP-WIN:NO")).items) == 1
