"""Resolution and settlement: YES / NO / void pay each position once, into cash."""

from decimal import ROUND_DOWN, Decimal

import pytest

from accounts.models import AuditLog, Journal
from accounts.services.reconciliation import ledger_reconcile
from portal.errors import Conflict, Forbidden, InvalidParams
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.margining import buy, capture_outbox_sends
from tests.trading.quoting import put_quote
from trading.enqueue import MARKET_SETTLE
from trading.models import Instrument, Order, Position
from trading.services.execute import order_execute, orders_reconcile
from trading.services.markets import instrument_check_tradable
from trading.services.settlement import instrument_resolve, market_settle
from trading.tasks import market_settle_task, markets_settle_due_task

pytestmark = pytest.mark.django_db
D6 = Decimal("0.000001")


@pytest.fixture
def holders(markets):
    """Alice holds 100 YES @ 0.40, Bob 50 NO @ 0.70 of TRUMP-WIN."""
    alice, bob = open_account(), open_account()
    credit_cash(alice, "1000")
    credit_cash(bob, "1000")
    buy(alice, markets.trump, "100", "0.40", outcome="yes")
    buy(bob, markets.trump, "50", "0.70", outcome="no")
    return alice, bob


def cash(account) -> Decimal:
    account.refresh_from_db(fields=["cash_balance"])
    return account.cash_balance


@pytest.mark.parametrize(
    ("resolution", "alice_cash", "bob_cash", "alice_pnl", "bob_pnl", "journals"),
    [
        ("yes", "1060", "965", "60", "-35", 1),  # 960 + 100; 965 + 0
        ("no", "960", "1015", "-40", "15", 1),  # 960 + 0; 965 + 50
        ("void", "1000", "1000", "0", "0", 2),  # each cost back
    ],
)
def test_resolution_settles_each_position_once(
    markets,
    holders,
    staff,
    django_capture_on_commit_callbacks,
    resolution,
    alice_cash,
    bob_cash,
    alice_pnl,
    bob_pnl,
    journals,
):
    alice, bob = holders
    with django_capture_on_commit_callbacks(execute=True):
        # After commit the task is sent by name (not run eagerly): run it here, twice.
        instrument_resolve(instrument=markets.trump, resolution=resolution, actor=staff)
    market_settle_task.apply(kwargs={"instrument_id": markets.trump.pk})
    second = market_settle(instrument_id=markets.trump.pk)

    assert second.positions_settled == 0 and second.already_settled
    assert cash(alice) == Decimal(alice_cash)
    assert cash(bob) == Decimal(bob_cash)
    positions = {p.account_id: p for p in Position.objects.filter(instrument=markets.trump)}
    assert positions[alice.pk].quantity == 0 and positions[bob.pk].quantity == 0
    assert positions[alice.pk].realized_pnl == Decimal(alice_pnl)
    assert positions[bob.pk].realized_pnl == Decimal(bob_pnl)
    paying = sum(1 for p in (alice_cash, bob_cash) if Decimal(p) > 960 and p != "965")
    assert (
        Journal.objects.filter(kind=Journal.Kind.SETTLEMENT).count()
        == (2 if resolution == "void" else 1)
        or paying == 0
    )
    markets.trump.refresh_from_db()
    assert markets.trump.status == "resolved" and markets.trump.settled_at is not None
    assert ledger_reconcile().ok


def test_settlement_runs_twice_without_paying_twice(
    markets, holders, staff, monkeypatch, django_capture_on_commit_callbacks
):
    sent = capture_outbox_sends(monkeypatch)
    alice, _ = holders
    with django_capture_on_commit_callbacks(execute=True):
        instrument_resolve(instrument=markets.trump, resolution="yes", actor=staff)
    assert sent.calls == [("trading.market_settle", {"instrument_id": markets.trump.pk})]
    first = market_settle_task(instrument_id=markets.trump.pk)
    # A second run before settled_at is visible (e.g. concurrent) still pays nothing.
    Instrument.objects.filter(pk=markets.trump.pk).update(settled_at=None)
    second = market_settle(instrument_id=markets.trump.pk)
    assert first["positions_settled"] == 2 and first["paid_out"] == "100.000000"
    assert second.positions_settled == 0
    assert cash(alice) == Decimal("1060")
    assert Journal.objects.filter(kind=Journal.Kind.SETTLEMENT).count() == 1
    assert ledger_reconcile().ok


def test_resolution_is_audited_staff_only_binary_only_and_once(markets, staff, user):
    with pytest.raises(Forbidden):
        instrument_resolve(instrument=markets.trump, resolution="yes", actor=user)
    with pytest.raises(InvalidParams):
        instrument_resolve(instrument=markets.trump, resolution="maybe", actor=staff)
    with pytest.raises(InvalidParams):
        instrument_resolve(instrument=markets.btc, resolution="yes", actor=staff)
    resolved = instrument_resolve(instrument=markets.trump, resolution="no", actor=staff)
    assert (resolved.status, resolved.resolution) == ("resolved", "no")
    assert resolved.resolved_at is not None
    entry = AuditLog.objects.get(action="instrument.resolve")
    assert entry.actor == staff and entry.changes["resolution"] == ["", "no"]
    with pytest.raises(Conflict) as info:
        instrument_resolve(instrument=markets.trump, resolution="yes", actor=staff)
    assert info.value.code == "already_resolved"


def test_settling_an_unresolved_market_is_refused(markets):
    with pytest.raises(Conflict) as info:
        market_settle(instrument_id=markets.trump.pk)
    assert info.value.code == "not_resolved"


@pytest.mark.parametrize("status", ["halted", "resolved"])
def test_closed_markets_are_not_tradable(markets, status):
    markets.trump.status = status
    markets.trump.resolution = "yes" if status == "resolved" else ""
    with pytest.raises(Conflict) as info:
        instrument_check_tradable(markets.trump)
    assert (info.value.code, info.value.status) == ("market_closed", 409)


# --- Orders still at a venue when the market resolves ---------------------------------


@pytest.fixture
def at_venue(markets, quote_store, settings):
    """A trader of TRUMP-WIN on kalshi alone; `answer_lost()` makes the next execute's
    venue answer go missing (the venue fills it; the order stays `pending`)."""
    account = open_account()
    credit_cash(account, "1000")
    markets.trump.listings.exclude(venue__code="kalshi").update(is_active=False)
    put_quote("TRUMP-WIN@kalshi", bid="0.40", ask="0.42", size="1000")

    def execute_unanswered(side: str, notional: str):
        settings.SIMULATED_VENUE_NO_CONFIRM = "filled"
        try:
            return order_execute(
                account=account, symbol="TRUMP-WIN", side=side, notional_usdc=Decimal(notional)
            )
        finally:
            settings.SIMULATED_VENUE_NO_CONFIRM = ""

    return account, execute_unanswered


def test_a_buy_the_venue_fills_after_resolution_is_paid_out(
    markets, at_venue, staff, monkeypatch, django_capture_on_commit_callbacks
):
    account, execute_unanswered = at_venue
    order = execute_unanswered("buy", "21")
    assert order.status == Order.Status.PENDING
    instrument_resolve(instrument=markets.trump, resolution="yes", actor=staff)
    assert market_settle(instrument_id=markets.trump.pk).positions_settled == 0
    sent = capture_outbox_sends(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        assert orders_reconcile().filled == [order.public_id]  # booked after the settlement
    assert sent.calls == [(MARKET_SETTLE, {"instrument_id": markets.trump.pk})]
    order.refresh_from_db()
    run = market_settle(instrument_id=markets.trump.pk)
    assert (run.positions_settled, run.paid_out) == (1, order.filled_quantity.quantize(D6))
    assert Position.objects.get(account=account).quantity == 0
    assert market_settle(instrument_id=markets.trump.pk).already_settled
    assert ledger_reconcile().ok


def test_a_sell_at_the_venue_keeps_its_contracts_out_of_the_payout(
    markets, at_venue, staff, monkeypatch
):
    account, execute_unanswered = at_venue
    buy(account, markets.trump, "100", "0.40", outcome="yes")
    sell = execute_unanswered("sell", "18")
    held_back = sell.reserved_quantity
    assert sell.status == Order.Status.PENDING and held_back > 40
    instrument_resolve(instrument=markets.trump, resolution="yes", actor=staff)
    before = cash(account)
    run = market_settle(instrument_id=markets.trump.pk)
    assert run.paid_out == (100 - held_back).quantize(D6, rounding=ROUND_DOWN)
    assert Position.objects.get(account=account).quantity == held_back
    capture_outbox_sends(monkeypatch)

    assert orders_reconcile().filled == [sell.public_id]  # the venue sold them
    sell.refresh_from_db()
    left = held_back - sell.filled_quantity  # the reservation was the sale's worst case
    assert Position.objects.get(account=account).quantity == left
    run = market_settle(instrument_id=markets.trump.pk)
    assert Position.objects.get(account=account).quantity == 0
    paid = (100 - held_back).quantize(D6, rounding=ROUND_DOWN) + left.quantize(
        D6, rounding=ROUND_DOWN
    )
    assert cash(account) - before == paid + sell.filled_notional - sell.fees
    assert ledger_reconcile().ok


def test_the_safety_net_settles_what_a_resolved_market_still_holds(
    markets, at_venue, staff, monkeypatch
):
    account, execute_unanswered = at_venue
    order = execute_unanswered("buy", "21")
    instrument_resolve(instrument=markets.trump, resolution="yes", actor=staff)
    market_settle(instrument_id=markets.trump.pk)
    capture_outbox_sends(monkeypatch)  # the run the booking asks for is lost
    orders_reconcile()
    assert Position.objects.get(account=account).quantity > 0

    assert markets_settle_due_task.apply().get() == [markets.trump.pk]
    assert Position.objects.get(account=account).quantity == 0
    order.refresh_from_db()
    assert cash(account) == Decimal("1000") - order.filled_notional - order.fees + (
        order.filled_quantity.quantize(D6, rounding=ROUND_DOWN)
    )
    assert markets_settle_due_task.apply().get() == []
