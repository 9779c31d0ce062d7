"""The ops risk desk's reads (GET /ops/ and /ops/desk.json): what needs ops now.

`desk_get` gathers every list of the desk in a fixed number of statements,
whatever the number of accounts (one per list, plus the margin inputs of the
accounts it evaluates: one statement and one Redis round trip), and shapes
them for the page and its JSON alike: counters, then sections of rows whose
cells are already formatted (`portal.format`), each row with the link to its
action. The page renders the same structure the script re-renders.

Margin figures come from the margin engine's own maths (`portfolio_load` +
`Portfolio.evaluate`, vectorised over every account at once): no new maths
here. A pending withdrawal already holds its amount out of the account's cash
(`Account.risk_cash`, the cash the withdrawal check and the engine start from),
so an account's health as evaluated is its health after the payout.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from accounts.models import Account, LinkedCredential, OutboxItem, User, WithdrawalRequest
from accounts.staff import account_ops_href, staff_link
from portal import format as fmt
from portal.heartbeats import engine_heartbeats, heartbeat_read
from trading import margin
from trading.enqueue import ACCOUNT_LIQUIDATE
from trading.models import Liquidation, MarginCall, Order, Position
from trading.selectors import (
    margin_params_get,
    money_decimal,
    portfolio_load,
    price_max_age,
    ratio_decimal,
    risk_policy_get,
)
from trading.services.venue_budgets import BudgetRow, venue_budgets

ROWS_MAX = 25  # rows shown per list (the counters count them all)
ORDER_AT_VENUE_SECONDS = 60  # an order still waiting for its venue's answer after this is listed
RECENT_LIQUIDATIONS = timedelta(hours=24)
PROCESSES = (
    ("marketdata", "Market-data feed", "READY_FEED_MAX_AGE_SECONDS"),
    ("engine", "Margin engine", "READY_ENGINE_MAX_AGE_SECONDS"),
    ("worker", "Celery worker (outbox dispatcher)", "READY_WORKER_MAX_AGE_SECONDS"),
)
BAND_LABELS = {"healthy": "Healthy", "caution": "Caution", "margin_call": "Margin call"}
BAND_TONES = {"healthy": "ok", "caution": "warn", "margin_call": "danger"}

T = TypeVar("T")


@dataclass
class Row:
    key: str  # what the row is about (an account's public id, a withdrawal's, …)
    cells: list[str]
    href: str = ""  # the row's action
    tone: str = ""  # "", "ok", "warn", "danger"


@dataclass
class Section:
    key: str
    title: str
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    total: int = 0  # rows there are (rows shows at most ROWS_MAX)
    empty: str = "Nothing to show."
    note: str = ""
    total_label: str = ""  # what `total` counts, when not the rows ("stale")


@dataclass
class Counter:
    key: str
    label: str
    value: int
    tone: str = ""  # "danger" / "warn" when non-zero and it needs ops
    section: str = ""  # the list it counts (its key; "": the counter's own key)

    def __post_init__(self) -> None:
        self.section = self.section or self.key


@dataclass
class Desk:
    at: datetime
    counters: list[Counter]
    sections: list[Section]

    def as_json(self) -> dict:
        return {
            "at": self.at.isoformat(),
            "at_display": fmt.when(self.at),
            "counters": [asdict(counter) for counter in self.counters],
            "sections": [asdict(section) for section in self.sections],
        }


def _account_name(account: Account) -> str:
    owner = getattr(account, "owner", None)
    return f"{account.public_id} · {owner.email}" if owner is not None else account.public_id


def _health(value: Decimal | None) -> str:
    return fmt.ratio(value, unbounded="∞ (no borrowing)")


@dataclass(frozen=True)
class _Figures:
    health: Decimal | None
    status: str
    used_margin: Decimal
    adjusted_equity: Decimal
    stale: bool


def _evaluate(accounts: list[Account]) -> tuple[dict[int, _Figures], list]:
    """Margin figures of `accounts` in one vectorised pass, and the contracts priced."""
    if not accounts:
        return {}, []
    portfolio = portfolio_load(accounts=accounts)
    result = portfolio.evaluate(margin_params_get())
    stale, _ = portfolio.stale_prices()
    figures = {
        account_id: _Figures(
            health=ratio_decimal(result.health[k]),
            status=margin.STATUS_NAMES[result.status[k]],
            used_margin=money_decimal(result.used_margin[k]),
            adjusted_equity=money_decimal(result.adjusted_equity[k]),
            stale=stale[k],
        )
        for k, account_id in enumerate(portfolio.account_ids)
    }
    return figures, portfolio.contracts


def _health_key(item: tuple[Account, _Figures]) -> tuple:
    health = item[1].health
    return (health is None, health if health is not None else Decimal(0), item[0].pk)


def _listed(section: Section, items: Sequence[T], row: Callable[[T], Row]) -> Section:
    """`section` listing the first ROWS_MAX of `items`, a row each; its total counts them all."""
    section.total = len(items)
    section.rows = [row(item) for item in items[:ROWS_MAX]]
    return section


def _margin_calls(now: datetime, figures: dict[int, _Figures], grace: timedelta) -> Section:
    calls = list(
        MarginCall.objects.filter(status=MarginCall.Status.OPEN)
        .select_related("account__owner")
        .order_by("opened_at", "pk")
    )

    def row(call: MarginCall) -> Row:
        left = (call.opened_at + grace - now).total_seconds()
        now_figures = figures.get(call.account_id)
        return Row(
            key=call.account.public_id,
            cells=[
                _account_name(call.account),
                fmt.when(call.opened_at),
                _health(call.health_at_open),
                _health(call.lowest_health),
                _health(now_figures.health) if now_figures else fmt.DASH,
                fmt.duration(left) if left > 0 else f"Overdue by {fmt.duration(left)}",
            ],
            href=account_ops_href(call.account),
            tone="danger" if left <= 0 else "warn",
        )

    section = Section(
        key="margin_calls",
        title="Open margin calls, by time left in grace",
        columns=["Account", "Opened", "Health at open", "Lowest", "Health now", "Time left"],
        empty="No open margin calls.",
    )
    return _listed(section, calls, row)


def _health_section(
    evaluated: list[tuple[Account, _Figures]], params: margin.MarginParams
) -> Section:
    ranked = sorted(evaluated, key=_health_key)
    at_risk = [item for item in ranked if item[1].status != "healthy"]

    def row(item: tuple[Account, _Figures]) -> Row:
        account, figures = item
        band = BAND_LABELS[figures.status]
        if figures.stale:
            band += " (stale price)"
        return Row(
            key=account.public_id,
            cells=[
                _account_name(account),
                _health(figures.health),
                band,
                fmt.amount(figures.adjusted_equity),
                fmt.amount(figures.used_margin),
            ],
            href=account_ops_href(account),
            tone=BAND_TONES[figures.status] if figures.status != "healthy" else "",
        )

    section = Section(
        key="health",
        title="Accounts by health, worst first",
        columns=["Account", "Health", "Band", "Adjusted Equity (USDC)", "Used Margin (USDC)"],
        empty="No account holds positions or borrows.",
        note=(
            f"Caution below {fmt.ratio(params.healthy)}, margin call below "
            f"{fmt.ratio(params.maintenance)}, liquidation below "
            f"{fmt.ratio(params.liquidation)}. {len(at_risk)} of {len(ranked)} accounts "
            "are in caution or margin call."
        ),
    )
    return _listed(section, ranked, row)


LIQUIDATION_TONES = {
    Liquidation.Status.SELLING: "danger",
    Liquidation.Status.SHORTFALL: "warn",
    Liquidation.Status.UNFILLED: "warn",
}


def _liquidations(now: datetime, accounts: dict[int, Account]) -> Section:
    requested = list(
        OutboxItem.objects.filter(task=ACCOUNT_LIQUIDATE, done_at__isnull=True).order_by(
            "created_at"
        )
    )
    recent = list(
        Liquidation.objects.filter(created_at__gte=now - RECENT_LIQUIDATIONS)
        .select_related("account__owner")
        .order_by("-created_at")[:ROWS_MAX]
    )
    section = Section(
        key="liquidations",
        title="Liquidations in progress and in the last 24 hours",
        columns=["Account", "State", "Since", "Health before → after", "Proceeds (USDC)"],
        total=len(requested) + len(recent),
        empty="No liquidation in progress or in the last 24 hours.",
    )
    for item in requested:
        account = accounts.get(item.kwargs.get("account_id"))
        reason = str(item.kwargs.get("reason") or "")
        label = dict(Liquidation.Reason.choices).get(reason, "Requested")
        section.rows.append(
            Row(
                key=account.public_id if account else f"outbox-{item.pk}",
                cells=[
                    _account_name(account) if account else fmt.DASH,
                    f"In progress: {label.lower()}",
                    fmt.when(item.created_at),
                    fmt.DASH,
                    fmt.DASH,
                ],
                href=account_ops_href(account)
                if account
                else staff_link("admin:accounts_outboxitem_change", item.pk),
                tone="danger",
            )
        )
    for liquidation in recent:
        section.rows.append(
            Row(
                key=liquidation.account.public_id,
                cells=[
                    _account_name(liquidation.account),
                    liquidation.get_status_display(),
                    fmt.when(liquidation.created_at),
                    f"{_health(liquidation.health_before)} → {_health(liquidation.health_after)}",
                    fmt.amount(liquidation.proceeds),
                ],
                href=staff_link("admin:trading_liquidation_change", liquidation.pk)
                or account_ops_href(liquidation.account),
                tone=LIQUIDATION_TONES.get(liquidation.status, ""),
            )
        )
    section.rows = section.rows[:ROWS_MAX]
    return section


def _kyb_pending() -> Section:
    users = list(
        User.objects.filter(kyb_status=User.KybStatus.PENDING, is_staff=False).order_by(
            "date_joined", "pk"
        )
    )

    def row(user: User) -> Row:
        return Row(
            key=user.email,
            cells=[user.email, user.full_name or fmt.DASH, fmt.when(user.date_joined)],
            href=staff_link("ops_kyb_review", user.pk)
            or staff_link("admin:accounts_user_change", user.pk),
        )

    section = Section(
        key="kyb",
        title="KYB awaiting review, oldest first",
        columns=["User", "Name", "Signed up"],
        empty="No KYB awaiting review.",
    )
    return _listed(section, users, row)


def _withdrawals(
    withdrawals: list[WithdrawalRequest],
    figures: dict[int, _Figures],
    params: margin.MarginParams,
) -> Section:
    def row(withdrawal: WithdrawalRequest) -> Row:
        after = figures.get(withdrawal.account_id)
        health = after.health if after else None
        breach = health is not None and health < Decimal(repr(params.initial))
        shown = _health(health)
        if after is not None and after.status != "healthy":
            shown += f" ({BAND_LABELS[after.status].lower()})"
        return Row(
            key=withdrawal.public_id,
            cells=[
                withdrawal.public_id,
                _account_name(withdrawal.account),
                fmt.amount(withdrawal.amount),
                fmt.when(withdrawal.created_at),
                shown,
            ],
            href=staff_link("ops_withdrawal_review", withdrawal.public_id)
            or staff_link("admin:accounts_withdrawalrequest_change", withdrawal.pk),
            tone="danger" if breach else "",
        )

    section = Section(
        key="withdrawals",
        title="Withdrawals awaiting approval, oldest first",
        columns=["Withdrawal", "Account", "Amount (USDC)", "Requested", "Health after payout"],
        empty="No withdrawal awaits approval.",
        note="Health after payout: the pending amount is already held out of the account's "
        "cash, as the margin engine counts it.",
    )
    return _listed(section, withdrawals, row)


def _failing_links() -> Section:
    credentials = list(
        LinkedCredential.objects.filter(status=LinkedCredential.Status.FAILING)
        .select_related("account__owner")
        .order_by("-consecutive_failures", "pk")
    )

    def row(credential: LinkedCredential) -> Row:
        return Row(
            key=credential.account.public_id,
            cells=[
                _account_name(credential.account),
                credential.get_venue_display(),
                str(credential.consecutive_failures),
                fmt.when(credential.last_synced_at) if credential.last_synced_at else "Never",
                fmt.sentence(credential.last_error) if credential.last_error else fmt.DASH,
            ],
            href=account_ops_href(credential.account),
            tone="warn",
        )

    section = Section(
        key="links",
        title="Failing linked accounts",
        columns=["Account", "Venue", "Failures", "Last synced", "Last error"],
        empty="No linked account is failing.",
    )
    return _listed(section, credentials, row)


def _orders_at_venue(now: datetime) -> Section:
    orders = list(
        Order.objects.filter(
            status__in=Order.AT_VENUE_STATUSES,
            updated_at__lt=now - timedelta(seconds=ORDER_AT_VENUE_SECONDS),
        )
        .select_related("account__owner", "instrument", "venue")
        .order_by("created_at", "pk")
    )

    def row(order: Order) -> Row:
        market = order.instrument.symbol + (f" {order.outcome.upper()}" if order.outcome else "")
        return Row(
            key=order.public_id,
            cells=[
                order.public_id,
                _account_name(order.account),
                market,
                order.venue.name if order.venue else fmt.DASH,
                order.get_status_display(),
                fmt.duration((now - order.updated_at).total_seconds()),
            ],
            href=staff_link("admin:trading_order_change", order.pk)
            or account_ops_href(order.account),
            tone="warn",
        )

    section = Section(
        key="orders",
        title=f"Orders waiting for their venue over {ORDER_AT_VENUE_SECONDS} s",
        columns=["Order", "Account", "Market", "Venue", "Status", "Waiting"],
        empty="No order is waiting for its venue.",
    )
    return _listed(section, orders, row)


def _stuck_work(now: datetime) -> Section:
    items = list(
        OutboxItem.objects.filter(done_at__isnull=True, due_at__lt=now).order_by("due_at", "pk")
    )

    def row(item: OutboxItem) -> Row:
        return Row(
            key=f"outbox-{item.pk}",
            cells=[
                item.task,
                fmt.when(item.due_at),
                fmt.duration((now - item.due_at).total_seconds()),
                str(item.attempts),
                fmt.sentence(item.last_error) if item.last_error else fmt.DASH,
            ],
            href=staff_link("admin:accounts_outboxitem_change", item.pk),
            tone="warn",
        )

    section = Section(
        key="outbox",
        title="Background work past its due time",
        columns=["Task", "Due", "Overdue by", "Sends", "Last error"],
        empty="No background work is overdue.",
    )
    return _listed(section, items, row)


def _processes() -> Section:
    section = Section(
        key="processes",
        title="Processes (heartbeats)",
        columns=["Process", "Last beat", "State"],
        empty="",
        total_label="down or late",
    )
    processes = [
        shard_process
        for name, label, limit_setting in PROCESSES
        for shard_process in (
            [(shard, shard_label, limit_setting) for shard, shard_label in engine_heartbeats()]
            if name == "engine"
            else [(name, label, limit_setting)]
        )
    ]
    for name, label, limit_setting in processes:
        limit = float(getattr(settings, limit_setting, 60))
        try:
            beat = heartbeat_read(name)
        except RedisError:
            section.rows.append(
                Row(key=name, cells=[label, fmt.DASH, "Redis unreachable"], tone="danger")
            )
            continue
        if beat is None:
            section.rows.append(
                Row(key=name, cells=[label, "None in the last hour", "Down"], tone="danger")
            )
            continue
        age = beat.age()
        late = age > limit
        section.rows.append(
            Row(
                key=name,
                cells=[label, f"{fmt.duration(age)} ago", "Late" if late else "Running"],
                tone="danger" if late else "",
            )
        )
    section.total = sum(1 for row in section.rows if row.tone)
    return section


def _venue_budgets() -> Section:
    section = Section(
        key="budgets",
        title="Venue request budgets",
        columns=["Venue", "Credential", "Bucket", "Tokens left", "Rate /s", "Last 429"],
        empty="No venue request budget in use.",
    )
    try:
        budgets = venue_budgets()
    except RedisError:
        section.note = "Redis is unreachable: the budgets cannot be read."
        return section

    def row(budget: BudgetRow) -> Row:
        low = (
            budget.tokens is not None and budget.capacity and budget.tokens < 0.1 * budget.capacity
        )
        tokens = (
            "Full"
            if budget.tokens is None
            else fmt.quantity(Decimal(repr(round(budget.tokens, 1))))
        )
        if budget.capacity:
            tokens += f" of {fmt.quantity(Decimal(repr(round(budget.capacity, 1))))}"
        return Row(
            key=f"{budget.venue}:{budget.credential}:{budget.bucket}",
            cells=[
                budget.venue.capitalize(),
                budget.credential,
                budget.bucket,
                tokens,
                fmt.quantity(Decimal(repr(round(budget.rate, 2)))) if budget.rate else fmt.DASH,
                f"{fmt.when(budget.last_429)} ({budget.count_429}×)"
                if budget.last_429
                else "Never",
            ],
            href=staff_link("admin:index"),
            tone="warn" if low or budget.last_429 else "",
        )

    return _listed(section, budgets, row)


def _feeds(now: datetime, contracts: Iterable) -> Section:
    max_age = price_max_age()
    held = sorted(
        contracts,
        key=lambda c: (not c.stale, c.quoted_at is not None, c.quoted_at or now, c.symbol),
    )
    stale = [c for c in held if c.stale]
    section = Section(
        key="feeds",
        title="Feed freshness of the markets held",
        columns=["Market", "Venue", "Price", "Quoted", "Age"],
        total=len(stale),
        total_label="stale",
        empty="No market is held.",
        note=f"A price older than {fmt.duration(max_age)} is stale: margin calls on it wait.",
    )
    for contract in held[:ROWS_MAX]:
        age = (now - contract.quoted_at).total_seconds() if contract.quoted_at else None
        section.rows.append(
            Row(
                key=f"{contract.symbol}:{contract.outcome}",
                cells=[
                    f"{contract.symbol} {contract.outcome.upper()}",
                    contract.venue or fmt.DASH,
                    fmt.cents(contract.collateral_price),
                    fmt.when(contract.quoted_at) if contract.quoted_at else "Payout or no price",
                    fmt.duration(age) + (" (stale)" if contract.stale else "")
                    if age is not None
                    else fmt.DASH,
                ],
                href=staff_link("admin:trading_instrument_change", contract.instrument_id),
                tone="danger" if contract.stale else "",
            )
        )
    return section


def _accounts_to_evaluate(withdrawal_account_ids: Iterable[int]) -> list[Account]:
    """Accounts with open positions or borrowing, those with pending withdrawals and
    open margin calls: one statement."""
    holding = Position.objects.exclude(quantity=0).values("account_id")
    return list(
        Account.objects.filter(
            Q(pk__in=holding)
            | Q(cash_balance__lt=0)
            | Q(pk__in=list(withdrawal_account_ids))
            | Q(margin_calls__status=MarginCall.Status.OPEN)
        )
        .distinct()
        .select_related("owner", "linked_credential")
        .order_by("pk")
    )


def desk_get(*, now: datetime | None = None) -> Desk:
    """Everything the risk desk shows, now (see the module docstring)."""
    now = now or timezone.now()
    policy = risk_policy_get()
    params = margin_params_get()
    grace = timedelta(hours=policy.grace_period_hours)
    withdrawals = list(
        WithdrawalRequest.objects.filter(status=WithdrawalRequest.Status.PENDING)
        .select_related("account__owner")
        .order_by("created_at", "pk")
    )
    accounts = _accounts_to_evaluate(w.account_id for w in withdrawals)
    figures, contracts = _evaluate(accounts)
    by_id = {account.pk: account for account in accounts}
    evaluated = [(by_id[pk], item) for pk, item in figures.items()]
    sections: list[Section] = []
    builders: list[Callable[[], Section]] = [
        lambda: _margin_calls(now, figures, grace),
        lambda: _health_section(evaluated, params),
        lambda: _liquidations(now, by_id),
        lambda: _withdrawals(withdrawals, figures, params),
        _kyb_pending,
        _failing_links,
        lambda: _orders_at_venue(now),
        lambda: _stuck_work(now),
        _processes,
        _venue_budgets,
        lambda: _feeds(now, contracts),
    ]
    for build in builders:
        sections.append(build())
    by_key = {section.key: section for section in sections}
    liquidating = sum(
        1 for row in by_key["liquidations"].rows if row.cells[1].startswith("In progress")
    )
    caution = sum(1 for _, f in evaluated if f.status == "caution")
    called = sum(1 for _, f in evaluated if f.status == "margin_call")
    counters = [
        Counter("margin_calls", "Open margin calls", by_key["margin_calls"].total, "danger"),
        Counter("in_call", "Accounts below maintenance", called, "danger", "health"),
        Counter("caution", "Accounts in caution", caution, "warn", "health"),
        Counter("liquidations", "Liquidations in progress", liquidating, "danger"),
        Counter("withdrawals", "Withdrawals to approve", by_key["withdrawals"].total, "warn"),
        Counter("kyb", "KYB to review", by_key["kyb"].total, "warn"),
        Counter("links", "Failing linked accounts", by_key["links"].total, "warn"),
        Counter("orders", "Orders stuck at venues", by_key["orders"].total, "warn"),
        Counter("outbox", "Overdue background work", by_key["outbox"].total, "warn"),
        Counter("processes", "Processes down or late", by_key["processes"].total, "danger"),
        Counter("feeds", "Stale market prices", by_key["feeds"].total, "danger"),
    ]
    for counter in counters:
        if counter.value == 0:
            counter.tone = "ok"
    return Desk(at=now, counters=counters, sections=sections)
