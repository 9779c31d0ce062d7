"""`manage.py run_marketdata`: the market-data feed process (Procfile `marketdata`).

The process that holds the feed's role also keeps Polymarket's dead-man switch
alive for the broker (trading.venues.polymarket.BrokerHeartbeat): one process
per Redis, so one heartbeat chain.
"""

from contextlib import AbstractContextManager, nullcontext

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.metrics import metrics_exporter_start
from portal.processes import startup_objects_freeze, stop_on_signals
from portal.redis import Leadership
from trading.marketdata.feed import MarketDataFeed
from trading.venues import ADAPTER_CLASSES, venue_adapter
from trading.venues.polymarket import BrokerHeartbeat, PolymarketVenue, broker_heartbeat


def polymarket_broker_heartbeat(leadership: Leadership) -> BrokerHeartbeat | None:
    """The broker's Polymarket heartbeat, or None when no venue routes to the real
    Polymarket adapter (VENUE_ADAPTERS; the broker's keys are then not in use).

    Venue codes routed to it share the broker's one CLOB key: one heartbeat covers them.
    """
    for code, name in settings.VENUE_ADAPTERS.items():
        if ADAPTER_CLASSES.get(name) is PolymarketVenue:
            venue = venue_adapter(code)
            if isinstance(venue, PolymarketVenue):
                return broker_heartbeat(venue, leadership=leadership)
    return None


class Command(BaseCommand):
    help = (
        "Run the market-data feed: move the simulated markets, write the latest quotes "
        "to Redis, publish each tick and keep a downsampled history. One feed runs per "
        "Redis; another started meanwhile stands by and takes over when it stops. The "
        "running one also sends the broker's Polymarket heartbeats (the venue's dead-man "
        "switch) when VENUE_ADAPTERS routes Polymarket to the real adapter."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seed", type=int, default=None, help="RNG seed (default: MARKETDATA_SEED)."
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between ticks (default: MARKETDATA_INTERVAL).",
        )
        parser.add_argument(
            "--iterations", type=int, default=0, help="Ticks to run; 0 runs until stopped."
        )

    def handle(self, *args, seed, interval, iterations, **options):
        seed = settings.MARKETDATA_SEED if seed is None else seed
        interval = settings.MARKETDATA_INTERVAL if interval is None else interval
        if seed < 0:
            raise CommandError("--seed must be a non-negative integer.")
        if interval <= 0:
            raise CommandError("--interval must be positive.")
        if iterations < 0:
            raise CommandError("--iterations must be 0 (forever) or more.")
        feed = MarketDataFeed(seed=seed, interval=interval)
        metrics_exporter_start()  # its own /metrics when METRICS_PORT is set
        startup_objects_freeze()
        with (
            stop_on_signals(feed.stop),
            # One feed per Redis: a second one stands by and takes over when the lock expires.
            Leadership("market-data feed", ttl=settings.LEADER_LOCK_TTL_SECONDS) as leadership,
        ):
            heartbeat = polymarket_broker_heartbeat(leadership)
            heartbeats: AbstractContextManager[object] = heartbeat or nullcontext()
            with heartbeats:
                # Announced once SIGTERM/SIGINT already stop the feed cleanly.
                self.stdout.write(f"marketdata: seed {seed}, one tick every {interval:g}s")
                if heartbeat is not None:
                    self.stdout.write(
                        f"marketdata: Polymarket heartbeats every {heartbeat.every:g}s"
                    )
                stats = feed.run(iterations=iterations, leadership=leadership)
        self.stdout.write(
            f"marketdata: stopped after {stats.cycles} ticks, {stats.quotes} quotes, "
            f"{stats.history_rows} history rows, {stats.errors} errors"
        )
        if heartbeat is not None:
            self.stdout.write(f"marketdata: {heartbeat.sent} Polymarket heartbeats acknowledged")
