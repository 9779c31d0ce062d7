"""The one fill path (trading.services.fills.order_fill_apply)."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from accounts.models import Account, HouseAccount, Posting
from portal.errors import InvalidParams
from tests.trading.conftest import venue_get
from tests.trading.executing import market, trader
from trading.models import FeePolicy, Order, VenueFeeSchedule
from trading.services.fees import fee_policy_get
from trading.services.fills import order_fill_apply

D = Decimal
pytestmark = pytest.mark.django_db


def limit_order(account, instrument, quantity="100") -> Order:
    return Order.objects.create(
        account=account,
        instrument=instrument,
        outcome="yes",
        side="buy",
        order_type=Order.Type.LIMIT,
        time_in_force=Order.TimeInForce.GTC,
        status=Order.Status.OPEN,
        quantity=D(quantity),
        limit_price=D("0.60"),
    )


def apply(order, account, quantity, price, **kwargs):
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        return order_fill_apply(
            order=order,
            account=locked,
            quantity=D(quantity),
            price=D(price),
            venue=venue_get("kalshi"),
            **kwargs,
        )


def test_partial_then_full_fill_with_separate_fee_lines(quote_store):
    FeePolicy.objects.update_or_create(pk=1, defaults={"broker_commission_bps": 10})
    VenueFeeSchedule.objects.create(
        policy=fee_policy_get(), venue=venue_get("kalshi"), model=VenueFeeSchedule.Model.KALSHI
    )
    instrument = market()
    account = trader("1000")
    order = limit_order(account, instrument)
    fill = apply(order, account, "40", "0.60", liquidity="maker", venue_fill_id="v1")
    assert order.status == Order.Status.PARTIALLY_FILLED
    assert fill.venue_fee == D("0.68")  # ceil(0.07 × 40 × 0.24 = 0.672)
    assert fill.commission == D("0.024")
    lines = {
        p.ledger_account.code: p.amount
        for p in Posting.objects.filter(journal=fill.journal).select_related("ledger_account")
    }
    assert lines[HouseAccount.VENUE_SETTLEMENT.value] == D("24") + D("0.68")
    assert lines[HouseAccount.FEE_INCOME.value] == D("0.024")
    apply(order, account, "60", "0.50", venue_fill_id="v2")
    order.refresh_from_db()
    assert order.status == Order.Status.FILLED
    assert order.filled_quantity == D(100) and order.average_fill_price == D("0.54")
    with pytest.raises(InvalidParams):
        apply(order, account, "1", "0.5")


def test_a_venue_fill_id_is_recorded_once(quote_store):
    instrument = market()
    account = trader("1000")
    order = limit_order(account, instrument)
    apply(order, account, "10", "0.60", venue_fill_id="same")
    with pytest.raises(IntegrityError):
        apply(order, account, "10", "0.60", venue_fill_id="same")
