"""The pre-trade margin check (trading.services.margin_check): refuse below the
initial requirement while borrowing, never let a non-margin account or a
withdrawal borrow, always let risk be reduced.

Market and accounts as in test_simulation: ALPHA long-dated, collateral price
0.50, each contract held worth 0.2625 USDC of Adjusted Equity.
"""

from decimal import Decimal

import pytest
from django.db import transaction

from accounts.models import Account
from accounts.services.accounts import account_open
from accounts.services.withdrawals import withdrawal_request
from portal.errors import InsufficientFunds, InsufficientMargin
from tests.conftest import credit_cash
from tests.trading.test_selectors import fill, margin_grant
from tests.trading.test_simulation import alpha_quoted, borrower_open, holder_open
from trading.models import Instrument
from trading.selectors import contracts_get
from trading.services.eligibility import account_margin_override_set
from trading.services.execute import order_execute
from trading.services.margin_check import (
    margin_check_action,
    margin_check_cash_debit,
    margin_check_withdrawal,
)
from trading.services.simulation import (
    Breach,
    PortfolioChange,
    buying_power_get,
    trade_change,
    trade_simulate,
)
from trading.venues.base import Side

D = Decimal


@pytest.fixture
def alpha(db, quote_store) -> Instrument:
    return alpha_quoted()


@pytest.fixture
def holder(user, staff, alpha) -> Account:
    """Cash 500, 1000 ALPHA YES: AE 762.5, nothing borrowed."""
    return holder_open(user, staff, alpha)


@pytest.fixture
def borrower(user, staff, alpha) -> Account:
    """Cash −1000, 3000 ALPHA YES: AE 787.5, UM 1000, health 0.7875."""
    return borrower_open(user, staff, alpha)


def trade(instrument: Instrument, side: Side, quantity: str, price: str) -> PortfolioChange:
    """The change a fill of `quantity` YES contracts at `price` makes, as execute would build it."""
    key = (instrument.pk, "yes")
    return trade_change(
        contract=contracts_get([key])[key],
        side=side,
        quantity=D(quantity),
        notional=D(quantity) * D(price),
    )


def check(account: Account, change: PortfolioChange, action: str = "buy"):
    """Run the check as a service does: in its transaction, with the account row locked."""
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        return margin_check_action(account=locked, change=change, action=action)


def debit(account: Account, amount: str, action: str = "perp margin allocation"):
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        return margin_check_cash_debit(account=locked, amount=D(amount), action=action)


def test_a_buy_that_keeps_health_at_or_above_the_requirement_passes(holder, alpha):
    # 2000 at 0.50 = 1000: cash −500, 3000 held: AE = 0.2625·3000 = 787.5, health 1.575.
    projection = check(holder, trade(alpha, Side.BUY, "2000", "0.50"))
    assert projection.after.health == D("1.575000")
    assert projection.is_valid_trade


def test_a_buy_below_the_requirement_is_refused_in_words_a_customer_understands(holder, alpha):
    # 3000 at 0.50 = 1500: cash −1000, 4000 held: AE 1050, UM 1000, health 1.05 < 1.2.
    # The deposit that makes it pass: 1000 − 1050/1.2 = 125.
    with pytest.raises(InsufficientMargin) as info:
        check(holder, trade(alpha, Side.BUY, "3000", "0.50"))
    assert (info.value.status, info.value.code) == (422, "insufficient_margin")
    assert info.value.message == (
        "Insufficient margin: after this buy Margin Health would be 1.05 (Adjusted Equity "
        "1,050.00 USDC / Used Margin 1,000.00 USDC), below the initial margin requirement "
        "of 1.20. Available Margin is 762.50 USDC now; deposit at least 125.00 USDC or "
        "reduce the size."
    )
    # Following the advice works: with 125.01 more, health = 1050 / 874.99 = 1.200014.
    credit_cash(holder, "125.01")
    assert check(holder, trade(alpha, Side.BUY, "3000", "0.50")).after.health == D("1.200014")


def test_what_is_paid_from_cash_never_needs_margin(holder, alpha):
    # 1000 at 0.50 = 500: cash 0, nothing borrowed: health unbounded.
    projection = check(holder, trade(alpha, Side.BUY, "1000", "0.50"))
    assert (projection.after.used_margin, projection.after.health) == (D("0"), None)


def test_buying_power_passes_the_check_and_a_cent_more_does_not(holder):
    power = buying_power_get(account=holder, symbol="ALPHA", outcome="yes")
    assert power.notional == D("1251.71")
    order = order_execute(account=holder, symbol="ALPHA", side="buy", notional_usdc=power.notional)
    assert order.status == "filled"


def test_a_cent_over_buying_power_is_refused(holder):
    power = buying_power_get(account=holder, symbol="ALPHA", outcome="yes")
    with pytest.raises(InsufficientMargin, match=r"would be 1\.19 "):
        order_execute(
            account=holder, symbol="ALPHA", side="buy", notional_usdc=power.notional + D("0.01")
        )


def test_a_non_margin_account_cannot_borrow(user, alpha):
    account = account_open(owner=user, kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "300")
    fill(account, alpha, quantity="400", price="0.50")  # cash 100, 400 held
    assert check(account, trade(alpha, Side.BUY, "200", "0.50")).after.cash == D("0")
    # 0.01 over the cash: refused whatever the positions would support.
    with pytest.raises(InsufficientMargin) as info:
        check(account, trade(alpha, Side.BUY, "200.02", "0.50"))
    assert info.value.code == "insufficient_margin"
    assert info.value.message == (
        f"Margin is not enabled on account {account.public_id}, so it cannot borrow: this buy "
        "needs 100.01 USDC and the account has 100.00 USDC of cash."
    )


def test_selling_and_closing_always_pass_even_below_the_requirement(borrower, alpha):
    # Sell 1000: cash −500, 2000 held: AE 525, health 1.05 — below 1.2, and allowed.
    partial = check(borrower, trade(alpha, Side.SELL, "1000", "0.50"), action="sell")
    assert (partial.after.health, partial.is_valid_trade) == (D("1.050000"), True)
    close = check(borrower, trade(alpha, Side.SELL, "3000", "0.50"), action="close")
    assert close.after.health is None
    # Adding even 1 USDC of risk is refused: health 0.7875 → 788.025 / 1001 = 0.787238.
    with pytest.raises(InsufficientMargin, match=r"would be 0\.78 "):
        check(borrower, trade(alpha, Side.BUY, "2", "0.50"))


def test_a_revoked_account_still_in_debt_can_only_reduce_risk(borrower, alpha, staff):
    account_margin_override_set(
        account=borrower, override=Account.MarginOverride.REVOKED, actor=staff
    )
    assert check(borrower, trade(alpha, Side.SELL, "1000", "0.50")).is_valid_trade
    with pytest.raises(InsufficientMargin, match=r"Margin is not enabled.*has 0\.00 USDC of cash"):
        check(borrower, trade(alpha, Side.BUY, "2", "0.50"))


def test_a_withdrawal_never_borrows_however_healthy_the_account(holder):
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=holder.pk)
        assert margin_check_withdrawal(account=locked, amount=D("500")).after.cash == D("0")
        # 0.000001 over the cash would leave health 262.5 / 0.000001, yet is refused.
        with pytest.raises(InsufficientFunds) as info:
            margin_check_withdrawal(account=locked, amount=D("500.000001"))
    assert info.value.code == "insufficient_funds"
    assert info.value.message == (
        f"Cannot withdraw 500.000001 USDC from {holder.public_id}: "
        "500.00 USDC is available to withdraw."
    )
    # The withdrawal service goes through the same check, counting pending requests.
    withdrawal_request(
        account=holder, amount=D("300"), destination="Bank ****1", requested_by=holder.owner
    )
    with pytest.raises(InsufficientFunds, match=r"200\.00 USDC is available"):
        withdrawal_request(
            account=holder, amount=D("200.01"), destination="Bank ****1", requested_by=holder.owner
        )


def test_perp_margin_is_checked_as_a_cash_debit(user, staff, alpha):
    # Cash 0 and 1000 held: AE 262.5. Debit X: health = 262.5 / X ≥ 1.2 ⇔ X ≤ 218.75.
    account = margin_grant(account_open(owner=user, kind=Account.Kind.CUSTODIAL), staff)
    credit_cash(account, "500")
    fill(account, alpha, quantity="1000", price="0.50")
    assert debit(account, "218.74").after.health == D("1.200055")
    with pytest.raises(InsufficientMargin) as info:
        debit(account, "218.76", action="leverage change")
    assert info.value.message.startswith(
        "Insufficient margin: after this leverage change Margin Health would be 1.19 "
    )
    assert "deposit at least 0.01 USDC" in info.value.message


def test_freeing_perp_margin_always_passes(borrower):
    projection = debit(borrower, "-100", action="leverage change")
    assert projection.change == PortfolioChange(cash=D("100"))
    assert projection.breach is None
    assert projection.after.health == D("0.875000")  # 787.5 / 900: still below 1.2


def test_a_non_margin_cash_debit_beyond_cash_is_refused(user, alpha):
    account = account_open(owner=user, kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "50")
    assert debit(account, "50").is_valid_trade
    with pytest.raises(InsufficientMargin, match=r"this perp margin allocation needs 50\.01 USDC"):
        debit(account, "50.01")


def test_a_change_that_may_not_borrow_is_refused_as_insufficient_funds(holder):
    with pytest.raises(InsufficientFunds, match=r"A transfer cannot borrow: it needs 500\.01 USDC"):
        check(holder, PortfolioChange(cash=D("-500.01"), may_borrow=False), action="transfer")


def test_the_breach_is_named_on_the_projection(holder, alpha):
    projection = trade_simulate(
        account=holder, symbol="ALPHA", outcome="yes", side="buy", notional="5000"
    ).projection
    assert projection.breach is Breach.INITIAL_MARGIN
    with pytest.raises(InsufficientMargin):
        check(holder, projection.change)


@pytest.mark.django_db(transaction=True)
def test_the_check_must_run_inside_the_callers_transaction(user):
    account = account_open(owner=user, kind=Account.Kind.CUSTODIAL)
    with pytest.raises(RuntimeError, match="inside the caller's transaction"):
        margin_check_action(account=account, change=PortfolioChange(cash=D("-1")))
