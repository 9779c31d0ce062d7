"""Reads of the trading app: risk policy, collateral prices, portfolios, margin.

`portfolio_load` turns accounts' cash and binary positions into the arrays
`trading.margin.margin_evaluate` takes, with collateral prices from the
market-data store; `margin_summary_get` is one account's dashboard figures.
"""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

import numpy as np
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.expressions import Col
from django.utils import timezone

from accounts.models import (
    Account,
    Journal,
    LedgerAccount,
    LinkedCredential,
    OutboxItem,
    Posting,
    User,
)
from portal.db import column_converters, owned_get
from portal.errors import NotFound
from portal.money import ZERO, quantize_money
from portal.pagination import PAGE_LIMIT_DEFAULT, Page
from portal.refdata import refdata_get
from trading import margin, perp_math
from trading.catalog import instruments_get, listings_get
from trading.enqueue import linked_account_sync_key
from trading.marketdata import store
from trading.marketdata.quotes import Outcome, Quote, quantize_price
from trading.models import (
    Fill,
    Instrument,
    Listing,
    Order,
    Position,
    PriceTick,
    Report,
    RiskPolicy,
)

SECONDS_PER_DAY = 86400.0
RATIO_QUANTUM = Decimal("0.000001")


def risk_policy_get() -> RiskPolicy:
    """The active risk policy (created with SPEC defaults on first use).

    Cached per process (`portal.refdata`): read it; to change it, read the row
    from the database and save it.
    """
    return refdata_get("risk_policy", 1, lambda: RiskPolicy.objects.get_or_create(pk=1)[0])


def margin_params_get(policy: RiskPolicy | None = None) -> margin.MarginParams:
    if policy is None:
        return refdata_get("margin_params", 1, lambda: _margin_params(risk_policy_get()))
    return _margin_params(policy)


def price_max_age(policy: RiskPolicy | None = None) -> float:
    """Seconds after which a market's price is stale (the risk policy's)."""
    return float((policy or risk_policy_get()).price_stale_after_seconds)


def price_stale(
    instrument: Instrument, quoted_at: datetime | None, *, now: datetime, max_age: float
) -> bool:
    """Whether `instrument`'s price, taken at `quoted_at`, is stale at `now`.

    Only a market that trades has prices that age: a halted market keeps its
    last price and a resolved one is worth its payout, neither of them stale.
    A market never priced (`quoted_at` None) is not stale either: it is worth
    nothing until priced, the most conservative value there is.
    """
    if instrument.status != Instrument.Status.OPEN or quoted_at is None:
        return False
    return (now - quoted_at).total_seconds() > max_age


def _margin_params(policy: RiskPolicy) -> margin.MarginParams:
    return margin.MarginParams(
        a=float(policy.haircut_uncertainty_a),
        b=float(policy.haircut_expiry_b),
        tau0_days=float(policy.haircut_tau0_days),
        h_max=float(policy.haircut_max),
        c=float(policy.concentration_c),
        healthy=float(policy.healthy_threshold),
        initial=float(policy.initial_margin_threshold),
        maintenance=float(policy.maintenance_threshold),
        liquidation=float(policy.liquidation_threshold),
    )


@dataclass(frozen=True, slots=True)
class Contract:
    """One outcome's contract of a binary market, as the margin engine sees it."""

    instrument_id: int
    outcome: str
    symbol: str
    title: str
    event_group_id: int
    expires_at: datetime
    addon: float
    collateral_price: Decimal  # 0 when no price is known at all
    quoted_at: datetime | None = None  # when that price was quoted (None: payout, or none)
    stale: bool = False  # the price is older than the risk policy allows (`price_stale`)
    venue: str = ""  # the venue whose price it is ("" : no listing)


def _resolved_price(instrument: Instrument, outcome: str) -> Decimal | None:
    if instrument.status != Instrument.Status.RESOLVED:
        return None
    if instrument.resolution == Instrument.Resolution.VOID:
        return None
    return Decimal(1) if instrument.resolution == outcome else Decimal(0)


class CollateralPrice(NamedTuple):
    """A contract's collateral price, when it was quoted and on which venue."""

    price: Decimal
    quoted_at: datetime
    venue: str  # the venue code of the quote it comes from


def collateral_quote(
    quotes: Iterable[Quote], outcome: str, *, fresh_after: datetime
) -> CollateralPrice | None:
    """An outcome's collateral price from its listings' quotes, when and where it was
    quoted (None: no quote). The collateral-price rule of SPEC §4, for every reader:
    the positions loader (`contract_prices_get`) and the margin engine's re-pricing.

    Per venue the lower of the best bid and the TWAP (`Quote.collateral_price`, a NO
    contract's bid being 1 − the YES ask); across venues the best of those (the
    position could be sold there), from the venues quoted after `fresh_after` when
    any is: a venue whose feed stopped drops out while another is live; only when all
    are stale does the best stale one count.
    """
    priced = [
        CollateralPrice(quote.for_outcome(Outcome(outcome)).collateral_price, quote.ts, quote.venue)
        for quote in quotes
    ]
    fresh = [item for item in priced if item.quoted_at > fresh_after]
    return max(fresh or priced, key=lambda item: item.price) if priced else None


def _last_marks(listings: Iterable[Listing]) -> dict[int, tuple[Decimal, datetime]]:
    """The last stored mark of each listing that has one, and its time, by listing id."""
    last = PriceTick.objects.filter(listing=OuterRef("pk")).order_by("-ts")
    rows = (
        Listing.objects.filter(pk__in=[listing.pk for listing in listings])
        .annotate(
            last_mark=Subquery(last.values("mark")[:1]), last_ts=Subquery(last.values("ts")[:1])
        )
        .values_list("pk", "last_mark", "last_ts")
    )
    return {pk: (mark, ts) for pk, mark, ts in rows if mark is not None}


def _mark_for(mark: Decimal, outcome: str | None) -> Decimal:
    """A stored mark (the YES side's, or a perp's) as the price of `outcome`'s contract."""
    return mark if outcome in (None, Outcome.YES) else 1 - mark


@dataclass(frozen=True, slots=True)
class ContractPrice:
    """A contract's price and where and when it was quoted (`contract_prices_get`)."""

    venue: str  # where the price is; without one, the first listing's ("": no listing)
    price: Decimal | None  # binary: collateral price; perp: mark (None: no price known)
    quoted_at: datetime | None  # None: a payout, or no price
    stale: bool  # older than the risk policy allows (`price_stale`)


_Priced = tuple[str, Decimal | None, datetime | None]  # (venue, price, when quoted)


def _price_quoted(
    instrument: Instrument,
    outcome: str,
    listings: Sequence[Listing],
    quotes: dict[str, Quote],
    *,
    fresh_after: datetime,
) -> _Priced | None:
    """A contract's price from its payout or its listings' quotes (None: neither)."""
    quoted = [quotes[listing.key] for listing in listings if listing.key in quotes]
    if not instrument.is_binary:
        if not quoted:
            return None
        quote = ([quote for quote in quoted if quote.ts > fresh_after] or quoted)[0]
        return (quote.venue, quote.mark, quote.ts)
    payout = _resolved_price(instrument, outcome)
    if payout is not None:
        return (listings[0].venue.code if listings else "", payout, None)
    best = collateral_quote(quoted, outcome, fresh_after=fresh_after)
    return None if best is None else (best.venue, best.price, best.quoted_at)


def _price_marked(
    outcome: str | None, listings: Sequence[Listing], marks: dict[int, tuple[Decimal, datetime]]
) -> _Priced:
    """A contract's price from its listings' last stored marks: the best of them
    (none: no price, at the first listing's venue)."""
    stored = [
        (listing.venue.code, _mark_for(marks[listing.pk][0], outcome), marks[listing.pk][1])
        for listing in listings
        if listing.pk in marks
    ]
    if not stored:
        return (listings[0].venue.code if listings else "", None, None)
    return max(stored, key=lambda item: item[1])


def contract_prices_get(
    keys: Iterable[tuple[int, str]],
    *,
    instruments: dict[int, Instrument],
    now: datetime,
    quoted: dict[str, datetime | None] | None = None,
) -> dict[tuple[int, str], ContractPrice]:
    """The price of each contract by (instrument id, outcome; "" for a perpetual): the
    one pricing of positions, behind `contracts_get` and `positions_priced_load`.

    A binary contract's is its collateral price (SPEC §4): a resolved market's
    payout (1 or 0); else `collateral_quote` over its listings' quotes (per venue
    min(best bid, TWAP) for the outcome, the best venue, fresh venues first); else
    the best last stored mark. A perpetual's is its mark: the first listing with a
    fresh quote, else with any quote; else the best last stored mark. Each carries
    its venue, its time and whether it is stale at `now` (`price_stale`). Listings
    come from the per-process catalog, quotes in one Redis round trip; stored marks
    are read (one query) only for contracts none of whose listings is quoted.
    `quoted`, when given, receives the time of the quote each listing read was priced
    from (None: never quoted): the quote version of the result
    (`trading.services.figures_store`).
    """
    keys = set(keys)
    max_age = price_max_age()
    fresh_after = now - timedelta(seconds=max_age)
    listings = {pk: listings_get(instruments[pk]) for pk in {pk for pk, _ in keys}}
    listing_keys = [listing.key for of_instrument in listings.values() for listing in of_instrument]
    quotes = store.quotes_get_many(listing_keys)
    if quoted is not None:
        quoted.update({key: quotes[key].ts if key in quotes else None for key in listing_keys})
    priced: dict[tuple[int, str], _Priced] = {}
    unquoted = []
    for key in keys:
        found = _price_quoted(
            instruments[key[0]], key[1], listings[key[0]], quotes, fresh_after=fresh_after
        )
        if found is None:
            unquoted.append(key)
        else:
            priced[key] = found
    if unquoted:
        marks = _last_marks(listing for pk, _ in unquoted for listing in listings[pk])
        for pk, outcome in unquoted:
            side = outcome if instruments[pk].is_binary else None
            priced[(pk, outcome)] = _price_marked(side, listings[pk], marks)
    return {
        key: ContractPrice(
            venue=venue,
            price=price,
            quoted_at=quoted_at,
            stale=price_stale(instruments[key[0]], quoted_at, now=now, max_age=max_age),
        )
        for key, (venue, price, quoted_at) in priced.items()
    }


def _contract(instrument: Instrument, outcome: str, price: ContractPrice) -> Contract:
    addon = getattr(instrument, "haircut_addon", None)
    return Contract(
        instrument_id=instrument.pk,
        outcome=outcome,
        symbol=instrument.symbol,
        title=instrument.title,
        event_group_id=instrument.event_id,
        expires_at=instrument.expires_at,
        addon=float(addon.addon) if addon is not None else 0.0,
        collateral_price=ZERO if price.price is None else price.price,
        quoted_at=price.quoted_at,
        stale=price.stale,
        venue=price.venue,
    )


def contracts_get(keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Contract]:
    """Binary contracts by (instrument id, outcome), priced for collateral
    (`contract_prices_get`; no price at all: 0). Instruments from the per-process
    catalog."""
    keys = set(keys)
    instruments = instruments_get(instrument_id for instrument_id, _ in keys)
    prices = contract_prices_get(keys, instruments=instruments, now=timezone.now())
    return {key: _contract(instruments[key[0]], key[1], prices[key]) for key in keys}


# A projection evaluates one account's portfolio many times over with the same positions
# and other quantities (a ticket's maximum size bisects on it): its grouping, which
# depends on the positions alone, is built once (small portfolios only).
GROUPING_MEMO_POSITIONS = 1_000


@functools.lru_cache(maxsize=256)
def _grouping_memo(account: bytes, group: bytes, n_accounts: int) -> margin.Grouping:
    return margin.Grouping.build(
        np.frombuffer(account, dtype=np.int64), np.frombuffer(group, dtype=np.int64), n_accounts
    )


@dataclass
class Portfolio:
    """Cash and binary positions of a set of accounts, as margin-engine arrays.

    Accounts are indexed 0..n-1 in `account_ids` order; positions carry their
    account index, their contract index into `contracts`, and quantity.
    """

    account_ids: list[int]
    cash: np.ndarray
    position_ids: list[int | None]  # None: a simulated position, not held yet
    position_account: np.ndarray
    position_contract: np.ndarray
    quantity: np.ndarray
    quantity_exact: list[Decimal]
    contracts: list[Contract]
    at: datetime = field(default_factory=timezone.now)

    def contract_arrays(self, params: margin.MarginParams) -> tuple[np.ndarray, np.ndarray]:
        """(collateral price, haircut) per contract at `self.at`."""
        price = np.array([float(c.collateral_price) for c in self.contracts], dtype=np.float64)
        days = np.array(
            [(c.expires_at - self.at).total_seconds() / SECONDS_PER_DAY for c in self.contracts],
            dtype=np.float64,
        )
        addon = np.array([c.addon for c in self.contracts], dtype=np.float64)
        return price, margin.haircut(price, days, addon, params)

    def stale_prices(self) -> tuple[list[bool], list[datetime | None]]:
        """Per account: whether a position is priced with a stale price, and the time of
        the oldest such price (None: none, or a price never seen)."""
        stale = [False] * len(self.account_ids)
        since: list[datetime | None] = [None] * len(self.account_ids)
        for account, contract_index in zip(
            self.position_account.tolist(), self.position_contract.tolist(), strict=True
        ):
            contract = self.contracts[contract_index]
            if not contract.stale:
                continue
            stale[account] = True
            if contract.quoted_at is not None and (
                since[account] is None or contract.quoted_at < since[account]
            ):
                since[account] = contract.quoted_at
        return stale, since

    def grouping(self) -> margin.Grouping:
        group = np.array([c.event_group_id for c in self.contracts], dtype=np.int64)
        account = np.asarray(self.position_account, dtype=np.int64)
        group = group[self.position_contract] if self.contracts else np.zeros(0, np.int64)
        if account.size > GROUPING_MEMO_POSITIONS:
            return margin.Grouping.build(account, group, len(self.account_ids))
        return _grouping_memo(account.tobytes(), group.tobytes(), len(self.account_ids))

    def evaluate(
        self, params: margin.MarginParams, *, per_position: bool = False
    ) -> margin.MarginResult:
        price, haircuts = self.contract_arrays(params)
        return margin.margin_evaluate(
            grouping=self.grouping(),
            quantity=self.quantity,
            price=price[self.position_contract],
            haircut=haircuts[self.position_contract],
            cash=self.cash,
            params=params,
            per_position=per_position,
        )


POSITION_FIELDS = (
    "id",
    "instrument_id",
    "outcome",
    "quantity",
    "average_price",
    "realized_pnl",
    "isolated_margin",
    "leverage",
    "opened_at",
)
# The same, as attributes of a Position instance (`position_view_get`).
POSITION_ROW_ATTRIBUTES = ("pk", *POSITION_FIELDS[1:])
# The columns of an open position as `positions_priced_load` reads them: its
# account, then POSITION_FIELDS (all of them for views, the first four for margin).
_VIEW_COLUMNS = ("account_id", *POSITION_FIELDS)
_MARGIN_COLUMNS = _VIEW_COLUMNS[:5]  # account_id, id, instrument_id, outcome, quantity


@dataclass(frozen=True)
class PricedPositions:
    """Open positions of some accounts with each contract priced once
    (`positions_priced_load`)."""

    accounts: Sequence[Account]
    rows: list[tuple]  # _VIEW_COLUMNS (or _MARGIN_COLUMNS), in account, then id, order
    instruments: dict[int, Instrument]
    prices: dict[tuple[int, str], ContractPrice]  # by (instrument id, outcome; "" for perps)
    contracts: dict[tuple[int, str], Contract]  # the binary ones, as margin_evaluate takes them
    at: datetime
    # The time of the quote of every listing read (None: never quoted), by listing key.
    quoted: dict[str, datetime | None] = field(default_factory=dict)

    def portfolio(self) -> Portfolio:
        """The accounts' cash (as passed in) and binary positions as margin-engine arrays,
        positions in account order (`margin_evaluate`'s fast path)."""
        index = {account.pk: i for i, account in enumerate(self.accounts)}
        keys = list(self.contracts)
        contract_index = {key: i for i, key in enumerate(keys)}
        rows = [row for row in self.rows if (row[2], row[3]) in contract_index]
        return Portfolio(
            account_ids=[account.pk for account in self.accounts],
            cash=np.array([float(account.risk_cash) for account in self.accounts]),
            position_ids=[row[1] for row in rows],
            position_account=np.array([index[row[0]] for row in rows], dtype=np.int64),
            position_contract=np.array(
                [contract_index[(row[2], row[3])] for row in rows], dtype=np.int64
            ),
            quantity=np.array([float(row[4]) for row in rows], dtype=np.float64),
            quantity_exact=[row[4] for row in rows],
            contracts=[self.contracts[key] for key in keys],
            at=self.at,
        )


def positions_priced_load(
    *, accounts: Sequence[Account], binary_only: bool = False
) -> PricedPositions:
    """The open positions of `accounts`, each contract priced once by
    `contract_prices_get`: the one loader of priced positions. The API's positions
    and margin, the dashboard (`position_book_get`), the checks and the margin
    engine's book (`portfolio_load`) all read through it, so they value a position
    alike, a linked account's synced ones included.

    One statement (a prepared one for a single account, the API's hot path), one
    Redis round trip (plus one query for stored marks only for contracts that no
    listing quotes); instruments and listings from the per-process catalog. With
    `binary_only` (margin inputs), perpetuals are left out and only the columns
    margin needs are read. Pass freshly read Account rows (their cash is used as
    it stands; locked ones for checks that must hold).
    """
    columns = _MARGIN_COLUMNS if binary_only else _VIEW_COLUMNS
    rows = _open_position_rows([account.pk for account in accounts], columns)
    instruments = instruments_get({row[2] for row in rows})
    if binary_only and not all(instrument.is_binary for instrument in instruments.values()):
        binary = {pk for pk, instrument in instruments.items() if instrument.is_binary}
        rows = [row for row in rows if row[2] in binary]
    keys = {(row[2], row[3]) for row in rows}
    now = timezone.now()
    quoted: dict[str, datetime | None] = {}
    prices = contract_prices_get(keys, instruments=instruments, now=now, quoted=quoted)
    return PricedPositions(
        accounts=accounts,
        rows=rows,
        instruments=instruments,
        prices=prices,
        contracts={
            key: _contract(instruments[key[0]], key[1], prices[key])
            for key in keys
            if instruments[key[0]].is_binary
        },
        at=now,
        quoted=quoted,
    )


def portfolio_load(*, accounts: Sequence[Account]) -> Portfolio:
    """The margin inputs of `accounts` (their cash as passed in, open binary positions),
    as `positions_priced_load` prices them.

    Pass freshly read (and, for checks that must hold, locked) Account rows.
    """
    return positions_priced_load(accounts=accounts, binary_only=True).portfolio()


def money_decimal(value: float) -> Decimal:
    """A float amount from the margin arrays as USDC (6 places, half to even)."""
    return quantize_money(Decimal(repr(float(value))))


def ratio_decimal(value: float) -> Decimal | None:
    """A float ratio as a Decimal at 6 places; None for unbounded or undefined."""
    if not np.isfinite(value):
        return None
    return Decimal(repr(float(value))).quantize(RATIO_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class PositionMargin:
    position_id: int
    symbol: str
    title: str
    outcome: str
    quantity: Decimal
    collateral_price: Decimal
    value: Decimal  # V = q · p
    haircut: Decimal
    contribution: Decimal  # D · V · (1 − h)


@dataclass(frozen=True)
class AccountMargin:
    """One account's Margin Portfolio figures, as the dashboard and API show them."""

    account_id: int
    cash: Decimal
    deposit: Decimal
    used_margin: Decimal
    adjusted_equity: Decimal
    available_margin: Decimal
    health: Decimal | None  # None: unbounded (no borrowing)
    utilization: Decimal | None  # None: AE = 0 while borrowing
    status: str
    collateral_value: Decimal
    diversification: Decimal
    breakdown: list[PositionMargin]  # sorted by contribution, largest first
    at: datetime
    stale: bool  # some position is priced with a price older than the risk policy allows
    stale_since: datetime | None  # the time of the oldest such price (None: never priced)
    may_borrow: bool = True  # margin enabled: Available Margin is credit it can draw


def margin_summaries_get(
    accounts: Sequence[Account],
    *,
    portfolio: Portfolio | None = None,
    deposits: dict[int, Decimal] | None = None,
) -> list[AccountMargin]:
    """Margin figures of `accounts`, with each position's contribution, one evaluation
    (of `portfolio` when the caller has loaded it; with the `net_deposits_get` of
    `deposits` when the caller has read them)."""
    params = margin_params_get()
    portfolio = portfolio or portfolio_load(accounts=accounts)
    result = portfolio.evaluate(params, per_position=True)
    _, haircuts = portfolio.contract_arrays(params)
    if deposits is None:
        deposits = net_deposits_get(account_ids=portfolio.account_ids)
    stale, stale_since = portfolio.stale_prices()
    breakdowns: list[list[PositionMargin]] = [[] for _ in portfolio.account_ids]
    for i, position_id in enumerate(portfolio.position_ids):
        contract = portfolio.contracts[portfolio.position_contract[i]]
        breakdowns[portfolio.position_account[i]].append(
            PositionMargin(
                position_id=position_id,
                symbol=contract.symbol,
                title=contract.title,
                outcome=contract.outcome,
                quantity=portfolio.quantity_exact[i],
                collateral_price=contract.collateral_price,
                value=money_decimal(result.value[i]),
                haircut=ratio_decimal(haircuts[portfolio.position_contract[i]]),
                contribution=money_decimal(result.contribution[i]),
            )
        )
    summaries = []
    for k, account in enumerate(accounts):
        breakdowns[k].sort(key=lambda row: row.contribution, reverse=True)
        summaries.append(
            AccountMargin(
                account_id=account.pk,
                cash=account.risk_cash,
                deposit=deposits.get(account.pk, ZERO)
                if account.is_custodial
                else account.risk_cash,
                used_margin=money_decimal(result.used_margin[k]),
                adjusted_equity=money_decimal(result.adjusted_equity[k]),
                available_margin=money_decimal(result.available_margin[k]),
                health=ratio_decimal(result.health[k]),
                utilization=ratio_decimal(result.utilization[k]),
                status=margin.STATUS_NAMES[result.status[k]],
                collateral_value=money_decimal(result.collateral_value[k]),
                diversification=ratio_decimal(result.diversification[k]),
                breakdown=breakdowns[k],
                at=portfolio.at,
                stale=stale[k],
                stale_since=stale_since[k],
                may_borrow=account.margin_enabled,
            )
        )
    return summaries


def margin_summary_get(*, account: Account) -> AccountMargin:
    """One account's dashboard figures (Deposit, UM, AE, Available, health, breakdown)."""
    return margin_summaries_get([account])[0]


def net_deposits_get(*, account_ids: Sequence[int]) -> dict[int, Decimal]:
    """Deposit as the dashboard means it: deposits − withdrawals, from the ledger."""
    rows = (
        Posting.objects.filter(
            ledger_account__account_id__in=account_ids,
            ledger_account__purpose=LedgerAccount.Purpose.CASH,
        )
        .filter(Q(journal__kind=Journal.Kind.DEPOSIT) | Q(journal__kind=Journal.Kind.WITHDRAWAL))
        .values_list("ledger_account__account_id")
        .annotate(total=Sum("amount"))
        .values_list("ledger_account__account_id", "total")
    )
    return dict(rows)


def net_deposit_steps_get(
    *, account_id: int, since: datetime
) -> tuple[Decimal, list[tuple[datetime, Decimal]]]:
    """Net deposits over time (the equity chart's baseline): deposits − withdrawals
    booked before `since`, and each one booked since, as (time, signed amount),
    oldest first. Two statements, from the ledger as `net_deposits_get` reads it."""
    flows = Posting.objects.filter(
        ledger_account__account_id=account_id,
        ledger_account__purpose=LedgerAccount.Purpose.CASH,
    ).filter(Q(journal__kind=Journal.Kind.DEPOSIT) | Q(journal__kind=Journal.Kind.WITHDRAWAL))
    before = flows.filter(created_at__lt=since).aggregate(total=Sum("amount"))["total"] or ZERO
    steps = list(
        flows.filter(created_at__gte=since)
        .order_by("created_at", "id")
        .values_list("created_at", "amount")
    )
    return before, steps


def linked_syncs_pending(*, credential_ids: Sequence[int]) -> set[int]:
    """Which of these linked credentials have a sync queued or running ("Sync now", or
    a retry): an unfinished outbox item of the sync (`trading.enqueue`)."""
    if not credential_ids:
        return set()
    keys = {linked_account_sync_key(pk): pk for pk in credential_ids}
    pending = OutboxItem.objects.filter(key__in=list(keys), done_at__isnull=True)
    return {keys[key] for key in pending.values_list("key", flat=True)}


# Perpetuals (SPEC §5) ---------------------------------------------------------


def perp_quotes_get(*, instrument_ids: Iterable[int]) -> dict[int, Quote]:
    """The live quote of each perpetual (by instrument id) that has one.

    A perp listed on several venues uses its first active listing with a
    quote (venue code order). One query and one Redis round trip.
    """
    listings = list(
        Listing.objects.filter(
            instrument_id__in=list(instrument_ids),
            instrument__kind=Instrument.Kind.PERPETUAL,
            is_active=True,
        )
        .select_related("instrument", "venue")
        .order_by("instrument_id", "venue__code")
    )
    quotes = store.quotes_get_many(listing.key for listing in listings)
    found: dict[int, Quote] = {}
    for listing in listings:
        if listing.instrument_id not in found and listing.key in quotes:
            found[listing.instrument_id] = quotes[listing.key]
    return found


@dataclass(frozen=True)
class PerpPositionView:
    symbol: str
    side: str  # "long" | "short"
    quantity: Decimal  # |s|
    entry: Decimal
    mark: Decimal | None  # None: no live quote (figures that need it are None too)
    notional: Decimal | None  # |s|·mark
    isolated_margin: Decimal
    leverage: int | None
    unrealized_pnl: Decimal | None
    liquidation_price: Decimal | None
    maintenance_margin: Decimal | None


def perp_positions_get(*, account: Account) -> list[PerpPositionView]:
    """The account's open perpetual positions with mark, uPnL and liquidation price."""
    positions = list(
        Position.objects.filter(
            account=account, outcome="", instrument__kind=Instrument.Kind.PERPETUAL
        )
        .exclude(quantity=0)
        .select_related("instrument")
        .order_by("instrument__symbol")
    )
    quotes = perp_quotes_get(instrument_ids=[position.instrument_id for position in positions])
    views = []
    for position in positions:
        instrument, s = position.instrument, position.quantity
        mmf = instrument.maintenance_margin_fraction
        quote = quotes.get(position.instrument_id)
        mark = quote.mark if quote is not None else None
        liquidation = perp_math.liquidation_price(
            quantity=s, entry=position.average_price, margin=position.isolated_margin, mmf=mmf
        )
        views.append(
            PerpPositionView(
                symbol=instrument.symbol,
                side="long" if s > 0 else "short",
                quantity=abs(s),
                entry=position.average_price,
                mark=mark,
                notional=None if mark is None else quantize_money(abs(s) * mark),
                isolated_margin=position.isolated_margin,
                leverage=position.leverage,
                unrealized_pnl=None
                if mark is None
                else quantize_money(
                    perp_math.unrealized_pnl(quantity=s, entry=position.average_price, mark=mark)
                ),
                liquidation_price=None if liquidation is None else quantize_price(liquidation),
                maintenance_margin=None
                if mark is None
                else quantize_money(perp_math.maintenance_margin(quantity=s, mark=mark, mmf=mmf)),
            )
        )
    return views


# ---------------------------------------------------------------------------
# Orders and fills (seed 002: list / history)


def _contract_symbol_filter(symbol: str | None) -> dict[str, str]:
    """Filter kwargs for 'SYMBOL' (YES of a binary, or a perp) / 'SYMBOL:NO'."""
    if not symbol:
        return {}
    base, _, outcome = symbol.partition(":")
    filters = {"instrument__symbol": base}
    if outcome:
        filters["outcome"] = outcome.lower()
    else:
        filters["outcome__in"] = ["yes", ""]
    return filters


def row_contract_set(row: dict) -> dict:
    """An ORDER_FIELDS / FILL_FIELDS values row with its contract `symbol` ('X' or 'X:NO')
    and `venue` code in place of the joined columns (changed in place, returned)."""
    row["symbol"] = contract_symbol(row.pop("instrument__symbol"), row["outcome"])
    row["venue"] = row.pop("venue__code")
    return row


def _with_contract_symbol(rows: list[dict]) -> list[dict]:
    for row in rows:
        row_contract_set(row)
    return rows


ORDER_FIELDS = (
    "public_id",
    "client_order_id",
    "instrument__symbol",
    "outcome",
    "side",
    "order_type",
    "time_in_force",
    "status",
    "quantity",
    "notional_usdc",
    "limit_price",
    "take_profit",
    "stop_loss",
    "leverage",
    "filled_quantity",
    "filled_notional",
    "average_fill_price",
    "fees",
    "venue__code",
    "reject_code",
    "reject_reason",
    "parent__public_id",
    "created_at",
    "updated_at",
)

# `TradeFilters.status` beyond the stored statuses.
ACTIVE = "active"  # pending, submitted, open or partially filled
ARMED = "armed"  # filled, with a take-profit / stop-loss that has not fired yet


@dataclass(frozen=True)
class TradeFilters:
    """Which of an account's orders or fills to read (None: not filtered).

    `status` (orders) is one stored status, ACTIVE or ARMED; `symbol` 'SYMBOL' (YES,
    or a perp) or 'SYMBOL:NO'; `order_id` (fills) an order's public id; the days are
    whole UTC days, inclusive. The order list, the orders page and its CSV export all
    filter with one.
    """

    date_from: date | None = None
    date_to: date | None = None
    status: str | None = None
    side: str | None = None
    symbol: str | None = None
    order_id: str | None = None

    def day_bounds(self) -> tuple[datetime | None, datetime | None]:
        """[start of `date_from`, start of the day after `date_to`) in UTC (None: open)."""
        start = end = None
        if self.date_from is not None:
            start = datetime.combine(self.date_from, time.min, tzinfo=UTC)
        if self.date_to is not None:
            end = datetime.combine(self.date_to + timedelta(days=1), time.min, tzinfo=UTC)
        return start, end


NO_FILTERS = TradeFilters()


def _trades_filtered(rows: QuerySet, filters: TradeFilters) -> QuerySet:
    """`rows` (orders or fills) of the filters' contract, side and days, newest first."""
    rows = rows.filter(**_contract_symbol_filter(filters.symbol))
    if filters.side:
        rows = rows.filter(side=filters.side)
    start, end = filters.day_bounds()
    if start is not None:
        rows = rows.filter(created_at__gte=start)
    if end is not None:
        rows = rows.filter(created_at__lt=end)
    return rows.order_by("-created_at", "-id")


def orders_filtered(*, account, filters: TradeFilters = NO_FILTERS) -> QuerySet:
    """The account's orders matching the filters, newest first (a queryset: nothing read)."""
    orders = Order.objects.filter(account=account)
    if filters.status == ACTIVE:
        orders = orders.filter(status__in=Order.ACTIVE_STATUSES)
    elif filters.status == ARMED:
        orders = orders.filter(
            Q(take_profit__isnull=False) | Q(stop_loss__isnull=False),
            filled_quantity__gt=0,
            parent__isnull=True,
        ).exclude(Exists(Order.objects.filter(parent=OuterRef("pk"))))
    elif filters.status:
        orders = orders.filter(status=filters.status)
    return _trades_filtered(orders, filters)


def _page_read(rows: QuerySet, fields: tuple[str, ...], limit: int, offset: int) -> Page[dict]:
    page = Page.read(rows.values(*fields), limit=limit, offset=offset)
    _with_contract_symbol(page.items)
    return page


def order_list(
    *,
    account,
    filters: TradeFilters = NO_FILTERS,
    limit: int = PAGE_LIMIT_DEFAULT,
    offset: int = 0,
) -> Page[dict]:
    """A page of an account's orders, newest first, as dicts (one query).

    Each row's `symbol` is the contract's, `venue` the venue code. Raises
    InvalidParams for a limit or offset out of range (`portal.pagination`).
    """
    return _page_read(
        orders_filtered(account=account, filters=filters), ORDER_FIELDS, limit, offset
    )


FILL_FIELDS = (
    "public_id",
    "order__public_id",
    "order__client_order_id",
    "instrument__symbol",
    "outcome",
    "side",
    "quantity",
    "price",
    "notional",
    "venue_fee",
    "commission",
    "realized_pnl",
    "liquidity",
    "venue__code",
    "created_at",
)


def fills_filtered(*, account, filters: TradeFilters = NO_FILTERS) -> QuerySet:
    """The account's fills matching the filters (`status` aside), newest first (a
    queryset: nothing read)."""
    fills = Fill.objects.filter(account=account)
    if filters.order_id:
        fills = fills.filter(order__public_id=filters.order_id)
    return _trades_filtered(fills, filters)


def fill_list(
    *,
    account,
    filters: TradeFilters = NO_FILTERS,
    limit: int = PAGE_LIMIT_DEFAULT,
    offset: int = 0,
) -> Page[dict]:
    """A page of an account's fills, newest first, as dicts (one query), as `order_list`."""
    return _page_read(fills_filtered(account=account, filters=filters), FILL_FIELDS, limit, offset)


def contracts_traded(*, account) -> list[str]:
    """The contract symbols ('X', 'X:NO') of the account's orders and fills, sorted."""
    keys = set(Order.objects.filter(account=account).values_list("instrument__symbol", "outcome"))
    keys |= set(Fill.objects.filter(account=account).values_list("instrument__symbol", "outcome"))
    return sorted({contract_symbol(symbol, outcome) for symbol, outcome in keys})


# ---------------------------------------------------------------------------
# The partner API's reads (/v1/intelligence): positions, margin, orders, markets.
# Hot paths: one positions query, catalog reference data (cached per process),
# every quote in one Redis round trip; stored marks only when a quote is missing.


def contract_symbol(symbol: str, outcome: str) -> str:
    """The symbol a contract trades under: X (YES, or a perp) or X:NO."""
    return f"{symbol}:NO" if outcome == Outcome.NO else symbol


@dataclass(frozen=True, slots=True)
class PositionView:
    """One open position as the API shows it (binary or perpetual)."""

    position_id: int
    symbol: str  # contract symbol: TRUMP-WIN, TRUMP-WIN:NO, BTC-PERP
    kind: str  # Instrument.Kind
    venue: str
    side: str  # "long" | "short" (binaries are long-only)
    quantity: Decimal  # |q|
    average_price: Decimal
    mark_price: Decimal | None  # binary: collateral price; perp: mark (None: no price known)
    notional: Decimal | None  # quantity · mark_price
    unrealized_pnl: Decimal | None  # binary: q·(p − avg); perp: s·(mark − entry)
    realized_pnl: Decimal
    leverage: int | None  # perps only
    liquidation_price: Decimal | None  # perps only
    isolated_margin: Decimal | None  # perps only
    opened_at: datetime
    quoted_at: datetime | None  # when mark_price was quoted (None: a payout, or no price)
    stale: bool  # mark_price is older than the risk policy allows (`price_stale`)

    @property
    def cost(self) -> Decimal:
        """What the open quantity cost at its average entry: quantity · average_price."""
        return quantize_money(self.quantity * self.average_price)

    @property
    def pnl_fraction(self) -> Decimal | None:
        """Unrealized P&L as a fraction of `cost` (None: no price, or nothing paid)."""
        if self.unrealized_pnl is None or not self.cost:
            return None
        return (self.unrealized_pnl / self.cost).quantize(RATIO_QUANTUM)


@dataclass(frozen=True)
class PositionBook:
    """An account's open positions, and its binary ones as Margin Portfolio arrays."""

    positions: list[PositionView]  # by symbol
    portfolio: Portfolio  # the binary positions and cash, for margin_evaluate


@dataclass(frozen=True)
class _RawSelect:
    """A fixed SELECT written once from the model's metadata, run without the ORM's
    per-call query compilation (the hot read path's largest cost), its values
    converted as the ORM would (SQLite returns decimals and datetimes raw)."""

    sql: str
    converters: list[tuple[int, list, Col]]

    def fetch(self, *params: object) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if not self.converters:
            return rows
        converted = []
        for row in rows:
            values = list(row)
            for index, functions, column in self.converters:
                for convert in functions:
                    values[index] = convert(values[index], column, connection)
            converted.append(tuple(values))
        return converted


@functools.cache
def _open_positions_select(columns: tuple[str, ...]) -> _RawSelect:
    """SELECT columns FROM position WHERE account_id = %s AND quantity <> 0 ORDER BY id."""
    meta, quote = Position._meta, connection.ops.quote_name
    cols = [meta.get_field(name).get_col(meta.db_table) for name in columns]
    account = quote(meta.get_field("account").column)
    quantity = quote(meta.get_field("quantity").column)
    sql = (
        f"SELECT {', '.join(quote(column.target.column) for column in cols)} "  # noqa: S608 - names from the model
        f"FROM {quote(meta.db_table)} WHERE {account} = %s AND {quantity} <> 0 "
        f"ORDER BY {quote(meta.pk.column)}"
    )
    converters = []
    for index, column in enumerate(cols):
        functions = column_converters(column, connection)
        if functions:
            converters.append((index, functions, column))
    return _RawSelect(sql=sql, converters=converters)


def _open_position_rows(account_ids: Sequence[int], columns: tuple[str, ...]) -> list[tuple]:
    """`columns` of these accounts' open positions, in account, then id, order (one
    statement; a prepared one for a single account)."""
    if len(account_ids) == 1:
        return _open_positions_select(columns).fetch(account_ids[0])
    if not account_ids:
        return []
    return list(
        Position.objects.filter(account_id__in=account_ids)
        .exclude(quantity=0)
        .order_by("account_id", "id")
        .values_list(*columns)
    )


def _position_view(row: tuple, instrument: Instrument, price: ContractPrice) -> PositionView:
    """One position (a POSITION_FIELDS row) at `price`, as the API shows it."""
    pk, _, outcome, quantity, average, realized, margin_, leverage, opened = row
    is_binary = instrument.is_binary
    mark = price.price
    size = abs(quantity)
    if is_binary:
        upnl = None if mark is None else quantize_money(quantity * (mark - average))
        liquidation = None
    else:
        upnl = (
            None
            if mark is None
            else quantize_money(
                perp_math.unrealized_pnl(quantity=quantity, entry=average, mark=mark)
            )
        )
        liquidation = perp_math.liquidation_price(
            quantity=quantity,
            entry=average,
            margin=margin_,
            mmf=instrument.maintenance_margin_fraction,
        )
    return PositionView(
        position_id=pk,
        symbol=contract_symbol(instrument.symbol, outcome),
        kind=instrument.kind,
        venue=price.venue,
        side="short" if quantity < 0 else "long",
        quantity=size,
        average_price=average,
        mark_price=mark,
        notional=None if mark is None else quantize_money(size * mark),
        unrealized_pnl=upnl,
        realized_pnl=realized,
        leverage=None if is_binary else leverage,
        liquidation_price=None if liquidation is None else quantize_price(liquidation),
        isolated_margin=None if is_binary else margin_,
        opened_at=opened,
        quoted_at=price.quoted_at,
        stale=price.stale,
    )


def _position_book(priced: PricedPositions) -> PositionBook:
    """One account's PricedPositions as its PositionBook."""
    views = [
        _position_view(row[1:], priced.instruments[row[2]], priced.prices[(row[2], row[3])])
        for row in priced.rows
    ]
    views.sort(key=lambda view: view.symbol)
    return PositionBook(positions=views, portfolio=priced.portfolio())


def position_book_get(*, account: Account) -> PositionBook:
    """`account`'s open positions as the API shows them, and its margin inputs, from one
    `positions_priced_load` (one statement, one Redis round trip).

    Pass a freshly read Account row (its cash is used as it stands).
    """
    return _position_book(positions_priced_load(accounts=[account]))


def priced_positions_split(priced: PricedPositions) -> list[PricedPositions]:
    """Several accounts' PricedPositions as one per account (in `priced.accounts`
    order), each as `positions_priced_load` would have read it for that account alone
    at the same instant (its rows, prices and contracts only)."""
    rows: dict[int, list[tuple]] = {account.pk: [] for account in priced.accounts}
    for row in priced.rows:
        rows[row[0]].append(row)
    split = []
    for account in priced.accounts:
        own = rows[account.pk]
        keys = {(row[2], row[3]) for row in own}
        split.append(
            replace(
                priced,
                accounts=[account],
                rows=own,
                prices={key: priced.prices[key] for key in keys},
                contracts={key: c for key, c in priced.contracts.items() if key in keys},
            )
        )
    return split


def position_books_get(
    *, accounts: Sequence[Account]
) -> list[tuple[PricedPositions, PositionBook]]:
    """`position_book_get` of several accounts from one `positions_priced_load` (one
    statement, one Redis round trip), each book as that call would give it, beside its
    account's share of the load (`priced_positions_split`: its prices and quote times)."""
    split = priced_positions_split(positions_priced_load(accounts=accounts))
    return [(one, _position_book(one)) for one in split]


def position_view_get(*, position: Position) -> PositionView:
    """One position, open or just closed, priced now as `position_book_get` prices it
    (`contract_prices_get`: one Redis round trip, plus a query for stored marks only
    when no listing has a quote); the instrument and listings from the per-process
    catalog. The position row is used as it stands (pass the one a fill has just
    written)."""
    row = tuple(getattr(position, name) for name in POSITION_ROW_ATTRIBUTES)
    instruments = instruments_get({position.instrument_id})
    key = (position.instrument_id, position.outcome)
    price = contract_prices_get([key], instruments=instruments, now=timezone.now())[key]
    return _position_view(row, instruments[position.instrument_id], price)


def margin_utilization_get(portfolio: Portfolio) -> Decimal | None:
    """UM / AE of a one-account portfolio (0 without borrowing; None when AE = 0 < UM)."""
    if portfolio.cash[0] >= 0:  # UM = max(0, −cash) = 0: nothing to evaluate
        return ratio_decimal(0.0)
    return ratio_decimal(portfolio.evaluate(margin_params_get()).utilization[0])


@dataclass(frozen=True)
class ExposureGroup:
    """Positions grouped by venue or asset class, for the margin breakdown."""

    venue: str
    asset_class: str  # "prediction" | "perpetual"
    positions: int = 0
    notional: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    adjusted_value: Decimal = ZERO  # Σ contribution to Adjusted Equity (binaries)
    isolated_margin: Decimal = ZERO  # Σ isolated margin (perps)


@dataclass(frozen=True)
class MarginOverview:
    """The margin endpoint: the account's figures and its exposure by venue and class."""

    summary: AccountMargin
    initial_threshold: Decimal
    maintenance_threshold: Decimal
    positions: list[PositionView]
    by_asset_class: list[ExposureGroup]  # prediction, perpetual
    by_venue: list[ExposureGroup]  # by venue code


def asset_class_of(kind: str) -> str:
    return "prediction" if kind == Instrument.Kind.BINARY else "perpetual"


def margin_overview_get(*, account: Account) -> MarginOverview:
    """`account`'s Margin Portfolio figures (as `margin_summary_get`) with every open
    position, and exposure by venue and by asset class.

    Binary positions count toward Adjusted Equity by their contribution; a
    perp's isolated margin is locked to it and not part of AE (SPEC §5).
    Two statements (positions, net deposit) and one Redis round trip; the figures
    are `margin_summaries_get`'s, from the same loaded portfolio.
    """
    book = position_book_get(account=account)
    (summary,) = margin_summaries_get([account], portfolio=book.portfolio)
    return margin_overview_of(book, summary)


def margin_overview_of(book: PositionBook, summary: AccountMargin) -> MarginOverview:
    """An account's MarginOverview from its book and its summary (evaluated from
    `book.portfolio`): `margin_overview_get`'s, from figures already computed."""
    contribution = {row.position_id: row.contribution for row in summary.breakdown}
    by_class: dict[str, ExposureGroup] = {
        name: ExposureGroup(venue="", asset_class=name) for name in ("prediction", "perpetual")
    }
    by_venue: dict[tuple[str, str], ExposureGroup] = {}
    for view in book.positions:
        asset_class = asset_class_of(view.kind)
        key = (view.venue, asset_class)
        by_venue.setdefault(key, ExposureGroup(venue=view.venue, asset_class=asset_class))
        for groups, group_key in ((by_class, asset_class), (by_venue, key)):
            group = groups[group_key]
            groups[group_key] = replace(
                group,
                positions=group.positions + 1,
                notional=group.notional + (view.notional or ZERO),
                unrealized_pnl=group.unrealized_pnl + (view.unrealized_pnl or ZERO),
                adjusted_value=group.adjusted_value + contribution.get(view.position_id, ZERO),
                isolated_margin=group.isolated_margin + (view.isolated_margin or ZERO),
            )
    params = margin_params_get()
    return MarginOverview(
        summary=summary,
        initial_threshold=Decimal(repr(params.initial)),
        maintenance_threshold=Decimal(repr(params.maintenance)),
        positions=book.positions,
        by_asset_class=list(by_class.values()),
        by_venue=[by_venue[key] for key in sorted(by_venue)],
    )


def order_get(
    *, account: Account, order_id: str | None = None, client_order_id: str | None = None
) -> dict | None:
    """One of `account`'s orders by public id or client order id, as an `order_list` row
    (None: the account has no such order)."""
    lookup = (
        {"public_id": order_id} if order_id is not None else {"client_order_id": client_order_id}
    )
    rows = list(Order.objects.filter(account=account, **lookup).values(*ORDER_FIELDS)[:1])
    return _with_contract_symbol(rows)[0] if rows else None


@dataclass(frozen=True, slots=True)
class ListingQuote:
    venue: str
    venue_symbol: str
    quote: Quote | None  # the latest quote (YES side for binaries); None: never quoted


@dataclass(frozen=True, slots=True)
class MarketView:
    instrument: Instrument
    listings: list[ListingQuote]


def market_list(
    *, kind: str | None = None, status: str | None = None, symbol: str | None = None
) -> list[MarketView]:
    """Instruments (by symbol) with their active listings and latest quotes.

    Two queries (instruments, listings) and one Redis round trip. The quotes
    are the store's latest, however old (each carries its time).
    """
    instruments = Instrument.objects.select_related("event").order_by("symbol")
    if kind:
        instruments = instruments.filter(kind=kind)
    if status:
        instruments = instruments.filter(status=status)
    if symbol:
        instruments = instruments.filter(symbol=symbol)
    instruments = list(instruments)
    listings = list(
        Listing.objects.filter(instrument__in=instruments, is_active=True, venue__is_active=True)
        .select_related("venue")
        .order_by("instrument_id", "venue__code")
    )
    symbols = {instrument.pk: instrument.symbol for instrument in instruments}
    by_instrument: dict[int, list[Listing]] = {}
    for listing in listings:
        by_instrument.setdefault(listing.instrument_id, []).append(listing)
    quotes = store.quotes_get_many(
        f"{symbols[listing.instrument_id]}@{listing.venue.code}" for listing in listings
    )
    return [
        MarketView(
            instrument=instrument,
            listings=[
                ListingQuote(
                    venue=listing.venue.code,
                    venue_symbol=listing.venue_symbol,
                    quote=quotes.get(f"{instrument.symbol}@{listing.venue.code}"),
                )
                for listing in by_instrument.get(instrument.pk, [])
            ],
        )
        for instrument in instruments
    ]


def linked_credential_list(*, user: User) -> list[LinkedCredential]:
    """The user's linked exchange credentials (unlinked ones too), newest first."""
    return list(
        LinkedCredential.objects.filter(account__owner=user)
        .select_related("account")
        .defer("sealed_secret")
        .order_by("-created_at", "-pk")
    )


def linked_credential_get(*, user: User, account_public_id: str) -> LinkedCredential:
    """The credential of the user's linked account `account_public_id`.

    Raises NotFound for an unknown account, another user's, or one not linked.
    """
    credential = (
        LinkedCredential.objects.filter(account__owner=user, account__public_id=account_public_id)
        .select_related("account")
        .first()
    )
    if credential is None:
        raise NotFound("No such linked account.")
    return credential


def open_position_counts(*, accounts: list[Account]) -> dict[int, int]:
    """{account pk: number of open positions (binary and perpetual)}, one query."""
    rows = (
        Position.objects.filter(account__in=accounts)
        .exclude(quantity=0)
        .values("account_id")
        .annotate(open=Count("id"))
    )
    return {row["account_id"]: row["open"] for row in rows}


# --- Reports -----------------------------------------------------------------------------


def report_list(*, account: Account, limit: int = 100, offset: int = 0) -> Page[Report]:
    reports = Report.objects.filter(account=account).select_related("account")
    return Page.read(reports.order_by("-created_at", "-id"), limit=limit, offset=offset)


def report_get(*, account_ids: Sequence[int], public_id: str) -> Report:
    """Raises NotFound unless the report belongs to one of `account_ids`."""
    return owned_get(Report, account_ids=account_ids, public_id=public_id, what="report")
