"""The pre-trade margin check (SPEC §4) every action that can lower Margin Health passes.

Buys (execute, resting orders), opening or adding to a perp's isolated
margin, lowering perp leverage and withdrawals call it inside their
transaction, with their account row locked (select_for_update) and freshly
read, before they write. It projects the action with the simulation service
(`trading.services.simulation.change_simulate`: the same projection the
order form and the API's simulate show) and refuses it when:

- a withdrawal would take cash below zero: withdrawals never borrow,
  margin or not (InsufficientFunds, 422 `insufficient_funds`); the cash that
  pending withdrawals hold counts as gone for every check (`Account.risk_cash`);
- a non-margin account (`margin_enabled` off) would take cash below zero
  (InsufficientMargin, 422 `insufficient_margin`);
- projected Used Margin > 0 and projected health < the initial margin
  requirement, 1.2 by default (InsufficientMargin).

A change that only reduces risk (sells, closes, freed perp margin, a
deposit) always passes, even when health is below 1.2.
"""

from decimal import ROUND_FLOOR, ROUND_UP, Decimal

from django.db import transaction

from accounts.models import Account
from portal import format as fmt
from portal.errors import DomainError, InsufficientFunds, InsufficientMargin
from portal.money import ZERO
from trading import margin
from trading.services.simulation import Breach, PortfolioChange, Projection, change_simulate

CENT = Decimal("0.01")


def _usdc(amount: Decimal, rounding: str = ROUND_UP) -> str:
    """An amount as a person reads it ("1,234.57 USDC"), rounded the way that keeps the
    sentence true: what is needed up, what is there down."""
    return fmt.usdc(amount, rounding=rounding)


def _in_transaction_check() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(
            "The margin check runs inside the caller's transaction, under its account lock."
        )


def margin_refusal_reason(
    projection: Projection, *, account: Account, action: str
) -> tuple[type[DomainError], str] | None:
    """Why a projection is refused, in words a customer understands, and the error
    that says it (None: it passes). A leverage change reports it in its REJECTED
    answer; everything else raises it (`margin_refusal`)."""
    if projection.breach is None:
        return None
    before, after = projection.before, projection.after
    if projection.breach in (Breach.BORROWING, Breach.MARGIN_DISABLED):
        needed = _usdc(max(ZERO, -projection.change.cash))
        cash = _usdc(max(ZERO, before.cash), ROUND_FLOOR)
        if projection.breach is Breach.BORROWING:
            return InsufficientFunds, (
                f"A {action} cannot borrow: it needs {needed} and account "
                f"{account.public_id} has {cash} of cash."
            )
        return InsufficientMargin, (
            f"Margin is not enabled on account {account.public_id}, so it cannot borrow: "
            f"this {action} needs {needed} and the account has {cash} of cash."
        )
    deposit = margin.add_funds_needed(
        projection.result.adjusted_equity,
        projection.result.used_margin,
        float(projection.initial_threshold),
    )[0]
    health = (after.health or ZERO).quantize(CENT, rounding=ROUND_FLOOR)
    return InsufficientMargin, (
        f"Insufficient margin: after this {action} Margin Health would be {health} "
        f"(Adjusted Equity {_usdc(after.adjusted_equity, ROUND_FLOOR)} / Used Margin "
        f"{_usdc(after.used_margin)}), below the initial margin requirement of "
        f"{fmt.ratio(projection.initial_threshold)}. Available Margin is "
        f"{_usdc(before.available_margin, ROUND_FLOOR)} now; deposit at least "
        f"{_usdc(Decimal(repr(float(deposit))))} or reduce the size."
    )


def margin_refusal(projection: Projection, *, account: Account, action: str) -> DomainError | None:
    """The error for a refused projection (None: it passes): the one verdict previews
    show and the checks raise."""
    reason = margin_refusal_reason(projection, account=account, action=action)
    if reason is None:
        return None
    error, message = reason
    return error(message)


def margin_check_action(
    *, account: Account, change: PortfolioChange, action: str = "trade"
) -> Projection:
    """Check `change` against the initial margin requirement; return its projection.

    `account` is the caller's locked (select_for_update), freshly read row,
    inside its transaction.atomic(); `action` names the action in the
    message ("buy", "perp margin allocation", "leverage change").
    Raises InsufficientMargin (`insufficient_margin`, 422) as the module
    docstring says, InsufficientFunds for a change that may not borrow and
    would, InvalidParams for a change that sells more than a position holds,
    and RuntimeError outside a transaction.
    """
    _in_transaction_check()
    projection = change_simulate(account=account, change=change)
    refusal = margin_refusal(projection, account=account, action=action)
    if refusal is not None:
        raise refusal
    return projection


def margin_check_cash_debit(*, account: Account, amount: Decimal, action: str) -> Projection:
    """The check for a cash-only change: cash falls by `amount` USDC.

    For perp isolated margin allocated on opening or adding to a position,
    and more margin for a lower leverage (`action` names it). Same lock,
    rules and errors as `margin_check_action`; a negative `amount` frees
    cash and always passes.
    """
    return margin_check_action(account=account, change=PortfolioChange(cash=-amount), action=action)


def margin_check_withdrawal(*, account: Account, amount: Decimal) -> Projection:
    """The check every withdrawal request passes: it never borrows, margin account or not.

    `amount` must be ≤ max(0, cash less what the account's other pending
    withdrawals already hold: `Account.risk_cash`), so cash stays ≥ 0 after
    all of them; with no borrowing, Used Margin cannot rise. Same lock as
    `margin_check_action`. Raises InsufficientFunds (`insufficient_funds`,
    422) naming what is available to withdraw.
    """
    _in_transaction_check()
    change = PortfolioChange(cash=-amount, may_borrow=False)
    projection = change_simulate(account=account, change=change)
    if projection.breach is Breach.BORROWING:
        available = max(ZERO, account.risk_cash)
        raise InsufficientFunds(
            f"Cannot withdraw {fmt.usdc_exact(amount)} from {account.public_id}: "
            f"{fmt.usdc(available, rounding=ROUND_FLOOR)} is available to withdraw."
        )
    refusal = margin_refusal(projection, account=account, action="withdrawal")
    if refusal is not None:
        raise refusal
    return projection
