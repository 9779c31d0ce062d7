"""Leverage get / set / levels per (account, market) — seed 004, SPEC §5."""

from decimal import Decimal

import pytest

from accounts.models import Account, Journal, Posting
from accounts.services.reconciliation import ledger_reconcile
from portal.errors import NotFound
from tests.conftest import credit_cash
from tests.trading.perping import assert_reconciled, fill, perp_position
from tests.trading.quoting import put_quote
from trading.models import LeverageSetting, Order
from trading.services.perps import leverage_get, leverage_levels, leverage_set

D = Decimal
pytestmark = pytest.mark.django_db


def order_open(account, instrument, status=Order.Status.OPEN) -> Order:
    return Order.objects.create(
        account=account,
        instrument=instrument,
        side="buy",
        order_type="limit",
        time_in_force=Order.TimeInForce.GTC,
        status=status,
        quantity=D(1),
        limit_price=D(40000),
    )


def test_levels_and_default(custodial_account, markets):
    (btc,) = leverage_levels()
    assert btc.symbol == "BTC-PERP"
    assert btc.levels == list(range(1, 21))
    assert btc.default == 5
    assert leverage_levels(symbol="NOPE") == []
    view = leverage_get(account=custodial_account, symbol="BTC-PERP")
    assert (view.leverage, view.max_leverage, view.is_default) == (5, 20, True)
    with pytest.raises(NotFound):
        leverage_get(account=custodial_account, symbol="TRUMP-WIN")


def test_set_without_position_applies_and_cancels_open_orders(custodial_account, markets):
    live = order_open(custodial_account, markets.btc)
    done = order_open(custodial_account, markets.btc, status=Order.Status.FILLED)
    other = order_open(custodial_account, markets.trump)
    result = leverage_set(account=custodial_account, symbol="BTC-PERP", leverage=10)
    assert result.status == "APPLIED"
    assert result.reject_reason is None
    assert (result.old_leverage, result.new_leverage) == (5, 10)
    assert result.cancelled_order_ids == [live.public_id]
    live.refresh_from_db()
    assert live.status == Order.Status.CANCELLED and live.reject_reason
    done.refresh_from_db()
    other.refresh_from_db()
    assert done.status == Order.Status.FILLED
    assert other.status == Order.Status.OPEN
    view = leverage_get(account=custodial_account, symbol="BTC-PERP")
    assert (view.leverage, view.is_default) == (10, False)


@pytest.mark.parametrize("value", [0, 21, -1, 2.5, "abc", True, None, D("3.5")])
def test_invalid_leverage_is_rejected(custodial_account, markets, value):
    result = leverage_set(account=custodial_account, symbol="BTC-PERP", leverage=value)
    assert result.status == "REJECTED"
    assert result.reject_reason == "INVALID_LEVERAGE"
    assert (result.old_leverage, result.new_leverage) == (5, 5)
    assert not LeverageSetting.objects.exists()


@pytest.mark.parametrize("symbol", ["NOPE-PERP", "TRUMP-WIN"])
def test_unknown_market_is_rejected(custodial_account, markets, symbol):
    result = leverage_set(account=custodial_account, symbol=symbol, leverage=5)
    assert result.status == "REJECTED"
    assert result.reject_reason == "UNKNOWN_MARKET"
    assert not LeverageSetting.objects.exists()


def btc_mark(mark: str) -> None:
    put_quote("BTC-PERP@leviathan", bid=D(mark) - 5, ask=D(mark) + 5, binary=False, step="5")


def test_raising_leverage_frees_margin(custodial_account, markets, quote_store):
    btc_mark("50000")
    credit_cash(custodial_account, "20000")
    fill(custodial_account, markets.btc, "buy", "2", "50000")  # 5x: M = 20,000
    custodial_account.refresh_from_db()
    assert custodial_account.cash_balance == 0
    result = leverage_set(account=custodial_account, symbol="BTC-PERP", leverage=10)
    assert result.status == "APPLIED"
    custodial_account.refresh_from_db()
    position = perp_position(custodial_account, markets.btc)
    assert position.isolated_margin == D(10000)
    assert position.leverage == 10
    assert custodial_account.cash_balance == D(10000)
    assert Journal.objects.filter(kind=Journal.Kind.MARGIN_ALLOCATION).count() == 1
    assert_reconciled(custodial_account, markets.btc)
    assert ledger_reconcile().ok


def test_raising_leverage_that_would_breach_maintenance_is_rejected(
    custodial_account, markets, quote_store
):
    credit_cash(custodial_account, "20000")
    fill(custodial_account, markets.btc, "buy", "2", "50000")  # 5x: M = 20,000
    btc_mark("46000")  # uPnL = 2 × (46,000 − 50,000) = −8,000
    # 20x: M' = 5,000; equity 5,000 − 8,000 < maintenance 2 × 46,000 × 0.03 = 2,760.
    result = leverage_set(account=custodial_account, symbol="BTC-PERP", leverage=20)
    assert (result.status, result.reject_reason) == ("REJECTED", "UNDERCOLLATERALIZED")
    assert (result.old_leverage, result.new_leverage) == (5, 5)
    assert perp_position(custodial_account, markets.btc).isolated_margin == D(20000)
    assert not LeverageSetting.objects.exists()
    # 8x: M' = 12,500; equity 4,500 ≥ 2,760: applied, 7,500 freed.
    result = leverage_set(account=custodial_account, symbol="BTC-PERP", leverage=8)
    assert result.status == "APPLIED"
    assert perp_position(custodial_account, markets.btc).isolated_margin == D(12500)
    custodial_account.refresh_from_db()
    assert custodial_account.cash_balance == D(7500)
    assert_reconciled(custodial_account, markets.btc)


def test_lowering_leverage_beyond_cash_rolls_back_exactly(custodial_account, markets):
    credit_cash(custodial_account, "12000")
    leverage_set(account=custodial_account, symbol="BTC-PERP", leverage=10)
    fill(custodial_account, markets.btc, "buy", "2", "50000")  # 10x: M = 10,000, cash 2,000
    live = order_open(custodial_account, markets.btc)
    before_cash = Account.objects.get(pk=custodial_account.pk).cash_balance
    before_position = perp_position(custodial_account, markets.btc)
    before_setting = LeverageSetting.objects.get()
    before_postings = Posting.objects.count()

    result = leverage_set(account=custodial_account, symbol="BTC-PERP", leverage=2)  # M' = 50,000

    assert result.status == "REJECTED"
    assert result.reject_reason == "UNDERCOLLATERALIZED"
    assert (result.old_leverage, result.new_leverage) == (10, 10)
    assert result.cancelled_order_ids == []
    assert Account.objects.get(pk=custodial_account.pk).cash_balance == before_cash == D(2000)
    after_position = perp_position(custodial_account, markets.btc)
    assert after_position.isolated_margin == before_position.isolated_margin == D(10000)
    assert after_position.leverage == before_position.leverage == 10
    setting = LeverageSetting.objects.get()
    assert (setting.pk, setting.leverage) == (before_setting.pk, 10)
    assert Posting.objects.count() == before_postings
    live.refresh_from_db()
    assert live.status == Order.Status.OPEN
    assert_reconciled(custodial_account, markets.btc)
    assert ledger_reconcile().ok


def test_lowering_leverage_with_cash_allocates_more(custodial_account, markets):
    credit_cash(custodial_account, "30000")
    leverage_set(account=custodial_account, symbol="BTC-PERP", leverage=10)
    fill(custodial_account, markets.btc, "buy", "2", "50000")
    result = leverage_set(account=custodial_account, symbol="BTC-PERP", leverage=5)
    assert result.status == "APPLIED"
    assert (result.old_leverage, result.new_leverage) == (10, 5)
    custodial_account.refresh_from_db()
    assert custodial_account.cash_balance == D(10000)
    assert perp_position(custodial_account, markets.btc).isolated_margin == D(20000)
    assert_reconciled(custodial_account, markets.btc)
