"""Orders a venue did not confirm in time stay pending; reconciliation settles
them from the venue's own record, exactly once."""

from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.services.ledger import cash_balance_from_ledger
from accounts.services.reconciliation import ledger_reconcile
from tests.trading.executing import market, no_commission, trader
from trading.models import Fill, Order, Position
from trading.services.execute import order_execute, orders_reconcile
from trading.tasks import orders_reconcile_task

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def elect(quote_store):
    no_commission()
    return market()


def test_unconfirmed_fill_is_pending_then_reconciled_once(elect, settings):
    account = trader("1000")
    settings.SIMULATED_VENUE_NO_CONFIRM = "filled"
    order = order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    assert order.status == Order.Status.PENDING
    assert not Fill.objects.filter(order=order).exists()
    account.refresh_from_db()
    assert account.cash_balance == D("1000")
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    first = orders_reconcile()
    second = orders_reconcile_task()
    assert first.filled == [order.public_id] and second["filled"] == []
    order.refresh_from_db()
    assert order.status == Order.Status.FILLED and order.filled_quantity == D(100)
    assert Fill.objects.filter(order=order).count() == 1
    assert Position.objects.get(account=account, instrument=elect).quantity == D(100)
    account.refresh_from_db()
    assert account.cash_balance == D("940") == cash_balance_from_ledger(account)
    assert ledger_reconcile().ok


def test_a_retry_of_a_pending_order_returns_it_without_placing_again(elect, settings):
    account = trader("1000")
    settings.SIMULATED_VENUE_NO_CONFIRM = "filled"
    args = {"account": account, "symbol": "ELECT", "side": "buy", "notional_usdc": D("6")}
    first = order_execute(**args, client_order_id="k")
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    assert order_execute(**args, client_order_id="k").pk == first.pk
    assert Order.objects.filter(account=account).count() == 1


def test_an_order_the_venue_never_received_is_rejected_after_the_grace(elect, settings):
    account = trader("1000")
    settings.SIMULATED_VENUE_NO_CONFIRM = "unfilled"
    order = order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    assert order.status == Order.Status.PENDING
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    assert orders_reconcile().still_pending == [order.public_id]  # within the grace
    summary = orders_reconcile(unknown_after=timedelta(0))
    assert summary.closed == [order.public_id]
    order.refresh_from_db()
    assert order.status == Order.Status.REJECTED and order.reject_code == "venue_not_received"
    assert orders_reconcile(unknown_after=timedelta(0)).closed == []
    assert not Fill.objects.filter(order=order).exists()
