"""The market-data feed: the loop behind `manage.py run_marketdata`.

Each cycle:

1. every LISTINGS_RELOAD_SECONDS, re-read which listings move: active
   listings on active venues of open instruments. A market that (re)appears
   starts from its last quote in Redis, else its last stored tick, else the
   simulator's default; halted and resolved markets stop moving and keep
   their last quote in Redis;
2. step the simulator to now;
3. write the quotes to Redis and publish them as one tick batch, with the
   public trades the simulator printed in the step;
4. store a history row for each listing whose history bucket is due;

then beat its heartbeat and sleep to keep the interval. Clock and sleep are
injectable, so tests run thousands of cycles instantly. A Redis error costs
one cycle, not the process: it is logged and the next cycle tries again (after
a Redis restart the first good cycle writes every quote again). Without the
database the markets already known keep moving and publishing; the listings
are re-read and history stored again once it is back. Given a
`Leadership` (one feed per Redis), it runs cycles only while it holds the role
and stands by otherwise, ready to take over.
"""

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import OuterRef, Subquery

from portal.heartbeats import heartbeat_beat
from portal.redis import Leadership
from trading.marketdata import store
from trading.marketdata.history import PriceHistoryRecorder
from trading.marketdata.quotes import Quote
from trading.marketdata.simulator import (
    InstrumentSpec,
    ListingSpec,
    MarketSimulator,
    SimulationParams,
)
from trading.models import Instrument, Listing, PriceTick

logger = logging.getLogger(__name__)
T = TypeVar("T")

LISTINGS_RELOAD_SECONDS = 10.0
LOG_EVERY_SECONDS = 60.0


@dataclass
class FeedStats:
    """Counters since the feed started, for its periodic log line."""

    cycles: int = 0
    quotes: int = 0
    history_rows: int = 0
    errors: int = 0
    busy_seconds: float = 0.0  # wall time spent inside cycles


class MarketDataFeed:
    """Moves the simulated markets and publishes them (see module docstring)."""

    def __init__(
        self,
        *,
        seed: int,
        interval: float,
        params: SimulationParams | None = None,
        history_every: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
    ):
        if interval <= 0:
            raise ValueError("The feed interval must be positive.")
        self.interval = interval
        self.simulator = MarketSimulator(
            seed=seed,
            params=params or SimulationParams(twap_seconds=settings.MARKETDATA_TWAP_SECONDS),
        )
        self.history = PriceHistoryRecorder(
            settings.MARKETDATA_HISTORY_EVERY_SECONDS if history_every is None else history_every
        )
        self.stats = FeedStats()
        self._clock = clock
        self._stopping = threading.Event()
        # Waiting on the stop event lets stop() cut a sleep short.
        self._sleep = sleep or self._stopping.wait
        self._listing_ids: dict[str, int] = {}
        self._unquotable: set[str] = set()
        self._now = -math.inf
        self._next_reload = -math.inf
        self._next_log = -math.inf
        self._failed_in_a_row = 0
        self._database_away = False

    def run(self, iterations: int = 0, *, leadership: Leadership | None = None) -> FeedStats:
        """Run a cycle every `interval` seconds until stopped (or `iterations` > 0 done).

        A cycle that overruns its slot is not made up with a burst: the next
        one starts at once and the schedule continues from there. With a
        `leadership`, cycles run only while it is held (standing by does not
        count towards `iterations`).
        """
        done = 0
        next_at = self._clock()
        while not self._stopping.is_set():
            if leadership is not None and not leadership.held:
                leadership.wait(self.interval)
                next_at = self._clock()
                continue
            self.cycle()
            done += 1
            if iterations and done >= iterations:
                break
            next_at += self.interval
            delay = next_at - self._clock()
            if delay < 0:
                next_at, delay = self._clock(), 0.0
            self._sleep(delay)
        return self.stats

    def stop(self) -> None:
        """Finish after the current cycle; safe to call from a signal handler."""
        self._stopping.set()

    def cycle(self) -> list[Quote]:
        """Run one cycle and return the quotes it published.

        Redis errors are logged (once per outage) and counted; the cycle then
        publishes nothing. Without the database the cycle still publishes
        (`_with_database`).
        """
        started = time.perf_counter()
        # A wall clock may step back; the market never does.
        now = self._now = max(self._clock(), self._now)
        try:
            quotes = self._cycle(now)
        except (redis.RedisError, DatabaseError):
            self.stats.errors += 1
            if not self._failed_in_a_row:
                logger.exception("marketdata: cycle failed; retrying every cycle")
            self._failed_in_a_row += 1
            quotes = []
        else:
            if self._failed_in_a_row:
                logger.info("marketdata: recovered after %d failed cycles", self._failed_in_a_row)
            self._failed_in_a_row = 0
        self.stats.cycles += 1
        self.stats.quotes += len(quotes)
        self.stats.busy_seconds += time.perf_counter() - started
        if now >= self._next_log:
            self._next_log = now + LOG_EVERY_SECONDS
            self._log_stats()
        return quotes

    def _cycle(self, now: float) -> list[Quote]:
        if not connection.in_atomic_block:
            # A long-running process must expire its own connections, as
            # Django does per request (CONN_MAX_AGE, health checks).
            close_old_connections()
        if now >= self._next_reload:
            self._with_database(self._reload, None)
            self._next_reload = now + LISTINGS_RELOAD_SECONDS
        quotes = self.simulator.step(now)
        store.quotes_publish(
            quotes, ts=datetime.fromtimestamp(now, tz=UTC), trades=self.simulator.prints(quotes)
        )
        heartbeat_beat("marketdata", listings=len(quotes), interval=self.interval)
        self.stats.history_rows += self._with_database(
            lambda: self.history.record(quotes, self._listing_ids, now), 0
        )
        return quotes

    def _with_database(self, step: Callable[[], T], default: T) -> T:
        """A cycle's database step (listings, history). With the database away it is
        skipped (logged once per outage, counted): the markets it already knows keep
        moving and publishing."""
        try:
            result = step()
        except DatabaseError:
            self.stats.errors += 1
            if not self._database_away:
                logger.exception("marketdata: the database is unavailable; quotes go on")
            self._database_away = True
            return default
        if self._database_away:
            try:  # a step may have needed no query: is the database really back?
                connection.ensure_connection()
            except DatabaseError:
                return result
            logger.info("marketdata: the database is back")
            self._database_away = False
        return result

    def _reload(self) -> None:
        specs: dict[str, ListingSpec] = {}
        listings: list[Listing] = []
        for listing in Listing.objects.filter(
            is_active=True, venue__is_active=True, instrument__status=Instrument.Status.OPEN
        ).select_related("instrument", "venue"):
            instrument = self._instrument_spec(listing.instrument)
            if instrument is not None:
                specs[listing.key] = ListingSpec(key=listing.key, instrument=instrument)
                listings.append(listing)
        moving = self.simulator.symbols
        new = [listing for listing in listings if listing.instrument.symbol not in moving]
        self.simulator.set_listings(specs.values(), start_prices=_start_prices(new))
        previous = self._listing_ids.keys()
        self._listing_ids = {listing.key: listing.pk for listing in listings}
        self.history.retain(self._listing_ids)
        if previous != self._listing_ids.keys():
            logger.info(
                "marketdata: %d listings moving (%d started, %d stopped)",
                len(self._listing_ids),
                len(self._listing_ids.keys() - previous),
                len(previous - self._listing_ids.keys()),
            )

    def _instrument_spec(self, instrument: Instrument) -> InstrumentSpec | None:
        """The simulator's view of an instrument; None (warned once) if unquotable."""
        try:
            return InstrumentSpec(
                symbol=instrument.symbol,
                is_binary=instrument.is_binary,
                tick_size=instrument.tick_size,
                base_asset=instrument.base_asset,
                funding_interval_hours=instrument.funding_interval_hours,
            )
        except ValueError as exc:
            if instrument.symbol not in self._unquotable:
                logger.warning("marketdata: not quoting %s: %s", instrument.symbol, exc)
                self._unquotable.add(instrument.symbol)
            return None

    def _log_stats(self) -> None:
        stats = self.stats
        logger.info(
            "marketdata: %d listings, %d cycles (%.2f ms each), %d quotes, "
            "%d history rows, %d errors",
            len(self._listing_ids),
            stats.cycles,
            1000 * stats.busy_seconds / max(stats.cycles, 1),
            stats.quotes,
            stats.history_rows,
            stats.errors,
        )


def _start_prices(listings: Sequence[Listing]) -> dict[str, Decimal]:
    """Where each listed instrument left off: the mean of its listings' last marks.

    A listing's last mark is its quote in Redis, else its latest PriceTick.
    Instruments with neither are absent (the simulator picks a default).
    """
    if not listings:
        return {}
    marks: dict[str, list[Decimal]] = defaultdict(list)
    for quote in store.quotes_get_many(listing.key for listing in listings).values():
        marks[quote.symbol].append(quote.mark)
    unseen = [listing.pk for listing in listings if listing.instrument.symbol not in marks]
    if unseen:
        last_mark = PriceTick.objects.filter(listing=OuterRef("pk")).order_by("-ts").values("mark")
        rows = (
            Listing.objects.filter(pk__in=unseen)
            .annotate(last_mark=Subquery(last_mark[:1]))
            .values_list("instrument__symbol", "last_mark")
        )
        for symbol, mark in rows:
            if mark is not None:
                marks[symbol].append(mark)
    return {symbol: sum(values, Decimal(0)) / len(values) for symbol, values in marks.items()}
