"""Perpetuals with per-market isolated leverage (SPEC §5).

- `perp_fill_apply`: the one path by which a fill changes a perp position and
  the ledger (signed quantity, entry, isolated margin, realized P&L, fees),
  one balanced journal per fill, in the caller's transaction under the
  caller's account lock. `perp_margin_needed` tells the caller beforehand
  how much cash the fill would lock up, for `margin_check_cash_debit`.
- `leverage_get` / `leverage_levels` / `leverage_set`: per (account, market)
  leverage; a change re-sizes the open position's isolated margin, rolled
  back exactly (savepoint) when the account cannot fund it, and cancels the
  account's open orders in that market.
- `perp_positions_liquidate`: isolated liquidation of positions whose
  equity M + uPnL fell below maintenance |s|·mark·MMF (the margin engine
  calls it for the perps a tick moved), by a closing market order at the
  venue.
- `funding_apply`: one funding period of one market, once per account.

Isolated margin lives in a ledger account per (account, market) (purpose
ISOLATED_MARGIN, code `isolated:<account>:<symbol>`); `Position.isolated_margin`
is kept equal to its balance in the same transaction. The formulas are in
`trading.perp_math`.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_FLOOR, ROUND_UP, Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, HouseAccount, Journal, LedgerAccount, Notification
from accounts.services.accounts import account_check_can_order
from accounts.services.ledger import Line, cash_ledger_account, house_ledger_account, journal_post
from accounts.services.notifications import account_notify
from portal import format as fmt
from portal import metrics
from portal.db import row_add
from portal.errors import (
    DomainError,
    InvalidParams,
    NotFound,
)
from portal.money import ZERO, quantize_money
from portal.validators import whole_number_parse
from trading import perp_math
from trading.broadcasts import leverage_broadcast, order_update_broadcast
from trading.enqueue import order_send_enqueue
from trading.marketdata.quotes import OrderBook, quantize_price
from trading.marketdata.store import MarketDataUnavailable
from trading.models import (
    Fill,
    FundingPayment,
    Instrument,
    LeverageSetting,
    Listing,
    Order,
    Position,
)
from trading.selectors import perp_quotes_get
from trading.services.eligibility import account_margin_eligibility_refresh
from trading.services.margin_check import margin_refusal_reason
from trading.services.markets import instrument_check_tradable
from trading.services.order_status import orders_cancel_for_market
from trading.services.positions import Side
from trading.services.routing import VenueBook, order_books_get
from trading.services.simulation import (
    CENT,
    AccountState,
    FeeOf,
    MarginFigures,
    PortfolioChange,
    Projection,
    account_state_load,
    best_book,
    change_project,
    change_simulate,
    deepest,
    fee_of_instrument,
    largest_passing,
    side_clean,
    trade_route_within,
    worst_case,
)
from trading.venues import venue_adapter
from trading.venues.base import QUANTITY_QUANTUM

logger = logging.getLogger(__name__)

PERP_OUTCOME = ""  # a perp position's outcome


class LeverageStatus:
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"


class LeverageRejectReason:
    INVALID_LEVERAGE = "INVALID_LEVERAGE"
    UNKNOWN_MARKET = "UNKNOWN_MARKET"
    UNDERCOLLATERALIZED = "UNDERCOLLATERALIZED"


# Helpers ----------------------------------------------------------------------


def _perp_by_symbol(symbol: str) -> Instrument | None:
    return Instrument.objects.filter(symbol=symbol, kind=Instrument.Kind.PERPETUAL).first()


def _require_perp(instrument: Instrument) -> None:
    if instrument.kind != Instrument.Kind.PERPETUAL:
        raise InvalidParams(f"{instrument.symbol} is not a perpetual.")


def _leverage_effective(*, account: Account, instrument: Instrument) -> tuple[int, bool]:
    """The account's leverage in the market and whether it is the market default."""
    chosen = (
        LeverageSetting.objects.filter(account=account, instrument=instrument)
        .values_list("leverage", flat=True)
        .first()
    )
    if chosen is None:
        return instrument.default_leverage, True
    return chosen, False


def _isolated_ledger_account(*, account: Account, instrument: Instrument) -> LedgerAccount:
    """The account's isolated-margin ledger account for the market, created on first use."""
    ledger_account, _ = LedgerAccount.objects.get_or_create(
        code=f"isolated:{account.public_id}:{instrument.symbol}",
        defaults={
            "name": f"Isolated margin of {account.public_id} in {instrument.symbol}",
            "purpose": LedgerAccount.Purpose.ISOLATED_MARGIN,
            "account": account,
        },
    )
    return ledger_account


def _journal_lines(amounts: dict[LedgerAccount, Decimal]) -> list[Line]:
    """Lines for the non-zero amounts, one per ledger account."""
    return [Line(ledger_account, amount) for ledger_account, amount in amounts.items() if amount]


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


@dataclass(frozen=True)
class _FillPlan:
    """What a fill does to a perp position (all money quantized to USDC)."""

    quantity: Decimal  # signed position after the fill
    entry: Decimal
    closed: Decimal  # contracts of the old position closed (≥ 0)
    realized_pnl: Decimal
    margin_release: Decimal  # isolated margin returned to cash
    margin_add: Decimal  # cash moved into isolated margin
    margin: Decimal  # isolated margin after the fill


def _fill_plan(*, position: Position, delta: Decimal, price: Decimal, leverage: int) -> _FillPlan:
    """Plan a signed fill of `delta` contracts at `price` against `position`.

    Opening or adding: weighted-average entry, margin |delta|·price/L (rounded
    up). Reducing: realized closed·(price − entry)·sign(s) (rounded down), the
    closed share of the margin released (all of it on a full close). Flipping:
    close all, then open the rest at `price`.
    """
    held, entry, margin = position.quantity, position.average_price, position.isolated_margin
    if held == ZERO or _sign(held) == _sign(delta):
        new_quantity = held + delta
        new_entry = quantize_price((abs(held) * entry + abs(delta) * price) / abs(new_quantity))
        add = quantize_money(
            perp_math.isolated_margin_required(quantity=delta, price=price, leverage=leverage),
            rounding=ROUND_UP,
        )
        return _FillPlan(new_quantity, new_entry, ZERO, ZERO, ZERO, add, margin + add)
    closed = min(abs(delta), abs(held))
    realized = quantize_money(closed * (price - entry) * _sign(held), rounding=ROUND_FLOOR)
    if closed == abs(held):
        release = margin
    else:
        release = quantize_money(margin * closed / abs(held), rounding=ROUND_DOWN)
    rest = abs(delta) - closed
    new_quantity = held + delta
    add = ZERO
    new_entry = entry
    if rest > ZERO:
        new_entry = price
        add = quantize_money(
            perp_math.isolated_margin_required(quantity=rest, price=price, leverage=leverage),
            rounding=ROUND_UP,
        )
    return _FillPlan(
        new_quantity, new_entry, closed, realized, release, add, margin - release + add
    )


def _signed(side: str, quantity: Decimal) -> Decimal:
    if side == Side.BUY:
        return quantity
    if side == Side.SELL:
        return -quantity
    raise InvalidParams("side must be 'buy' or 'sell'.")


def _leverage_for_fill(*, account: Account, instrument: Instrument, leverage: int | None) -> int:
    if leverage is None:
        return _leverage_effective(account=account, instrument=instrument)[0]
    if isinstance(leverage, bool) or not isinstance(leverage, int):
        raise InvalidParams("Leverage is a whole number.")
    if not 1 <= leverage <= instrument.max_leverage:
        raise InvalidParams(
            f"Leverage in {instrument.symbol} is between 1 and {instrument.max_leverage}."
        )
    return leverage


# The fill path ------------------------------------------------------------------


@dataclass(frozen=True)
class PerpFillResult:
    position: Position
    journal: Journal | None  # None only when the fill moved no money at all
    notional: Decimal  # quantity × price, USDC
    realized_pnl: Decimal  # of this fill (reductions, closes, flips)


def perp_fill_apply(
    *,
    account: Account,
    instrument: Instrument,
    side: str,
    quantity: Decimal,
    price: Decimal,
    venue_fee: Decimal,
    commission: Decimal,
    leverage: int | None = None,
    memo: str = "",
    account_deltas: Mapping[str, Decimal] | None = None,
    journal_kind: Journal.Kind = Journal.Kind.TRADE,
) -> PerpFillResult:
    """Record a filled perp buy or sell of `quantity` contracts at `price`.

    The caller holds `account` locked (select_for_update) inside
    transaction.atomic() and has done its checks (market open, and
    `margin_check_cash_debit` for `perp_margin_needed`). `leverage` (default:
    the account's setting, else the market default) sizes the margin of what
    is opened. Posts one balanced TRADE journal: cash ↔ isolated margin,
    realized P&L and the venue fee against venue settlement, the commission
    to fee income (fees rounded up); `account_deltas` (other columns of the
    account's row, e.g. an order's reservation released) go in the same
    UPDATE of the row as the cash and the lifetime volume. Raises
    InvalidParams for a non-perp, a non-positive quantity or price, negative
    fees, a bad side or leverage. `journal_kind`: LIQUIDATION for an isolated
    liquidation's fill.
    """
    return _perp_fill(
        account=account,
        instrument=instrument,
        side=side,
        quantity=quantity,
        price=price,
        venue_fee=venue_fee,
        commission=commission,
        leverage=leverage,
        memo=memo,
        journal_kind=journal_kind,
        account_deltas=account_deltas,
    )


def _perp_fill(
    *,
    account: Account,
    instrument: Instrument,
    side: str,
    quantity: Decimal,
    price: Decimal,
    venue_fee: Decimal,
    commission: Decimal,
    leverage: int | None,
    memo: str,
    journal_kind: Journal.Kind,
    account_deltas: Mapping[str, Decimal] | None = None,
) -> PerpFillResult:
    _require_perp(instrument)
    if quantity <= ZERO:
        raise InvalidParams("A fill needs a positive quantity.")
    if price <= ZERO:
        raise InvalidParams("A perpetual's price is positive.")
    if venue_fee < ZERO or commission < ZERO:
        raise InvalidParams("Fees cannot be negative.")
    delta = _signed(side, quantity)
    used_leverage = _leverage_for_fill(account=account, instrument=instrument, leverage=leverage)
    now = timezone.now()
    position, _ = Position.objects.select_for_update().get_or_create(
        account=account, instrument=instrument, outcome=PERP_OUTCOME
    )
    plan = _fill_plan(position=position, delta=delta, price=price, leverage=used_leverage)

    if position.quantity == ZERO or _sign(position.quantity) != _sign(plan.quantity):
        position.opened_at = now
    position.quantity = plan.quantity
    position.average_price = plan.entry
    position.isolated_margin = plan.margin
    position.realized_pnl += plan.realized_pnl
    if plan.margin_add:
        position.leverage = used_leverage
    position.updated_at = now
    position.save()

    venue_fee = quantize_money(venue_fee, rounding=ROUND_UP)
    commission = quantize_money(commission, rounding=ROUND_UP)
    cash = cash_ledger_account(account)
    isolated = _isolated_ledger_account(account=account, instrument=instrument)
    venue = house_ledger_account(HouseAccount.VENUE_SETTLEMENT)
    fee_income = house_ledger_account(HouseAccount.FEE_INCOME)
    lines = _journal_lines(
        {
            cash: plan.margin_release
            - plan.margin_add
            + plan.realized_pnl
            - venue_fee
            - commission,
            isolated: plan.margin_add - plan.margin_release,
            venue: venue_fee - plan.realized_pnl,
            fee_income: commission,
        }
    )
    notional = quantize_money(quantity * price)
    deltas = {"lifetime_volume": notional, **(account_deltas or {})}
    journal = None
    if lines:
        journal = journal_post(
            kind=journal_kind,
            account=account,
            memo=memo or fmt.trade(side, quantity, instrument.symbol, price, binary=False),
            lines=lines,
            account_deltas=deltas,
        )
    else:
        row_add(account, **deltas)
    account_margin_eligibility_refresh(account=account)
    return PerpFillResult(
        position=position, journal=journal, notional=notional, realized_pnl=plan.realized_pnl
    )


def perp_position_get(*, account: Account, instrument: Instrument) -> Position:
    """The account's position in a perp market, or an empty unsaved one (quantity and
    isolated margin 0)."""
    return Position.objects.filter(
        account=account, instrument=instrument, outcome=PERP_OUTCOME
    ).first() or Position(account=account, instrument=instrument, outcome=PERP_OUTCOME)


def perp_margin_needed(
    *, account: Account, instrument: Instrument, side: str, quantity: Decimal, price: Decimal
) -> Decimal:
    """The cash a fill would move into isolated margin (0 for a pure reduction).

    Gross of what a flip releases first, so a check against it is
    conservative. Read under the caller's account lock for a check that
    holds until the fill. Same InvalidParams as `perp_fill_apply`.
    """
    _require_perp(instrument)
    if quantity <= ZERO or price <= ZERO:
        raise InvalidParams("A fill needs a positive quantity and price.")
    position = perp_position_get(account=account, instrument=instrument)
    leverage = _leverage_effective(account=account, instrument=instrument)[0]
    plan = _fill_plan(
        position=position, delta=_signed(side, quantity), price=price, leverage=leverage
    )
    return plan.margin_add


# The largest order -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PerpPower:
    """The largest perp order of one side the order path's checks accept, two ways.

    By notional (a market order through execute, at the leverage in force,
    fees included) in USDC; in contracts (`order_place`, at the order's
    leverage and its check price) in contracts. Each with what the books
    fill of it now within the slippage limit.
    """

    symbol: str
    side: str
    leverage: int  # the leverage the contracts are sized at
    notional: Decimal  # USDC, cents, rounded down; at the best price, whatever the books hold
    fillable: Decimal  # the same, limited to what the books fill now within the slippage limit
    quantity: Decimal  # contracts, at `price` (the limit, else the best price)
    fillable_quantity: Decimal  # contracts the books fill now within the slippage limit
    price: Decimal | None  # the price the contracts are checked at (None: no book, no limit)
    before: MarginFigures


def perp_order_margin(
    *, held: Decimal, side: str, quantity: Decimal, price: Decimal, leverage: int | None
) -> Decimal | None:
    """The isolated margin a perp order of `quantity` at `price` (its limit, or the
    worst level it takes) allocates from cash at `leverage`, as `order_place`
    checks it (rounded up to the micro-USDC); None when it only reduces the
    position `held` (signed), which allocates nothing."""
    if (-held if side == Side.BUY else held) >= quantity:
        return None
    return quantize_money(
        perp_math.isolated_margin_required(quantity=quantity, price=price, leverage=leverage or 1),
        rounding=ROUND_UP,
    )


def perp_power_find(
    *,
    state: AccountState,
    position: Position,
    side: str,
    books: Sequence[VenueBook],
    leverage_in_force: int,
    leverage: int,
    limit: Decimal | None = None,
    slippage_bps: int = 50,
    fee_of: FeeOf | None = None,
) -> PerpPower:
    """The largest `side` order in `position`'s market that passes the pre-trade
    check of its path, for the account `state` (a read of `position`, no lock).

    By notional, as `execute_check` checks it: the whole notional at the
    slippage limit (`worst_case`, the larger fee), the isolated margin the fill
    would lock at the leverage in force (`_fill_plan`, as `perp_margin_needed`:
    nothing for what only reduces the position), margin and fee debited from
    cash, and the check's verdict on that change (`change_project`: health ≥
    the initial threshold while borrowing, cash ≥ 0 without margin).

    In contracts, as `order_place` checks it: an order that only reduces the
    position passes; otherwise its whole quantity at the check price (the
    limit, else the worst level it takes: the best price with no depth limit)
    over `leverage` is debited from cash and checked the same way.

    `notional` and `quantity` price the order at the best price with a book
    as deep as any size (what the account allows); `fillable` and
    `fillable_quantity` also need a book that fills it now within
    `slippage_bps` of its best price. Bisection (`largest_passing`): the
    margin grows with the size, so each check holds up to the answer.
    """
    fee_of = fee_of or (lambda quantity, price: ZERO)
    buy = side == Side.BUY
    taken = [vb for vb in books if (vb.book.asks if buy else vb.book.bids)]
    deep = best_book(taken, side=side)
    best = None
    if deep:
        best = (deep[0].book.asks if buy else deep[0].book.bids)[0].price

    def executes(candidates: Sequence[VenueBook], cents: int) -> bool:
        notional = Decimal(cents) * CENT
        route = trade_route_within(
            books=candidates, side=side, notional=notional, slippage_bps=slippage_bps
        )
        if route is None or route.estimate.quantity <= ZERO:
            return False
        estimate = route.estimate
        worst = worst_case(
            side=side,
            notional=notional,
            estimate=estimate,
            slippage_bps=slippage_bps,
            fee_of=fee_of,
        )
        margin = _fill_plan(
            position=position,
            delta=_signed(side, estimate.quantity),
            price=max(worst.price, estimate.best_price),  # a long's worst fill, a short's best
            leverage=leverage_in_force,
        ).margin_add
        change = PortfolioChange(cash=-quantize_money(margin + worst.fee, rounding=ROUND_UP))
        return change_project(state=state, change=change).breach is None

    def places(quantity: Decimal, price: Decimal) -> bool:
        margin = perp_order_margin(
            held=position.quantity, side=side, quantity=quantity, price=price, leverage=leverage
        )
        if margin is None:
            return True
        return change_project(state=state, change=PortfolioChange(cash=-margin)).breach is None

    def fills(steps: int) -> bool:
        quantity = Decimal(steps) * QUANTITY_QUANTUM
        route = trade_route_within(
            books=taken, side=side, quantity=quantity, slippage_bps=slippage_bps
        )
        if route is None:
            return False
        return places(quantity, limit if limit is not None else route.estimate.worst_price)

    unbounded = largest_passing(lambda cents: executes(deep, cents)) if deep else 0
    depth = max(
        (
            sum(
                (level.price * level.size for level in (vb.book.asks if buy else vb.book.bids)),
                ZERO,
            )
            for vb in taken
        ),
        default=ZERO,
    )
    fillable = (
        largest_passing(lambda cents: executes(taken, cents), high=int(depth / CENT) + 2)
        if taken
        else 0
    )
    price = limit if limit is not None else best
    quantity = fillable_quantity = 0
    if price is not None:
        quantity = largest_passing(
            lambda steps: places(Decimal(steps) * QUANTITY_QUANTUM, price), step=QUANTITY_QUANTUM
        )
    if taken:
        high = int(deepest(taken, side=side) / QUANTITY_QUANTUM) + 1
        fillable_quantity = largest_passing(fills, high=high, step=QUANTITY_QUANTUM)
    return PerpPower(
        symbol=position.instrument.symbol,
        side=side,
        leverage=leverage,
        notional=Decimal(unbounded) * CENT,
        fillable=Decimal(min(fillable, unbounded)) * CENT,
        quantity=Decimal(quantity) * QUANTITY_QUANTUM,
        fillable_quantity=Decimal(min(fillable_quantity, quantity)) * QUANTITY_QUANTUM,
        price=price,
        before=state.before,
    )


def perp_power_get(
    *,
    account: Account,
    symbol: str,
    side: str,
    leverage: int | None = None,
    limit: Decimal | None = None,
    venue: str | None = None,
    slippage_bps: int = 50,
) -> PerpPower:
    """The largest `side` order in the perp market `symbol` that `account` can place
    and still pass its path's pre-trade check (see `perp_power_find`): by
    notional at the leverage in force, in contracts at `leverage` (default: the
    one in force) and the `limit` price (default: the best price now).

    A read: no lock. Raises NotFound (market, venue), InvalidParams (side,
    leverage), Conflict `market_closed`, MarketDataUnavailable (no live book).
    """
    instrument = _perp_by_symbol(symbol)
    if instrument is None:
        raise NotFound(f"Unknown perpetual market {symbol!r}.")
    instrument_check_tradable(instrument)
    side_taken = side_clean(side)
    in_force = _leverage_effective(account=account, instrument=instrument)[0]
    chosen = _leverage_for_fill(account=account, instrument=instrument, leverage=leverage)
    position = perp_position_get(account=account, instrument=instrument)
    return perp_power_find(
        state=account_state_load(account=account),
        position=position,
        side=side_taken.value,
        books=order_books_get(instrument=instrument, outcome=None, venue=venue),
        leverage_in_force=in_force,
        leverage=chosen,
        limit=limit,
        slippage_bps=slippage_bps,
        fee_of=fee_of_instrument(instrument, side=side_taken),
    )


# Leverage -------------------------------------------------------------------------


@dataclass(frozen=True)
class LeverageView:
    market: str
    leverage: int
    max_leverage: int
    is_default: bool


@dataclass(frozen=True)
class LeverageLevels:
    symbol: str
    levels: list[int]
    default: int


@dataclass(frozen=True)
class LeverageResult:
    market: str
    status: str  # LeverageStatus
    reject_reason: str | None  # LeverageRejectReason
    old_leverage: int | None  # None only for an unknown market
    new_leverage: int | None  # on REJECTED: the leverage still in force
    message: str
    cancelled_order_ids: list[str] = field(default_factory=list)


def leverage_get(*, account: Account, symbol: str) -> LeverageView:
    """The account's leverage in a perp market. Raises NotFound for an unknown market."""
    instrument = _perp_by_symbol(symbol)
    if instrument is None:
        raise NotFound(f"Unknown perpetual market {symbol!r}.")
    leverage, is_default = _leverage_effective(account=account, instrument=instrument)
    return LeverageView(
        market=instrument.symbol,
        leverage=leverage,
        max_leverage=instrument.max_leverage,
        is_default=is_default,
    )


def leverage_levels(*, symbol: str | None = None) -> list[LeverageLevels]:
    """Allowed leverage levels [1..max] and the default, per perp market (or one; [] if unknown)."""
    instruments = Instrument.objects.filter(kind=Instrument.Kind.PERPETUAL).order_by("symbol")
    if symbol is not None:
        instruments = instruments.filter(symbol=symbol)
    return [
        LeverageLevels(
            symbol=instrument.symbol,
            levels=list(range(1, instrument.max_leverage + 1)),
            default=instrument.default_leverage,
        )
        for instrument in instruments
    ]


def leverage_parse(value: object, max_leverage: int) -> int | None:
    """A whole leverage in [1, max], or None (ints, integral Decimals and strings of ASCII
    digits: not "١٠" or "1_0")."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        parsed = int(value)
    else:
        parsed = whole_number_parse(value.strip() if isinstance(value, str) else value)
    return parsed if parsed is not None and 1 <= parsed <= max_leverage else None


@dataclass(frozen=True)
class LeveragePlan:
    """What setting a leverage does to the open position, as checked: its isolated
    margin re-sized to |s|·entry/L, the cash that moves, the figures after it
    (more margin only) and the verdict (`refusal`: None when it would apply)."""

    instrument: Instrument
    leverage: int
    position: Position | None
    target: Decimal  # the new isolated margin (0 without a position)
    delta: Decimal  # cash into isolated margin (< 0: freed)
    projection: Projection | None
    refusal: str | None


def leverage_check(
    *, account: Account, instrument: Instrument, leverage: int, position: Position | None
) -> LeveragePlan:
    """The check a leverage change passes; the preview and `leverage_set` both call it.

    More margin must pass the pre-trade margin check (`margin_refusal` on
    `change_simulate`); less must not leave the position liquidatable at the
    current mark (seed 001: leverage cannot rise if margin requirements
    would be violated). `position` is the open perp position (row-locked by
    the caller for the real change). Nothing is written.
    """
    if position is None:
        return LeveragePlan(instrument, leverage, None, ZERO, ZERO, None, None)
    target = quantize_money(
        perp_math.isolated_margin_required(
            quantity=position.quantity, price=position.average_price, leverage=leverage
        ),
        rounding=ROUND_UP,
    )
    delta = target - position.isolated_margin
    projection, refusal = None, None
    if delta > ZERO:
        projection = change_simulate(account=account, change=PortfolioChange(cash=-delta))
        reason = margin_refusal_reason(projection, account=account, action="leverage change")
        if reason is not None:
            refusal = (
                f"Lowering leverage to {leverage}x needs {fmt.usdc(delta, rounding=ROUND_UP)} "
                f"more of isolated margin: {reason[1]}"
            )
    elif delta < ZERO:
        quote = perp_quotes_get(instrument_ids=[instrument.pk]).get(instrument.pk)
        if quote is None:
            refusal = f"No live mark for {instrument.symbol}: leverage cannot be raised now."
        elif perp_math.is_liquidatable(
            margin=target,
            quantity=position.quantity,
            entry=position.average_price,
            mark=quote.mark,
            mmf=instrument.maintenance_margin_fraction,
        ):
            refusal = (
                f"Raising leverage to {leverage}x would leave {instrument.symbol}'s isolated "
                f"margin ({fmt.usdc(target)}) below its maintenance requirement at the current "
                "mark."
            )
    return LeveragePlan(instrument, leverage, position, target, delta, projection, refusal)


def _margin_resize(*, plan: LeveragePlan, account: Account) -> None:
    """Book a passing plan: the position's new margin and the journal moving the cash."""
    position, instrument, delta = plan.position, plan.instrument, plan.delta
    if position is None:
        return
    position.isolated_margin = plan.target
    position.leverage = plan.leverage
    position.updated_at = timezone.now()
    position.save(update_fields=["isolated_margin", "leverage", "updated_at"])
    if delta:
        journal_post(
            kind=Journal.Kind.MARGIN_ALLOCATION,
            account=account,
            memo=(
                f"{instrument.symbol} leverage {plan.leverage}x: isolated margin "
                f"{fmt.usdc(plan.target)}"
            ),
            lines=[
                Line(cash_ledger_account(account), -delta),
                Line(_isolated_ledger_account(account=account, instrument=instrument), delta),
            ],
        )
        account_margin_eligibility_refresh(account=account)


def _orders_cancel(*, account: Account, instrument: Instrument, reason: str) -> list[str]:
    """Cancel the account's open orders in the market; return their public ids."""
    cancelled = orders_cancel_for_market(account=account, instrument=instrument, reason=reason)
    return [order.public_id for order in cancelled]


def leverage_set(*, account: Account, symbol: str, leverage: object) -> LeverageResult:
    """Set the account's leverage in a perp market (seed 004); never raises for a refusal.

    Locks the account row, then the position's, for one transaction. Unknown
    or non-perp market → REJECTED UNKNOWN_MARKET; leverage not a whole number
    in [1, max] → REJECTED INVALID_LEVERAGE. Otherwise `leverage_check` (the
    preview's check too) decides: a refusal writes nothing and returns
    REJECTED UNDERCOLLATERALIZED with the leverage in force; else the setting
    is stored and the open position's margin re-sized (raising frees cash,
    lowering takes more). On APPLIED with a changed leverage, the account's open
    orders in the market are cancelled (ids in the result). An account that may
    not order (non-custodial, frozen, closed, KYB lapsed) raises as an order would
    (`account_check_can_order`).
    """
    instrument = _perp_by_symbol(symbol)
    if instrument is None:
        return LeverageResult(
            market=symbol,
            status=LeverageStatus.REJECTED,
            reject_reason=LeverageRejectReason.UNKNOWN_MARKET,
            old_leverage=None,
            new_leverage=None,
            message=f"Unknown perpetual market {symbol!r}.",
        )
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        # Re-sizing the margin moves cash and the change cancels orders: an order's gate.
        account_check_can_order(locked)
        old, _ = _leverage_effective(account=locked, instrument=instrument)
        new = leverage_parse(leverage, instrument.max_leverage)
        if new is None:
            return LeverageResult(
                market=instrument.symbol,
                status=LeverageStatus.REJECTED,
                reject_reason=LeverageRejectReason.INVALID_LEVERAGE,
                old_leverage=old,
                new_leverage=old,
                message=(
                    f"Leverage in {instrument.symbol} is a whole number from 1 to "
                    f"{instrument.max_leverage}; got {leverage!r}."
                ),
            )
        position = (
            Position.objects.select_for_update()
            .filter(account=locked, instrument=instrument, outcome=PERP_OUTCOME)
            .exclude(quantity=0)
            .first()
        )
        plan = leverage_check(
            account=locked, instrument=instrument, leverage=new, position=position
        )
        if plan.refusal is not None:
            return LeverageResult(
                market=instrument.symbol,
                status=LeverageStatus.REJECTED,
                reject_reason=LeverageRejectReason.UNDERCOLLATERALIZED,
                old_leverage=old,
                new_leverage=old,
                message=plan.refusal,
            )
        LeverageSetting.objects.update_or_create(
            account=locked, instrument=instrument, defaults={"leverage": new}
        )
        _margin_resize(plan=plan, account=locked)
        moved = plan.delta
        cancelled = []
        if new != old:
            cancelled = _orders_cancel(
                account=locked, instrument=instrument, reason=f"Leverage changed to {new}x."
            )
            leverage_broadcast(
                account_id=locked.pk,
                symbol=instrument.symbol,
                old=old,
                new=new,
                cancelled_order_ids=cancelled,
            )
    account.refresh_from_db(fields=["cash_balance"])
    message = f"Leverage in {instrument.symbol} set to {new}x."
    if moved:
        verb = "allocated" if moved > 0 else "freed"
        message += f" {fmt.usdc(abs(moved))} of isolated margin {verb}."
    return LeverageResult(
        market=instrument.symbol,
        status=LeverageStatus.APPLIED,
        reject_reason=None,
        old_leverage=old,
        new_leverage=new,
        message=message,
        cancelled_order_ids=cancelled,
    )


# Isolated liquidation -------------------------------------------------------------


def _liquidatable(position: Position, mark: Decimal) -> bool:
    return perp_math.is_liquidatable(
        margin=position.isolated_margin,
        quantity=position.quantity,
        entry=position.average_price,
        mark=mark,
        mmf=position.instrument.maintenance_margin_fraction,
    )


def perp_positions_liquidate(*, instrument_ids: list[int]) -> list[Order]:
    """Close every perp position in these markets whose M + uPnL < |s|·mark·MMF;
    return the closing orders submitted.

    Screens with the live marks and reads each candidate's book (before any
    lock: no venue call waits under it), then per position, in its own
    transaction under the account lock, re-reads the position and the mark
    and submits a market order at the venue that closes it
    (`isolated_liquidation`; the outbox task `trading.order_send` places it
    after commit, so the engine's tick never calls a venue). The venue's
    fill is booked through the one fill path (journal kind LIQUIDATION, fees
    as any fill), and `perp_liquidation_notify` tells the owner. A loss
    beyond the margin comes out of cash (a shortfall may leave cash
    negative). What the venue did not fill is closed on a later tick. A
    position whose closing order is still at the venue is left alone, and so
    is one no longer below maintenance. Errors are logged per position.
    """
    quotes = perp_quotes_get(instrument_ids=instrument_ids)
    candidates = [
        position
        for position in Position.objects.filter(
            instrument_id__in=list(quotes),
            instrument__kind=Instrument.Kind.PERPETUAL,
            outcome=PERP_OUTCOME,
        )
        .exclude(quantity=0)
        .select_related("instrument")
        if _liquidatable(position, quotes[position.instrument_id].mark)
    ]
    done = []
    for position in candidates:
        try:
            listing = Listing.objects.select_related("venue", "instrument").get(
                instrument=position.instrument,
                is_active=True,
                venue__code=quotes[position.instrument_id].venue,
            )
            book = venue_adapter(listing.venue.code).order_book(listing)
            order = _perp_position_liquidate(
                account_id=position.account_id, listing=listing, book=book
            )
        except DomainError:
            logger.exception(
                "Perp liquidation of account %s in %s failed",
                position.account_id,
                position.instrument.symbol,
            )
            continue
        if order is not None:
            done.append(order)
    return done


def _perp_position_liquidate(*, account_id: int, listing: Listing, book: OrderBook) -> Order | None:
    instrument = listing.instrument
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_id)
        position = (
            Position.objects.select_for_update()
            .select_related("instrument")
            .filter(account=account, instrument=instrument, outcome=PERP_OUTCOME)
            .exclude(quantity=0)
            .first()
        )
        quote = perp_quotes_get(instrument_ids=[instrument.pk]).get(instrument.pk)
        if position is None or quote is None or not _liquidatable(position, quote.mark):
            return None
        closing = Order.objects.filter(
            account=account,
            instrument=instrument,
            isolated_liquidation=True,
            status__in=Order.AT_VENUE_STATUSES,
        )
        if closing.exists():
            return None
        side = Side.SELL if position.quantity > 0 else Side.BUY
        levels = book.bids if side == Side.SELL else book.asks
        if not levels:
            logger.warning("No book to liquidate account %s in %s", account_id, instrument.symbol)
            return None
        now = timezone.now()
        order = Order.objects.create(
            account=account,
            instrument=instrument,
            outcome=PERP_OUTCOME,
            side=side,
            order_type=Order.Type.MARKET,
            time_in_force=Order.TimeInForce.IOC,
            status=Order.Status.SUBMITTED,
            venue_sends=1,
            quantity=abs(position.quantity),
            leverage=position.leverage,
            venue=listing.venue,
            reference_price=levels[0].price,
            isolated_liquidation=True,
            created_at=now,
            updated_at=now,
        )
        order_send_enqueue(order_id=order.pk, send=1)
        order_update_broadcast(order=order)
        logger.info("Perp liquidation: account %s %s %s sent", account_id, side, instrument.symbol)
        return order


def perp_liquidation_notify(
    *, account: Account, order: Order, fill: Fill, margin_before: Decimal
) -> None:
    """Tell the owner what an isolated liquidation's fill closed, in the booking's
    transaction (emailed after commit): the realized P&L, the margin released and
    any loss beyond it, taken from cash."""
    instrument = order.instrument
    released = (
        margin_before - perp_position_get(account=account, instrument=instrument).isolated_margin
    )
    shortfall = max(ZERO, -fill.realized_pnl - released)
    body = (
        f"Your {instrument.symbol} position fell below its maintenance margin and "
        f"{fmt.quantity(fill.quantity)} were closed at {fmt.perp_price(fill.price)}. "
        f"Realized P&L {fmt.usdc_signed(fill.realized_pnl)}; isolated margin released "
        f"{fmt.usdc(released)}."
    )
    if shortfall:
        body += f" The loss exceeded the isolated margin by {fmt.usdc(shortfall)}, taken from cash."
    account_notify(
        account=account,
        kind=Notification.Kind.LIQUIDATION,
        title=f"{instrument.symbol} position liquidated",
        body=body,
        email=True,
        dedupe_key=f"perp_liquidation:{fill.journal_id}",
    )
    logger.info("Perp liquidation: account %s %s", account.pk, body)
    metrics.count_on_commit(metrics.LIQUIDATIONS, kind="perp_isolated", status="completed")


# Funding ----------------------------------------------------------------------------


@dataclass
class FundingRun:
    symbol: str
    period_start: datetime
    rate: Decimal
    mark: Decimal
    paid: int = 0  # payments posted by this run
    already: int = 0  # accounts paid by an earlier run
    net: Decimal = ZERO  # paid by accounts (negative: received), this run

    def as_dict(self) -> dict[str, str | int]:
        return {
            "symbol": self.symbol,
            "period_start": self.period_start.isoformat(),
            "rate": str(self.rate),
            "mark": str(self.mark),
            "paid": self.paid,
            "already": self.already,
            "net": str(self.net),
        }


def funding_period_last_completed(*, instrument: Instrument, now: datetime) -> datetime:
    """Start of the market's last completed funding period (periods aligned to the epoch)."""
    interval = int(instrument.funding_interval_hours) * 3600
    current = int(now.timestamp()) // interval * interval
    return datetime.fromtimestamp(current - interval, tz=UTC)


def funding_apply(*, instrument: Instrument, period_start: datetime) -> FundingRun:
    """Post one funding period's payments in a perp market, once per account.

    payment = s·mark·rate (rate: the live quote's funding rate per interval;
    positive: longs pay, shorts receive), rounded half-even to USDC, posted
    per account as a FUNDING journal between its cash and the funding pool,
    with a FundingPayment row. Each account is its own transaction under its
    lock; an account already paid for (instrument, period) is skipped, so a
    second run posts nothing (the unique row and the journal's idempotency
    key both hold that). The position and mark are those when it runs.
    Raises InvalidParams for a non-perp or a period not yet completed,
    MarketDataUnavailable without a quote carrying a funding rate.
    """
    _require_perp(instrument)
    interval = timedelta(hours=int(instrument.funding_interval_hours))
    if period_start + interval > timezone.now():
        raise InvalidParams(f"The funding period from {period_start} has not ended yet.")
    quote = perp_quotes_get(instrument_ids=[instrument.pk]).get(instrument.pk)
    if quote is None or quote.funding_rate is None:
        raise MarketDataUnavailable(f"No funding rate for {instrument.symbol}.")
    run = FundingRun(
        symbol=instrument.symbol,
        period_start=period_start,
        rate=quote.funding_rate,
        mark=quote.mark,
    )
    account_ids = set(
        Position.objects.filter(instrument=instrument, outcome=PERP_OUTCOME)
        .exclude(quantity=0)
        .values_list("account_id", flat=True)
    )
    paid = set(
        FundingPayment.objects.filter(instrument=instrument, period_start=period_start).values_list(
            "account_id", flat=True
        )
    )
    run.already = len(account_ids & paid)
    for account_id in sorted(account_ids - paid):
        amount = _funding_pay(
            account_id=account_id,
            instrument=instrument,
            period_start=period_start,
            rate=run.rate,
            mark=run.mark,
        )
        if amount is not None:
            run.paid += 1
            run.net += amount
    return run


def _funding_pay(
    *, account_id: int, instrument: Instrument, period_start: datetime, rate: Decimal, mark: Decimal
) -> Decimal | None:
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_id)
        if FundingPayment.objects.filter(
            instrument=instrument, account=account, period_start=period_start
        ).exists():
            return None
        position = Position.objects.get(
            account=account, instrument=instrument, outcome=PERP_OUTCOME
        )
        amount = quantize_money(
            perp_math.funding_payment(quantity=position.quantity, mark=mark, rate=rate)
        )
        if not amount:
            return None
        journal = journal_post(
            kind=Journal.Kind.FUNDING,
            account=account,
            memo=(
                f"Funding {instrument.symbol} for the period from "
                f"{fmt.when(period_start, UTC)} at a rate of {fmt.percent_signed(rate, 4)}"
            ),
            idempotency_key=f"funding:{instrument.pk}:{account.pk}:{period_start.isoformat()}",
            lines=[
                Line(cash_ledger_account(account), -amount),
                Line(house_ledger_account(HouseAccount.FUNDING_POOL), amount),
            ],
        )
        FundingPayment.objects.create(
            instrument=instrument,
            account=account,
            period_start=period_start,
            position_quantity=position.quantity,
            mark_price=quantize_price(mark),
            rate=rate,
            amount=amount,
            journal=journal,
        )
        account_margin_eligibility_refresh(account=account)
        return amount
