"""Reads of the trading app: risk policy, collateral prices, portfolios, margin.

`portfolio_load` turns accounts' cash and binary positions into the arrays
`trading.margin.margin_evaluate` takes, with collateral prices from the
market-data store; `margin_summary_get` is one account's dashboard figures.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
from django.db.models import OuterRef, Q, Subquery, Sum
from django.utils import timezone

from accounts.models import Account, Journal, LedgerAccount, Posting
from portal.money import ZERO, quantize_money
from portal.refdata import refdata_get
from trading import margin, perp_math
from trading.catalog import instruments_get, listings_get
from trading.marketdata import store
from trading.marketdata.quotes import Outcome, Quote, quantize_price
from trading.models import Fill, Instrument, Listing, Order, Position, PriceTick, RiskPolicy

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


def _resolved_price(instrument: Instrument, outcome: str) -> Decimal | None:
    if instrument.status != Instrument.Status.RESOLVED:
        return None
    if instrument.resolution == Instrument.Resolution.VOID:
        return None
    return Decimal(1) if instrument.resolution == outcome else Decimal(0)


def collateral_price_live(quotes: Iterable[Quote], outcome: str) -> Decimal | None:
    """An outcome's collateral price from its listings' live quotes (None: no quote).

    Per venue the lower of the best bid and the TWAP; across venues the best
    of those (the position could be sold there).
    """
    prices = [quote.for_outcome(Outcome(outcome)).collateral_price for quote in quotes]
    return max(prices) if prices else None


def _last_marks(listings: Iterable[Listing]) -> dict[int, Decimal]:
    """The last stored mark of each listing that has one, by listing id."""
    rows = (
        Listing.objects.filter(pk__in=[listing.pk for listing in listings])
        .annotate(
            last_mark=Subquery(
                PriceTick.objects.filter(listing=OuterRef("pk")).order_by("-ts").values("mark")[:1]
            )
        )
        .values_list("pk", "last_mark")
    )
    return {pk: mark for pk, mark in rows if mark is not None}


def contracts_get(keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Contract]:
    """Contracts by (instrument id, outcome), priced for collateral.

    Collateral price (SPEC §4): per venue the lower of the best bid and the
    TWAP, for the position's outcome; across venues the best of those (the
    position could be sold there); with no live quote, the last stored mark;
    a resolved market is worth its payout (1 or 0). Instruments and listings
    come from the per-process catalog, quotes in one Redis round trip; the
    stored marks are read (one query) only when some contract has no quote.
    """
    keys = set(keys)
    instruments = instruments_get(instrument_id for instrument_id, _ in keys)
    listings = {pk: listings_get(instrument) for pk, instrument in instruments.items()}
    quotes = store.quotes_get_many(
        listing.key for of_instrument in listings.values() for listing in of_instrument
    )
    marks: dict[int, Decimal] | None = None

    contracts = {}
    for instrument_id, outcome in keys:
        instrument = instruments[instrument_id]
        price = _resolved_price(instrument, outcome)
        if price is None:
            live = [
                quotes[listing.key] for listing in listings[instrument_id] if listing.key in quotes
            ]
            price = collateral_price_live(live, outcome)
        if price is None:
            if marks is None:
                marks = _last_marks(
                    listing for of_instrument in listings.values() for listing in of_instrument
                )
            prices = [
                marks[listing.pk] if outcome == Outcome.YES else 1 - marks[listing.pk]
                for listing in listings[instrument_id]
                if listing.pk in marks
            ]
            price = max(prices) if prices else ZERO
        addon = getattr(instrument, "haircut_addon", None)
        contracts[(instrument_id, outcome)] = Contract(
            instrument_id=instrument_id,
            outcome=outcome,
            symbol=instrument.symbol,
            title=instrument.title,
            event_group_id=instrument.event_id,
            expires_at=instrument.expires_at,
            addon=float(addon.addon) if addon is not None else 0.0,
            collateral_price=price,
        )
    return contracts


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

    def grouping(self) -> margin.Grouping:
        group = np.array([c.event_group_id for c in self.contracts], dtype=np.int64)
        return margin.Grouping.build(
            self.position_account,
            group[self.position_contract] if self.contracts else np.zeros(0, np.int64),
            len(self.account_ids),
        )

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


def portfolio_load(*, accounts: Sequence[Account]) -> Portfolio:
    """The margin inputs of `accounts` (their cash as passed in, open binary positions).

    Pass freshly read (and, for checks that must hold, locked) Account rows.
    """
    index = {account.pk: i for i, account in enumerate(accounts)}
    rows = list(
        Position.objects.filter(
            account_id__in=index, instrument__kind=Instrument.Kind.BINARY, quantity__gt=0
        )
        .order_by("account_id", "id")
        .values_list("id", "account_id", "instrument_id", "outcome", "quantity")
    )
    contracts = contracts_get((instrument_id, outcome) for _, _, instrument_id, outcome, _ in rows)
    contract_keys = list(contracts)
    contract_index = {key: i for i, key in enumerate(contract_keys)}
    return Portfolio(
        account_ids=[account.pk for account in accounts],
        cash=np.array([float(account.cash_balance) for account in accounts], dtype=np.float64),
        position_ids=[row[0] for row in rows],
        position_account=np.array([index[row[1]] for row in rows], dtype=np.int64),
        position_contract=np.array(
            [contract_index[(row[2], row[3])] for row in rows], dtype=np.int64
        ),
        quantity=np.array([float(row[4]) for row in rows], dtype=np.float64),
        quantity_exact=[row[4] for row in rows],
        contracts=[contracts[key] for key in contract_keys],
    )


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


def margin_summaries_get(
    accounts: Sequence[Account], *, portfolio: Portfolio | None = None
) -> list[AccountMargin]:
    """Margin figures of `accounts`, with each position's contribution, one evaluation."""
    params = margin_params_get()
    portfolio = portfolio or portfolio_load(accounts=accounts)
    result = portfolio.evaluate(params, per_position=True)
    _, haircuts = portfolio.contract_arrays(params)
    deposits = net_deposits_get(account_ids=portfolio.account_ids)
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
                cash=account.cash_balance,
                deposit=deposits.get(account.pk, ZERO),
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


def _with_contract_symbol(rows: list[dict]) -> list[dict]:
    for row in rows:
        symbol = row.pop("instrument__symbol")
        row["symbol"] = f"{symbol}:NO" if row["outcome"] == "no" else symbol
        row["venue"] = row.pop("venue__code")
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


def order_list(
    *,
    account,
    status: str | None = None,
    symbol: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict]:
    """An account's orders, newest first, as dicts (one query).

    `status` filters one status, or "active" for pending / open / partially
    filled; `symbol` is 'SYMBOL' (YES, or a perp) or 'SYMBOL:NO'. Each row's
    `symbol` is the contract's, `venue` the venue code.
    """
    orders = Order.objects.filter(account=account, **_contract_symbol_filter(symbol))
    if status == "active":
        orders = orders.filter(status__in=Order.ACTIVE_STATUSES)
    elif status:
        orders = orders.filter(status=status)
    rows = list(
        orders.order_by("-created_at", "-id").values(*ORDER_FIELDS)[offset : offset + limit]
    )
    return _with_contract_symbol(rows)


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


def fill_list(
    *, account, symbol: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict]:
    """An account's fills, newest first, as dicts (one query); `symbol` as in `order_list`."""
    fills = Fill.objects.filter(account=account, **_contract_symbol_filter(symbol))
    rows = list(fills.order_by("-created_at", "-id").values(*FILL_FIELDS)[offset : offset + limit])
    return _with_contract_symbol(rows)
