"""The interface every venue adapter implements, and the book walk they share.

An adapter answers for one venue code (`kalshi`, `polymarket`, `leviathan`,
`simulated`). It quotes, shows the order book, prices a market order against
it (`fill_market`), places market orders by notional or by quantity
(`market_order_place`, idempotent by our order id) and reads an order back
(`order_status`). Resting orders at the venue (place, amend, cancel) are not
part of the interface yet.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

from portal.errors import InvalidParams
from portal.money import QUANTITY_DECIMAL_PLACES, ZERO
from trading.marketdata.quotes import OrderBook, Outcome, Quote, quantize_price
from trading.marketdata.store import MarketDataUnavailable
from trading.models import Listing

QUANTITY_QUANTUM = Decimal(1).scaleb(-QUANTITY_DECIMAL_PLACES)
BPS_PER_UNIT = Decimal(10_000)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class FillEstimate:
    """What a market order of a given size fills at against a book.

    `notional` is the exact sum of price × quantity over the levels taken
    (callers round it to USDC with their own rounding policy). `complete` is
    False when the book ran out first; `quantity` is then what it had.
    Prices are None when nothing could be filled.
    """

    side: Side
    quantity: Decimal
    notional: Decimal
    average_price: Decimal | None
    best_price: Decimal | None
    worst_price: Decimal | None
    complete: bool
    levels: tuple[tuple[Decimal, Decimal], ...] = ()  # (price, quantity) taken, best first

    @property
    def slippage_bps(self) -> Decimal | None:
        """How far the average price is from the best price, in basis points (≥ 0)."""
        if self.average_price is None or self.best_price is None:
            return None
        move = self.average_price - self.best_price
        if self.side == Side.SELL:
            move = -move
        return move / self.best_price * BPS_PER_UNIT


def book_walk(
    book: OrderBook,
    side: Side | str,
    *,
    quantity: Decimal | None = None,
    notional: Decimal | None = None,
    limit: Decimal | None = None,
) -> FillEstimate:
    """Fill an order level by level: buys take asks, sells hit bids.

    The one book walk: market orders, limit orders crossing the book (with
    `limit`: asks above it or bids below it are not taken), routing,
    previews and liquidation all walk books with it. Give exactly one of
    `quantity` (contracts or base units) or `notional` (USDC to spend, or to
    raise by selling). In notional mode each level yields whole quantity
    steps (6 decimals) rounded down, so the notional filled never exceeds
    the one asked for; the order is complete when what is left cannot buy
    one more step. Raises InvalidParams for a bad side or size.
    """
    try:
        side = Side(side)
    except ValueError as exc:
        raise InvalidParams(f"Side must be 'buy' or 'sell', not {side!r}.") from exc
    if (quantity is None) == (notional is None):
        raise InvalidParams("Give exactly one of quantity or notional.")
    size = quantity if quantity is not None else notional
    if size is None or size <= ZERO:
        raise InvalidParams("The order size must be positive.")

    levels = book.asks if side == Side.BUY else book.bids
    filled = spent = ZERO
    worst: Decimal | None = None
    taken: list[tuple[Decimal, Decimal]] = []

    def wanted_at(price: Decimal) -> Decimal:
        """How much more the order takes at `price`."""
        if quantity is not None:
            return quantity - filled
        return ((size - spent) / price).quantize(QUANTITY_QUANTUM, rounding=ROUND_DOWN)

    satisfied = False
    for level in levels:
        if limit is not None and (level.price > limit if side == Side.BUY else level.price < limit):
            satisfied = worst is not None and wanted_at(worst) <= ZERO
            break
        wanted = wanted_at(level.price)
        if wanted <= ZERO:
            satisfied = True
            break
        take = min(level.size, wanted)
        if take <= ZERO:
            continue
        filled += take
        spent += take * level.price
        worst = level.price
        taken.append((level.price, take))
    else:
        satisfied = worst is not None and wanted_at(worst) <= ZERO
    return FillEstimate(
        side=side,
        quantity=filled,
        notional=spent,
        average_price=quantize_price(spent / filled) if filled else None,
        best_price=levels[0].price if levels else None,
        worst_price=worst,
        complete=satisfied and filled > ZERO,
        levels=tuple(taken),
    )


def order_size_check(notional: Decimal | None, quantity: Decimal | None) -> None:
    """A market order's size: exactly one of `notional` or `quantity`, positive."""
    if (notional is None) == (quantity is None):
        raise InvalidParams("Give exactly one of notional or quantity.")
    if (notional if quantity is None else quantity) <= ZERO:
        raise InvalidParams("The order size must be positive.")


def book_quote(listing: Listing, book: OrderBook, *, venue_name: str) -> Quote:
    """A listing's YES quote from one snapshot of a venue's live book.

    The mark is the mid; a venue's book publishes no TWAP, so twap = mark (the
    feed keeps the time-weighted history). Raises MarketDataUnavailable for a
    one-sided or empty book.
    """
    if not book.bids or not book.asks:
        raise MarketDataUnavailable(f"{venue_name}'s book for {listing.key} is one-sided or empty.")
    bid, ask = book.bids[0].price, book.asks[0].price
    mark = quantize_price((bid + ask) / 2)
    return Quote(
        listing_key=listing.key,
        is_binary=True,
        ts=datetime.now(UTC),
        mark=mark,
        bid=bid,
        ask=ask,
        twap=mark,
        book=book,
        outcome=Outcome.YES,
    )


class VenueOrderStatus(StrEnum):
    FILLED = "filled"
    PENDING = "pending"  # accepted, not (yet) filled
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """A venue's own record of one order we sent it, as it reports it."""

    client_order_id: str  # our Order.public_id: the venue's dedupe key
    venue_order_id: str
    status: VenueOrderStatus
    quantity: Decimal = ZERO  # filled
    average_price: Decimal | None = None
    venue_fill_id: str = ""
    reason: str = ""
    reject_code: str = ""  # PRICE_LIMIT: the fill would have been worse than worst_price


PRICE_LIMIT = "price_limit"


class VenueTimeout(Exception):
    """The venue did not confirm an order in time: its true state is unknown.

    The order may or may not have filled; ask `order_status` later (the
    reconciliation task does), never place it again under a new id.
    """


class VenueAdapter(ABC):
    """One venue as the broker trades on it.

    Binary listings are quoted for YES; pass `outcome=Outcome.NO` to see or
    fill the NO contract (its book is the complement of the YES book).
    """

    def __init__(self, code: str):
        self.code = code

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.code}>"

    def venue_symbol(self, listing: Listing) -> str:
        """The listing's id on this venue; ValueError for another venue's listing."""
        if listing.venue.code != self.code:
            raise ValueError(f"{listing.key} is not listed on {self.code}.")
        return listing.venue_symbol

    @abstractmethod
    def quote(self, listing: Listing) -> Quote:
        """The listing's current quote, book included (YES side for binaries).

        Raises MarketDataUnavailable when the venue has no usable quote.
        """

    def order_book(
        self, listing: Listing, *, depth: int | None = None, outcome: Outcome | None = None
    ) -> OrderBook:
        """The best `depth` levels per side (all when None) for `outcome`.

        Raises InvalidParams for an outcome of a perpetual or a depth < 1.
        """
        quote = self.quote(listing)
        try:
            return quote.for_outcome(outcome).book.top(depth)
        except ValueError as exc:
            raise InvalidParams(str(exc)) from exc

    def fill_market(
        self,
        listing: Listing,
        side: Side | str,
        *,
        quantity: Decimal | None = None,
        notional: Decimal | None = None,
        outcome: Outcome | None = None,
    ) -> FillEstimate:
        """Price a market order of this size against the current full book.

        Nothing is sent to the venue; see `book_walk` for the rules.
        """
        book = self.order_book(listing, outcome=outcome)
        return book_walk(book, side, quantity=quantity, notional=notional)

    def market_order_place(
        self,
        listing: Listing,
        side: Side | str,
        *,
        notional: Decimal | None = None,
        quantity: Decimal | None = None,
        client_order_id: str,
        outcome: Outcome | None = None,
        worst_price: Decimal | None = None,
        fill_or_kill: bool = False,
    ) -> VenueOrder:
        """Send an order that fills at once or not at all; return the venue's confirmation.

        Its size is exactly one of `notional` (USDC to spend, or to raise by
        selling: execute's market orders; with `worst_price` the venue
        rejects it, reject_code PRICE_LIMIT, rather than fill at a worse
        average) or `quantity` (contracts or base units: a limit order's
        send at its limit `worst_price`, a take-profit / stop-loss child, a
        liquidation sale; it takes the levels at or better than
        `worst_price`, any without one, and the venue cancels the rest,
        unless `fill_or_kill` asks for all or nothing). `client_order_id`
        (our order's id for this send) makes it idempotent: placing the same
        id twice returns the first order. Raises InvalidParams for a
        missing or doubled size, VenueTimeout when the venue does not
        confirm in time (the order may have filled).
        """
        raise NotImplementedError(f"{type(self).__name__} does not place orders.")

    def order_status(
        self, listing: Listing, *, client_order_id: str, outcome: Outcome | None = None
    ) -> VenueOrder | None:
        """The venue's record of the order sent as `client_order_id` (None: never received).

        `outcome`: the contract the order traded (a venue whose records name
        only the book side needs it to state the price in that contract's
        terms). Raises VenueTimeout when the venue does not answer in time.
        """
        raise NotImplementedError(f"{type(self).__name__} does not report orders.")
