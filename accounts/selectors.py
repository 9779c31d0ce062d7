"""Reads of an account's own records: balances, deposits, withdrawals, ledger
transactions, notifications and API keys, for the partner API and the portal.

List selectors return a `portal.pagination.Page`: at most `limit` rows from
`offset`, newest first, plus whether more follow. The
`*_get` selectors look a public id up among the given accounts only, so
another customer's record is indistinguishable from one that does not exist.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import F, QuerySet

from accounts.hooks import margin_summary_get
from accounts.models import (
    Account,
    ApiKey,
    Deposit,
    Notification,
    Posting,
    User,
    WithdrawalRequest,
)
from accounts.services.ledger import cash_ledger_account
from portal.db import owned_get
from portal.money import ZERO
from portal.pagination import Page

# --- Balances --------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountBalances:
    """An account's money at a glance: its cash, the dashboard's four figures, and
    what it may withdraw now."""

    account_id: str  # the public id
    cash: Decimal
    deposit: Decimal  # net deposits: deposits − withdrawals
    used_margin: Decimal
    adjusted_equity: Decimal
    available_margin: Decimal
    margin_health: Decimal | None  # None: unbounded (no borrowing)
    margin_status: str
    pending_withdrawals: Decimal  # claimed by requests waiting for ops
    reserved_for_orders: Decimal  # held by orders at a venue until their fills are booked
    withdrawable: Decimal  # max(0, cash) − pending withdrawals, never below 0
    at: datetime


def account_balances_get(*, account: Account) -> AccountBalances:
    """Cash, net deposits and the Margin Portfolio figures (`margin_summary_get`, the
    margin engine's, registered by trading: one evaluation with live collateral
    prices), plus what pending withdrawals hold. Reads
    the account's cash as stored in `account` (callers pass a fresh row).

    `cash` is the ledger's; the margin figures start from it less the held
    withdrawals and the cash orders at a venue reserve (`Account.risk_cash`),
    and so does what may be withdrawn."""
    summary = margin_summary_get(account=account)
    pending = account.withdrawals_held
    reserved = account.orders_reserved if account.is_custodial else ZERO
    return AccountBalances(
        account_id=account.public_id,
        cash=summary.cash + pending + reserved,
        deposit=summary.deposit,
        used_margin=summary.used_margin,
        adjusted_equity=summary.adjusted_equity,
        available_margin=summary.available_margin,
        margin_health=summary.health,
        margin_status=summary.status,
        pending_withdrawals=pending,
        reserved_for_orders=reserved,
        withdrawable=max(ZERO, summary.cash),
        at=summary.at,
    )


# --- Deposits and withdrawals ------------------------------------------------------------


def deposit_list(
    *, account: Account, status: str | None = None, limit: int = 100, offset: int = 0
) -> Page[Deposit]:
    deposits = Deposit.objects.filter(account=account)
    if status:
        deposits = deposits.filter(status=status)
    return Page.read(deposits.order_by("-created_at", "-id"), limit=limit, offset=offset)


def deposit_get(*, account_ids: Sequence[int], public_id: str) -> Deposit:
    """Raises NotFound unless the deposit belongs to one of `account_ids`."""
    return owned_get(Deposit, account_ids=account_ids, public_id=public_id, what="deposit")


def withdrawal_list(
    *, account: Account, status: str | None = None, limit: int = 100, offset: int = 0
) -> Page[WithdrawalRequest]:
    withdrawals = WithdrawalRequest.objects.filter(account=account)
    if status:
        withdrawals = withdrawals.filter(status=status)
    return Page.read(withdrawals.order_by("-created_at", "-id"), limit=limit, offset=offset)


def withdrawal_get(*, account_ids: Sequence[int], public_id: str) -> WithdrawalRequest:
    """Raises NotFound unless the withdrawal belongs to one of `account_ids`."""
    return owned_get(
        WithdrawalRequest, account_ids=account_ids, public_id=public_id, what="withdrawal"
    )


# --- Ledger transactions -----------------------------------------------------------------


@dataclass(frozen=True)
class Transaction:
    """One movement of the account's cash: a journal's posting on it."""

    journal_id: int
    kind: str
    memo: str
    amount: Decimal  # signed: + credits the account's cash
    created_at: datetime


def transaction_list(
    *,
    account: Account,
    kind: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[Transaction]:
    """The journals that moved the account's cash, newest first (one query).

    `date_from` / `date_to` are whole UTC days, inclusive.
    """
    postings: QuerySet = Posting.objects.filter(ledger_account_id=cash_ledger_account(account).pk)
    if kind:
        postings = postings.filter(journal__kind=kind)
    if date_from is not None:
        postings = postings.filter(
            created_at__gte=datetime.combine(date_from, time.min, tzinfo=UTC)
        )
    if date_to is not None:
        postings = postings.filter(
            created_at__lt=datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)
        )
    rows = postings.order_by("-id").values_list(
        "journal_id", "journal__kind", "journal__memo", "amount", "created_at"
    )
    return Page.read(rows, limit=limit, offset=offset).map(lambda row: Transaction(*row))


# --- Notifications and API keys ---------------------------------------------------------


def notification_list(*, user: User, limit: int = 50, offset: int = 0) -> Page[Notification]:
    """The user's notifications, newest first (one query; reads one row past the page)."""
    notifications = Notification.objects.filter(user=user).select_related("account")
    return Page.read(notifications.order_by("-created_at", "-id"), limit=limit, offset=offset)


def notifications_unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def api_key_list(*, user: User) -> list[ApiKey]:
    """The user's Prime API keys (active first, then newest first) with their accounts.

    For showing metadata only: the key itself is never stored, and its hash is
    not for display.
    """
    return list(
        ApiKey.objects.filter(owner=user)
        .prefetch_related("accounts")
        .order_by(F("revoked_at").desc(nulls_first=True), "-created_at", "-id")
    )
