"""The three-step order path (SPEC §6): check and reserve under the account lock,
call the venue outside it, book the answer under the lock; reconciliation
finishes whatever a crash or a silent venue left, and reservations never leak."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Account, AuditLog
from accounts.services.ledger import cash_balance_from_ledger
from accounts.services.reconciliation import ledger_reconcile
from accounts.services.withdrawals import withdrawal_request
from portal.errors import DomainError
from tests.threads import together
from tests.trading.executing import market, no_commission, trader
from trading.models import Fill, Order, Position
from trading.services import execute
from trading.services.execute import order_execute, orders_reconcile, reservations_audit
from trading.venues.simulated import SimulatedVenue

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def elect(quote_store):
    no_commission()
    return market()


class HeldVenue:
    """Holds every market order at the venue until `release` is set."""

    def __init__(self, monkeypatch):
        self.inside = threading.Event()
        self.release = threading.Event()
        place = SimulatedVenue.market_order_place

        def held(venue, *args, **kwargs):
            self.inside.set()
            assert self.release.wait(10), "the test never released the venue"
            return place(venue, *args, **kwargs)

        monkeypatch.setattr(SimulatedVenue, "market_order_place", held)


def _background(call):
    """Run `call` in a thread with its own connection; (thread, outcome dict)."""
    outcome = {}

    def run():
        try:
            outcome["result"] = call()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_the_account_row_is_free_while_the_venue_works_and_the_reservation_counts(
    elect, monkeypatch
):
    account = trader("1000")
    venue = HeldVenue(monkeypatch)
    thread, outcome = _background(
        lambda: order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("600"))
    )
    assert venue.inside.wait(10)
    # While the venue holds the order, the account row can be locked at once.
    with transaction.atomic():
        locked = Account.objects.select_for_update(nowait=True).get(pk=account.pk)
        assert locked.orders_reserved == D("600")
        assert locked.risk_cash == D("400")
    order = Order.objects.get(account=account)
    assert (order.status, order.reserved_cash) == (Order.Status.SUBMITTED, D("600"))
    # A withdrawal cannot take the reserved cash meanwhile.
    with pytest.raises(DomainError) as refused:
        withdrawal_request(
            account=account, amount=D("500"), destination="bank", requested_by=account.owner
        )
    assert refused.value.code == "insufficient_funds"
    venue.release.set()
    thread.join(10)
    assert "error" not in outcome
    order.refresh_from_db()
    assert order.status == Order.Status.FILLED and order.reserved_cash == 0
    account.refresh_from_db()
    assert account.orders_reserved == 0
    assert account.cash_balance == D("400") == cash_balance_from_ledger(account)


def test_concurrent_buys_on_one_account_cannot_spend_a_reservation_twice(elect, monkeypatch):
    """Eight buys of 300 on 1,000 of cash, all at the venue at once: three fit."""
    account = trader("1000")
    venue = HeldVenue(monkeypatch)
    venue.release.set()

    def buy():
        return order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("300"))

    results, errors = together(buy, 8)
    assert len(results) == 3
    assert {error.code for error in errors} == {"insufficient_margin"}
    account.refresh_from_db()
    assert account.cash_balance == D("100") == cash_balance_from_ledger(account)
    assert account.orders_reserved == 0
    assert ledger_reconcile().ok


def test_two_sells_at_the_venue_cannot_sell_the_same_contracts(elect, monkeypatch):
    account = trader("1000")
    order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))  # 100
    venue = HeldVenue(monkeypatch)
    first, _ = _background(
        lambda: order_execute(account=account, symbol="ELECT", side="sell", notional_usdc=D("40"))
    )
    assert venue.inside.wait(10)
    held = Order.objects.get(account=account, side="sell")
    assert held.reserved_quantity > D("65")  # 40 USDC at the 0.61 bid, 50 bps worse at worst
    with pytest.raises(DomainError, match="held by orders at a venue"):
        order_execute(account=account, symbol="ELECT", side="sell", notional_usdc=D("40"))
    venue.release.set()
    first.join(10)
    held.refresh_from_db()
    assert held.status == Order.Status.FILLED and held.reserved_quantity == 0


def test_a_silent_venue_leaves_the_order_pending_with_its_reservation(elect, settings):
    account = trader("1000")
    settings.SIMULATED_VENUE_NO_CONFIRM = "filled"
    order = order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    assert (order.status, order.reserved_cash) == (Order.Status.PENDING, D("60"))
    account.refresh_from_db()
    assert account.orders_reserved == D("60") and account.risk_cash == D("940")
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    assert orders_reconcile().filled == [order.public_id]
    account.refresh_from_db()
    assert account.orders_reserved == 0 and account.cash_balance == D("940")


def test_a_crash_before_the_venue_call_is_finished_by_the_reconciler(elect, monkeypatch):
    """The process dies after the submit commits: the order is `submitted`, the venue
    never saw it. The reconciler leaves it to its submitter for a grace, then
    writes it off and releases the reservation."""
    account = trader("1000")

    def crash(order):
        raise SystemExit("killed between submit and send")

    monkeypatch.setattr(execute, "order_venue_send", crash)
    with pytest.raises(SystemExit):
        order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    order = Order.objects.get(account=account)
    assert (order.status, order.reserved_cash) == (Order.Status.SUBMITTED, D("60"))
    assert orders_reconcile().still_pending == [order.public_id]  # within the grace
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    assert orders_reconcile().closed == [order.public_id]
    order.refresh_from_db()
    assert (order.status, order.reject_code) == (Order.Status.REJECTED, "venue_not_received")
    account.refresh_from_db()
    assert account.orders_reserved == 0 and account.cash_balance == D("1000")


def test_a_crash_after_the_venue_filled_is_booked_once_by_the_reconciler(elect, monkeypatch):
    account = trader("1000")
    send = execute.order_venue_send

    def fill_then_crash(order):
        send(order)
        raise SystemExit("killed after the venue filled")

    monkeypatch.setattr(execute, "order_venue_send", fill_then_crash)
    with pytest.raises(SystemExit):
        order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    order = Order.objects.get(account=account)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    _, errors = together(orders_reconcile, 2)
    assert not errors
    order.refresh_from_db()
    assert order.status == Order.Status.FILLED
    assert Fill.objects.filter(order=order).count() == 1
    assert Position.objects.get(account=account, instrument=elect).quantity == D(100)
    account.refresh_from_db()
    assert account.orders_reserved == 0
    assert account.cash_balance == D("940") == cash_balance_from_ledger(account)


def test_a_fill_the_venue_reports_after_a_write_off_is_still_booked(elect, settings):
    account = trader("1000")
    settings.SIMULATED_VENUE_NO_CONFIRM = "unfilled"
    order = order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    orders_reconcile(unknown_after=timedelta(0))
    order.refresh_from_db()
    assert order.reject_code == "venue_not_received"
    # The venue's answer arrives after all (a late delivery): the venue's record wins.
    listing = elect.listings.get(venue__code="kalshi")
    placed = SimulatedVenue("kalshi").market_order_place(
        listing, "buy", notional=D("60"), client_order_id=order.public_id
    )
    execute.order_venue_answer_book(order=order, placed=placed)
    order.refresh_from_db()
    assert order.status == Order.Status.FILLED
    account.refresh_from_db()
    assert account.cash_balance == D("940") and account.orders_reserved == 0


def test_the_reconciler_asks_again_about_a_written_off_order_and_books_a_late_fill(
    elect, settings, monkeypatch
):
    """Written off `venue_not_received`; the venue records the order afterwards (a late
    delivery). The reconciler asks again (at most every ten minutes, for a day) and
    books the venue's fill; an order the venue still does not know is not asked again
    within the ten minutes."""
    account = trader("1000")
    settings.SIMULATED_VENUE_NO_CONFIRM = "unfilled"
    order = order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    other = order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("6"))
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    orders_reconcile(unknown_after=timedelta(0))
    assert set(Order.objects.values_list("reject_code", flat=True)) == {"venue_not_received"}
    assert orders_reconcile().filled == []  # written off just now: not asked yet
    listing = elect.listings.get(venue__code="kalshi")
    SimulatedVenue("kalshi").market_order_place(
        listing, "buy", notional=D("60"), client_order_id=order.public_id
    )
    asked: list[str] = []
    record = execute._venue_record
    monkeypatch.setattr(execute, "_venue_record", lambda o: asked.append(o.public_id) or record(o))
    later = timezone.now() + timedelta(minutes=11)
    monkeypatch.setattr(timezone, "now", lambda: later)

    assert orders_reconcile().filled == [order.public_id]
    assert sorted(asked) == sorted([order.public_id, other.public_id])
    order.refresh_from_db()
    assert order.status == Order.Status.FILLED
    account.refresh_from_db()
    assert account.cash_balance == D("940") == cash_balance_from_ledger(account)
    assert orders_reconcile().filled == [] and len(asked) == 2  # `other`: in ten minutes
    assert ledger_reconcile().ok


def test_a_leaked_reservation_is_released_and_audited(elect):
    account = trader("1000")
    Account.objects.filter(pk=account.pk).update(orders_reserved=D("25"))
    assert reservations_audit() == [account.public_id]
    account.refresh_from_db()
    assert account.orders_reserved == 0
    entry = AuditLog.objects.get(action="order_reservation_corrected")
    assert entry.changes == {"orders_reserved": ["25.000000", "0"]}
    assert reservations_audit() == []


def test_a_buy_never_costs_more_than_the_notional_asked_for(quote_store):
    """Odd notionals against a book whose average price rounds: the booked cost
    is never above the notional."""
    no_commission()
    from tests.trading.conftest import binary_create
    from tests.trading.quoting import put_quote

    binary_create("ODD", "0.001", "kalshi")
    put_quote("ODD@kalshi", bid="0.332", ask="0.333", size="7", step="0.001", levels=10)
    account = trader("10000")
    for notional in ("1.000001", "2.345678", "3.333333", "7.777777", "9.999999"):
        order = order_execute(
            account=account, symbol="ODD", side="buy", notional_usdc=D(notional), slippage_bps=500
        )
        assert order.filled_notional <= D(notional), notional
    account.refresh_from_db()
    assert account.cash_balance == cash_balance_from_ledger(account)


def test_the_suite_fails_a_venue_call_made_inside_a_transaction(elect):
    """tests/venue_guard.py, active for every test, is what keeps venue calls out of
    transactions: it must catch one."""
    from tests.venue_guard import VenueCallInTransaction
    from trading.venues import venue_adapter

    listing = elect.listings.get(venue__code="kalshi")
    venue_adapter("kalshi").quote(listing)  # outside: fine
    with pytest.raises(VenueCallInTransaction), transaction.atomic():
        venue_adapter("kalshi").quote(listing)


def test_an_order_at_the_venue_is_not_cancelled_under_it(elect, monkeypatch):
    """Neither the customer nor a market halt cancels an order the venue holds: the
    venue may fill it, and that fill must be booked."""
    from trading.services.order_status import orders_cancel_for_instrument
    from trading.services.orders import order_cancel

    account = trader("1000")
    venue = HeldVenue(monkeypatch)
    thread, outcome = _background(
        lambda: order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    )
    assert venue.inside.wait(10)
    order = Order.objects.get(account=account)
    with pytest.raises(DomainError, match="at the venue") as refused:
        order_cancel(account=account, order_id=order.public_id)
    assert refused.value.code == "order_not_active"
    assert orders_cancel_for_instrument(instrument=elect, reason="halted") == []
    venue.release.set()
    thread.join(10)
    order.refresh_from_db()
    assert order.status == Order.Status.FILLED and "error" not in outcome


def test_booking_a_fill_writes_the_account_row_once(elect, monkeypatch):
    """The fill's cash, its lifetime volume and the reservation it releases are one
    UPDATE of the account row: the booking holds the lock for as few statements as it can."""
    account = trader("1000")
    captured = {}
    book = execute.order_venue_answer_book

    def counted(**kwargs):
        with CaptureQueriesContext(connection) as queries:
            order = book(**kwargs)
        captured["sql"] = [q["sql"] for q in queries.captured_queries]
        return order

    monkeypatch.setattr(execute, "order_venue_answer_book", counted)
    order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    updates = [sql for sql in captured["sql"] if sql.startswith('UPDATE "accounts_account"')]
    assert len(updates) == 1
    assert all(column in updates[0] for column in ("cash_balance", "lifetime_volume"))
    assert "orders_reserved" in updates[0]
    account.refresh_from_db()
    assert account.orders_reserved == 0 and account.cash_balance == D("940")
    assert account.lifetime_volume == D("60")
    assert account.cash_balance == cash_balance_from_ledger(account)
