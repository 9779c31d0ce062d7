"""Resting orders fill when the book crosses; take-profit / stop-loss fire child orders."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Account, OutboxItem
from accounts.services.reconciliation import ledger_reconcile
from portal.errors import Conflict, InvalidParams, NotFound
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.quoting import put_quote
from trading.models import Fill, Order, Position
from trading.services.execute import order_execute, order_send, orders_reconcile
from trading.services.orders import (
    _trigger_fire,
    order_cancel,
    order_place,
    order_triggers_cancel,
    orders_match,
)
from trading.venues.base import VenueOrder, VenueOrderStatus
from trading.venues.simulated import SimulatedVenue

pytestmark = pytest.mark.django_db
D = Decimal
KEY = "TRUMP-WIN@kalshi"


@pytest.fixture
def match(markets, django_capture_on_commit_callbacks):
    """`orders_match` for TRUMP-WIN, then what it enqueued after commit (a fired
    trigger's child is sent to the venue by the outbox's task)."""

    def run() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return orders_match(instrument_ids=[markets.trump.pk])

    return run


@pytest.fixture
def trader(markets, quote_store):
    account = open_account()
    credit_cash(account, "1000")
    markets.trump.listings.exclude(venue__code="kalshi").update(is_active=False)
    put_quote(KEY, bid="0.40", ask="0.42", size="100")
    return account


def test_gtc_rests_then_is_sent_to_the_venue_when_the_book_crosses(trader, markets, match):
    """The tick only submits the crossing order (its worst case reserved); the outbox
    task sends it, each send its own order at the venue."""
    order = order_place(
        account=trader, symbol="TRUMP-WIN", side="buy", quantity=D("150"), price=D("0.35")
    )
    assert match() == 0
    put_quote(KEY, bid="0.33", ask="0.35", size="100")
    assert orders_match(instrument_ids=[markets.trump.pk]) == 1
    order.refresh_from_db()
    assert (order.status, order.venue_sends) == ("submitted", 1)
    assert order.reserved_cash == D("52.552500")  # 150 at 0.35 and the fee
    assert order_send(order_id=order.pk).status == "partially_filled"
    order.refresh_from_db()
    assert (order.filled_quantity, order.reserved_cash) == (D("100"), 0)
    assert set(Fill.objects.values_list("liquidity", flat=True)) == {"taker"}
    put_quote(KEY, bid="0.32", ask="0.34", size="100")
    match()
    order.refresh_from_db()
    assert (order.status, order.filled_quantity, order.venue_sends) == ("filled", D("150"), 2)
    listing = markets.trump.listings.get(venue__code="kalshi")
    second = SimulatedVenue("kalshi").order_status(listing, client_order_id=order.venue_client_id)
    assert (order.venue_client_id, second.quantity) == (f"{order.public_id}.2", D("50"))
    assert Position.objects.get(account=trader).quantity == D("150")
    assert ledger_reconcile().ok


def armed(trader) -> Order:
    """A filled buy of 50 at 0.42 with a take-profit at 0.50 and a stop-loss at 0.25."""
    return order_place(
        account=trader,
        symbol="TRUMP-WIN",
        side="buy",
        quantity=D("50"),
        price=D("0.42"),
        take_profit=D("0.50"),
        stop_loss=D("0.25"),
        client_order_id="armed",
    )


@pytest.mark.parametrize(
    ("bid", "ask", "trigger"), [("0.50", "0.52", "take_profit"), ("0.20", "0.22", "stop_loss")]
)
def test_take_profit_and_stop_loss_close_with_a_child_order(
    trader, markets, match, bid, ask, trigger
):
    """The child is an order at the venue: placed there under its own id (the
    venue's record is what is booked), its contracts reserved until it answers."""
    parent = armed(trader)
    assert parent.status == "filled"
    put_quote(KEY, bid="0.40", ask="0.42", size="100")
    assert match() == 0
    put_quote(KEY, bid=bid, ask=ask, size="100")
    assert match() == 1
    child = Order.objects.get(parent=parent)
    assert (child.side, child.order_type, child.status) == ("sell", "market", "filled")
    assert child.filled_quantity == D("50") and child.average_fill_price == D(bid)
    assert child.reference_price == D(bid) and child.reserved_quantity == 0
    placed = SimulatedVenue("kalshi").order_status(
        markets.trump.listings.get(venue__code="kalshi"), client_order_id=child.public_id
    )
    assert (placed.status, placed.quantity) == ("filled", D("50"))
    assert child.venue_order_id == placed.venue_order_id
    assert Position.objects.get(account=trader).quantity == 0
    # A trigger fires once.
    assert match() == 0
    assert Order.objects.filter(parent=parent).count() == 1
    assert ledger_reconcile().ok


def test_a_fired_child_holds_its_contracts_until_the_venue_answers(trader, markets):
    """Between the tick that fires a stop and the venue's answer, the child is
    `submitted` and holds what it sells: no other sale may take it."""
    parent = armed(trader)
    put_quote(KEY, bid="0.20", ask="0.22", size="100")
    assert orders_match(instrument_ids=[markets.trump.pk]) == 1  # nothing sent yet
    child = Order.objects.get(parent=parent)
    assert (child.status, child.reserved_quantity) == ("submitted", D("50"))
    assert OutboxItem.objects.get(key=f"order_send:{child.pk}:1").task == "trading.order_send"
    with pytest.raises(InvalidParams, match="held by orders at a venue"):
        order_execute(account=trader, symbol="TRUMP-WIN", side="sell", notional_usdc=D("5"))
    assert order_send(order_id=child.pk).status == "filled"
    assert order_send(order_id=child.pk).status == "filled"  # twice: nothing more
    assert Fill.objects.filter(order=child).count() == 1
    assert Position.objects.get(account=trader).quantity == 0
    assert ledger_reconcile().ok


def test_a_child_the_venue_never_got_is_sent_by_the_reconciler(trader, markets, settings):
    """The outbox's send was lost and the venue has no record: the reconciler sends
    it (never writes a stop that fired off); a venue that did not confirm leaves it
    pending, and the next run books the venue's fill."""
    parent = armed(trader)
    put_quote(KEY, bid="0.20", ask="0.22", size="100")
    orders_match(instrument_ids=[markets.trump.pk])
    child = Order.objects.get(parent=parent)
    Order.objects.filter(pk=child.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    settings.SIMULATED_VENUE_NO_CONFIRM = "filled"
    assert orders_reconcile().still_pending == [child.public_id]
    child.refresh_from_db()
    assert (child.status, child.reserved_quantity) == ("pending", D("50"))
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    assert orders_reconcile().filled == [child.public_id]
    child.refresh_from_db()
    assert (child.status, child.filled_quantity, child.reserved_quantity) == (
        "filled",
        D("50"),
        0,
    )
    assert ledger_reconcile().ok


def test_a_child_on_a_thin_book_fills_what_the_venue_fills_and_cancels_the_rest(
    trader, markets, match
):
    parent = armed(trader)
    put_quote(KEY, bid="0.20", ask="0.22", size="10", levels=2)  # 20 to sell into
    match()
    child = Order.objects.get(parent=parent)
    assert (child.status, child.filled_quantity, child.reject_code) == (
        "cancelled",
        D("20"),
        "ioc_unfilled",
    )
    assert child.reserved_quantity == 0
    assert Position.objects.get(account=trader).quantity == D("30")
    assert trader.__class__.objects.get(pk=trader.pk).orders_reserved == 0
    assert ledger_reconcile().ok


def test_matching_reads_candidates_in_one_query(trader, markets, django_assert_max_num_queries):
    for _ in range(5):
        order_place(
            account=trader, symbol="TRUMP-WIN", side="buy", quantity=D("1"), price=D("0.30")
        )
    with django_assert_max_num_queries(2):  # candidates + their listings
        assert orders_match(instrument_ids=[markets.trump.pk]) == 0


def test_a_trigger_never_sells_what_a_sell_at_the_venue_holds(trader, markets, settings, match):
    """A sell at the venue whose answer was lost holds ~45 of the 50 contracts when the
    take-profit fires: the child sells only the other ~5, and the reconciler then books
    the venue's fill of that sell (selling them twice would leave it unbookable)."""
    parent = armed(trader)
    settings.SIMULATED_VENUE_NO_CONFIRM = "filled"
    sell = order_execute(account=trader, symbol="TRUMP-WIN", side="sell", notional_usdc=D("18"))
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    assert sell.status == Order.Status.PENDING and sell.reserved_quantity > 44
    put_quote(KEY, bid="0.50", ask="0.52", size="100")
    match()
    child = Order.objects.get(parent=parent)
    assert child.filled_quantity == D("50") - sell.reserved_quantity
    assert orders_reconcile().filled == [sell.public_id]
    held_back = sell.reserved_quantity  # the sale's worst case: it sold at most that
    sell.refresh_from_db()
    assert Position.objects.get(account=trader).quantity == held_back - sell.filled_quantity
    assert ledger_reconcile().ok


def test_a_removed_stop_loss_never_fires_and_the_take_profit_still_does(trader, markets, match):
    parent = armed(trader)
    order = order_triggers_cancel(account=trader, order_id=parent.public_id, which="stop_loss")
    assert (order.take_profit, order.stop_loss) == (D("0.50"), None)
    put_quote(KEY, bid="0.20", ask="0.22", size="100")  # through the old stop
    assert orders_match(instrument_ids=[markets.trump.pk]) == 0
    assert not Order.objects.filter(parent=parent).exists()
    put_quote(KEY, bid="0.50", ask="0.52", size="100")
    assert match() == 1
    assert Order.objects.get(parent=parent).filled_quantity == D("50")
    with pytest.raises(Conflict, match="already fired") as refused:
        order_triggers_cancel(account=trader, client_order_id="armed")
    assert refused.value.code == "order_not_active"


def test_removing_both_is_safe_to_repeat_and_wins_over_a_tick_that_read_them(trader, markets):
    parent = armed(trader)
    for _ in range(2):
        order = order_triggers_cancel(account=trader, client_order_id="armed")
        assert (order.take_profit, order.stop_loss) == (None, None)
    # A tick that found the order armed before the removal locks it after: nothing fires.
    assert _trigger_fire(order_id=parent.pk, trigger="stop_loss", book=None) is None
    put_quote(KEY, bid="0.20", ask="0.22", size="100")
    assert orders_match(instrument_ids=[markets.trump.pk]) == 0
    assert Position.objects.get(account=trader).quantity == D("50")


def test_removing_triggers_refuses_what_it_cannot_do(trader, markets):
    parent = armed(trader)
    with pytest.raises(InvalidParams, match="which must be"):
        order_triggers_cancel(account=trader, order_id=parent.public_id, which="both")
    with pytest.raises(NotFound):
        order_triggers_cancel(account=open_account(), order_id=parent.public_id)
    resting = order_place(
        account=trader,
        symbol="TRUMP-WIN",
        side="buy",
        quantity=D("10"),
        price=D("0.30"),
        take_profit=D("0.40"),
    )
    assert order_triggers_cancel(account=trader, order_id=resting.public_id).take_profit is None
    order_cancel(account=trader, order_id=resting.public_id)
    with pytest.raises(Conflict, match="nothing filled") as refused:
        order_triggers_cancel(account=trader, order_id=resting.public_id)
    assert refused.value.code == "order_not_active"


def test_a_send_the_venue_fills_none_of_rests_again_and_waits_before_the_next(
    trader, markets, match, monkeypatch
):
    """The broker's copy of the book crossed, the venue's did not: the order rests
    again, its reservation released, and is not sent again for LIMIT_RESEND_AFTER."""
    order = order_place(
        account=trader, symbol="TRUMP-WIN", side="buy", quantity=D("50"), price=D("0.35")
    )
    put_quote(KEY, bid="0.33", ask="0.35", size="100")

    def nothing_at_the_limit(self, listing, side, **kwargs):
        return VenueOrder(
            client_order_id=kwargs["client_order_id"],
            venue_order_id="sim-none",
            status=VenueOrderStatus.REJECTED,
            reason="Nothing in the book at or better than the limit.",
        )

    monkeypatch.setattr(SimulatedVenue, "market_order_place", nothing_at_the_limit)
    assert match() == 1
    order.refresh_from_db()
    assert (order.status, order.venue_sends, order.reserved_cash, order.reject_code) == (
        "open",
        1,
        0,
        "",
    )
    assert order.venue_resend_after > timezone.now()
    monkeypatch.undo()
    assert match() == 0  # not again within LIMIT_RESEND_AFTER
    Order.objects.filter(pk=order.pk).update(venue_resend_after=timezone.now())
    assert match() == 1
    order.refresh_from_db()
    assert (order.status, order.filled_quantity, order.venue_sends) == ("filled", D("50"), 2)
    assert Account.objects.get(pk=trader.pk).orders_reserved == 0
    assert ledger_reconcile().ok


def test_an_order_pending_at_the_venue_cannot_change_until_it_answers(trader, settings):
    settings.SIMULATED_VENUE_NO_CONFIRM = "filled"
    order = order_place(
        account=trader, symbol="TRUMP-WIN", side="buy", quantity=D("50"), price=D("0.42")
    )
    assert order.status == "pending"
    assert order.reserved_cash == D("21.021000")  # 50 at 0.42 and the fee
    assert Account.objects.get(pk=trader.pk).orders_reserved == D("21.021000")
    with pytest.raises(Conflict, match="at the venue") as refused:
        order_cancel(account=trader, order_id=order.public_id)
    assert refused.value.code == "order_not_active"
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    assert orders_reconcile().filled == [order.public_id]
    order.refresh_from_db()
    assert (order.status, order.filled_quantity, order.reserved_cash) == ("filled", D("50"), 0)
    assert Account.objects.get(pk=trader.pk).orders_reserved == 0


@pytest.mark.parametrize(("time_in_force", "outcome"), [("GTC", "filled"), ("IOC", "rejected")])
def test_a_send_the_venue_never_got(trader, settings, time_in_force, outcome):
    """A good-till-cancelled order stands until it fills or is cancelled: the reconciler
    sends it again. An immediate-or-cancel one is written off, its reservation freed."""
    settings.SIMULATED_VENUE_NO_CONFIRM = "unfilled"
    order = order_place(
        account=trader,
        symbol="TRUMP-WIN",
        side="buy",
        quantity=D("50"),
        price=D("0.42"),
        time_in_force=time_in_force,
    )
    assert order.status == "pending"
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    orders_reconcile()
    order.refresh_from_db()
    assert (order.status, order.reserved_cash) == (outcome, 0)
    if outcome == "rejected":
        assert order.reject_code == "venue_not_received"
    assert Account.objects.get(pk=trader.pk).orders_reserved == 0
    assert ledger_reconcile().ok


def test_fill_or_kill_asks_the_venue_for_all_or_nothing(trader, monkeypatch):
    sent = []
    real = SimulatedVenue.market_order_place

    def spy(self, listing, side, **kwargs):
        sent.append(kwargs)
        return real(self, listing, side, **kwargs)

    monkeypatch.setattr(SimulatedVenue, "market_order_place", spy)
    order = order_place(
        account=trader,
        symbol="TRUMP-WIN",
        side="buy",
        quantity=D("150"),
        price=D("0.43"),
        time_in_force="FOK",
    )
    assert (order.status, order.filled_quantity) == ("filled", D("150"))
    ((kwargs),) = sent
    assert (kwargs["quantity"], kwargs["worst_price"], kwargs["fill_or_kill"]) == (
        D("150"),
        D("0.43"),
        True,
    )
