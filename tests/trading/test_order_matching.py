"""Resting orders fill when the book crosses; take-profit / stop-loss fire child orders."""

from decimal import Decimal

import pytest

from accounts.services.reconciliation import ledger_reconcile
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.quoting import put_quote
from trading.models import Fill, Order, Position
from trading.services.orders import order_place, orders_match

pytestmark = pytest.mark.django_db
D = Decimal
KEY = "TRUMP-WIN@kalshi"


@pytest.fixture
def trader(markets, quote_store):
    account = open_account()
    credit_cash(account, "1000")
    markets.trump.listings.exclude(venue__code="kalshi").update(is_active=False)
    put_quote(KEY, bid="0.40", ask="0.42", size="100")
    return account


def test_gtc_rests_then_fills_as_maker_when_the_book_crosses(trader, markets):
    order = order_place(
        account=trader, symbol="TRUMP-WIN", side="buy", quantity=D("150"), price=D("0.35")
    )
    assert orders_match(instrument_ids=[markets.trump.pk]) == 0
    put_quote(KEY, bid="0.33", ask="0.35", size="100")
    assert orders_match(instrument_ids=[markets.trump.pk]) == 1
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == ("partially_filled", D("100"))
    assert set(Fill.objects.values_list("liquidity", flat=True)) == {"maker"}
    put_quote(KEY, bid="0.32", ask="0.34", size="100")
    orders_match(instrument_ids=[markets.trump.pk])
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == ("filled", D("150"))
    assert Position.objects.get(account=trader).quantity == D("150")
    assert ledger_reconcile().ok


@pytest.mark.parametrize(
    ("bid", "ask", "trigger"), [("0.50", "0.52", "take_profit"), ("0.20", "0.22", "stop_loss")]
)
def test_take_profit_and_stop_loss_close_with_a_child_order(trader, markets, bid, ask, trigger):
    parent = order_place(
        account=trader,
        symbol="TRUMP-WIN",
        side="buy",
        quantity=D("50"),
        price=D("0.42"),
        take_profit=D("0.50"),
        stop_loss=D("0.25"),
    )
    assert parent.status == "filled"
    put_quote(KEY, bid="0.40", ask="0.42", size="100")
    assert orders_match(instrument_ids=[markets.trump.pk]) == 0
    put_quote(KEY, bid=bid, ask=ask, size="100")
    assert orders_match(instrument_ids=[markets.trump.pk]) == 1
    child = Order.objects.get(parent=parent)
    assert (child.side, child.order_type, child.status) == ("sell", "market", "filled")
    assert child.filled_quantity == D("50") and child.average_fill_price == D(bid)
    assert Position.objects.get(account=trader).quantity == 0
    # A trigger fires once.
    assert orders_match(instrument_ids=[markets.trump.pk]) == 0
    assert Order.objects.filter(parent=parent).count() == 1
    assert ledger_reconcile().ok


def test_matching_reads_candidates_in_one_query(trader, markets, django_assert_max_num_queries):
    for _ in range(5):
        order_place(
            account=trader, symbol="TRUMP-WIN", side="buy", quantity=D("1"), price=D("0.30")
        )
    with django_assert_max_num_queries(2):  # candidates + their listings
        assert orders_match(instrument_ids=[markets.trump.pk]) == 0
