"""What accounts asks of the layer above it, registered at start-up.

accounts does not import trading (ARCHITECTURE 6b: dependencies point down), yet two
of its reads and checks need trading's margin engine: whether a withdrawal keeps the
account's margin intact, and an account's Margin Portfolio figures beside its cash
(`accounts.selectors.account_balances_get`). trading registers both in its
`AppConfig.ready()` (`trading.apps`). Until one is registered, asking for it raises
ImproperlyConfigured: a withdrawal is never let through unchecked.
"""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured

from accounts.models import Account


class MarginFigures(Protocol):
    """An account's Margin Portfolio figures, as the margin engine gives them."""

    cash: Decimal  # less what pending withdrawals and orders at a venue hold
    deposit: Decimal  # net deposits
    used_margin: Decimal
    adjusted_equity: Decimal
    available_margin: Decimal
    health: Decimal | None  # None: unbounded (no borrowing)
    status: str
    at: datetime


class WithdrawalCheck(Protocol):
    def __call__(self, *, account: Account, amount: Decimal) -> object: ...


class MarginSummaryGet(Protocol):
    def __call__(self, *, account: Account) -> MarginFigures: ...


_registered: dict[str, Callable] = {}


def _registered_get(name: str) -> Callable:
    try:
        return _registered[name]
    except KeyError:
        raise ImproperlyConfigured(
            f"No {name} is registered: the trading app registers it at start-up "
            "(INSTALLED_APPS must include it)."
        ) from None


def withdrawal_check_register(check: WithdrawalCheck) -> None:
    """Make `check` the margin check every withdrawal request passes."""
    _registered["withdrawal check"] = check


def withdrawal_check(*, account: Account, amount: Decimal) -> None:
    """Refuse a withdrawal of `amount` from `account` that the margin rules forbid.

    Called with the account row locked (select_for_update) and freshly read, inside
    the withdrawal's transaction. Raises the registered check's DomainError
    (InsufficientFunds: withdrawals never borrow).
    """
    _registered_get("withdrawal check")(account=account, amount=amount)


def margin_summary_register(summary_get: MarginSummaryGet) -> None:
    """Make `summary_get` the source of an account's Margin Portfolio figures."""
    _registered["margin summary"] = summary_get


def margin_summary_get(*, account: Account) -> MarginFigures:
    """`account`'s Margin Portfolio figures, from its cash as stored in `account`."""
    return _registered_get("margin summary")(account=account)


def desk_changed_register(hint: Callable[..., None]) -> None:
    """Make `hint(reason=...)` the ops risk desk's "something changed" push."""
    _registered["desk changed"] = hint


def desk_changed(*, reason: str) -> None:
    """Hint the ops risk desk that what it lists changed (a withdrawal requested or
    reviewed, a KYB decision). Sent after the caller's transaction commits; a hint only,
    so nothing happens when no push is registered (the desk also re-reads on a timer)."""
    hint = _registered.get("desk changed")
    if hint is not None:
        hint(reason=reason)
