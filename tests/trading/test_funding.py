"""Funding payments: s·mark·rate per interval, once per (market, account, period)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.models import HouseAccount, Journal
from accounts.services.reconciliation import ledger_reconcile
from portal.errors import InvalidParams
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.perping import fill, ledger_balance
from trading.marketdata import store
from trading.models import FundingPayment
from trading.services.perps import funding_apply, funding_period_last_completed
from trading.tasks import funding_apply_due_task

D = Decimal
pytestmark = pytest.mark.django_db
PERIOD = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


def put_perp_quote(rate: str | None, mark: str = "50000") -> None:
    from dataclasses import replace

    from tests.trading.quoting import put_quote

    quote = put_quote("BTC-PERP@leviathan", bid=mark, ask=mark, binary=False, step="1")
    store.quotes_publish(
        [replace(quote, funding_rate=None if rate is None else D(rate))], ts=quote.ts
    )


@pytest.fixture
def long_and_short(markets, quote_store):
    long, short = open_account(), open_account()
    for account in (long, short):
        credit_cash(account, "100000")
    fill(long, markets.btc, "buy", "2", "50000")
    fill(short, markets.btc, "sell", "1", "50000")
    long.refresh_from_db()
    short.refresh_from_db()
    return long, short


def test_positive_rate_longs_pay_shorts_once_per_period(markets, long_and_short):
    long, short = long_and_short
    put_perp_quote("0.0001")
    long_cash, short_cash = long.cash_balance, short.cash_balance
    run = funding_apply(instrument=markets.btc, period_start=PERIOD)
    assert (run.paid, run.already) == (2, 0)
    assert run.net == D(10) - D(5)
    again = funding_apply(instrument=markets.btc, period_start=PERIOD)
    assert (again.paid, again.already) == (0, 2)
    long.refresh_from_db()
    short.refresh_from_db()
    assert long.cash_balance == long_cash - D(10)  # 2 · 50,000 · 0.0001
    assert short.cash_balance == short_cash + D(5)
    assert FundingPayment.objects.count() == 2
    assert FundingPayment.objects.get(account=long).amount == D(10)
    assert FundingPayment.objects.get(account=short).amount == D(-5)
    assert Journal.objects.filter(kind=Journal.Kind.FUNDING).count() == 2
    assert ledger_balance(HouseAccount.FUNDING_POOL.value) == D(5)
    assert ledger_reconcile().ok


def test_negative_rate_shorts_pay_longs(markets, long_and_short):
    long, short = long_and_short
    put_perp_quote("-0.0002")
    funding_apply(instrument=markets.btc, period_start=PERIOD)
    assert FundingPayment.objects.get(account=long).amount == D(-20)
    assert FundingPayment.objects.get(account=short).amount == D(10)


def test_next_period_is_paid_again(markets, long_and_short):
    put_perp_quote("0.0001")
    funding_apply(instrument=markets.btc, period_start=PERIOD)
    funding_apply(instrument=markets.btc, period_start=PERIOD + timedelta(hours=8))
    assert FundingPayment.objects.count() == 4


def test_period_not_ended_is_refused(markets, long_and_short):
    put_perp_quote("0.0001")
    with pytest.raises(InvalidParams):
        funding_apply(instrument=markets.btc, period_start=datetime.now(UTC))


def test_last_completed_period(markets):
    now = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    assert funding_period_last_completed(instrument=markets.btc, now=now) == datetime(
        2026, 1, 1, 0, 0, tzinfo=UTC
    )


def test_task_applies_due_periods_idempotently(markets, long_and_short):
    put_perp_quote("0.0001")
    first = funding_apply_due_task()
    second = funding_apply_due_task()
    assert first["BTC-PERP"]["paid"] == 2
    assert second["BTC-PERP"]["paid"] == 0
    assert FundingPayment.objects.count() == 2


def test_task_skips_markets_without_a_rate(markets, long_and_short):
    put_perp_quote(None)
    assert funding_apply_due_task()["BTC-PERP"] == {"error": "market_data_unavailable"}
    assert not FundingPayment.objects.exists()
