"""Margin simulations (SPEC §4): the one service behind the API, the order
form and the dashboard, and the projection the pre-trade check decides on.

A simulation applies a hypothetical `PortfolioChange` (a cash delta and
position quantity deltas, in contracts held or not yet held) to one
account's `Portfolio` arrays and evaluates the result with
`Portfolio.evaluate`, that is `trading.margin.margin_evaluate`: the same
maths as the dashboard and the sweep, never a copy. Nothing here writes.

Two layers:

- pure projections over an `AccountState` (no ORM, no I/O):
  `change_project`, `trade_route`, `trade_change`, `trade_project`,
  `add_funds_project`, `buying_power_find`;
- thin DB-facing entry points that load the account's state, the contracts
  and the venues' books, then call them: `account_state_load`,
  `change_simulate`, `order_books_get`, `trade_simulate`,
  `position_close_simulate`, `add_funds_simulate`, `buying_power_get`,
  `portfolio_what_if`.

None of them locks anything: a simulation is a read. The pre-trade check
(`trading.services.margin_check`) calls `change_simulate` under the caller's
account lock.

Errors: NotFound (unknown instrument, venue or position), InvalidParams
(bad input; code `insufficient_liquidity` when no venue's book can fill the
size), Conflict with code `market_closed` (409: the market is halted or
resolved; the request is well formed but conflicts with the market's state),
MarketDataUnavailable (503: no live order book to price a trade on).

Seed 003 (`public/get_margin`) mapping, per `MarginFigures`:
`initial_margin` is `initial_requirement` = initial threshold × UM (1.2·UM:
the Adjusted Equity an action that adds risk must leave), `maintenance_margin`
is `maintenance_requirement` = maintenance threshold × UM (1.0·UM: below it a
margin call opens), both before and after; `is_valid_trade` is the pre-trade
check's verdict on the change.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from enum import StrEnum
from typing import Any

import numpy as np
from django.db.models import Sum

from accounts.models import Account
from portal import format as fmt
from portal.errors import InvalidParams, NotFound
from portal.money import (
    MONEY_DECIMAL_PLACES,
    QUANTITY_DECIMAL_PLACES,
    ZERO,
    decimal_parse,
    quantize_money,
)
from trading import margin
from trading.catalog import listings_get
from trading.marketdata.quotes import BookLevel, OrderBook, Outcome
from trading.marketdata.store import MarketDataUnavailable
from trading.models import Instrument, Order, Position
from trading.selectors import (
    Contract,
    Portfolio,
    contracts_get,
    margin_params_get,
    money_decimal,
    portfolio_load,
    ratio_decimal,
)
from trading.services.fees import fees_for_fill
from trading.services.markets import instrument_check_tradable
from trading.services.routing import (
    RoutedFill,
    VenueBook,
    order_books_get,
    route_or_refuse,
    trade_route,
)
from trading.venues.base import BPS_PER_UNIT, QUANTITY_QUANTUM, FillEstimate, Side

CENT = Decimal("0.01")
AMOUNT_MAX = Decimal(10) ** 12  # no notional, quantity or cash change beyond this
WHAT_IF_CHANGES_MAX = 100  # per list of a what-if
ONE = Decimal(1)


# ---------------------------------------------------------------------------
# What a simulation changes, and what it projects


@dataclass(frozen=True, slots=True)
class PositionDelta:
    """A change in one contract's quantity: > 0 buys, < 0 sells (contracts)."""

    contract: Contract
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class PortfolioChange:
    """A hypothetical change to one account's Margin Portfolio.

    `cash` is signed USDC: sale proceeds and deposits add; purchases, fees,
    withdrawals and isolated margin allocated subtract. `may_borrow` is
    False for an action that can never borrow (a withdrawal): cash must stay
    at or above zero after it, whatever the health.
    """

    cash: Decimal = ZERO
    positions: tuple[PositionDelta, ...] = ()
    may_borrow: bool = True

    @property
    def reduces_risk(self) -> bool:
        """Sells, closes, freed margin, deposits: no position grows and cash does not fall."""
        return self.cash >= ZERO and all(delta.quantity <= ZERO for delta in self.positions)


@dataclass(frozen=True, slots=True)
class MarginFigures:
    """One account's Margin Portfolio figures at one instant, as users see them."""

    cash: Decimal
    collateral_value: Decimal  # Σ V
    adjusted_equity: Decimal
    used_margin: Decimal
    available_margin: Decimal  # AE − UM
    health: Decimal | None  # None: unbounded (UM = 0)
    utilization: Decimal | None  # UM / AE; None when AE = 0 < UM
    status: str
    initial_requirement: Decimal  # initial threshold × UM (seed 003: initial_margin)
    maintenance_requirement: Decimal  # maintenance threshold × UM (seed 003: maintenance_margin)


class Breach(StrEnum):
    """Which SPEC §4 rule the pre-trade check would refuse a change under."""

    BORROWING = "borrowing"  # an action that never borrows would take cash below zero
    MARGIN_DISABLED = "margin_disabled"  # a non-margin account would borrow
    INITIAL_MARGIN = "initial_margin"  # projected health below the initial requirement


@dataclass(frozen=True, slots=True)
class Projection:
    """An account's figures before and after a change, and the check's verdict."""

    account_id: int
    margin_enabled: bool
    change: PortfolioChange
    before: MarginFigures
    after: MarginFigures
    initial_threshold: Decimal  # the initial margin requirement on health (1.2)
    breach: Breach | None  # None: the pre-trade check accepts the change
    result: margin.MarginResult = field(repr=False, compare=False)  # the floats behind `after`

    @property
    def is_valid_trade(self) -> bool:
        return self.breach is None


@dataclass(frozen=True)
class AccountState:
    """What projections start from: one account's portfolio, evaluated once."""

    account_id: int
    cash: Decimal
    margin_enabled: bool
    portfolio: Portfolio
    params: margin.MarginParams
    result: margin.MarginResult
    before: MarginFigures


def _threshold(value: float) -> Decimal:
    return Decimal(repr(value))


def _figures(
    result: margin.MarginResult, cash: Decimal, params: margin.MarginParams
) -> MarginFigures:
    used_margin = money_decimal(result.used_margin[0])
    return MarginFigures(
        cash=cash,
        collateral_value=money_decimal(result.collateral_value[0]),
        adjusted_equity=money_decimal(result.adjusted_equity[0]),
        used_margin=used_margin,
        available_margin=money_decimal(result.available_margin[0]),
        health=ratio_decimal(result.health[0]),
        utilization=ratio_decimal(result.utilization[0]),
        status=margin.STATUS_NAMES[result.status[0]],
        initial_requirement=quantize_money(used_margin * _threshold(params.initial)),
        maintenance_requirement=quantize_money(used_margin * _threshold(params.maintenance)),
    )


def account_state(
    *, portfolio: Portfolio, cash: Decimal, margin_enabled: bool, params: margin.MarginParams
) -> AccountState:
    """Evaluate a one-account `portfolio` whose exact cash is `cash`.

    Raises ValueError for a portfolio of more or fewer than one account.
    """
    if len(portfolio.account_ids) != 1:
        raise ValueError("A simulation starts from exactly one account's portfolio.")
    portfolio = replace(portfolio, cash=np.array([float(cash)], dtype=np.float64))
    result = portfolio.evaluate(params)
    return AccountState(
        account_id=portfolio.account_ids[0],
        cash=cash,
        margin_enabled=margin_enabled,
        portfolio=portfolio,
        params=params,
        result=result,
        before=_figures(result, cash, params),
    )


# ---------------------------------------------------------------------------
# Pure projections


def _portfolio_changed(portfolio: Portfolio, change: PortfolioChange, cash: Decimal) -> Portfolio:
    """A copy of one account's `portfolio` with `change` applied and cash `cash`.

    A contract not held yet joins as a new position (id None). Raises
    InvalidParams when a position would go below zero (binary positions are
    long-only).
    """
    contracts = list(portfolio.contracts)
    contract_index = {(c.instrument_id, c.outcome): i for i, c in enumerate(contracts)}
    position_of = {int(c): i for i, c in enumerate(portfolio.position_contract)}
    position_ids = list(portfolio.position_ids)
    position_contract = [int(c) for c in portfolio.position_contract]
    quantity = list(portfolio.quantity_exact)
    held: dict[int, tuple[Contract, Decimal]] = {}  # touched positions: quantity before
    for delta in change.positions:
        key = (delta.contract.instrument_id, delta.contract.outcome)
        if key not in contract_index:
            contract_index[key] = len(contracts)
            contracts.append(delta.contract)
        i = contract_index[key]
        if i not in position_of:
            position_of[i] = len(quantity)
            position_ids.append(None)
            position_contract.append(i)
            quantity.append(ZERO)
        k = position_of[i]
        held.setdefault(k, (delta.contract, quantity[k]))
        quantity[k] += delta.quantity
    for k, (contract, before) in held.items():
        if quantity[k] < ZERO:
            raise InvalidParams(
                f"Cannot sell {fmt.quantity(before - quantity[k], 6)} {contract.symbol} "
                f"{contract.outcome.upper()}: the position holds {fmt.quantity(before, 6)}."
            )
    return replace(
        portfolio,
        cash=np.array([float(cash)], dtype=np.float64),
        position_ids=position_ids,
        position_account=np.zeros(len(quantity), dtype=np.int64),
        position_contract=np.array(position_contract, dtype=np.int64),
        quantity=np.array([float(q) for q in quantity], dtype=np.float64),
        quantity_exact=quantity,
        contracts=contracts,
    )


def _breach(
    *,
    change: PortfolioChange,
    cash_after: Decimal,
    result: margin.MarginResult,
    margin_enabled: bool,
    params: margin.MarginParams,
) -> Breach | None:
    """SPEC §4's rules, in order: an action that never borrows cannot take
    cash below zero; a change that only reduces risk always passes; a
    non-margin account cannot take cash below zero; otherwise projected
    health must be ≥ the initial threshold whenever projected UM > 0."""
    if cash_after < ZERO and not change.may_borrow:
        return Breach.BORROWING
    if change.reduces_risk:
        return None
    if cash_after < ZERO and not margin_enabled:
        return Breach.MARGIN_DISABLED
    if result.used_margin[0] > 0 and result.health[0] < params.initial:
        return Breach.INITIAL_MARGIN
    return None


def change_project(*, state: AccountState, change: PortfolioChange) -> Projection:
    """Project `change` on `state`: the figures after it and the check's verdict.

    Raises InvalidParams when the change sells more of a contract than held.
    """
    cash_after = state.cash + change.cash
    result = _portfolio_changed(state.portfolio, change, cash_after).evaluate(state.params)
    return Projection(
        account_id=state.account_id,
        margin_enabled=state.margin_enabled,
        change=change,
        before=state.before,
        after=_figures(result, cash_after, state.params),
        initial_threshold=_threshold(state.params.initial),
        breach=_breach(
            change=change,
            cash_after=cash_after,
            result=result,
            margin_enabled=state.margin_enabled,
            params=state.params,
        ),
        result=result,
    )


def _label(contract: Contract) -> str:
    """A contract as messages name it: "TRUMP-WIN YES"."""
    return f"{contract.symbol} {contract.outcome.upper()}"


def fill_cash(*, side: Side, notional: Decimal) -> Decimal:
    """The USDC a fill pays (buy) or receives (sell), as `binary_fill_apply` books
    it: rounded to the micro-dollar, never in the customer's favour."""
    return quantize_money(notional, rounding=ROUND_UP if side == Side.BUY else ROUND_DOWN)


def trade_change(
    *, contract: Contract, side: Side, quantity: Decimal, notional: Decimal, fee: Decimal = ZERO
) -> PortfolioChange:
    """The change a fill of `quantity` contracts for `notional` USDC makes.

    `fee` is the venue fee plus the broker's commission (SPEC §6), zero until
    the fee schedule exists; it always comes off cash, rounded up.
    """
    fee = quantize_money(fee, rounding=ROUND_UP)
    cash = fill_cash(side=side, notional=notional)
    if side == Side.BUY:
        return PortfolioChange(cash=-cash - fee, positions=(PositionDelta(contract, quantity),))
    return PortfolioChange(cash=cash - fee, positions=(PositionDelta(contract, -quantity),))


FeeOf = Callable[[Decimal, Decimal], Decimal]  # (quantity, price) → the fill's total fee


@dataclass(frozen=True, slots=True)
class WorstCase:
    """A market order for a notional at its worst: the whole notional filled at the
    slippage limit (`trading.services.execute` checks and reserves this)."""

    price: Decimal  # the best price moved by slippage_bps against the order
    quantity: Decimal  # at that price: the fewest contracts a buy gets, the most a sale gives
    fee: Decimal  # the larger fee of the estimated fill and of the worst one


def slippage_limit(*, side: Side | str, best: Decimal, slippage_bps: int) -> Decimal:
    """The worst average price an order may fill at: `best` moved by slippage_bps."""
    allowed = best * slippage_bps / BPS_PER_UNIT
    return best + allowed if Side(side) == Side.BUY else best - allowed


def trade_route_within(
    *,
    books: Sequence[VenueBook],
    side: Side | str,
    slippage_bps: int,
    notional: Decimal | None = None,
    quantity: Decimal | None = None,
) -> RoutedFill | None:
    """`trade_route` for the whole size, None also when its fill would average
    further than `slippage_bps` from the best price (execute's slippage refusal)."""
    route = trade_route(books=books, side=side, notional=notional, quantity=quantity)
    if route is None:
        return None
    slippage = route.estimate.slippage_bps
    return None if slippage is not None and slippage > slippage_bps else route


def deepest(books: Sequence[VenueBook], *, side: Side | str) -> Decimal:
    """The most contracts one venue's book holds on the side an order of `side` takes."""
    levels = (vb.book.asks if Side(side) == Side.BUY else vb.book.bids for vb in books)
    return max(
        (sum((level.size for level in side_levels), ZERO) for side_levels in levels), default=ZERO
    )


def best_book(books: Sequence[VenueBook], *, side: Side | str) -> list[VenueBook]:
    """One book at the best price an order of `side` takes, as deep as any size
    (AMOUNT_MAX contracts): what the account alone allows, whatever the books
    hold. [] when no book has that side."""
    buy = Side(side) == Side.BUY
    prices = [
        (vb.book.asks if buy else vb.book.bids)[0].price
        for vb in books
        if (vb.book.asks if buy else vb.book.bids)
    ]
    if not prices:
        return []
    level = (BookLevel(min(prices) if buy else max(prices), AMOUNT_MAX),)
    book = OrderBook(bids=(), asks=level) if buy else OrderBook(bids=level, asks=())
    return [VenueBook("best ask" if buy else "best bid", book)]


def worst_case(
    *, side: Side | str, notional: Decimal, estimate: FillEstimate, slippage_bps: int, fee_of: FeeOf
) -> WorstCase:
    """The worst fill a market order for `notional` may get within `slippage_bps` of
    the best price of `estimate` (its walk of the book)."""
    side = Side(side)
    price = slippage_limit(side=side, best=estimate.best_price, slippage_bps=slippage_bps)
    rounding = ROUND_DOWN if side == Side.BUY else ROUND_UP
    quantity = (notional / price).quantize(QUANTITY_QUANTUM, rounding=rounding)
    fee = max(fee_of(estimate.quantity, estimate.average_price), fee_of(quantity, price))
    return WorstCase(price=price, quantity=quantity, fee=fee)


def buy_change(*, contract: Contract, notional: Decimal, worst: WorstCase) -> PortfolioChange:
    """The change a buy for `notional` makes at its worst: all the cash and the fee
    paid for the fewest contracts."""
    return trade_change(
        contract=contract, side=Side.BUY, quantity=worst.quantity, notional=notional, fee=worst.fee
    )


@dataclass(frozen=True, slots=True)
class TradeSimulation:
    """A market order as it would fill, and the account's figures after it."""

    symbol: str
    outcome: str
    side: Side
    venue: str
    quantity: Decimal  # contracts
    average_price: Decimal
    notional: Decimal  # USDC paid (buy) or received (sell) before fees
    fee: Decimal
    projection: Projection


def _trade_simulation(
    state: AccountState, contract: Contract, route: RoutedFill, fee: Decimal
) -> TradeSimulation:
    estimate = route.estimate
    change = trade_change(
        contract=contract,
        side=estimate.side,
        quantity=estimate.quantity,
        notional=estimate.notional,
        fee=fee,
    )
    return TradeSimulation(
        symbol=contract.symbol,
        outcome=contract.outcome,
        side=estimate.side,
        venue=route.venue,
        quantity=estimate.quantity,
        average_price=estimate.average_price,
        notional=fill_cash(side=estimate.side, notional=estimate.notional),
        fee=quantize_money(fee, rounding=ROUND_UP),
        projection=change_project(state=state, change=change),
    )


def trade_project(
    *,
    state: AccountState,
    contract: Contract,
    books: Sequence[VenueBook],
    side: Side,
    notional: Decimal | None = None,
    quantity: Decimal | None = None,
    fee: Decimal = ZERO,
) -> TradeSimulation:
    """Buy or sell a notional (or a quantity) of `contract` at the best venue.

    A buy takes the asks, a sell hits the bids (`trade_route`); the position
    is then valued at the contract's collateral price like any other.
    Raises InvalidParams `insufficient_liquidity` when no book can fill the
    size, InvalidParams when a sell exceeds the position.
    """
    route = route_or_refuse(
        label=_label(contract), books=books, side=side, notional=notional, quantity=quantity
    )
    return _trade_simulation(state, contract, route, fee)


@dataclass(frozen=True, slots=True)
class AddFundsSimulation:
    """The deposit that brings Margin Health to `target`, and the figures after it."""

    target: Decimal
    amount: Decimal  # rounded up to the micro-dollar: health after ≥ target
    projection: Projection


def add_funds_project(*, state: AccountState, target: Decimal) -> AddFundsSimulation:
    """The exact deposit d* = max(0, UM − AE/t) (`margin.add_funds_needed`) for
    target health t, rounded up to the micro-dollar, and its projection."""
    needed = margin.add_funds_needed(
        state.result.adjusted_equity, state.result.used_margin, float(target)
    )[0]
    amount = quantize_money(Decimal(repr(float(needed))), rounding=ROUND_UP)
    return AddFundsSimulation(
        target=target,
        amount=amount,
        projection=change_project(state=state, change=PortfolioChange(cash=amount)),
    )


@dataclass(frozen=True, slots=True)
class BuyingPower:
    """The largest buy of one contract the pre-trade check accepts."""

    symbol: str
    outcome: str
    notional: Decimal  # USDC, to the cent, rounded down: keeps health ≥ the requirement
    fillable: Decimal  # the same, limited to what the books can fill now
    before: MarginFigures


def binary_buy_change(*, contract: Contract, quantity: Decimal, price: Decimal) -> PortfolioChange:
    """A binary buy of `quantity` contracts at `price` as `order_place`'s pre-trade check
    projects it: the cash paid (no fee) and the contracts added."""
    return trade_change(
        contract=contract, side=Side.BUY, quantity=quantity, notional=quantity * price
    )


def binary_buy_quantity_max(*, account: Account, contract: Contract, price: Decimal) -> Decimal:
    """The most contracts of `contract` (a margin contract: `contracts_get`) a buy at
    `price` (a limit order's price, or the worst price of a market order in contracts)
    can be and pass `order_place`'s pre-trade check on `account` now: the check's own
    change (`binary_buy_change`), projected health ≥ the initial threshold while
    borrowing, cash ≥ 0 without margin. Bisection over quantity steps; the account's
    state is read once. A read: no lock."""
    state = account_state_load(account=account)

    def passes(steps: int) -> bool:
        quantity = Decimal(steps) * QUANTITY_QUANTUM
        change = binary_buy_change(contract=contract, quantity=quantity, price=price)
        return change_project(state=state, change=change).breach is None

    return Decimal(largest_passing(passes, step=QUANTITY_QUANTUM)) * QUANTITY_QUANTUM


def largest_passing(
    passes: Callable[[int], bool], *, high: int | None = None, step: Decimal = CENT
) -> int:
    """The largest whole number of `step`s (cents by default; QUANTITY_QUANTUM for
    contracts) that `passes` (0 passes by definition), for a `passes` that holds up
    to some size and fails beyond it.

    With `high` (a number of steps that does not pass), bisection; without
    it, doubling first until a refusal (or AMOUNT_MAX) bounds the search.
    """
    if high is None:
        high = 100
        while passes(high) and high * step < AMOUNT_MAX:
            high *= 2
        if passes(high):
            return high
    low = 0
    while high - low > 1:
        middle = (low + high) // 2
        if passes(middle):
            low = middle
        else:
            high = middle
    return low


def buying_power_find(
    *,
    state: AccountState,
    contract: Contract,
    books: Sequence[VenueBook],
    slippage_bps: int = 50,
    fee_of: FeeOf | None = None,
) -> BuyingPower:
    """The largest notional (whole cents) of `contract` whose buy passes the
    pre-trade check as execute runs it: at its worst case (`worst_case`: the
    slippage limit, fees included), projected health ≥ the initial
    threshold while borrowing (a margin account), cash ≥ 0 after it (a
    non-margin account).

    `notional` prices every contract at the best ask with no limit on size
    (what the account's margin allows); `fillable` also needs a book that
    fills it now within `slippage_bps` of its best price (execute refuses
    more slippage). Bisection over cents: the cash-funded part passes by itself
    (UM = 0 after it: health unbounded); beyond it each dollar borrowed adds
    1 to UM and less than 1 to AE, so health falls as the notional grows and
    the answer is where it crosses the threshold.
    """
    fee_of = fee_of or (lambda quantity, price: ZERO)
    asks = [b for b in books if b.book.asks]

    def passes(candidates: Sequence[VenueBook], cents: int) -> bool:
        notional = Decimal(cents) * CENT
        route = trade_route_within(
            books=candidates, side=Side.BUY, notional=notional, slippage_bps=slippage_bps
        )
        if route is None:
            return False
        worst = worst_case(
            side=Side.BUY,
            notional=notional,
            estimate=route.estimate,
            slippage_bps=slippage_bps,
            fee_of=fee_of,
        )
        change = buy_change(contract=contract, notional=notional, worst=worst)
        return change_project(state=state, change=change).breach is None

    deep = best_book(asks, side=Side.BUY)
    depth = max(
        (sum((level.price * level.size for level in b.book.asks), ZERO) for b in asks),
        default=ZERO,
    )
    fillable = largest_passing(lambda cents: passes(asks, cents), high=int(depth / CENT) + 2)
    unbounded = largest_passing(lambda cents: passes(deep, cents)) if deep else 0
    return BuyingPower(
        symbol=contract.symbol,
        outcome=contract.outcome,
        notional=Decimal(unbounded) * CENT,
        fillable=Decimal(min(fillable, unbounded)) * CENT,
        before=state.before,
    )


@dataclass(frozen=True, slots=True)
class SellingPower:
    """The largest sale of one binary contract the order path accepts.

    A sale only sells contracts held (there is no short side: selling YES
    never buys NO) and only reduces risk, so Margin Health never limits it:
    the limit is what the position holds free.
    """

    symbol: str
    outcome: str
    quantity: Decimal  # contracts: held, less what the account's sells at a venue hold
    notional: Decimal  # USDC, cents, rounded down: that quantity's market sale at the best bid
    fillable_quantity: Decimal  # contracts the books absorb now within the slippage limit
    fillable: Decimal  # USDC, cents: the largest market sale by notional execute accepts now
    before: MarginFigures


def selling_power_find(
    *,
    state: AccountState,
    contract: Contract,
    books: Sequence[VenueBook],
    free: Decimal,
    slippage_bps: int = 50,
    fee_of: FeeOf | None = None,
) -> SellingPower:
    """The largest sale of `contract` out of `free` contracts (held less what sells
    at a venue hold: execute's `sale_check`), two ways.

    By notional (execute): the largest whole cents whose sale routes on the
    books within `slippage_bps`, sells at most `free` contracts and passes the
    pre-trade check (`trade_change` with the fee at the slippage limit, as
    `execute_check` projects it: a sale reduces risk, so it passes unless the
    fee exceeds the proceeds); `notional` is the same with one book at the
    best bid as deep as any size. In contracts (`order_place`, whose only
    check for a sale is the position): `quantity` is `free`, and
    `fillable_quantity` the most of it the books fill now within the
    slippage limit. Bisection, as `buying_power_find`.
    """
    fee_of = fee_of or (lambda quantity, price: ZERO)
    bids = [b for b in books if b.book.bids]
    free = max(ZERO, free)

    def passes(candidates: Sequence[VenueBook], cents: int) -> bool:
        notional = Decimal(cents) * CENT
        route = trade_route_within(
            books=candidates, side=Side.SELL, notional=notional, slippage_bps=slippage_bps
        )
        if route is None or route.estimate.quantity > free:
            return False
        worst = worst_case(
            side=Side.SELL,
            notional=notional,
            estimate=route.estimate,
            slippage_bps=slippage_bps,
            fee_of=fee_of,
        )
        change = trade_change(
            contract=contract,
            side=Side.SELL,
            quantity=route.estimate.quantity,
            notional=route.estimate.notional,
            fee=worst.fee,
        )
        return change_project(state=state, change=change).breach is None

    def fills(steps: int) -> bool:
        quantity = Decimal(steps) * QUANTITY_QUANTUM
        return quantity <= free and (
            trade_route_within(
                books=bids, side=Side.SELL, quantity=quantity, slippage_bps=slippage_bps
            )
            is not None
        )

    deep = best_book(bids, side=Side.SELL)
    best = deep[0].book.bids[0].price if deep else ZERO
    cents_high = int(free * best / CENT) + 2
    unbounded = largest_passing(lambda cents: passes(deep, cents), high=cents_high) if deep else 0
    fillable = largest_passing(lambda cents: passes(bids, cents), high=cents_high) if bids else 0
    steps_high = int(min(free, deepest(bids, side=Side.SELL)) / QUANTITY_QUANTUM) + 1
    return SellingPower(
        symbol=contract.symbol,
        outcome=contract.outcome,
        quantity=free,
        notional=Decimal(unbounded) * CENT,
        fillable_quantity=Decimal(largest_passing(fills, high=steps_high, step=QUANTITY_QUANTUM))
        * QUANTITY_QUANTUM,
        fillable=Decimal(min(fillable, unbounded)) * CENT,
        before=state.before,
    )


# ---------------------------------------------------------------------------
# DB-facing entry points


def account_state_load(*, account: Account) -> AccountState:
    """`account`'s cash (as passed in), open binary positions and risk policy, evaluated.

    Pass a freshly read row; the pre-trade check passes the locked one.
    """
    return account_state(
        portfolio=portfolio_load(accounts=[account]),
        cash=account.risk_cash,
        margin_enabled=account.margin_enabled,
        params=margin_params_get(),
    )


def change_simulate(*, account: Account, change: PortfolioChange) -> Projection:
    """Project an arbitrary change on `account` (see `change_project`)."""
    return change_project(state=account_state_load(account=account), change=change)


def _open_binary_check(instrument: Instrument) -> None:
    if not instrument.is_binary:
        raise InvalidParams(
            f"{instrument.symbol} is a perpetual: its isolated margin is not part of the "
            "Margin Portfolio, so it is not simulated here."
        )
    instrument_check_tradable(instrument)


def _open_binaries_get(symbols: Sequence[str]) -> dict[str, Instrument]:
    """Open binary instruments by symbol; NotFound, InvalidParams or Conflict
    `market_closed` for the first symbol that is not one."""
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=set(symbols))}
    for symbol in symbols:
        if symbol not in instruments:
            raise NotFound(f"Unknown instrument {symbol!r}.")
        _open_binary_check(instruments[symbol])
    return instruments


def outcome_clean(value: object) -> Outcome:
    try:
        return Outcome(str(value).strip().lower())
    except ValueError as exc:
        raise InvalidParams(f"The outcome must be 'yes' or 'no', not {value!r}.") from exc


def side_clean(value: object) -> Side:
    try:
        return Side(str(value).strip().lower())
    except ValueError as exc:
        raise InvalidParams(f"The side must be 'buy' or 'sell', not {value!r}.") from exc


def decimal_clean(
    value: object, *, name: str, places: int = MONEY_DECIMAL_PLACES, positive: bool = False
) -> Decimal:
    """`value` as an exact Decimal with at most `places` decimals, |value| ≤ AMOUNT_MAX.

    Raises InvalidParams for a float (binary floats are not money), a string
    not in the plain decimal form (`portal.money.decimal_parse`: ASCII digits,
    optional sign and point), anything else that is not a finite number, too
    many decimals (never rounded silently), or, with `positive`, a value ≤ 0.
    """
    number = decimal_parse(value, name=name)
    if abs(number) > AMOUNT_MAX:
        raise InvalidParams(f"{name} must be at most {AMOUNT_MAX} in size.")
    if number.quantize(Decimal(1).scaleb(-places)) != number:
        raise InvalidParams(f"{name} must be a number with at most {places} decimal places.")
    if positive and number <= ZERO:
        raise InvalidParams(f"{name} must be greater than zero.")
    return number


def _contracts_for(
    state: AccountState, keys: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], Contract]:
    """Contracts priced for collateral: the state's own for those it holds, so a
    projection values a held contract as its `before` did."""
    held = {(c.instrument_id, c.outcome): c for c in state.portfolio.contracts}
    missing = [key for key in keys if key not in held]
    return held | (contracts_get(missing) if missing else {})


def trade_simulate(
    *,
    account: Account,
    symbol: str,
    outcome: str,
    side: str,
    notional: Decimal | str,
    venue: str | None = None,
) -> TradeSimulation:
    """Projected figures after buying (at the ask) or selling (at the bid) a
    notional of one outcome of a binary market, at `venue` or the best venue.

    A read: no lock, nothing written. Raises NotFound (symbol, venue),
    InvalidParams (outcome, side, notional; a sell beyond the position;
    `insufficient_liquidity`), Conflict `market_closed`,
    MarketDataUnavailable.
    """
    outcome, side = outcome_clean(outcome), side_clean(side)
    notional = decimal_clean(notional, name="notional", positive=True)
    instrument = _open_binaries_get([symbol])[symbol]
    state = account_state_load(account=account)
    key = (instrument.pk, outcome.value)
    return trade_project(
        state=state,
        contract=_contracts_for(state, [key])[key],
        books=order_books_get(instrument=instrument, outcome=outcome, venue=venue),
        side=side,
        notional=notional,
    )


@dataclass(frozen=True, slots=True)
class CloseSimulation:
    """Closing all or part of one binary position, two ways.

    `projection` is the account after selling `quantity` valued as the margin
    engine values it (at the contract's collateral price, the figure that
    counts for Margin Health now); it exists whatever the books hold.
    `fillable` is what the books can absorb now (the best venue's walk of
    its bids, possibly less than `quantity`; None: no bids at all).
    """

    position: Position
    quantity: Decimal  # contracts to sell
    projection: Projection
    venue: str | None
    fillable: FillEstimate | None

    @property
    def proceeds(self) -> Decimal:
        """What the book would pay now for what it can absorb (rounded down)."""
        if self.fillable is None:
            return ZERO
        return fill_cash(side=Side.SELL, notional=self.fillable.notional)


def position_close_simulate(
    *, account: Account, position_id: int, quantity: Decimal | str | None = None
) -> CloseSimulation:
    """What closing `quantity` (default: all) of one binary position does.

    Never fails on a thin or empty book: the health after the close is the
    margin engine's valuation, and what the books can absorb now is reported
    beside it (`CloseSimulation`). A read: no lock, nothing written. Raises
    NotFound (no such open position in `account`), InvalidParams (a
    perpetual; a quantity that is not positive or above the position),
    Conflict `market_closed`.
    """
    position = (
        Position.objects.select_related("instrument")
        .filter(pk=position_id, account=account, quantity__gt=0)
        .first()
    )
    if position is None:
        raise NotFound(f"No open position {position_id} in account {account.public_id}.")
    _open_binary_check(position.instrument)
    if quantity is None:
        quantity = position.quantity
    else:
        quantity = decimal_clean(
            quantity, name="quantity", places=QUANTITY_DECIMAL_PLACES, positive=True
        )
        if quantity > position.quantity:
            raise InvalidParams(
                f"The quantity {fmt.quantity(quantity, 6)} is more than the position's "
                f"{fmt.quantity(position.quantity, 6)}."
            )
    outcome = Outcome(position.outcome)
    state = account_state_load(account=account)
    key = (position.instrument_id, outcome.value)
    contract = _contracts_for(state, [key])[key]
    proceeds = fill_cash(side=Side.SELL, notional=quantity * contract.collateral_price)
    change = PortfolioChange(cash=proceeds, positions=(PositionDelta(contract, -quantity),))
    try:
        books = order_books_get(instrument=position.instrument, outcome=outcome)
    except MarketDataUnavailable:
        books = []
    route = trade_route(books=books, side=Side.SELL, quantity=quantity, partial=True)
    return CloseSimulation(
        position=position,
        quantity=quantity,
        projection=change_project(state=state, change=change),
        venue=None if route is None else route.venue,
        fillable=None if route is None else route.estimate,
    )


def add_funds_simulate(
    *, account: Account, target: Decimal | str | None = None
) -> AddFundsSimulation:
    """The deposit that restores Margin Health `target` (default: the policy's
    healthy threshold, 1.5; the initial requirement 1.2 is the other usual
    one), rounded up to the micro-dollar, and the figures after it.

    A read: no lock. Raises InvalidParams for a target that is not a
    positive number.
    """
    state = account_state_load(account=account)
    if target is None:
        target = _threshold(state.params.healthy)
    else:
        target = decimal_clean(target, name="target", places=6, positive=True)
    return add_funds_project(state=state, target=target)


def _binary_read(
    *, account: Account, symbol: str, outcome: str, venue: str | None
) -> tuple[Instrument, AccountState, Contract, list[VenueBook]]:
    """What sizing a trade in one outcome of an open binary market reads: the
    instrument, the account's state, the contract priced as that state values it,
    and the books (at `venue`, or every venue's)."""
    clean = outcome_clean(outcome)
    instrument = _open_binaries_get([symbol])[symbol]
    state = account_state_load(account=account)
    key = (instrument.pk, clean.value)
    books = order_books_get(instrument=instrument, outcome=clean, venue=venue)
    return instrument, state, _contracts_for(state, [key])[key], books


def buying_power_get(
    *,
    account: Account,
    symbol: str,
    outcome: str,
    venue: str | None = None,
    slippage_bps: int = 50,
) -> BuyingPower:
    """The largest notional of one outcome of a binary market that `account`
    can buy and still pass execute's pre-trade check, fees included (see
    `buying_power_find`), and how much of it the books can fill now.

    A read: no lock. Raises NotFound, InvalidParams, Conflict
    `market_closed`, MarketDataUnavailable as `trade_simulate` does.
    """
    instrument, state, contract, books = _binary_read(
        account=account, symbol=symbol, outcome=outcome, venue=venue
    )
    return buying_power_find(
        state=state,
        contract=contract,
        books=books,
        slippage_bps=slippage_bps,
        fee_of=fee_of_instrument(instrument, side=Side.BUY),
    )


def sells_at_venue(account: Account, **contract: object) -> dict[tuple[int, str], Decimal]:
    """The contracts the account's binary sells at a venue hold (`Order.reserved_quantity`
    of its SUBMITTED / PENDING sells), by (instrument id, outcome): not for another sale,
    whatever sells (an order, a take-profit or stop-loss child, a liquidation), until the
    venue answers. `contract`: optional `instrument` / `outcome` filters."""
    rows = (
        Order.objects.filter(
            account=account, side=Order.Side.SELL, status__in=Order.AT_VENUE_STATUSES, **contract
        )
        .values_list("instrument_id", "outcome")
        .annotate(total=Sum("reserved_quantity"))
    )
    return {(instrument_id, outcome): total for instrument_id, outcome, total in rows if total}


def held_at_venue(account: Account, *, instrument_id: int, outcome: str) -> Decimal:
    """`sells_at_venue` of one contract: the contracts of it the account's sells at a
    venue hold."""
    held = sells_at_venue(account, instrument_id=instrument_id, outcome=outcome)
    return held.get((instrument_id, outcome), ZERO)


def position_held(
    *, account: Account, instrument: Instrument, outcome: str
) -> tuple[Decimal, Decimal]:
    """One binary position's contracts, and how many of them the account's sells at
    a venue hold (`sells_at_venue`): what may be sold now is the difference
    (`trading.services.execute.sale_check` enforces it under the account lock)."""
    held = (
        Position.objects.filter(account=account, instrument=instrument, outcome=outcome)
        .values_list("quantity", flat=True)
        .first()
        or ZERO
    )
    return held, held_at_venue(account, instrument_id=instrument.pk, outcome=outcome)


def selling_power_get(
    *,
    account: Account,
    symbol: str,
    outcome: str,
    venue: str | None = None,
    slippage_bps: int = 50,
) -> SellingPower:
    """The largest sale of one outcome of a binary market that `account` can make
    and still pass the order path's checks (see `selling_power_find`), and how
    much of it the books absorb now within `slippage_bps`.

    A read: no lock. Raises NotFound, InvalidParams, Conflict
    `market_closed`, MarketDataUnavailable as `trade_simulate` does.
    """
    instrument, state, contract, books = _binary_read(
        account=account, symbol=symbol, outcome=outcome, venue=venue
    )
    held, reserved = position_held(account=account, instrument=instrument, outcome=contract.outcome)
    return selling_power_find(
        state=state,
        contract=contract,
        books=books,
        free=max(ZERO, held - reserved),
        slippage_bps=slippage_bps,
        fee_of=fee_of_instrument(instrument, side=Side.SELL),
    )


def fee_of_instrument(instrument: Instrument, *, side: Side) -> FeeOf:
    """A taker fill's total fee (venue schedule + broker commission) on the costliest
    of the instrument's venues: a route may pick any of them."""
    venues = [listing.venue for listing in listings_get(instrument)]

    def fee_of(quantity: Decimal, price: Decimal) -> Decimal:
        return max(
            (
                fees_for_fill(
                    venue=venue,
                    quantity=quantity,
                    price=price,
                    notional=fill_cash(side=side, notional=quantity * price),
                    liquidity="taker",
                ).total
                for venue in venues
            ),
            default=ZERO,
        )

    return fee_of


@dataclass(frozen=True, slots=True)
class WhatIfPosition:
    """One simulated position change of a what-if, as priced."""

    instrument_name: str
    symbol: str
    outcome: str
    amount: Decimal  # contracts, signed
    entry_price: Decimal
    fee: Decimal  # the venue fee and broker commission the fill pays, as execute counts them
    cash: Decimal  # −paid for a buy, +received for a sell, fee included


@dataclass(frozen=True, slots=True)
class WhatIf:
    """Seed 003's answer: pre/post figures, requirements and is_valid_trade."""

    projection: Projection
    positions: tuple[WhatIfPosition, ...]


def _changes_list(value: object, name: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise InvalidParams(f"{name} must be a list.")
    if len(value) > WHAT_IF_CHANGES_MAX:
        raise InvalidParams(f"{name} can hold at most {WHAT_IF_CHANGES_MAX} changes.")
    if not all(isinstance(item, Mapping) for item in value):
        raise InvalidParams(f"Each of {name} must be an object.")
    return list(value)


def _instrument_name_parse(name: object) -> tuple[str, Outcome]:
    """'TRUMP-WIN' is the YES contract; 'TRUMP-WIN:NO' (or ':YES') names the outcome."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidParams("instrument_name must be an instrument's symbol, e.g. 'TRUMP-WIN:NO'.")
    symbol, colon, outcome = name.strip().rpartition(":")
    if not colon:
        return name.strip(), Outcome.YES
    return symbol, outcome_clean(outcome)


def portfolio_what_if(
    *,
    account: Account,
    collateral_changes: Sequence[Mapping[str, Any]] | None = None,
    position_changes: Sequence[Mapping[str, Any]] | None = None,
) -> WhatIf:
    """Seed 003's simulation: `account` with simulated collateral and position
    changes → pre/post AE, UM, health, requirements, is_valid_trade.

    `collateral_changes`: [{amount, asset_name: "USDC"}], signed USDC
    (deposits +, withdrawals −). A net withdrawal can never borrow: such a
    what-if is valid only if cash stays ≥ 0.
    `position_changes`: [{instrument_name, amount, entry_price?}];
    `instrument_name` is our symbol, optionally with the outcome
    ("TRUMP-WIN" = YES, "TRUMP-WIN:NO"); `amount` signed contracts (buy +,
    sell −); a buy pays amount × entry_price from cash, a sell receives it;
    entry_price defaults to the executable price at the best venue for that
    quantity (the ask for a buy, the bid for a sell).

    A read: no lock, nothing written. Raises InvalidParams (shape, asset,
    amounts, prices, a sell beyond the position, a perpetual,
    `insufficient_liquidity`), NotFound (instrument), Conflict
    `market_closed`, MarketDataUnavailable (no live price for a default).
    """
    collateral = ZERO
    for item in _changes_list(collateral_changes, "simulated_collateral_changes"):
        asset = str(item.get("asset_name", "")).strip().upper()
        if asset != "USDC":
            raise InvalidParams(
                f"Only USDC collateral can be simulated, not {item.get('asset_name')!r}."
            )
        collateral += decimal_clean(item.get("amount"), name="collateral amount")

    requested = []
    for item in _changes_list(position_changes, "simulated_position_changes"):
        name = item.get("instrument_name")
        symbol, outcome = _instrument_name_parse(name)
        amount = decimal_clean(
            item.get("amount"), name="position amount", places=QUANTITY_DECIMAL_PLACES
        )
        if amount == ZERO:
            raise InvalidParams(f"The simulated amount of {name} must not be zero.")
        price = item.get("entry_price")
        if price is not None:
            price = decimal_clean(price, name="entry_price", places=8, positive=True)
            if price > ONE:
                raise InvalidParams("A binary contract's entry_price lies in (0, 1].")
        requested.append((str(name).strip(), symbol, outcome, amount, price))

    instruments = _open_binaries_get([symbol for _, symbol, _, _, _ in requested])
    state = account_state_load(account=account)
    keys = [(instruments[symbol].pk, outcome.value) for _, symbol, outcome, _, _ in requested]
    contracts = _contracts_for(state, keys)
    books: dict[tuple[int, str], list[VenueBook]] = {}
    priced, deltas, cash = [], [], collateral
    for (name, symbol, outcome, amount, price), key in zip(requested, keys, strict=True):
        side = Side.BUY if amount > ZERO else Side.SELL
        quantity = abs(amount)
        if price is None:
            if key not in books:
                books[key] = order_books_get(instrument=instruments[symbol], outcome=outcome)
            estimate = route_or_refuse(
                label=_label(contracts[key]), books=books[key], side=side, quantity=quantity
            ).estimate
            price = estimate.average_price
            notional = fill_cash(side=side, notional=estimate.notional)
        else:
            notional = fill_cash(side=side, notional=quantity * price)
        fee = quantize_money(
            fee_of_instrument(instruments[symbol], side=side)(quantity, price), rounding=ROUND_UP
        )
        moved = (-notional if side == Side.BUY else notional) - fee
        cash += moved
        deltas.append(PositionDelta(contracts[key], amount))
        priced.append(WhatIfPosition(name, symbol, outcome.value, amount, price, fee, moved))
    change = PortfolioChange(cash=cash, positions=tuple(deltas), may_borrow=collateral >= ZERO)
    return WhatIf(projection=change_project(state=state, change=change), positions=tuple(priced))
