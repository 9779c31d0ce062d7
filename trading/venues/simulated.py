"""The `simulated` venue: quotes and market fills against the feed's books.

The embedded default behind every venue code (settings.VENUE_ADAPTERS). It
reads the latest quote the market-data feed wrote to Redis and prices market
orders by walking that book. A quote older than the risk policy's
`price_stale_after_seconds` is refused (MarketDataStale): a stopped feed, or a
halted market, must not leave the broker trading on old prices.

Placed market orders fill at once against the book and are recorded in Redis
(keyed by venue code and our order's public id, for ORDER_TTL_SECONDS), so
`order_status` can read them back and a retried placement returns the first
order. The setting SIMULATED_VENUE_NO_CONFIRM simulates a venue that does
not confirm in time: "filled" (the venue fills, but the answer is lost) or
"unfilled" (the order never reaches the venue); either raises VenueTimeout.
SIMULATED_VENUE_LATENCY_MS makes every order placement take that long, as a
real venue's round trips do (bench/execute_throughput.py --venue-latency-ms).
"""

import json
import time
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings

from portal.redis import redis_client, redis_key
from trading.marketdata import store
from trading.marketdata.quotes import Outcome, Quote
from trading.marketdata.store import MarketDataStale, MarketDataUnavailable
from trading.models import Listing
from trading.selectors import price_max_age
from trading.venues.base import (
    PRICE_LIMIT,
    Side,
    VenueAdapter,
    VenueOrder,
    VenueOrderStatus,
    VenueTimeout,
    book_walk,
    order_size_check,
)

ORDER_TTL_SECONDS = 7 * 86400
NO_CONFIRM_FILLED = "filled"
NO_CONFIRM_UNFILLED = "unfilled"


def simulated_order_key(code: str, client_order_id: str) -> str:
    """Redis key of the simulated venue's record of one order."""
    return redis_key("venue", code, "orders", client_order_id)


class SimulatedVenue(VenueAdapter):
    """Serves one venue code from the simulated market-data feed."""

    def __init__(self, code: str, *, clock: Callable[[], float] = time.time):
        super().__init__(code)
        self._clock = clock

    def quote(self, listing: Listing) -> Quote:
        """The feed's latest quote for `listing`.

        Raises MarketDataUnavailable if the feed never quoted it, MarketDataStale
        if its quote is older than the risk policy allows, and ValueError if the
        listing belongs to another venue.
        """
        self.venue_symbol(listing)
        quote = store.quote_get(listing.key)
        if quote is None:
            raise MarketDataUnavailable(f"No market data for {listing.key} yet.")
        age = self._clock() - quote.ts.timestamp()
        limit = price_max_age()
        if age > limit:
            raise MarketDataStale(
                f"Prices for {listing.instrument.symbol} on {self.code} are delayed: the last "
                f"quote is from {quote.ts:%H:%M:%S} UTC, {age:,.0f} s ago (the limit is "
                f"{limit:,.0f} s). Orders resume when the market-data feed catches up."
            )
        return quote

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
        """Fill an order at once against the current book (see the module docstring).

        A notional order is fill-or-kill: a book that cannot fill the whole
        notional rejects it, and so does an average worse than `worst_price`
        (PRICE_LIMIT). A quantity order is immediate-or-cancel (fill-or-kill
        with `fill_or_kill`) at `worst_price`: it takes the levels at or
        better than that price, up to its quantity (the venue's record says
        how much). Nothing filled is REJECTED. Idempotent by
        `client_order_id`.
        """
        order_size_check(notional, quantity)
        latency = getattr(settings, "SIMULATED_VENUE_LATENCY_MS", 0)
        if latency:
            time.sleep(latency / 1000)
        mode = getattr(settings, "SIMULATED_VENUE_NO_CONFIRM", "")
        if mode == NO_CONFIRM_UNFILLED:
            raise VenueTimeout(f"{self.code} did not confirm order {client_order_id}.")
        existing = self.order_status(listing, client_order_id=client_order_id)
        if existing is None:
            book = self.order_book(listing, outcome=outcome)
            venue_order_id = f"sim-{client_order_id}"
            common = {"client_order_id": client_order_id, "venue_order_id": venue_order_id}
            if quantity is None:
                estimate = book_walk(book, side, notional=notional)
                fills, unfilled = estimate.complete, "Not enough liquidity in the book."
                beyond_limit = (
                    fills
                    and worst_price is not None
                    and (
                        estimate.average_price > worst_price
                        if Side(side) == Side.BUY
                        else estimate.average_price < worst_price
                    )
                )
            else:
                estimate = book_walk(book, side, quantity=quantity, limit=worst_price)
                fills = estimate.complete if fill_or_kill else estimate.quantity > 0
                unfilled = (
                    "Fill or kill: the book cannot fill all of it now."
                    if fill_or_kill and estimate.quantity > 0
                    else "Nothing in the book at or better than the limit."
                )
                beyond_limit = False
            if beyond_limit:
                order = VenueOrder(
                    **common,
                    status=VenueOrderStatus.REJECTED,
                    reason=f"The fill would average {estimate.average_price}, beyond the "
                    f"order's worst acceptable price {worst_price}.",
                    reject_code=PRICE_LIMIT,
                )
            elif fills:
                order = VenueOrder(
                    **common,
                    status=VenueOrderStatus.FILLED,
                    quantity=estimate.quantity,
                    average_price=estimate.average_price,
                    venue_fill_id=f"{venue_order_id}-1",
                )
            else:
                order = VenueOrder(**common, status=VenueOrderStatus.REJECTED, reason=unfilled)
            key = simulated_order_key(self.code, client_order_id)
            if not redis_client().set(key, _dumps(order), nx=True, ex=ORDER_TTL_SECONDS):
                order = self.order_status(listing, client_order_id=client_order_id)
            existing = order
        if mode == NO_CONFIRM_FILLED:
            raise VenueTimeout(f"{self.code} did not confirm order {client_order_id}.")
        return existing

    def order_status(
        self, listing: Listing, *, client_order_id: str, outcome: Outcome | None = None
    ) -> VenueOrder | None:
        """The recorded order placed as `client_order_id`, or None if it never arrived."""
        raw = redis_client().get(simulated_order_key(self.code, client_order_id))
        return None if raw is None else _loads(raw)


def _dumps(order: VenueOrder) -> str:
    return json.dumps(
        {
            "client_order_id": order.client_order_id,
            "venue_order_id": order.venue_order_id,
            "status": order.status.value,
            "quantity": str(order.quantity),
            "average_price": None if order.average_price is None else str(order.average_price),
            "venue_fill_id": order.venue_fill_id,
            "reason": order.reason,
            "reject_code": order.reject_code,
        }
    )


def _loads(raw: bytes | str) -> VenueOrder:
    data = json.loads(raw)
    price = data["average_price"]
    return VenueOrder(
        client_order_id=data["client_order_id"],
        venue_order_id=data["venue_order_id"],
        status=VenueOrderStatus(data["status"]),
        quantity=Decimal(data["quantity"]),
        average_price=None if price is None else Decimal(price),
        venue_fill_id=data["venue_fill_id"],
        reason=data["reason"],
        reject_code=data.get("reject_code", ""),
    )
