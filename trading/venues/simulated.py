"""The `simulated` venue: quotes and market fills against the feed's books.

The embedded default behind every venue code (settings.VENUE_ADAPTERS). It
reads the latest quote the market-data feed wrote to Redis and prices market
orders by walking that book. A quote older than STALE_AFTER_INTERVALS feed
intervals (and at least MIN_STALE_SECONDS) is refused: a stopped feed, or a
halted market, must not leave the broker trading on old prices.
"""

import time
from collections.abc import Callable

from django.conf import settings

from trading.marketdata import store
from trading.marketdata.quotes import Quote
from trading.marketdata.store import MarketDataUnavailable
from trading.models import Listing
from trading.venues.base import VenueAdapter

STALE_AFTER_INTERVALS = 10
MIN_STALE_SECONDS = 5.0


class SimulatedVenue(VenueAdapter):
    """Serves one venue code from the simulated market-data feed."""

    def __init__(self, code: str, *, clock: Callable[[], float] = time.time):
        super().__init__(code)
        self._clock = clock

    @property
    def max_quote_age(self) -> float:
        """Seconds after which a quote no longer counts as live."""
        return max(MIN_STALE_SECONDS, STALE_AFTER_INTERVALS * settings.MARKETDATA_INTERVAL)

    def quote(self, listing: Listing) -> Quote:
        """The feed's latest quote for `listing`.

        Raises MarketDataUnavailable if the feed never quoted it or its quote
        is stale, and ValueError if the listing belongs to another venue.
        """
        if listing.venue.code != self.code:
            raise ValueError(f"{listing.key} is not listed on {self.code}.")
        quote = store.quote_get(listing.key)
        if quote is None:
            raise MarketDataUnavailable(f"No market data for {listing.key} yet.")
        age = self._clock() - quote.ts.timestamp()
        if age > self.max_quote_age:
            raise MarketDataUnavailable(f"The last quote for {listing.key} is {age:.0f}s old.")
        return quote
