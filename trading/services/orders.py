"""Limit and market orders (seed 002): place, match, modify, cancel.

An order names a contract by symbol ("TRUMP-WIN" is its YES contract,
"TRUMP-WIN:NO" its NO contract, "BTC-PERP" a perpetual), a side, a size in
contracts and, for a limit order, a limit price. Time in force:

- GTC: fills what crosses the book now and rests the remainder (status
  `open` / `partially_filled`); `orders_match`, run by the margin engine on
  every tick, sends it again when the book crosses its limit.
- IOC: fills what crosses now and cancels the rest (market orders are IOC).
- FOK: fills the whole quantity now or is rejected with nothing filled.

The broker holds resting orders; every fill comes from the venue. An order
the broker's copy of its venue's book crosses is sent to the venue as an
immediate-or-cancel order (fill-or-kill for FOK) for what is left of it at
its limit, in the three steps of `trading.services.execute`: submitted under
the account lock with its worst case reserved (`_limit_submit`), the venue
call outside any lock (in the request for a new or modified order; through
the outbox task `trading.order_send` for a resting order the tick found
crossing, so the engine never calls a venue), then the venue's answer booked
(`order_venue_answer_book`): what the venue did not fill rests again (GTC,
not sent again for `LIMIT_RESEND_AFTER` when nothing filled), or is
cancelled (IOC) or rejected (FOK). Each send is its own order at the venue
(`Order.venue_client_id`). Fills are taker fills.

An order that has filled and carries a take-profit and/or a stop-loss arms
them: when the mark reaches the take-profit (a long: mark ≥ TP; a short:
mark ≤ TP) or the stop-loss (a long: mark ≤ SL; a short: mark ≥ SL), a child
market order (parent = the original) closes the filled quantity. A trigger
fires once: the child order records it. The child goes to the venue like an
execute (`trading.services.execute`): submitted under the account lock (what
it sells held for it), sent after commit through the outbox
(`order_send_enqueue`, no venue call in the engine's tick), booked when the
venue answers; what the venue did not fill is cancelled (IOC).

Every fill goes through `trading.services.fills.order_fill_apply` (the one
fill path: fees, position, journal, Fill, order totals) at the venue's
price, inside one transaction with the account row locked, then the order
row. Lock order everywhere: account, then order, then position.

Errors: InvalidParams (bad input), NotFound (unknown symbol or order),
Conflict `market_closed` (halted / resolved market), `duplicate_order`
(client_order_id reused), `order_not_active` (modify / cancel of a final
order), InsufficientMargin / InsufficientFunds (pre-trade check),
AccountNotActive / Forbidden (account checks), MarketDataUnavailable.
"""

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import Account
from accounts.services.accounts import account_check_can_order
from portal import format as fmt
from portal.errors import Conflict, DomainError, ErrorCode, InvalidParams, NotFound
from portal.money import PRICE_DECIMAL_PLACES, QUANTITY_DECIMAL_PLACES, ZERO
from trading.broadcasts import order_update_broadcast
from trading.catalog import listings_get
from trading.enqueue import order_send_enqueue
from trading.marketdata.quotes import OrderBook, quantize_price
from trading.marketdata.store import MarketDataUnavailable
from trading.models import Instrument, LeverageSetting, Listing, Order, Position
from trading.selectors import contracts_get
from trading.services.execute import (
    CLIENT_ORDER_ID_MAX,
    order_replay_get,
    order_venue_answer_book,
    order_venue_send,
    request_fingerprint,
    reservation_change,
    sale_check,
    slippage_bps_clean,
)
from trading.services.fills import fill_notional, taker_fee
from trading.services.margin_check import margin_check_action, margin_refusal
from trading.services.markets import instrument_check_tradable
from trading.services.order_status import RESTING, order_status_set
from trading.services.perps import perp_order_margin, perp_position_get
from trading.services.positions import sale_proceeds
from trading.services.routing import (
    Contract,
    VenueBook,
    contract_from_symbol,
    listing_get,
    order_books_get,
    trade_route,
)
from trading.services.simulation import (
    PortfolioChange,
    Projection,
    binary_buy_change,
    change_simulate,
    decimal_clean,
    held_at_venue,
    slippage_limit,
)
from trading.venues import venue_adapter
from trading.venues.base import QUANTITY_QUANTUM, book_walk

logger = logging.getLogger(__name__)

ACTIVE = Order.ACTIVE_STATUSES


# ---------------------------------------------------------------------------
# Input


def _choice(value: object, choices: type, *, name: str) -> str:
    text = str(value).strip()
    for choice in choices:
        if text.lower() == str(choice.value).lower():
            return choice.value
    allowed = ", ".join(str(choice.value) for choice in choices)
    raise InvalidParams(f"{name} must be one of {allowed}, not {value!r}.")


def _price_clean(value: object, *, name: str, instrument: Instrument) -> Decimal:
    """A price on the instrument's tick grid; for a binary strictly inside (0, 1)."""
    price = decimal_clean(value, name=name, places=PRICE_DECIMAL_PLACES, positive=True)
    if instrument.is_binary and not price < 1:
        raise InvalidParams(f"{name} of a binary contract must lie strictly between 0 and 1.")
    if price % instrument.tick_size:
        raise InvalidParams(
            f"{name} {price} is not on {instrument.symbol}'s tick grid of "
            f"{instrument.tick_size.normalize()}."
        )
    return price


def _triggers_clean(
    *,
    instrument: Instrument,
    side: str,
    price: Decimal | None,
    take_profit: object,
    stop_loss: object,
    kept: tuple[Decimal | None, Decimal | None] = (None, None),
) -> tuple[Decimal | None, Decimal | None]:
    """The take-profit and stop-loss on the instrument's grid (not given: `kept`), on
    a buy only for a binary; TP above and SL below the limit `price` for a buy
    (long), the reverse for a sell (short)."""

    def clean(value: object, name: str, default: Decimal | None) -> Decimal | None:
        return default if value is None else _price_clean(value, name=name, instrument=instrument)

    take_profit = clean(take_profit, "take_profit", kept[0])
    stop_loss = clean(stop_loss, "stop_loss", kept[1])
    if instrument.is_binary and side == Order.Side.SELL and (take_profit or stop_loss):
        raise InvalidParams(
            "Binary positions are long-only: take-profit and stop-loss go on the buy order."
        )
    if price is None:
        return take_profit, stop_loss
    long = side == Order.Side.BUY
    if take_profit is not None and (take_profit <= price if long else take_profit >= price):
        where = "above" if long else "below"
        raise InvalidParams(f"take_profit must be {where} the price {price} for a {side}.")
    if stop_loss is not None and (stop_loss >= price if long else stop_loss <= price):
        where = "below" if long else "above"
        raise InvalidParams(f"stop_loss must be {where} the price {price} for a {side}.")
    return take_profit, stop_loss


def _client_order_id_clean(value: object) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text or len(text) > CLIENT_ORDER_ID_MAX or not text.isprintable():
        raise InvalidParams(
            f"client_order_id must be 1 to {CLIENT_ORDER_ID_MAX} printable characters."
        )
    return text


def _leverage_for(*, account: Account, instrument: Instrument, leverage: object) -> int:
    """A perp order's leverage: as given (1…max), else the account's setting, else the default."""
    if leverage is None:
        setting = LeverageSetting.objects.filter(account=account, instrument=instrument).first()
        return setting.leverage if setting else instrument.default_leverage
    if isinstance(leverage, bool) or not str(leverage).isdigit():
        raise InvalidParams("leverage must be a whole number.")
    value = int(leverage)
    if not 1 <= value <= instrument.max_leverage:
        raise InvalidParams(
            f"leverage for {instrument.symbol} must be between 1 and {instrument.max_leverage}."
        )
    return value


# ---------------------------------------------------------------------------
# Books and the pre-trade check


def _book(listing: Listing, contract: Contract) -> OrderBook | None:
    """The listing's live book for the contract (None: no live quote); read outside any lock."""
    try:
        return venue_adapter(listing.venue.code).order_book(listing, outcome=contract.book_outcome)
    except MarketDataUnavailable:
        return None


def _venue_pick(
    *, contract: Contract, side: str, quantity: Decimal, limit: Decimal | None
) -> tuple[Listing, OrderBook | None]:
    """Where an order goes, read before any lock is taken (`trade_route`).

    The venue whose book fills the most of it now at the best average price;
    when nothing crosses, the venue with the best top of book for its side
    (a GTC order rests there); with no live book anywhere, the first
    listing and no book. NotFound when the contract is not listed.
    """
    listings = listings_get(contract.instrument)
    if not listings:
        raise NotFound(f"{contract.instrument.symbol} is not listed on any active venue.")
    try:
        books = order_books_get(instrument=contract.instrument, outcome=contract.book_outcome)
    except MarketDataUnavailable:
        return listings[0], None
    route = trade_route(books=books, side=side, quantity=quantity, limit=limit, partial=True)
    if route is None:  # nothing crosses: the best top of book
        sided = [vb for vb in books if (vb.book.asks if side == Order.Side.BUY else vb.book.bids)]
        if not sided:
            return listing_get(contract.instrument, books[0].venue), books[0].book
        route_book = min(sided, key=lambda vb: _top_rank(vb, side))
    else:
        route_book = next(vb for vb in books if vb.venue == route.venue)
    return listing_get(contract.instrument, route_book.venue), route_book.book


def _top_rank(venue_book: VenueBook, side: str) -> Decimal:
    """Lower ranks better: the lowest ask for a buy, the highest bid for a sell."""
    if side == Order.Side.BUY:
        return venue_book.book.asks[0].price
    return -venue_book.book.bids[0].price


def crossing_levels(
    book: OrderBook | None, *, side: str, limit: Decimal | None, quantity: Decimal
) -> tuple[tuple[Decimal, Decimal], ...]:
    """(price, quantity) to fill, best first: asks ≤ limit for a buy, bids ≥ limit
    for a sell (any price without a limit), up to `quantity` in total: the
    levels the one book walk (`book_walk`) takes."""
    if book is None or quantity <= 0:
        return ()
    return book_walk(book, side, quantity=quantity, limit=limit).levels


def _margin_check(
    *,
    account: Account,
    contract: Contract,
    side: str,
    quantity: Decimal,
    price: Decimal,
    leverage: int | None,
    check: Callable[..., Any] = margin_check_action,
) -> Any:
    """The pre-trade check for `quantity` at `price` (the limit, the worst case):
    what `check(account=, change=, action=)` returns for the change it projects;
    None when the order only reduces risk.

    A binary buy projects the cash paid and the contracts added; a sell only
    reduces risk (the position must hold it, and it must raise something:
    InvalidParams). A perp order
    allocates notional / leverage of isolated margin, unless it only reduces
    the position. `check` is `margin_check_action` (under the caller's account
    lock: InsufficientMargin / InsufficientFunds) or, for the ticket's preview,
    `_margin_verdict` (no lock, nothing raised).
    """
    instrument = contract.instrument
    if instrument.is_binary:
        if side == Order.Side.SELL:
            sale_proceeds(quantity=quantity, price=price, symbol=contract.symbol)
            sale_check(account=account, contract=contract, quantity=quantity)
            return None
        key = (instrument.pk, contract.outcome)
        change = binary_buy_change(
            contract=contracts_get([key])[key], quantity=quantity, price=price
        )
        return check(account=account, change=change, action="buy")
    margin = _perp_margin(
        account=account,
        instrument=instrument,
        side=side,
        quantity=quantity,
        price=price,
        leverage=leverage,
    )
    if margin is None:
        return None  # it only reduces the position: no margin is allocated
    return check(account=account, change=PortfolioChange(cash=-margin), action="perp order")


def _perp_margin(
    *,
    account: Account,
    instrument: Instrument,
    side: str,
    quantity: Decimal,
    price: Decimal,
    leverage: int | None,
) -> Decimal | None:
    """The isolated margin a perp order allocates at `price` given the account's
    position (`perp_order_margin`; None: it only reduces the position)."""
    held = perp_position_get(account=account, instrument=instrument).quantity
    return perp_order_margin(
        held=held, side=side, quantity=quantity, price=price, leverage=leverage
    )


def _margin_verdict(
    *, account: Account, change: PortfolioChange, action: str
) -> tuple[Projection, DomainError | None]:
    """The projection of `change` and the error `margin_check_action` would raise
    for it (None: it passes), without a lock: the ticket's preview."""
    projection = change_simulate(account=account, change=change)
    return projection, margin_refusal(projection, account=account, action=action)


# ---------------------------------------------------------------------------
# Sending to the venue


def _remaining(order: Order) -> Decimal:
    return (order.quantity or ZERO) - order.filled_quantity


def _status_after_fills(order: Order) -> str:
    if _remaining(order) <= 0:
        return Order.Status.FILLED
    return Order.Status.PARTIALLY_FILLED if order.filled_quantity > 0 else Order.Status.OPEN


def _limit_submit(
    *, order: Order, account: Account, levels: tuple[tuple[Decimal, Decimal], ...]
) -> None:
    """Make what is left of `order` a send to its venue (`submitted`): its remaining
    quantity at its limit, reserving its worst case until the venue answers (a buy:
    the cost at the highest price `levels` reach, fees included; a perp: the margin
    it would allocate there, and the fee; a binary sell: its contracts). The caller
    holds the account and order locks and sends it after commit."""
    remaining = _remaining(order)
    price = max(price for price, _ in levels)
    fee = taker_fee(venue=order.venue, side=order.side, quantity=remaining, price=price)
    cash, quantity = ZERO, ZERO
    if order.instrument.is_binary and order.side == Order.Side.SELL:
        quantity = remaining
    elif order.instrument.is_binary:
        cash = fill_notional(side=order.side, quantity=remaining, price=price) + fee
    else:
        margin = _perp_margin(
            account=account,
            instrument=order.instrument,
            side=order.side,
            quantity=remaining,
            price=price,
            leverage=order.leverage,
        )
        cash = (margin or ZERO) + fee
    reservation_change(account=account, order=order, cash=cash, quantity=quantity)
    order.status = Order.Status.SUBMITTED
    order.reject_code = order.reject_reason = ""
    order.venue_sends += 1
    order.venue_resend_after = None
    order.reference_price = order.reference_price or levels[0][0]
    order.updated_at = timezone.now()
    order.save()


def _open(*, order: Order, account: Account, book: OrderBook | None) -> bool:
    """Decide a new (or modified) order against the broker's copy of its venue's book,
    under the caller's locks; save it; True when it is to be sent now.

    What crosses is sent to the venue (`_limit_submit`); with nothing crossing, GTC
    rests, IOC is cancelled; FOK is rejected unless the book holds all of it.
    """
    remaining = _remaining(order)
    levels = crossing_levels(book, side=order.side, limit=order.limit_price, quantity=remaining)
    available = sum((quantity for _, quantity in levels), ZERO)
    if order.time_in_force == Order.TimeInForce.FOK and available < remaining:
        order.status, order.reject_code = Order.Status.REJECTED, "fok_not_filled"
        order.reject_reason = (
            f"Fill or kill: only {fmt.quantity(available, 6)} of "
            f"{fmt.quantity(remaining, 6)} could fill now."
        )
    elif levels:
        _limit_submit(order=order, account=account, levels=levels)
        return True
    elif order.time_in_force != Order.TimeInForce.GTC:
        order.status, order.reject_code = Order.Status.CANCELLED, "ioc_unfilled"
        order.reject_reason = "Immediate or cancel: nothing crossed the book."
    else:
        order.status = _status_after_fills(order)
    order.updated_at = timezone.now()
    order.save()
    return False


def _sent(order: Order, *, send: bool) -> Order:
    """After the caller's commit: a submitted send goes to the venue and its answer is
    booked (`order_venue_answer_book`); the order as it then stands."""
    if not send:
        return order
    return order_venue_answer_book(order=order, placed=order_venue_send(order))


# ---------------------------------------------------------------------------
# Place, modify, cancel


def order_place(
    *,
    account: Account,
    symbol: str,
    side: str,
    order_type: str = Order.Type.LIMIT,
    time_in_force: str = Order.TimeInForce.GTC,
    quantity: Decimal | str,
    price: Decimal | str | None,
    take_profit: Decimal | str | None = None,
    stop_loss: Decimal | str | None = None,
    client_order_id: str | None = None,
    leverage: int | None = None,
    request_fingerprint: str | None = None,
    ops_close: bool = False,
) -> Order:
    """Place an order and match it against the venue's book at once; return it.

    Validates the input (InvalidParams with what is wrong), picks the venue
    and reads its book (before any lock), then inside one transaction with
    the account row locked: the account checks, `client_order_id`
    idempotency (the same request returns the original order, marked
    `replayed`; another request is Conflict `duplicate_order`; a caller such
    as `position_close` may identify its request by `request_fingerprint`),
    the pre-trade margin check at the limit price (buys; sells must hold the
    contracts), then the order is created and, what crosses, submitted;
    after commit that part is sent to the venue and its answer booked (see
    the module docstring). Returns the order as it stands then (FOK not
    filled: status `rejected`; the venue did not answer in time: `pending`,
    settled by `orders_reconcile`). Raises Conflict
    `market_closed` for a halted or resolved market. `ops_close` is
    `position_close`'s, for a force-close ops decided (see
    `account_check_can_order`).
    """
    request = order_request_clean(
        symbol=symbol,
        side=side,
        order_type=order_type,
        time_in_force=time_in_force,
        quantity=quantity,
        price=price,
        take_profit=take_profit,
        stop_loss=stop_loss,
        leverage=leverage,
    )
    contract, side, quantity = request.contract, request.side, request.quantity
    client_order_id = _client_order_id_clean(client_order_id)
    fingerprint = request_fingerprint or _fingerprint(request)
    existing = order_replay_get(
        account=account, client_order_id=client_order_id, fingerprint=fingerprint
    )
    if existing is not None:
        return existing
    listing, book = _market_get(request)

    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        account_check_can_order(locked, ops_close=ops_close)
        existing = order_replay_get(
            account=locked, client_order_id=client_order_id, fingerprint=fingerprint
        )
        if existing is not None:
            return existing
        lev = _order_leverage(account=locked, request=request)
        check_price, _ = _order_check(account=locked, request=request, book=book, leverage=lev)
        now = timezone.now()
        order = Order(
            account=locked,
            instrument=contract.instrument,
            outcome=contract.outcome,
            side=side,
            order_type=request.order_type,
            time_in_force=request.time_in_force,
            status=Order.Status.OPEN,
            quantity=quantity,
            limit_price=request.limit,
            take_profit=request.take_profit,
            stop_loss=request.stop_loss,
            leverage=lev,
            client_order_id=client_order_id,
            request_fingerprint=fingerprint,
            venue=listing.venue,
            reference_price=check_price,
            created_at=now,
            updated_at=now,
        )
        send = _open(order=order, account=locked, book=book)
        order_update_broadcast(order=order)
    return _sent(order, send=send)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order as `order_place` validated it (market: `limit` None, IOC or FOK)."""

    contract: Contract
    side: str
    order_type: str
    time_in_force: str
    quantity: Decimal
    limit: Decimal | None
    take_profit: Decimal | None
    stop_loss: Decimal | None
    leverage: object


def _market_get(request: OrderRequest) -> tuple[Listing, OrderBook | None]:
    """The order's market must be open; its venue and book (`_venue_pick`), a live
    book for IOC / FOK (MarketDataUnavailable)."""
    contract = request.contract
    instrument = contract.instrument
    instrument_check_tradable(instrument)
    listing, book = _venue_pick(
        contract=contract, side=request.side, quantity=request.quantity, limit=request.limit
    )
    if book is None and request.time_in_force != Order.TimeInForce.GTC:
        # Says why there is no book: prices delayed (market_data_stale) or none at all.
        order_books_get(instrument=instrument, outcome=contract.book_outcome)
        raise MarketDataUnavailable(f"No live prices for {instrument.symbol} right now.")
    return listing, book


def _order_leverage(*, account: Account, request: OrderRequest) -> int | None:
    """A perp order's leverage (`_leverage_for`); None for a binary."""
    instrument = request.contract.instrument
    if instrument.is_binary:
        return None
    return _leverage_for(account=account, instrument=instrument, leverage=request.leverage)


def _order_check(
    *,
    account: Account,
    request: OrderRequest,
    book: OrderBook | None,
    leverage: int | None,
    check: Callable[..., Any] = margin_check_action,
) -> tuple[Decimal | None, Any]:
    """A new order's pre-trade check (`_margin_check`) at its limit, or a market
    order's worst level it would take now: that price (None: nothing to take, no
    check) and what the check returned."""
    price = request.limit
    if price is None:  # market: the worst level it would take
        fills = crossing_levels(book, side=request.side, limit=None, quantity=request.quantity)
        price = fills[-1][0] if fills else None
    if price is None:
        return None, None
    return price, _margin_check(
        account=account,
        contract=request.contract,
        side=request.side,
        quantity=request.quantity,
        price=price,
        leverage=leverage,
        check=check,
    )


def order_request_clean(
    *,
    symbol: object,
    side: object,
    order_type: object = Order.Type.LIMIT,
    time_in_force: object = Order.TimeInForce.GTC,
    quantity: object,
    price: object,
    take_profit: object = None,
    stop_loss: object = None,
    leverage: object = None,
) -> OrderRequest:
    """Validate an order's fields as `order_place` does (InvalidParams saying what is
    wrong; NotFound for an unknown symbol): its one validation, shared by the
    ticket's preview (`order_place_preview`)."""
    contract = contract_from_symbol(symbol)
    instrument = contract.instrument
    side = _choice(side, Order.Side, name="side")
    order_type = _choice(order_type, Order.Type, name="order_type")
    time_in_force = _choice(time_in_force, Order.TimeInForce, name="time_in_force")
    quantity = decimal_clean(
        quantity, name="quantity", places=QUANTITY_DECIMAL_PLACES, positive=True
    )
    if order_type == Order.Type.MARKET:
        if price is not None:
            raise InvalidParams("A market order has no price; use a limit order.")
        if time_in_force == Order.TimeInForce.GTC:
            time_in_force = Order.TimeInForce.IOC
        if take_profit is not None or stop_loss is not None:
            raise InvalidParams("Take-profit and stop-loss need a limit order.")
        limit = None
    else:
        if price is None:
            raise InvalidParams("A limit order needs a price.")
        limit = _price_clean(price, name="price", instrument=instrument)
    take_profit, stop_loss = _triggers_clean(
        instrument=instrument, side=side, price=limit, take_profit=take_profit, stop_loss=stop_loss
    )
    if instrument.is_binary and leverage is not None:
        raise InvalidParams("leverage applies to perpetuals only.")
    return OrderRequest(
        contract=contract,
        side=side,
        order_type=order_type,
        time_in_force=time_in_force,
        quantity=quantity,
        limit=limit,
        take_profit=take_profit,
        stop_loss=stop_loss,
        leverage=leverage,
    )


@dataclass(frozen=True, slots=True)
class OrderPlacePreview:
    """What `order_place` would do now, without placing anything.

    `fills`: the (price, quantity) levels it would take at once, as a taker,
    best first (`crossing_levels`, what `_open` sends to the venue); `fees`:
    each of those fills' fees as `order_fill_apply` charges them; `resting`:
    what a GTC order leaves on the book, `cancelled`: what IOC cancels;
    `fok_rejected`: FOK cannot fill it all now. `projection` / `refusal`:
    the pre-trade check's projection (None when the order only reduces risk,
    or a market order finds nothing to take) and the error the order would
    be refused with (None: it passes).
    """

    request: OrderRequest
    venue: str
    book: OrderBook | None
    leverage: int | None
    check_price: Decimal | None
    fills: tuple[tuple[Decimal, Decimal], ...]
    fees: Decimal
    resting: Decimal
    cancelled: Decimal
    fok_rejected: bool
    projection: Projection | None
    refusal: DomainError | None

    @property
    def fill_quantity(self) -> Decimal:
        return sum((quantity for _, quantity in self.fills), ZERO)

    @property
    def fill_average_price(self) -> Decimal | None:
        filled = self.fill_quantity
        if not filled:
            return None
        return quantize_price(sum((p * q for p, q in self.fills), ZERO) / filled)


def order_place_preview(*, account: Account, **fields: object) -> OrderPlacePreview:
    """`order_place`'s steps for `fields` (its keyword arguments but the
    client_order_id), in its order, without a lock and without writing: the
    one validation (`order_request_clean`, raised), the market's state, the
    venue and its book (`_venue_pick`), the account checks, the leverage, the
    pre-trade check at the price `order_place` checks (`_order_check`, judged
    by `_margin_verdict`: the verdict `margin_check_action` raises) and the
    fills `_open` would send for now with their fees. A refusal before the
    pre-trade check (market closed, no live book for IOC / FOK, the account,
    a sale beyond the position) is raised as the order would raise it.
    """
    request = order_request_clean(**fields)
    side, quantity = request.side, request.quantity
    listing, book = _market_get(request)
    account = Account.objects.select_related("owner").get(pk=account.pk)  # as order_place reads it
    account_check_can_order(account)
    leverage = _order_leverage(account=account, request=request)
    check_price, verdict = _order_check(
        account=account, request=request, book=book, leverage=leverage, check=_margin_verdict
    )
    projection, refusal = verdict or (None, None)
    fills = crossing_levels(book, side=side, limit=request.limit, quantity=quantity)
    available = sum((q for _, q in fills), ZERO)
    fok_rejected = request.time_in_force == Order.TimeInForce.FOK and available < quantity
    if fok_rejected:
        fills = ()
    fees = sum(
        (
            taker_fee(venue=listing.venue, side=side, quantity=filled, price=price)
            for price, filled in fills
        ),
        ZERO,
    )
    left = ZERO if fok_rejected else quantity - available
    gtc = request.time_in_force == Order.TimeInForce.GTC
    return OrderPlacePreview(
        request=request,
        venue=listing.venue.code,
        book=book,
        leverage=leverage,
        check_price=check_price,
        fills=fills,
        fees=fees,
        resting=left if gtc else ZERO,
        cancelled=ZERO if gtc else left,
        fok_rejected=fok_rejected,
        projection=projection,
        refusal=refusal,
    )


def _fingerprint(request: OrderRequest) -> str:
    """SHA-256 of an order request as validated, for client_order_id reuse."""

    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value.normalize())

    body = {
        "symbol": request.contract.symbol,
        "side": request.side,
        "order_type": request.order_type,
        "time_in_force": request.time_in_force,
        "quantity": text(request.quantity),
        "price": text(request.limit),
        "take_profit": text(request.take_profit),
        "stop_loss": text(request.stop_loss),
        "leverage": None if request.leverage is None else str(request.leverage),
    }
    return request_fingerprint(body)


def _order_locked(*, account: Account, order_id: str | None, client_order_id: str | None) -> Order:
    """The account's order by public id or client order id, row-locked (NotFound)."""
    if (order_id is None) == (client_order_id is None):
        raise InvalidParams("Give exactly one of order_id or client_order_id.")
    lookup = (
        {"public_id": order_id} if order_id is not None else {"client_order_id": client_order_id}
    )
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("instrument", "venue")
        .filter(account=account, **lookup)
        .first()
    )
    if order is None:
        which = order_id if order_id is not None else f"client_order_id {client_order_id!r}"
        raise NotFound(f"No order {which} in account {account.public_id}.")
    return order


def _resting_book(
    *, account: Account, order_id: str | None, client_order_id: str | None
) -> OrderBook | None:
    """The live book an order rests on, read before its locks are taken (None: none)."""
    order = (
        Order.objects.select_related("instrument", "venue")
        .filter(account=account)
        .filter(
            Q(public_id=order_id) if order_id is not None else Q(client_order_id=client_order_id)
        )
        .first()
    )
    if order is None or order.venue is None:
        return None
    try:
        listing = listing_get(order.instrument, order.venue.code)
    except NotFound:
        return None
    return _book(listing, Contract(order.instrument, order.outcome))


def _active_check(order: Order) -> None:
    """Only a resting order changes: one at a venue is settled by the venue's answer."""
    if order.status in Order.AT_VENUE_STATUSES:
        raise Conflict(
            f"Order {order.public_id} is at the venue ({order.status}): it cannot change "
            "now; its fill or refusal is booked as soon as the venue answers.",
            code=ErrorCode.ORDER_NOT_ACTIVE,
        )
    if order.status not in ACTIVE:
        raise Conflict(
            f"Order {order.public_id} is {order.status}: only active orders change.",
            code=ErrorCode.ORDER_NOT_ACTIVE,
        )


def order_modify(
    *,
    account: Account,
    order_id: str | None = None,
    client_order_id: str | None = None,
    price: Decimal | str | None = None,
    quantity: Decimal | str | None = None,
    take_profit: Decimal | str | None = None,
    stop_loss: Decimal | str | None = None,
) -> Order:
    """Change an active limit order's price, quantity, take-profit or stop-loss.

    Under the account lock, then the order's: the order must be active
    (Conflict `order_not_active`) and its market open; the new quantity may
    not be below what has filled; validation and the margin check (on what
    is left, at the new price) run again. If the new price crosses the book
    the order fills at once, like a new GTC order. Returns the order.
    """
    if price is None and quantity is None and take_profit is None and stop_loss is None:
        raise InvalidParams("Give a new price, quantity, take_profit or stop_loss.")
    book = _resting_book(account=account, order_id=order_id, client_order_id=client_order_id)
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        account_check_can_order(locked)
        order = _order_locked(account=locked, order_id=order_id, client_order_id=client_order_id)
        _active_check(order)
        instrument = order.instrument
        instrument_check_tradable(instrument)
        if order.order_type != Order.Type.LIMIT:
            raise InvalidParams("Only limit orders can be modified.")
        new_price = (
            order.limit_price
            if price is None
            else _price_clean(price, name="price", instrument=instrument)
        )
        new_quantity = (
            order.quantity
            if quantity is None
            else decimal_clean(
                quantity, name="quantity", places=QUANTITY_DECIMAL_PLACES, positive=True
            )
        )
        if new_quantity <= order.filled_quantity:
            raise InvalidParams(
                f"quantity must be above the {fmt.quantity(order.filled_quantity, 6)} already "
                "filled."
            )
        new_tp, new_sl = _triggers_clean(
            instrument=instrument,
            side=order.side,
            price=new_price,
            take_profit=take_profit,
            stop_loss=stop_loss,
            kept=(order.take_profit, order.stop_loss),
        )
        contract = Contract(instrument, order.outcome)
        remaining = new_quantity - order.filled_quantity
        _margin_check(
            account=locked,
            contract=contract,
            side=order.side,
            quantity=remaining,
            price=new_price,
            leverage=order.leverage,
        )
        order.limit_price, order.quantity = new_price, new_quantity
        order.take_profit, order.stop_loss = new_tp, new_sl
        order.updated_at = timezone.now()
        order.save(
            update_fields=["limit_price", "quantity", "take_profit", "stop_loss", "updated_at"]
        )
        send = _open(order=order, account=locked, book=book)
        order_update_broadcast(order=order)
    return _sent(order, send=send)


def order_cancel(
    *, account: Account, order_id: str | None = None, client_order_id: str | None = None
) -> Order:
    """Cancel an active order by public id or client order id; return it.

    Under the order's row lock. NotFound for no such order in the account,
    Conflict `order_not_active` for one already filled, cancelled or
    rejected. What has filled stays filled.
    """
    with transaction.atomic():
        order = _order_locked(account=account, order_id=order_id, client_order_id=client_order_id)
        _active_check(order)
        order_status_set(
            order,
            status=Order.Status.CANCELLED,
            code="cancelled",
            reason="Cancelled by the customer.",
        )
        order_update_broadcast(order=order)
    return order


TRIGGERS = ("take_profit", "stop_loss")


def order_triggers_cancel(
    *,
    account: Account,
    order_id: str | None = None,
    client_order_id: str | None = None,
    which: str | None = None,
) -> Order:
    """Remove an order's take-profit, stop-loss or both (`which`: "take_profit",
    "stop_loss", None for both) before they fire: on a resting order or a filled one
    whose triggers are still waiting. Returns the order.

    Under the order's row lock; a trigger that fires re-reads the order under its own
    locks and fires only a trigger still set, so after this returns, a removed one
    never fires. Safe to repeat: removing what is not set changes nothing. NotFound for
    no such order in the account; Conflict `order_not_active` once a trigger has
    fired (it placed its closing order) or for an order that was cancelled or rejected
    before anything filled; InvalidParams for another `which`.
    """
    if which is not None and which not in TRIGGERS:
        raise InvalidParams("which must be take_profit or stop_loss (absent: both).")
    removed = TRIGGERS if which is None else (which,)
    with transaction.atomic():
        order = _order_locked(account=account, order_id=order_id, client_order_id=client_order_id)
        child = order.children.order_by("id").first()
        if child is not None:
            raise Conflict(
                f"Order {order.public_id}'s take-profit / stop-loss already fired: it placed "
                f"order {child.public_id}.",
                code=ErrorCode.ORDER_NOT_ACTIVE,
            )
        if order.status not in ACTIVE and order.filled_quantity <= 0:
            raise Conflict(
                f"Order {order.public_id} is {order.status} with nothing filled: it has no "
                "take-profit or stop-loss to remove.",
                code=ErrorCode.ORDER_NOT_ACTIVE,
            )
        changed = [name for name in removed if getattr(order, name) is not None]
        if changed:
            for name in changed:
                setattr(order, name, None)
            order.updated_at = timezone.now()
            order.save(update_fields=[*changed, "updated_at"])
            order_update_broadcast(order=order)
    return order


# ---------------------------------------------------------------------------
# Matching resting orders and firing take-profit / stop-loss (every tick)


def _trigger_fired(order: Order, mark: Decimal) -> str | None:
    """'take_profit' / 'stop_loss' when `mark` reaches one of a filled order's triggers."""
    long = order.side == Order.Side.BUY
    if order.take_profit is not None and (
        mark >= order.take_profit if long else mark <= order.take_profit
    ):
        return "take_profit"
    if order.stop_loss is not None and (
        mark <= order.stop_loss if long else mark >= order.stop_loss
    ):
        return "stop_loss"
    return None


def _match_resting(*, order_id: int, book: OrderBook) -> bool:
    """Send one resting order that `book` (the broker's copy) now crosses to its venue;
    True if it was sent.

    Locks the account, then the order, and re-checks under the locks: still
    resting, market open, still crossing, and the pre-trade check for what
    would fill (a buy's margin, a sale's position and size). An order that
    can no longer fill is cancelled with the reason. Otherwise it becomes a
    send (`_limit_submit`: submitted, its worst case reserved) that the
    outbox task `trading.order_send` places after commit: the engine's tick
    never calls a venue.
    """
    with transaction.atomic():
        account_id = Order.objects.values_list("account_id", flat=True).get(pk=order_id)
        account = Account.objects.select_for_update().get(pk=account_id)
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("instrument", "venue")
            .get(pk=order_id)
        )
        if order.status not in RESTING or order.instrument.status != Instrument.Status.OPEN:
            return False
        levels = crossing_levels(
            book, side=order.side, limit=order.limit_price, quantity=_remaining(order)
        )
        if not levels:
            return False
        quantity = sum((q for _, q in levels), ZERO)
        try:
            _margin_check(
                account=account,
                contract=Contract(order.instrument, order.outcome),
                side=order.side,
                quantity=quantity,
                price=levels[-1][0],
                leverage=order.leverage,
            )
        except DomainError as exc:  # margin, position, size: cancel; the customer re-places
            order_status_set(
                order, status=Order.Status.CANCELLED, code=exc.code, reason=exc.message
            )
            order_update_broadcast(order=order)
            logger.info("Resting order %s cancelled: %s", order.public_id, exc.message)
            return False
        _limit_submit(order=order, account=account, levels=levels)
        order_send_enqueue(order_id=order.pk, send=order.venue_sends)
        order_update_broadcast(order=order)
    return True


def _trigger_fire(*, order_id: int, trigger: str, book: OrderBook) -> Order | None:
    """Close a filled order's quantity with a child market order; return the child.

    Under the account lock, then the parent's: the trigger fires once (the
    child order records it, whether it filled or not). The parent's unfilled
    remainder is cancelled first. The child closes at most what the position
    still holds, at the book's prices (IOC: the rest is cancelled).
    """
    with transaction.atomic():
        account_id = Order.objects.values_list("account_id", flat=True).get(pk=order_id)
        account = Account.objects.select_for_update().get(pk=account_id)
        parent = (
            Order.objects.select_for_update(of=("self",))
            .select_related("instrument", "venue")
            .get(pk=order_id)
        )
        if (
            parent.children.exists()
            or parent.filled_quantity <= 0
            or getattr(parent, trigger) is None  # removed since the tick read it
            or parent.status in Order.AT_VENUE_STATUSES  # a send of it is out: next tick
        ):
            return None
        if parent.status in RESTING:
            order_status_set(
                parent,
                status=Order.Status.CANCELLED,
                code=trigger,
                reason=f"The {trigger.replace('_', '-')} closed the filled part.",
            )
            order_update_broadcast(order=parent)
        instrument = parent.instrument
        closing = Order.Side.SELL if parent.side == Order.Side.BUY else Order.Side.BUY
        held = (
            Position.objects.select_for_update()
            .filter(account=account, instrument=instrument, outcome=parent.outcome)
            .values_list("quantity", flat=True)
            .first()
            or ZERO
        )
        available = held if parent.side == Order.Side.BUY else -held
        if instrument.is_binary and closing == Order.Side.SELL:
            # Not what the account's sells at a venue hold: those are sold already.
            available -= held_at_venue(account, instrument_id=instrument.pk, outcome=parent.outcome)
        quantity = min(parent.filled_quantity, max(available, ZERO))
        now = timezone.now()
        child = Order(
            account=account,
            instrument=instrument,
            outcome=parent.outcome,
            side=closing,
            order_type=Order.Type.MARKET,
            time_in_force=Order.TimeInForce.IOC,
            status=Order.Status.SUBMITTED,
            quantity=quantity if quantity > 0 else parent.filled_quantity,
            leverage=parent.leverage,
            venue=parent.venue,
            parent=parent,
            reference_price=_best(book, closing),
            created_at=now,
            updated_at=now,
        )
        if quantity <= 0 or instrument.status != Instrument.Status.OPEN:
            child.status = Order.Status.CANCELLED
            child.reject_code = trigger
            child.reject_reason = (
                "Nothing left to close." if quantity <= 0 else "The market is closed."
            )
            child.save()
            order_update_broadcast(order=child)
            return child
        if instrument.is_binary:  # what it sells is held for it until the venue answers
            reservation_change(account=account, order=child, cash=ZERO, quantity=quantity)
        child.venue_sends = 1
        child.save()
        order_send_enqueue(order_id=child.pk, send=1)
        order_update_broadcast(order=child)
    return child


def _best(book: OrderBook | None, side: str) -> Decimal | None:
    """The best price a market order on `side` meets in `book` (None: that side is empty)."""
    levels = () if book is None else book.asks if side == Order.Side.BUY else book.bids
    return levels[0].price if levels else None


def orders_match(*, instrument_ids: Collection[int]) -> int:
    """Send resting orders that now cross the book to their venue and fire reached
    triggers (`_match_resting`, `_trigger_fire`: each submits under its locks and
    the outbox task places it); return how many orders were sent or fired.

    Called by the margin engine on every tick with the instruments that
    ticked. One query finds the candidates (resting limit orders, and filled
    orders with an armed take-profit / stop-loss that has not fired), one
    book read per listing they rest on; only orders that cross (or whose
    trigger the mark reached) are locked and re-checked, each in its own
    transaction so one failure does not hold up the others.
    """
    if not instrument_ids:
        return 0
    armed = Q(filled_quantity__gt=0, parent__isnull=True) & (
        Q(take_profit__isnull=False) | Q(stop_loss__isnull=False)
    )
    # A resting order whose last send filled nothing waits LIMIT_RESEND_AFTER.
    sendable = Q(venue_resend_after__isnull=True) | Q(venue_resend_after__lte=timezone.now())
    candidates = list(
        Order.objects.filter(instrument_id__in=instrument_ids, instrument__status="open")
        .filter(
            (Q(status__in=RESTING, order_type=Order.Type.LIMIT) & sendable)
            | (armed & ~Exists(Order.objects.filter(parent=OuterRef("pk"))))
        )
        .select_related("instrument", "venue")
        .order_by("created_at", "pk")
    )
    books: dict[tuple[int, int, str], OrderBook | None] = {}
    listings = {
        (listing.instrument_id, listing.venue_id): listing
        for listing in Listing.objects.filter(
            instrument_id__in={order.instrument_id for order in candidates},
            is_active=True,
            venue__is_active=True,
        ).select_related("instrument", "venue")
    }
    done = 0
    for order in candidates:
        key = (order.instrument_id, order.venue_id, order.outcome)
        if key not in books:
            listing = listings.get(key[:2])
            books[key] = (
                None
                if listing is None
                else _book(listing, Contract(order.instrument, order.outcome))
            )
        book = books[key]
        if book is None:
            continue
        try:
            if (
                order.status in RESTING
                and order.order_type == Order.Type.LIMIT
                and crossing_levels(
                    book, side=order.side, limit=order.limit_price, quantity=_remaining(order)
                )
                and _match_resting(order_id=order.pk, book=book)
            ):
                done += 1
                order.refresh_from_db()
            if order.filled_quantity > 0 and (order.take_profit or order.stop_loss):
                mark = _mark(book, order)
                trigger = None if mark is None else _trigger_fired(order, mark)
                if trigger and _trigger_fire(order_id=order.pk, trigger=trigger, book=book):
                    done += 1
        except Exception:
            logger.exception("Matching order %s failed.", order.public_id)
    return done


def _mark(book: OrderBook, order: Order) -> Decimal | None:
    """The mid of the book's best bid and ask (None: a side is empty)."""
    if not book.bids or not book.asks:
        return None
    return (book.bids[0].price + book.asks[0].price) / 2


# ---------------------------------------------------------------------------
# Closing a position


def position_close(
    *,
    account: Account,
    symbol: str,
    quantity: Decimal | str | None = None,
    percent: Decimal | str | None = None,
    slippage_bps: int = 50,
    client_order_id: str | None = None,
    ops_close: bool = False,
) -> Order:
    """Close all, a quantity or a percentage of a position; return the closing order.

    The order is an immediate-or-cancel limit at the protective price (the
    best bid less `slippage_bps` for a sale, the best ask plus it to cover a
    short perp), on the tick grid, placed through `order_place`: it fills
    what the book holds down to that price now and cancels the rest (status
    `cancelled`, reject_code `ioc_unfilled`, with what did fill). A binary
    sale or a perp reduction only lowers risk, so no margin check refuses
    it. Idempotent by `client_order_id`: the same close request returns the
    first order (`replayed`), another is 409 `duplicate_order`. `ops_close`: a
    four-eyes force-close, placed on a frozen account too
    (`trading.services.force_close`).

    Raises InvalidParams (both or a bad quantity / percent; a quantity above
    the position), NotFound (no open position in `symbol`), Conflict
    `market_closed`, MarketDataUnavailable (no bid to sell into).
    """
    contract = contract_from_symbol(symbol)
    instrument = contract.instrument
    if quantity is not None and percent is not None:
        raise InvalidParams("Give quantity or percent, not both.")
    slippage_bps = slippage_bps_clean(slippage_bps)
    client_order_id = _client_order_id_clean(client_order_id)
    size = (
        None
        if quantity is None
        else decimal_clean(quantity, name="quantity", places=QUANTITY_DECIMAL_PLACES, positive=True)
    )
    share = None if percent is None else decimal_clean(percent, name="percent", positive=True)
    if share is not None and share > 100:
        raise InvalidParams("percent must be at most 100.")
    body = {"close": contract.symbol, "quantity": quantity, "percent": percent, "bps": slippage_bps}
    fingerprint = request_fingerprint(body)
    existing = order_replay_get(
        account=account, client_order_id=client_order_id, fingerprint=fingerprint
    )
    if existing is not None:
        return existing
    held = (
        Position.objects.filter(account=account, instrument=instrument, outcome=contract.outcome)
        .values_list("quantity", flat=True)
        .first()
        or ZERO
    )
    if held == 0 or (instrument.is_binary and held < 0):
        raise NotFound(f"No open {contract.symbol} position in account {account.public_id}.")
    if size is None:
        size = abs(held) * (share or 100) / 100
        size = max(QUANTITY_QUANTUM, size.quantize(QUANTITY_QUANTUM, rounding=ROUND_DOWN))
    if size > abs(held):
        raise InvalidParams(
            f"The quantity {fmt.quantity(size, 6)} is more than the position's "
            f"{fmt.quantity(abs(held), 6)}."
        )
    side = Order.Side.SELL if held > 0 else Order.Side.BUY
    instrument_check_tradable(instrument)
    books = order_books_get(instrument=instrument, outcome=contract.book_outcome)
    tops = [
        vb.book.bids[0].price if side == Order.Side.SELL else vb.book.asks[0].price
        for vb in books
        if (vb.book.bids if side == Order.Side.SELL else vb.book.asks)
    ]
    if not tops:
        raise MarketDataUnavailable(
            f"No {'bids' if side == Order.Side.SELL else 'asks'} for {contract.symbol} right now."
        )
    best = max(tops) if side == Order.Side.SELL else min(tops)
    worst = slippage_limit(side=side, best=best, slippage_bps=slippage_bps)
    tick = instrument.tick_size
    if side == Order.Side.SELL:
        limit = max(tick, (worst / tick).to_integral_value(rounding=ROUND_UP) * tick)
    else:
        limit = (worst / tick).to_integral_value(rounding=ROUND_DOWN) * tick
        if instrument.is_binary:
            limit = min(limit, 1 - tick)
    return order_place(
        account=account,
        symbol=contract.symbol,
        side=side,
        order_type=Order.Type.LIMIT,
        time_in_force=Order.TimeInForce.IOC,
        quantity=size,
        price=limit,
        client_order_id=client_order_id,
        request_fingerprint=fingerprint,
        ops_close=ops_close,
    )
