"""Execute (SPEC §6, seed "Execute Trade"): a market order for a USDC notional.

`order_execute` validates the request, routes it (the venue whose live book
fills the whole size at the best average price, or the venue asked for),
then in ONE transaction with the account row locked: the account checks,
client_order_id idempotency, the pre-trade margin check (fees included),
the Order, the venue fill and its booking through the one fill path
(`trading.services.fills.order_fill_apply`). The "order" push is sent after
commit. A venue that does not confirm in time leaves the Order `pending`
(the API answers 202); `orders_reconcile` settles it later, exactly once.
"""

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from accounts.services.accounts import account_check_can_transact
from portal.errors import (
    DuplicateOrder,
    Forbidden,
    InvalidParams,
    NotFound,
    SlippageExceeded,
)
from trading.broadcasts import order_update_broadcast
from trading.catalog import instrument_get, listings_get
from trading.marketdata.quotes import Outcome
from trading.models import Instrument, Listing, Order, Venue
from trading.selectors import contracts_get
from trading.services.fees import fees_for_fill
from trading.services.fills import fill_notional, order_fill_apply
from trading.services.margin_check import margin_check_action, margin_check_cash_debit
from trading.services.markets import instrument_check_tradable
from trading.services.simulation import (
    RoutedFill,
    decimal_clean,
    order_books_get,
    side_clean,
    trade_change,
    trade_route,
)
from trading.venues import venue_adapter
from trading.venues.base import (
    BPS_PER_UNIT,
    PRICE_LIMIT,
    VenueOrder,
    VenueOrderStatus,
    VenueTimeout,
)

logger = logging.getLogger(__name__)

SLIPPAGE_BPS_MAX = 10_000
CLIENT_ORDER_ID_MAX = 64
# An order the venue never received is rejected once it is this old.
UNKNOWN_AT_VENUE_AFTER = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class ExecuteRequest:
    """A validated execute request; `fingerprint` identifies it for client_order_id reuse."""

    symbol: str  # the instrument's symbol, without the outcome suffix
    outcome: str  # "yes"/"no" for a binary; "" for a perpetual (set once known)
    side: str
    notional: Decimal
    venue: str | None
    slippage_bps: int
    client_order_id: str | None

    @property
    def fingerprint(self) -> str:
        body = {
            "symbol": self.symbol,
            "outcome": self.outcome,
            "side": self.side,
            "notional_usdc": str(self.notional.normalize()),
            "venue": self.venue,
            "slippage_bps": self.slippage_bps,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _symbol_parse(symbol: object) -> tuple[str, str]:
    """'X' → (X, yes); 'X:NO' → (X, no); 'X:YES' → (X, yes)."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise InvalidParams("symbol is required.")
    base, sep, suffix = symbol.strip().partition(":")
    if not sep:
        return base, ""
    try:
        return base, Outcome(suffix.lower()).value
    except ValueError as exc:
        raise InvalidParams(f"Unknown contract {symbol!r}: use SYMBOL or SYMBOL:NO.") from exc


def _request_clean(
    *,
    symbol: object,
    side: object,
    notional_usdc: object,
    venue: object,
    slippage_bps: object,
    client_order_id: object,
) -> ExecuteRequest:
    base, outcome = _symbol_parse(symbol)
    if isinstance(slippage_bps, bool) or not isinstance(slippage_bps, int):
        raise InvalidParams("slippage_bps must be an integer number of basis points.")
    if not 0 <= slippage_bps <= SLIPPAGE_BPS_MAX:
        raise InvalidParams(f"slippage_bps must lie in [0, {SLIPPAGE_BPS_MAX}].")
    if client_order_id is not None and (
        not isinstance(client_order_id, str)
        or not client_order_id
        or len(client_order_id) > CLIENT_ORDER_ID_MAX
    ):
        raise InvalidParams(f"client_order_id must be 1–{CLIENT_ORDER_ID_MAX} characters.")
    if venue is not None and (not isinstance(venue, str) or not venue):
        raise InvalidParams("venue must be a venue code.")
    return ExecuteRequest(
        symbol=base,
        outcome=outcome,
        side=side_clean(side).value,
        notional=decimal_clean(notional_usdc, name="notional_usdc", positive=True),
        venue=venue,
        slippage_bps=slippage_bps,
        client_order_id=client_order_id,
    )


def _instrument_get(request: ExecuteRequest) -> Instrument:
    instrument = instrument_get(symbol=request.symbol)
    if instrument is None:
        raise NotFound(f"Unknown instrument {request.symbol!r}.")
    if not instrument.is_binary and request.outcome:
        raise InvalidParams(f"{instrument.symbol} is a perpetual: it has no YES or NO side.")
    return instrument


def _route(request: ExecuteRequest, instrument: Instrument) -> RoutedFill:
    outcome = Outcome(request.outcome) if request.outcome else None
    books = order_books_get(instrument=instrument, outcome=outcome, venue=request.venue)
    route = trade_route(books=books, side=request.side, notional=request.notional)
    if route is None:
        raise InvalidParams(
            f"Not enough liquidity: no venue's order book can {request.side} "
            f"{request.notional} USDC of {instrument.symbol} right now.",
            code="insufficient_liquidity",
        )
    return route


def _slippage_check(*, request: ExecuteRequest, reference: Decimal, average: Decimal) -> None:
    move = average - reference if request.side == Order.Side.BUY else reference - average
    slippage = move / reference * BPS_PER_UNIT
    if slippage > request.slippage_bps:
        raise SlippageExceeded(
            f"The fill would average {average}, {slippage:.1f} bps from the best price "
            f"{reference}: more than the {request.slippage_bps} bps allowed."
        )


def _worst_price(*, request: ExecuteRequest, reference: Decimal) -> Decimal:
    """The worst average the venue may fill at: the best price moved by slippage_bps."""
    allowed = reference * request.slippage_bps / BPS_PER_UNIT
    return reference + allowed if request.side == Order.Side.BUY else reference - allowed


def _existing(account: Account, request: ExecuteRequest) -> Order | None:
    """The order already placed under this client_order_id, if the body matches."""
    if request.client_order_id is None:
        return None
    order = (
        Order.objects.select_related("instrument", "venue")
        .filter(account=account, client_order_id=request.client_order_id)
        .first()
    )
    if order is not None and order.request_fingerprint != request.fingerprint:
        raise DuplicateOrder(
            f"client_order_id {request.client_order_id!r} was already used for a different "
            f"order ({order.public_id}) on account {account.public_id}."
        )
    return order


def _account_checks(account: Account) -> None:
    if not account.is_custodial:
        raise Forbidden(
            f"Account {account.public_id} is non-custodial: trade on your own venue accounts; "
            "the broker executes for custodial accounts only.",
            code="non_custodial_account",
        )
    account_check_can_transact(account)


def _pretrade_check(
    *,
    account: Account,
    instrument: Instrument,
    request: ExecuteRequest,
    quantity: Decimal,
    price: Decimal,
    venue: Venue,
) -> None:
    """The pre-trade margin check of the fill as routed, fees included."""
    notional = fill_notional(side=request.side, quantity=quantity, price=price)
    fees = fees_for_fill(
        venue=venue, quantity=quantity, price=price, notional=notional, liquidity="taker"
    )
    if instrument.is_binary:
        key = (instrument.pk, request.outcome)
        change = trade_change(
            contract=contracts_get([key])[key],
            side=request.side,
            quantity=quantity,
            notional=notional,
            fee=fees.total,
        )
        margin_check_action(account=account, change=change, action=request.side)
        return
    from trading.services.perps import perp_margin_needed

    needed = perp_margin_needed(
        account=account, instrument=instrument, side=request.side, quantity=quantity, price=price
    )
    margin_check_cash_debit(
        account=account, amount=needed + fees.total, action=f"perp {request.side}"
    )


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
    its NO contract, or a perpetual (BTC-PERP). The Order comes back
    `filled`, or `pending` when the venue did not confirm in time (a 202:
    `orders_reconcile` settles it).

    Locks: the account row (select_for_update) for the whole transaction, so
    concurrent executes on one account check and write one at a time.
    Idempotency: a `client_order_id` already used with the same request
    returns that Order (no second fill); with a different request raises
    DuplicateOrder (409 `duplicate_order`).

    Raises InvalidParams (bad fields; `insufficient_liquidity`), NotFound
    (symbol, venue), Conflict `market_closed` (halted or resolved),
    Forbidden `non_custodial_account` / `kyb_required`, AccountNotActive,
    SlippageExceeded (422), InsufficientMargin (422, incl. a non-margin
    account that would borrow), MarketDataUnavailable (no live book).
    """
    request = _request_clean(
        symbol=symbol,
        side=side,
        notional_usdc=notional_usdc,
        venue=venue,
        slippage_bps=slippage_bps,
        client_order_id=client_order_id,
    )
    instrument = _instrument_get(request)
    if instrument.is_binary and not request.outcome:
        request = replace(request, outcome=Outcome.YES.value)
    existing = _existing(account, request)
    if existing is not None:
        return existing
    instrument_check_tradable(instrument)
    route = _route(request, instrument)
    estimate = route.estimate
    _slippage_check(request=request, reference=estimate.best_price, average=estimate.average_price)
    listing = next(
        listing for listing in listings_get(instrument) if listing.venue.code == route.venue
    )
    with transaction.atomic():
        locked = Account.objects.select_related("owner").select_for_update(of=("self",))
        locked = locked.get(pk=account.pk)
        _account_checks(locked)
        existing = _existing(locked, request)
        if existing is not None:
            return existing
        _pretrade_check(
            account=locked,
            instrument=instrument,
            request=request,
            quantity=estimate.quantity,
            price=estimate.average_price,
            venue=listing.venue,
        )
        now = timezone.now()
        # Saved with its outcome below (one INSERT): filled with its fill, or
        # pending, rejected or cancelled as the venue answered.
        order = Order(
            account=locked,
            instrument=instrument,
            outcome=request.outcome,
            side=request.side,
            order_type=Order.Type.MARKET,
            time_in_force=Order.TimeInForce.IOC,
            status=Order.Status.PENDING,
            notional_usdc=request.notional,
            slippage_bps=request.slippage_bps,
            client_order_id=request.client_order_id,
            request_fingerprint=request.fingerprint,
            venue=listing.venue,
            reference_price=estimate.best_price,
            created_at=now,
            updated_at=now,
        )
        try:
            placed = venue_adapter(listing.venue.code).market_order_place(
                listing,
                request.side,
                notional=request.notional,
                client_order_id=order.public_id,
                outcome=Outcome(request.outcome) if request.outcome else None,
                worst_price=_worst_price(request=request, reference=estimate.best_price),
            )
        except VenueTimeout:
            logger.warning("execute: %s not confirmed by %s", order.public_id, route.venue)
            placed = None
        if placed is None:
            order.save()
        elif placed.reject_code == PRICE_LIMIT:
            # The book moved between routing and the venue: nothing filled.
            raise SlippageExceeded(placed.reason)
        else:
            _venue_order_apply(order=order, account=locked, listing=listing, placed=placed)
        order_update_broadcast(order=order)
    return order


def _venue_order_apply(
    *, order: Order, account: Account, listing: Listing, placed: VenueOrder
) -> None:
    """Book what the venue says happened to `order` (caller holds the locks); a
    new order is saved here."""
    order.venue_order_id = placed.venue_order_id
    if placed.status == VenueOrderStatus.FILLED:
        order_fill_apply(
            order=order,
            account=account,
            quantity=placed.quantity,
            price=placed.average_price,
            venue=listing.venue,
            venue_fill_id=placed.venue_fill_id,
        )
        return
    if placed.status in (VenueOrderStatus.REJECTED, VenueOrderStatus.CANCELLED):
        order.status = (
            Order.Status.REJECTED
            if placed.status == VenueOrderStatus.REJECTED
            else Order.Status.CANCELLED
        )
        order.reject_code = f"venue_{placed.status}"
        order.reject_reason = placed.reason[:255]
    order.updated_at = timezone.now()
    if order._state.adding:
        order.save()
    else:
        order.save(
            update_fields=[
                "venue_order_id",
                "status",
                "reject_code",
                "reject_reason",
                "updated_at",
            ]
        )


@dataclass(frozen=True, slots=True)
class ReconcileSummary:
    filled: list[str]
    closed: list[str]
    still_pending: list[str]

    def as_dict(self) -> dict[str, list[str]]:
        return {"filled": self.filled, "closed": self.closed, "still_pending": self.still_pending}


def order_reconcile(*, order_id: int, unknown_after: timedelta = UNKNOWN_AT_VENUE_AFTER) -> str:
    """Settle one pending market order from the venue's own record; return its status.

    Locks the account row, then the order row (the order execute and the
    fill path take them in); does nothing unless the order is still
    `pending`. Filled at the venue → booked through the one fill path
    (the Fill's unique venue_fill_id backs the row lock: never twice);
    rejected/cancelled → marked so; never received and older than
    `unknown_after` → rejected `venue_not_received`. Safe to run twice or
    concurrently. A venue that still does not answer leaves it pending.
    """
    with transaction.atomic():
        order = Order.objects.select_related("account").get(pk=order_id)
        account = Account.objects.select_for_update().get(pk=order.account_id)
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("instrument", "venue")
            .get(pk=order_id)
        )
        if order.status != Order.Status.PENDING or order.venue is None:
            return order.status
        listing = Listing.objects.select_related("venue", "instrument").get(
            instrument=order.instrument, venue=order.venue
        )
        try:
            placed = venue_adapter(listing.venue.code).order_status(
                listing, client_order_id=order.public_id
            )
        except VenueTimeout:
            return order.status
        if placed is None:
            if timezone.now() - order.created_at < unknown_after:
                return order.status
            order.status = Order.Status.REJECTED
            order.reject_code = "venue_not_received"
            order.reject_reason = "The venue has no record of this order."
            order.updated_at = timezone.now()
            order.save(update_fields=["status", "reject_code", "reject_reason", "updated_at"])
        elif placed.status == VenueOrderStatus.PENDING:
            return order.status
        else:
            _venue_order_apply(order=order, account=account, listing=listing, placed=placed)
        order_update_broadcast(order=order)
        return order.status


def orders_reconcile(*, unknown_after: timedelta = UNKNOWN_AT_VENUE_AFTER) -> ReconcileSummary:
    """Reconcile every pending market order (see `order_reconcile`), one transaction each."""
    summary = ReconcileSummary(filled=[], closed=[], still_pending=[])
    pending = Order.objects.filter(
        status=Order.Status.PENDING, order_type=Order.Type.MARKET
    ).values_list("pk", "public_id")
    for pk, public_id in pending:
        try:
            status = order_reconcile(order_id=pk, unknown_after=unknown_after)
        except Exception:
            logger.exception("orders_reconcile: %s failed", public_id)
            summary.still_pending.append(public_id)
            continue
        if status == Order.Status.FILLED:
            summary.filled.append(public_id)
        elif status == Order.Status.PENDING:
            summary.still_pending.append(public_id)
        else:
            summary.closed.append(public_id)
    return summary
