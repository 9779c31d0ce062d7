"""What an order names and where it goes: the one contract parser, the one
reader of the venues' books and the one router (SPEC §6 smart routing).

Every order (execute, limit orders, take-profit / stop-loss children,
stream commands), every preview (the order form, margin simulate, the close
simulation) and the market-data endpoints parse symbols with
`contract_from_symbol`, read books with `order_books_get` and pick a venue
with `trade_route`, which walks each book with the one book walk
(`trading.venues.base.book_walk`). Nothing here locks or writes; books are
read before any transaction opens, so no venue call ever waits under an
account lock.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from portal import format as fmt
from portal.errors import ErrorCode, InvalidParams, NotFound
from trading.catalog import instrument_get, listings_get
from trading.marketdata.quotes import OrderBook, Outcome
from trading.marketdata.store import MarketDataStale, MarketDataUnavailable
from trading.models import Instrument, Listing
from trading.venues import venue_adapter
from trading.venues.base import FillEstimate, Side, book_walk


@dataclass(frozen=True, slots=True)
class Contract:
    """What a symbol names: an instrument and (binaries) an outcome ('' for perps)."""

    instrument: Instrument
    outcome: str

    @property
    def book_outcome(self) -> Outcome | None:
        return Outcome(self.outcome) if self.outcome else None

    @property
    def symbol(self) -> str:
        """The contract's symbol as the API writes it: X (YES), X:NO, or the perp's."""
        if self.outcome == Outcome.NO:
            return f"{self.instrument.symbol}:NO"
        return self.instrument.symbol


def contract_from_symbol(symbol: object) -> Contract:
    """'SYMBOL' (YES), 'SYMBOL:YES', 'SYMBOL:NO' (any case) or a perpetual's symbol.

    Raises InvalidParams for a malformed symbol (or an outcome on a perpetual),
    NotFound for an unknown instrument.
    """
    if not isinstance(symbol, str) or not symbol.strip():
        raise InvalidParams("symbol is required.")
    base, separator, suffix = symbol.strip().partition(":")
    instrument = instrument_get(symbol=base)
    if instrument is None:
        raise NotFound(f"Unknown instrument {base!r}.")
    if not instrument.is_binary:
        if separator:
            raise InvalidParams(f"{base} is a perpetual: it has no YES or NO contracts.")
        return Contract(instrument, "")
    if not separator:
        return Contract(instrument, Outcome.YES.value)
    try:
        return Contract(instrument, Outcome(suffix.lower()).value)
    except ValueError as exc:
        raise InvalidParams(
            f"Unknown contract {symbol!r}: use {base}, {base}:YES or {base}:NO."
        ) from exc


@dataclass(frozen=True, slots=True)
class VenueBook:
    """One venue's live order book for the outcome being traded."""

    venue: str
    book: OrderBook


@dataclass(frozen=True, slots=True)
class RoutedFill:
    """Where an order would go, and what it would fill there now."""

    venue: str
    estimate: FillEstimate


def listing_get(instrument: Instrument, venue: str) -> Listing:
    """`instrument`'s active listing on venue code `venue` (NotFound if none)."""
    for listing in listings_get(instrument):
        if listing.venue.code == venue:
            return listing
    raise NotFound(f"{instrument.symbol} is not listed on {venue!r}.")


def order_books_get(
    *, instrument: Instrument, outcome: Outcome | None, venue: str | None = None
) -> list[VenueBook]:
    """Each active venue's live order book for `outcome` of `instrument`, by venue code.

    One quote read per listing, through its venue adapter (which refuses a
    stale quote). With `venue`, only that venue's book: NotFound if it does
    not list the instrument, MarketDataUnavailable (MarketDataStale when its
    quote is too old) if it has no live quote. Without it, venues with no live
    quote are left out, and when none has one the error is MarketDataStale if
    a venue's quote was merely too old, else MarketDataUnavailable.
    """
    listings = listings_get(instrument)
    if venue is not None:
        listings = [listing_get(instrument, venue)]
    books = []
    stale: MarketDataStale | None = None
    for listing in listings:
        try:
            book = venue_adapter(listing.venue.code).order_book(listing, outcome=outcome)
        except MarketDataStale as exc:
            if venue is not None:
                raise
            stale = exc
            continue
        except MarketDataUnavailable:
            if venue is not None:
                raise
            continue
        books.append(VenueBook(venue=listing.venue.code, book=book))
    if not books:
        raise stale or MarketDataUnavailable(f"No live prices for {instrument.symbol} right now.")
    return books


def _better(side: Side, estimate: FillEstimate, than: FillEstimate) -> bool:
    """More filled, then a better average price (lower for a buy, higher for a sell)."""
    if estimate.quantity != than.quantity and not (estimate.complete and than.complete):
        return estimate.quantity > than.quantity
    if side == Side.BUY:
        return estimate.average_price < than.average_price
    return estimate.average_price > than.average_price


def trade_route(
    *,
    books: Sequence[VenueBook],
    side: Side | str,
    notional: Decimal | None = None,
    quantity: Decimal | None = None,
    limit: Decimal | None = None,
    partial: bool = False,
) -> RoutedFill | None:
    """Smart routing (SPEC §6): the venue whose book fills the whole size at the
    best average price (lowest for a buy, highest for a sell); the first such
    venue on a tie.

    Give exactly one of `notional` (USDC) or `quantity` (contracts); each book
    is walked with `book_walk` (up to `limit` for a limit order). None when no
    book fills it all, unless `partial`: then the venue that fills the most
    now (a limit order rests the rest there), or None when nothing crosses.
    """
    side = Side(side)
    best: RoutedFill | None = None
    for venue_book in books:
        estimate = book_walk(
            venue_book.book, side, notional=notional, quantity=quantity, limit=limit
        )
        if not estimate.complete and not (partial and estimate.quantity):
            continue
        if best is None or _better(side, estimate, best.estimate):
            best = RoutedFill(venue=venue_book.venue, estimate=estimate)
    return best


def route_or_refuse(
    *,
    label: str,
    books: Sequence[VenueBook],
    side: Side | str,
    notional: Decimal | None = None,
    quantity: Decimal | None = None,
) -> RoutedFill:
    """`trade_route` for the whole size of contract `label` (e.g. "X NO"), or
    InvalidParams `insufficient_liquidity`."""
    route = trade_route(books=books, side=side, notional=notional, quantity=quantity)
    if route is None:
        size = f"{fmt.usdc(notional)} of" if notional is not None else fmt.quantity(quantity, 6)
        raise InvalidParams(
            f"Not enough liquidity: no venue's order book can {Side(side)} {size} "
            f"{label} right now.",
            code=ErrorCode.INSUFFICIENT_LIQUIDITY,
        )
    return route
