"""The Accounts page: every account of the signed-in user side by side, with totals.

Reads only. Each account's figures are the dashboard's (`margin_summaries_get`,
one evaluation for all of them; perpetuals from `perp_positions_get`); a linked
account's cash is its venue cash as of the last sync, and its link status is its
credential's. The totals are plain sums of the rows, in USDC.
"""

from dataclasses import dataclass
from decimal import Decimal

from accounts.models import Account, LinkedCredential
from accounts.web import account_label
from portal.money import ZERO
from trading.selectors import margin_summaries_get, open_position_counts, perp_positions_get


@dataclass(frozen=True)
class AccountRow:
    account: Account
    label: str
    link: LinkedCredential | None  # a non-custodial account's credential
    cash: Decimal | None  # None: the venue does not report it
    positions_value: Decimal  # prediction positions at their price + perps' margin and uPnL
    adjusted_equity: Decimal
    health: Decimal | None  # None: unbounded (no borrowing)
    borrowing: bool
    available_margin: Decimal | None  # None: the account cannot borrow
    open_positions: int
    is_current: bool


@dataclass(frozen=True)
class Totals:
    cash: Decimal
    cash_unreported: int  # accounts whose venue does not report cash (not in `cash`)
    positions_value: Decimal
    adjusted_equity: Decimal
    available_margin: Decimal


@dataclass(frozen=True)
class Overview:
    rows: list[AccountRow]
    totals: Totals


def _perps_value(account: Account) -> Decimal:
    """Isolated margin plus unrealized P&L of the account's open perpetuals (margin
    alone where there is no live mark)."""
    return (
        sum(
            (view.isolated_margin + (view.unrealized_pnl or ZERO))
            for view in perp_positions_get(account=account)
        )
        or ZERO
    )


def accounts_overview_get(*, accounts: list[Account], current: Account | None) -> Overview:
    """Each of `accounts` (one user's, freshly read, main first) with its figures, and
    the totals. Pass them with select_related("linked_credential")."""
    summaries = margin_summaries_get(accounts) if accounts else []
    counts = open_position_counts(accounts=accounts)
    rows = []
    for account, summary in zip(accounts, summaries, strict=True):
        link = None if account.is_custodial else getattr(account, "linked_credential", None)
        custodial = account.is_custodial
        rows.append(
            AccountRow(
                account=account,
                label=account_label(account),
                link=link,
                cash=summary.cash if custodial else (link.cash_balance if link else None),
                positions_value=summary.collateral_value
                + (_perps_value(account) if counts.get(account.pk) else ZERO),
                adjusted_equity=summary.adjusted_equity,
                health=summary.health,
                borrowing=summary.used_margin > ZERO,
                available_margin=summary.available_margin
                if custodial and account.margin_enabled
                else None,
                open_positions=counts.get(account.pk, 0),
                is_current=current is not None and account.pk == current.pk,
            )
        )
    totals = Totals(
        cash=sum((row.cash for row in rows if row.cash is not None), ZERO),
        cash_unreported=sum(row.cash is None for row in rows),
        positions_value=sum((row.positions_value for row in rows), ZERO),
        adjusted_equity=sum((row.adjusted_equity for row in rows), ZERO),
        available_margin=sum(
            (row.available_margin for row in rows if row.available_margin is not None), ZERO
        ),
    )
    return Overview(rows=rows, totals=totals)
