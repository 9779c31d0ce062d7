"""Venue adapters behind one interface (trading.venues.base.VenueAdapter).

`venue_adapter(code)` returns the adapter serving a venue code, as
settings.VENUE_ADAPTERS routes it; every code routes to `simulated` by
default; "kalshi" and "polymarket" route a venue to the broker's own accounts there
(KALSHI_BROKER_*, POLYMARKET_* settings).
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from portal.errors import NotFound
from trading.venues.base import VenueAdapter
from trading.venues.kalshi import KalshiVenue
from trading.venues.polymarket import PolymarketVenue
from trading.venues.simulated import SimulatedVenue

ADAPTER_CLASSES: dict[str, type[VenueAdapter]] = {
    "kalshi": KalshiVenue,
    "polymarket": PolymarketVenue,
    "simulated": SimulatedVenue,
}


def venue_adapter(code: str) -> VenueAdapter:
    """The adapter for venue `code`.

    Raises NotFound for a venue code with no adapter configured, and
    ImproperlyConfigured when VENUE_ADAPTERS names an adapter that does not
    exist.
    """
    adapter_name = settings.VENUE_ADAPTERS.get(code)
    if adapter_name is None:
        raise NotFound(f"Unknown venue {code!r}.")
    adapter_class = ADAPTER_CLASSES.get(adapter_name)
    if adapter_class is None:
        raise ImproperlyConfigured(
            f"VENUE_ADAPTERS routes {code!r} to {adapter_name!r}; "
            f"known adapters: {', '.join(sorted(ADAPTER_CLASSES))}."
        )
    return adapter_class(code)
