"""Execute (SPEC §6, seed "Execute Trade"): a market order for a USDC notional,
in three steps so that no venue call ever runs under the account lock.

1. Route, outside any transaction: the venues' books are read and the venue
   whose book fills the whole notional at the best average price is chosen
   (`trading.services.routing`); a fill further than `slippage_bps` from the
   best price is refused.
2. Submit, in one transaction under the account row lock: the account checks,
   client_order_id idempotency, the pre-trade check of the worst case the
   venue may fill (`execute_check`: the notional at the slippage limit, fees
   included), and a **reservation** of that worst-case cost
   (`Order.reserved_cash`, summed in `Account.orders_reserved`; a sell
   reserves its contracts, `Order.reserved_quantity`). Cash, Available
   Margin, withdrawals and every later check see the reservation
   (`Account.risk_cash`). The Order is saved `submitted`; commit.
3. The venue call (`market_order_place`, idempotent by our order id),
   outside any transaction or lock.
4. Book, in one transaction under the account lock, then the order's
   (`order_venue_answer_book`): the fill through the one fill path, the
   order's final state, the reservation released. A venue that does not
   answer in time leaves the order `pending` with its reservation.

Every order still at a venue (`submitted` or `pending`) has an owner:
`orders_reconcile` (Celery beat, every 30 s) asks the venue, outside any
lock, and books the answer through the same function. A crash between the
steps therefore delays an order but never strands it or its reservation;
nothing is ever filled twice (the Fill's unique venue fill id backs the row
locks). Pushes happen after commit.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_UP, Decimal

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import Account
from accounts.services.accounts import account_check_can_order
from accounts.services.audit import audit_record
from portal import format as fmt
from portal import metrics
from portal.db import row_add
from portal.errors import (
    DomainError,
    DuplicateOrder,
    ErrorCode,
    InvalidParams,
    SlippageExceeded,
)
from portal.money import QUANTITY_DECIMAL_PLACES, ZERO, quantize_money
from trading.broadcasts import order_update_broadcast
from trading.enqueue import market_settle_enqueue
from trading.marketdata.quotes import Outcome
from trading.models import Instrument, Listing, Order, Venue
from trading.selectors import contracts_get
from trading.services.fills import order_fill_apply, taker_fee
from trading.services.margin_check import margin_refusal
from trading.services.markets import instrument_check_tradable
from trading.services.notices import fills_notify
from trading.services.order_status import order_status_set
from trading.services.perps import (
    perp_liquidation_notify,
    perp_margin_needed,
    perp_position_get,
)
from trading.services.positions import sale_proceeds
from trading.services.routing import (
    Contract,
    RoutedFill,
    contract_from_symbol,
    listing_get,
    order_books_get,
    route_or_refuse,
)
from trading.services.simulation import (
    PortfolioChange,
    Projection,
    buy_change,
    change_simulate,
    decimal_clean,
    position_held,
    side_clean,
    slippage_limit,
    trade_change,
    worst_case,
)
from trading.venues import venue_adapter
from trading.venues.base import (
    PRICE_LIMIT,
    VenueOrder,
    VenueOrderStatus,
    VenueTimeout,
)

logger = logging.getLogger(__name__)

SLIPPAGE_BPS_MAX = 10_000
CLIENT_ORDER_ID_MAX = 64
QUANTITY_QUANTUM = Decimal(1).scaleb(-QUANTITY_DECIMAL_PLACES)
# The submitter sends an order right after committing it; the reconciler leaves
# a `submitted` order to it this long before asking the venue itself.
SUBMITTED_GRACE = timedelta(seconds=30)
# An order the venue has no record of is rejected (its reservation released)
# once it is this old: far longer than a venue call may take (the adapters'
# timeouts and rate-limit waits are well under a minute).
UNKNOWN_AT_VENUE_AFTER = timedelta(minutes=2)
VENUE_NOT_RECEIVED = "venue_not_received"
# A written-off order is asked about again for a day (a venue that filled it late
# wins: the fill is booked), each at most every ten minutes, a bounded batch a run.
WRITTEN_OFF_RECHECK_FOR = timedelta(hours=24)
WRITTEN_OFF_RECHECK_EVERY = timedelta(minutes=10)
WRITTEN_OFF_RECHECK_BATCH = 20
# A resting limit order whose send the venue filled none of (the broker's copy of
# the book crossed, the venue's did not) is not sent again for this long.
LIMIT_RESEND_AFTER = timedelta(seconds=5)


def request_fingerprint(body: dict[str, object]) -> str:
    """SHA-256 of an order request as validated: what client_order_id reuse compares."""
    return hashlib.sha256(json.dumps(body, default=str, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ExecuteRequest:
    """A validated execute request; `fingerprint` identifies it for client_order_id reuse."""

    contract: Contract
    side: str
    notional: Decimal
    venue: str | None
    slippage_bps: int
    client_order_id: str | None

    @property
    def fingerprint(self) -> str:
        body = {
            "symbol": self.contract.instrument.symbol,
            "outcome": self.contract.outcome,
            "side": self.side,
            "notional_usdc": str(self.notional.normalize()),
            "venue": self.venue,
            "slippage_bps": self.slippage_bps,
        }
        return request_fingerprint(body)


def slippage_bps_clean(value: object) -> int:
    """A slippage limit in whole basis points, 0 to SLIPPAGE_BPS_MAX (InvalidParams)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParams("slippage_bps must be an integer number of basis points.")
    if not 0 <= value <= SLIPPAGE_BPS_MAX:
        raise InvalidParams(f"slippage_bps must lie in [0, {SLIPPAGE_BPS_MAX}].")
    return value


def execute_request_clean(
    *,
    symbol: object,
    side: object,
    notional_usdc: object,
    venue: object = None,
    slippage_bps: object = 50,
    client_order_id: object = None,
) -> ExecuteRequest:
    """Validate an execute request (InvalidParams naming the field; NotFound symbol)."""
    slippage_bps = slippage_bps_clean(slippage_bps)
    if client_order_id is not None and (
        not isinstance(client_order_id, str)
        or not client_order_id
        or len(client_order_id) > CLIENT_ORDER_ID_MAX
    ):
        raise InvalidParams(f"client_order_id must be 1–{CLIENT_ORDER_ID_MAX} characters.")
    if venue is not None and (not isinstance(venue, str) or not venue):
        raise InvalidParams("venue must be a venue code.")
    side = side_clean(side).value
    notional = decimal_clean(notional_usdc, name="notional_usdc", positive=True)
    return ExecuteRequest(
        contract=contract_from_symbol(symbol),
        side=side,
        notional=notional,
        venue=venue,
        slippage_bps=slippage_bps,
        client_order_id=client_order_id,
    )


def _price(contract: Contract, value: Decimal | None) -> str:
    """A price as the contract's market quotes it: "46¢", "67,250.50"."""
    return fmt.price(value, binary=contract.instrument.is_binary)


def execute_route(request: ExecuteRequest) -> RoutedFill:
    """Route `request` on the venues' live books (read now, outside any lock).

    Raises InvalidParams `insufficient_liquidity` when no book fills it all,
    SlippageExceeded when the fill would average further from the best price
    than `slippage_bps`, NotFound (venue), MarketDataUnavailable / Stale.
    """
    contract = request.contract
    books = order_books_get(
        instrument=contract.instrument, outcome=contract.book_outcome, venue=request.venue
    )
    route = route_or_refuse(
        label=contract.symbol, books=books, side=request.side, notional=request.notional
    )
    estimate = route.estimate
    slippage = estimate.slippage_bps
    if slippage is not None and slippage > request.slippage_bps:
        raise SlippageExceeded(
            f"The fill would average {_price(contract, estimate.average_price)}, "
            f"{slippage:.1f} bps from the best price {_price(contract, estimate.best_price)}: "
            f"more than the {request.slippage_bps} bps allowed."
        )
    return route


@dataclass(frozen=True, slots=True)
class ExecutePlan:
    """What an execute will do at worst, as checked: the reservation it holds, the
    figures after it and the check's verdict (`refusal`: None when it passes)."""

    request: ExecuteRequest
    route: RoutedFill
    listing: Listing
    worst_price: Decimal
    worst_quantity: Decimal  # contracts at the worst price (fewest for a buy, most for a sell)
    fee: Decimal  # the larger of the fees at the estimated and at the worst fill
    isolated_margin: Decimal  # a perp's margin allocated at the worst price; 0 for binaries
    reserve_cash: Decimal
    reserve_quantity: Decimal
    projection: Projection
    refusal: DomainError | None


def _fee_of(venue: Venue, side: str):
    """A fill's total fee on `venue` (`taker_fee`) as a function of quantity and price."""

    def fee_of(quantity: Decimal, price: Decimal) -> Decimal:
        return taker_fee(venue=venue, side=side, quantity=quantity, price=price)

    return fee_of


def sale_check(*, account: Account, contract: Contract, quantity: Decimal) -> Decimal:
    """Refuse selling more of a binary contract than the position holds less what
    the account's sells at a venue hold (InvalidParams); return that free quantity.

    Read under the caller's account lock for a check that holds until the fill.
    """
    held, reserved = position_held(
        account=account, instrument=contract.instrument, outcome=contract.outcome
    )
    if quantity > held - reserved:
        held_by = (
            f", {fmt.quantity(reserved, 6)} of them held by orders at a venue" if reserved else ""
        )
        raise InvalidParams(
            f"Cannot sell {fmt.quantity(quantity, 6)} {contract.symbol}: the position holds "
            f"{fmt.quantity(held, 6)}{held_by}."
        )
    return held - reserved


def execute_check(*, account: Account, request: ExecuteRequest, route: RoutedFill) -> ExecutePlan:
    """The pre-trade check of an execute at its worst case; return its plan.

    The worst case is the whole notional filled at the slippage limit with
    the larger fee: a buy gets the fewest contracts for its cash, a sell
    gives the most contracts for its proceeds. The projection is the
    simulation service's (`change_simulate`, fees included) and the verdict
    the margin check's (`margin_refusal`: InsufficientMargin /
    InsufficientFunds, in the plan, not raised); a sell must hold its
    contracts net of what other sells at a venue hold (InvalidParams,
    raised). The same function decides the real order (under the caller's
    account lock, in its transaction) and every preview (`execute_preview`,
    no lock), so a preview's verdict is the order's.
    """
    contract, side = request.contract, request.side
    estimate = route.estimate
    listing = listing_get(contract.instrument, route.venue)
    worst = worst_case(
        side=side,
        notional=request.notional,
        estimate=estimate,
        slippage_bps=request.slippage_bps,
        fee_of=_fee_of(listing.venue, side),
    )
    reserve_quantity = isolated_margin = ZERO
    if contract.instrument.is_binary:
        key = (contract.instrument.pk, contract.outcome)
        view = contracts_get([key])[key]
        if side == Order.Side.BUY:
            change = buy_change(contract=view, notional=request.notional, worst=worst)
        else:
            sale_proceeds(quantity=estimate.quantity, price=worst.price, symbol=contract.symbol)
            free = sale_check(account=account, contract=contract, quantity=estimate.quantity)
            reserve_quantity = min(free, worst.quantity)
            change = trade_change(
                contract=view,
                side=side,
                quantity=estimate.quantity,
                notional=estimate.notional,
                fee=worst.fee,
            )
    else:
        isolated_margin = perp_margin_needed(
            account=account,
            instrument=contract.instrument,
            side=side,
            quantity=estimate.quantity,
            price=max(worst.price, estimate.best_price),  # a long's worst fill, a short's best
        )
        change = PortfolioChange(
            cash=-quantize_money(isolated_margin + worst.fee, rounding=ROUND_UP)
        )
    projection = change_simulate(account=account, change=change)
    action = side if contract.instrument.is_binary else f"perp {side}"
    return ExecutePlan(
        request=request,
        route=route,
        listing=listing,
        worst_price=worst.price,
        worst_quantity=worst.quantity,
        fee=worst.fee,
        isolated_margin=isolated_margin,
        reserve_cash=max(ZERO, -change.cash),
        reserve_quantity=reserve_quantity,
        projection=projection,
        refusal=margin_refusal(projection, account=account, action=action),
    )


@dataclass(frozen=True, slots=True)
class ExecutePreview:
    """What `order_execute` would do now: its plan, or the refusal that stops it first."""

    request: ExecuteRequest
    route: RoutedFill | None
    plan: ExecutePlan | None  # None when refused before the pre-trade check
    refusal: DomainError | None  # None: the order would be placed

    @property
    def code(self) -> str | None:
        return None if self.refusal is None else self.refusal.code


def execute_preview(
    *,
    account: Account,
    symbol: object,
    side: object,
    notional_usdc: object,
    venue: object = None,
    slippage_bps: object = 50,
) -> ExecutePreview:
    """`order_execute`'s checks, in its order, without placing anything: the order
    form's projection, and the verdict a retry-free execute would give now.

    Raises what `execute_request_clean` raises for a malformed request; every
    other refusal (market closed, no liquidity, slippage, no live prices, the
    account, margin) is returned as the preview's `refusal`. A read of the
    account's row as it is now (not the caller's copy), without a lock.
    """
    request = execute_request_clean(
        symbol=symbol,
        side=side,
        notional_usdc=notional_usdc,
        venue=venue,
        slippage_bps=slippage_bps,
    )
    route = None
    account = Account.objects.select_related("owner").get(pk=account.pk)  # as execute reads it
    try:
        instrument_check_tradable(request.contract.instrument)
        route = execute_route(request)
        account_check_can_order(account)
        plan = execute_check(account=account, request=request, route=route)
    except DomainError as exc:
        return ExecutePreview(request=request, route=route, plan=None, refusal=exc)
    return ExecutePreview(request=request, route=route, plan=plan, refusal=plan.refusal)


def order_replay_get(
    *, account: Account, client_order_id: str | None, fingerprint: str
) -> Order | None:
    """The order already placed under `client_order_id` with the same request (marked
    `replayed`), or None; the same id with another request raises DuplicateOrder (409).
    Every entry point's idempotency: execute, order_place, position_close."""
    if client_order_id is None:
        return None
    order = (
        Order.objects.select_related("instrument", "venue")
        .filter(account=account, client_order_id=client_order_id)
        .first()
    )
    if order is not None and order.request_fingerprint != fingerprint:
        raise DuplicateOrder(
            f"client_order_id {client_order_id!r} was already used for a different "
            f"order ({order.public_id}) in account {account.public_id}."
        )
    if order is not None:
        order.replayed = True
    return order


def reservation_change(*, account: Account, order: Order, cash: Decimal, quantity: Decimal) -> None:
    """Set `order`'s reservation to `cash` / `quantity`, moving the account's total with it.

    The caller holds the account row lock, then the order's, in its
    transaction, and saves the order (its `reserved_*` fields) before commit.
    """
    delta = _reservation_set(order, cash=cash, quantity=quantity)
    if delta:
        row_add(account, orders_reserved=delta)


def _reservation_set(order: Order, *, cash: Decimal, quantity: Decimal) -> Decimal:
    """Set `order`'s reservation; return the change its account's total must take."""
    delta = cash - order.reserved_cash
    order.reserved_cash, order.reserved_quantity = cash, quantity
    return delta


def _submit(*, account: Account, request: ExecuteRequest, route: RoutedFill) -> tuple[Order, bool]:
    """Step 2: check and reserve under the account lock; (order, True if new)."""
    with transaction.atomic():
        locked = Account.objects.select_related("owner").select_for_update(of=("self",))
        locked = locked.get(pk=account.pk)
        account_check_can_order(locked)
        existing = order_replay_get(
            account=locked,
            client_order_id=request.client_order_id,
            fingerprint=request.fingerprint,
        )
        if existing is not None:
            return existing, False
        plan = execute_check(account=locked, request=request, route=route)
        if plan.refusal is not None:
            raise plan.refusal
        estimate = route.estimate
        now = timezone.now()
        order = Order(
            account=locked,
            instrument=request.contract.instrument,
            outcome=request.contract.outcome,
            side=request.side,
            order_type=Order.Type.MARKET,
            time_in_force=Order.TimeInForce.IOC,
            status=Order.Status.SUBMITTED,
            venue_sends=1,
            notional_usdc=request.notional,
            slippage_bps=request.slippage_bps,
            client_order_id=request.client_order_id,
            request_fingerprint=request.fingerprint,
            venue=plan.listing.venue,
            reference_price=estimate.best_price,
            created_at=now,
            updated_at=now,
        )
        reservation_change(
            account=locked, order=order, cash=plan.reserve_cash, quantity=plan.reserve_quantity
        )
        order.save()
    return order, True


def order_venue_send(order: Order) -> VenueOrder | None:
    """Step 3: the venue call, outside any transaction; None when it did not answer.

    A notional order (execute's) is limited at its slippage from the
    reference price; a quantity order sends what is left of it at its limit
    (a limit order's send; none for a take-profit or stop-loss child or a
    liquidation sale, which take what the book has), the rest cancelled by
    the venue (all or nothing for fill-or-kill).
    """
    listing = listing_get(order.instrument, order.venue.code)
    if order.notional_usdc is not None:
        size: dict[str, object] = {"notional": order.notional_usdc}
        worst_price = slippage_limit(
            side=order.side, best=order.reference_price, slippage_bps=order.slippage_bps
        )
    else:
        size = {
            "quantity": order.quantity - order.filled_quantity,
            "fill_or_kill": order.time_in_force == Order.TimeInForce.FOK,
        }
        worst_price = order.limit_price
    try:
        with metrics.venue_call_observed(listing.venue.code, "order_place"):
            return venue_adapter(listing.venue.code).market_order_place(
                listing,
                order.side,
                **size,
                client_order_id=order.venue_client_id,
                outcome=Outcome(order.outcome) if order.outcome else None,
                worst_price=worst_price,
            )
    except VenueTimeout:
        logger.warning("order %s not confirmed by %s", order.public_id, listing.venue.code)
        return None


def order_send(*, order_id: int) -> Order:
    """Steps 3 and 4 for an order submitted by the broker itself (a take-profit or
    stop-loss child: `trading.services.orders`; a liquidation's sale:
    `trading.services.liquidation`): send it to its venue, outside any
    transaction or lock, and book the answer; return the order.

    Sent through the outbox (`order_send_enqueue`) after the submit commits,
    and again by `order_reconcile` while the venue has no record of it (a
    stop that fired is never written off for a lost message). Safe to run
    twice or concurrently: the venue is idempotent by the order's public
    id, and an order no longer at the venue is returned as it is.
    """
    order = Order.objects.select_related("instrument", "venue").get(pk=order_id)
    if order.status not in Order.AT_VENUE_STATUSES:
        return order
    return order_venue_answer_book(order=order, placed=order_venue_send(order), waiting=False)


@metrics.order_outcome_observed
def order_execute(
    *,
    account: Account,
    symbol: str,
    side: str,
    notional_usdc: Decimal,
    venue: str | None = None,
    slippage_bps: int = 50,
    client_order_id: str | None = None,
) -> Order:
    """Execute a market order for `notional_usdc` USDC of `symbol`; return the Order.

    `symbol` is an instrument symbol: a binary's YES contract, `SYMBOL:NO`
    its NO contract, or a perpetual (BTC-PERP). Runs the steps of the module
    docstring; the Order comes back `filled`, or `pending` when the venue did
    not answer in time (a 202: `orders_reconcile` settles it).

    Locks: the account row for the submit step and again for the booking
    step, never across the venue call. Idempotency: a `client_order_id`
    already used with the same request returns that Order as it stands (no
    second venue call); with a different request raises DuplicateOrder (409
    `duplicate_order`).

    Raises InvalidParams (bad fields; `insufficient_liquidity`), NotFound
    (symbol, venue), Conflict `market_closed` (halted or resolved),
    Forbidden `custodial_required` / `kyb_required`, AccountNotActive,
    SlippageExceeded (422; also when the venue refuses the worst price: the
    order is then recorded `rejected`), InsufficientMargin /
    InsufficientFunds (422), MarketDataUnavailable (no live book).
    """
    request = execute_request_clean(
        symbol=symbol,
        side=side,
        notional_usdc=notional_usdc,
        venue=venue,
        slippage_bps=slippage_bps,
        client_order_id=client_order_id,
    )
    existing = order_replay_get(
        account=account, client_order_id=request.client_order_id, fingerprint=request.fingerprint
    )
    if existing is not None:
        return existing
    instrument_check_tradable(request.contract.instrument)
    route = execute_route(request)
    order, new = _submit(account=account, request=request, route=route)
    if not new:
        return order
    order = order_venue_answer_book(order=order, placed=order_venue_send(order))
    if (
        order.status == Order.Status.REJECTED
        and order.reject_code == ErrorCode.SLIPPAGE_EXCEEDED.code
    ):
        raise SlippageExceeded(order.reject_reason)
    return order


def _reject(order: Order, *, code: str, reason: str) -> None:
    order.status = Order.Status.REJECTED
    order.reject_code = code
    order.reject_reason = reason[:255]


def order_venue_answer_book(
    *, order: Order, placed: VenueOrder | None, waiting: bool = True
) -> Order:
    """Step 4: book what the venue said about an order sent to it; return the order.

    `order` is the caller's copy (read without a lock): its instrument and
    venue, which never change once it is submitted, are reused; its state is
    read again under the locks. `placed` is the venue's record (None: no
    answer in time, or, from the reconciler, not received). Locks the
    account row, then the order's, in one transaction. An order no longer
    at the venue is returned as it is, except one rejected
    `venue_not_received` that the venue did fill after all: the fill is
    booked (the venue's record wins). Filled → the fill through the one
    fill path; rejected or cancelled (a price-limit refusal is
    `slippage_exceeded`) → final; no answer → `pending`, the reservation
    kept. The reservation is released whenever the order leaves the venue.
    A limit order's send (its remaining quantity at its limit) that filled
    in part, or not at all, leaves a good-till-cancelled order resting.
    `waiting`: a request waits on the answer (no email of the fill). The
    order push goes out after commit.
    """
    fixed = order
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=fixed.account_id)
        # The market's status now, in the same statement: an order that leaves the
        # venue after its market resolved asks for a settlement run.
        order = (
            Order.objects.select_for_update(of=("self",))
            .annotate(market_status=F("instrument__status"))
            .get(pk=fixed.pk)
        )
        order.instrument = fixed.instrument
        if order.venue_id == fixed.venue_id:
            order.venue = fixed.venue
        late_fill = (
            order.reject_code == VENUE_NOT_RECEIVED
            and placed is not None
            and placed.status == VenueOrderStatus.FILLED
        )
        if order.status not in Order.AT_VENUE_STATUSES and not late_fill:
            return order
        if late_fill:
            logger.error("order %s: the venue filled it after it was written off", order.public_id)
            order.status, order.reject_code, order.reject_reason = Order.Status.PENDING, "", ""
        if placed is None or placed.status == VenueOrderStatus.PENDING:
            order.status = Order.Status.PENDING
            order.venue_order_id = "" if placed is None else placed.venue_order_id
            order.updated_at = timezone.now()
            order.save(update_fields=["status", "venue_order_id", "updated_at"])
            order_update_broadcast(order=order)
            return order
        order.venue_order_id = placed.venue_order_id
        if placed.status == VenueOrderStatus.FILLED:
            margin_before = ZERO
            if order.isolated_liquidation:
                position = perp_position_get(account=account, instrument=order.instrument)
                margin_before = position.isolated_margin
            # The reservation is released in the fill's one UPDATE of the account row.
            release = _reservation_set(order, cash=ZERO, quantity=ZERO)
            fill = order_fill_apply(
                order=order,
                account=account,
                quantity=placed.quantity,
                price=placed.average_price,
                venue=order.venue,
                venue_fill_id=placed.venue_fill_id,
                account_deltas={"orders_reserved": release} if release else None,
            )
            order.account = account
            rests = order.time_in_force == Order.TimeInForce.GTC
            if order.status == Order.Status.PARTIALLY_FILLED and not rests:
                order_status_set(
                    order,
                    status=Order.Status.CANCELLED,
                    code="ioc_unfilled",
                    reason="Immediate or cancel: the venue filled only part of it.",
                )
            # Emailed when nobody was waiting: the venue confirmed late (the
            # reconciler), or no request waits on it (a resting order's send, a
            # take-profit or stop-loss; a liquidation's sales are told in the
            # liquidation's own notice).
            late = late_fill or fixed.status == Order.Status.PENDING or not waiting
            if order.isolated_liquidation:
                perp_liquidation_notify(
                    account=account, order=order, fill=fill, margin_before=margin_before
                )
            elif order.liquidation_id is None:
                fills_notify(order=order, fills=[fill], email=late)
            order_update_broadcast(order=order)
            _settle_if_resolved(order)
            return order
        reservation_change(account=account, order=order, cash=ZERO, quantity=ZERO)
        _settle_if_resolved(order)
        order.updated_at = timezone.now()
        if order.order_type == Order.Type.LIMIT:
            _limit_unfilled(order, placed)
        elif placed.reject_code == PRICE_LIMIT:
            _reject(order, code=ErrorCode.SLIPPAGE_EXCEEDED.code, reason=placed.reason)
        else:
            _reject(order, code=f"venue_{placed.status}", reason=placed.reason)
            if placed.status == VenueOrderStatus.CANCELLED:
                order.status = Order.Status.CANCELLED
        order.save(
            update_fields=[
                "venue_order_id",
                "status",
                "reject_code",
                "reject_reason",
                "reserved_cash",
                "reserved_quantity",
                "venue_resend_after",
                "updated_at",
            ]
        )
        order_update_broadcast(order=order)
    return order


def _limit_unfilled(order: Order, placed: VenueOrder) -> None:
    """A limit order's send the venue filled none of: a good-till-cancelled order rests
    again (not sent again for LIMIT_RESEND_AFTER), an immediate-or-cancel one is
    cancelled, a fill-or-kill one rejected. The caller saves it."""
    logger.info("order %s: the venue filled none of it: %s", order.public_id, placed.reason)
    if order.time_in_force == Order.TimeInForce.GTC:
        filled = order.filled_quantity > 0
        order.status = Order.Status.PARTIALLY_FILLED if filled else Order.Status.OPEN
        order.venue_resend_after = order.updated_at + LIMIT_RESEND_AFTER
    elif order.time_in_force == Order.TimeInForce.FOK:
        _reject(order, code="fok_not_filled", reason=f"Fill or kill: {placed.reason}")
    else:
        _reject(order, code="ioc_unfilled", reason=f"Immediate or cancel: {placed.reason}")
        order.status = Order.Status.CANCELLED


def _settle_if_resolved(order: Order) -> None:
    """An order that left the venue after its market resolved (`market_status`, read
    with the order): what it bought, or the contracts a refused sell held back, are
    paid out by another settlement run (`markets_settle_due` is the safety net)."""
    if order.market_status == Instrument.Status.RESOLVED:
        market_settle_enqueue(instrument_id=order.instrument_id, again=True)


@dataclass(frozen=True, slots=True)
class ReconcileSummary:
    filled: list[str]
    closed: list[str]
    still_pending: list[str]

    def as_dict(self) -> dict[str, list[str]]:
        return {"filled": self.filled, "closed": self.closed, "still_pending": self.still_pending}


def order_reconcile(*, order_id: int, unknown_after: timedelta = UNKNOWN_AT_VENUE_AFTER) -> str:
    """Settle one order still at a venue from the venue's own record; return its status.

    A `submitted` order younger than SUBMITTED_GRACE is left to its
    submitter. Otherwise the venue is asked (`order_status`, outside any
    transaction or lock) and its answer booked by `order_venue_answer_book`
    under the locks: filled → the fill (exactly once), rejected/cancelled →
    final, still open → left. An order the venue never received is rejected
    `venue_not_received` once older than `unknown_after`; its reservation is
    released. Safe to run twice or concurrently; a venue that does not answer
    leaves the order as it is.
    """
    order = Order.objects.select_related("instrument", "venue").get(pk=order_id)
    age = timezone.now() - order.created_at
    if order.status not in Order.AT_VENUE_STATUSES or order.venue is None:
        return order.status
    if order.status == Order.Status.SUBMITTED and age < SUBMITTED_GRACE:
        return order.status
    try:
        placed = _venue_record(order)
    except VenueTimeout:
        return order.status
    if placed is None and order.resent_when_unknown:
        return order_send(order_id=order.pk).status  # never written off: (re)sent
    if placed is None:
        if age < unknown_after:
            return order.status
        return _not_received(order_id=order.pk).status
    if placed.status == VenueOrderStatus.PENDING:
        return order.status
    return order_venue_answer_book(order=order, placed=placed).status


def _venue_record(order: Order) -> VenueOrder | None:
    """The venue's record of `order` (None: it has none); VenueTimeout. No lock held."""
    listing = Listing.objects.select_related("venue", "instrument").get(
        instrument=order.instrument, venue=order.venue
    )
    with metrics.venue_call_observed(listing.venue.code, "order_status"):
        return venue_adapter(listing.venue.code).order_status(
            listing,
            client_order_id=order.venue_client_id,
            outcome=Outcome(order.outcome) if order.outcome else None,
        )


def written_off_recheck(*, now: datetime | None = None) -> list[str]:
    """Ask the venue again about orders written off `venue_not_received` in the last
    WRITTEN_OFF_RECHECK_FOR, each at most every WRITTEN_OFF_RECHECK_EVERY, at most
    WRITTEN_OFF_RECHECK_BATCH a call (oldest asked first): one the venue did fill is
    booked (`order_venue_answer_book`: the venue's record wins); return their ids.
    Safe to run twice or concurrently: the booking re-checks under the locks."""
    now = now or timezone.now()
    due = (
        Order.objects.filter(
            status=Order.Status.REJECTED,
            reject_code=VENUE_NOT_RECEIVED,
            created_at__gte=now - WRITTEN_OFF_RECHECK_FOR,
            updated_at__lt=now - WRITTEN_OFF_RECHECK_EVERY,
        )
        .select_related("instrument", "venue")
        .order_by("updated_at")[:WRITTEN_OFF_RECHECK_BATCH]
    )
    filled = []
    for order in due:
        try:
            placed = _venue_record(order)
        except Exception:  # a venue error leaves it for the next run
            logger.warning("written-off order %s: the venue did not answer", order.public_id)
            continue
        if placed is not None and placed.status == VenueOrderStatus.FILLED:
            if order_venue_answer_book(order=order, placed=placed).status == Order.Status.FILLED:
                filled.append(order.public_id)
            continue
        # Asked: not again for WRITTEN_OFF_RECHECK_EVERY (the row's last change).
        Order.objects.filter(pk=order.pk, status=Order.Status.REJECTED).update(updated_at=now)
    return filled


def _not_received(*, order_id: int) -> Order:
    """Write off an order the venue has no record of; release its reservation."""
    with transaction.atomic():
        account_id = Order.objects.values_list("account_id", flat=True).get(pk=order_id)
        account = Account.objects.select_for_update().get(pk=account_id)
        order = Order.objects.select_for_update(of=("self",)).get(pk=order_id)
        if order.status not in Order.AT_VENUE_STATUSES:
            return order
        reservation_change(account=account, order=order, cash=ZERO, quantity=ZERO)
        _reject(order, code=VENUE_NOT_RECEIVED, reason="The venue has no record of this order.")
        order.updated_at = timezone.now()
        order.save(
            update_fields=[
                "status",
                "reject_code",
                "reject_reason",
                "reserved_cash",
                "reserved_quantity",
                "updated_at",
            ]
        )
        order_update_broadcast(order=order)
    return order


def orders_reconcile(*, unknown_after: timedelta = UNKNOWN_AT_VENUE_AFTER) -> ReconcileSummary:
    """Reconcile every order still at a venue (see `order_reconcile`), one at a time,
    ask again about recently written-off ones (`written_off_recheck`), then audit the
    reservations (`reservations_audit`)."""
    summary = ReconcileSummary(filled=[], closed=[], still_pending=[])
    at_venue = Order.objects.filter(status__in=Order.AT_VENUE_STATUSES).values_list(
        "pk", "public_id"
    )
    for pk, public_id in at_venue:
        try:
            status = order_reconcile(order_id=pk, unknown_after=unknown_after)
        except Exception:
            logger.exception("orders_reconcile: %s failed", public_id)
            summary.still_pending.append(public_id)
            continue
        if status == Order.Status.FILLED:
            summary.filled.append(public_id)
        elif status in Order.AT_VENUE_STATUSES:
            summary.still_pending.append(public_id)
        else:
            summary.closed.append(public_id)
    summary.filled.extend(written_off_recheck())
    reservations_audit()
    return summary


def reservations_audit() -> list[str]:
    """Make every account's `orders_reserved` equal the reservations of its orders
    still at a venue; return the public ids of the accounts corrected.

    A reservation can only leak through a bug or a hand edit: each
    correction is logged as an error and recorded in the audit log (action
    `order_reservation_corrected`, before and after). Locks each drifting
    account's row; safe to run twice.
    """
    held = dict(
        Order.objects.filter(status__in=Order.AT_VENUE_STATUSES)
        .values_list("account_id")
        .annotate(total=Sum("reserved_cash"))
        .values_list("account_id", "total")
    )
    drifting = Account.objects.exclude(orders_reserved=0).values_list("pk", flat=True)
    corrected = []
    for account_id in sorted(set(drifting) | set(held)):
        with transaction.atomic():
            account = Account.objects.select_for_update().get(pk=account_id)
            expected = (
                Order.objects.filter(account=account, status__in=Order.AT_VENUE_STATUSES).aggregate(
                    total=Sum("reserved_cash")
                )["total"]
                or ZERO
            )
            if account.orders_reserved == expected:
                continue
            logger.error(
                "Account %s reserved %s for orders at venues, its orders hold %s: corrected",
                account.public_id,
                account.orders_reserved,
                expected,
            )
            audit_record(
                actor=None,
                action="order_reservation_corrected",
                obj=account,
                changes={"orders_reserved": [str(account.orders_reserved), str(expected)]},
            )
            row_add(account, orders_reserved=expected - account.orders_reserved)
            corrected.append(account.public_id)
    return corrected
