"""The margin engine: the loop behind `manage.py run_margin_engine` (Procfile `risk`).

It keeps a MarginBook of every account and, for each tick batch the feed
publishes (`process_batch`):

1. reloads the accounts in the "accounts changed" set (fills, deposits, …);
2. re-prices the moved instruments' contracts and finds who holds them;
3. evaluates those accounts, and the reloaded ones, in one vectorised pass;
4. for the custodial accounts whose figures crossed a line (below
   maintenance without an open call, back above with one, deeper into a call,
   below the liquidation threshold): `margin_calls_sync`, which re-checks
   from the database under each account's lock and opens, resolves or
   escalates. This comes first, so a call is as close to its tick as can be.
   An account whose figures rest on a stale price (older than the risk
   policy's `price_stale_after_seconds`) is left alone: its call waits for a
   live price, and the engine logs it and counts it in its heartbeat
   (`calls_deferred_stale`, shown by /ready/);
5. fires the customers' health alerts whose level the health crossed (and
   re-arms those back above it): the alerts are held beside the book, loaded
   with the accounts it reloads, and compared as arrays; only crossings reach
   the database (`trading.services.health_alerts`);
6. pushes the changed figures to the accounts' groups (before the snapshot
   insert: a screen should not wait for a history row);
7. stores the snapshots the rule says are due (one bulk insert).

Every `sweep_every` seconds (`sweep`) it reloads everything (a missed tick,
a re-dated market) and evaluates every account. Every batch reads the risk
policy through the reference-data cache (`portal.refdata`: revalidated against
Redis every REFDATA_MAX_AGE, reloaded when a policy change bumps it): when the
margin parameters changed (an approved change from /ops/risk-policy/), that
batch evaluates every account under them. Between ticks it picks up changed accounts every
IDLE_SECONDS. The clock is injectable; a Redis or database error costs one
batch, not the process; `stop()` ends the loop after the current batch.

Shards (`portal.shards`, settings ENGINE_SHARDS): engine `i` of N owns the
accounts whose stable id hash mod N is `i`: its book loads only those, it
takes only its shard's "accounts changed" set, and it evaluates and acts
(calls, alerts, pushes, snapshots) for them only. Every shard subscribes to
the tick channel (Redis pub/sub delivers every tick to every subscriber);
the market-wide step after a batch (resting orders, perp isolation) is
shard 0's. One engine runs per shard per Redis (`portal.redis.Leadership`,
a lock per shard; with one shard the lock of old): another one started
meanwhile for the same shard stands by and takes over when the first stops
or its lock expires (ENGINE_LOCK_TTL_SECONDS). After a lost tick
subscription or a lost and regained role (a Redis restart) the engine
re-subscribes with back-off and rebuilds its book from PostgreSQL with a full
sweep, since ticks and "accounts changed" marks may have been missed. It
beats its heartbeat (`portal.heartbeats`, "engine"; "engine-<i>" per shard) on every turn;
its metrics (`portal.metrics`: turn time, accounts evaluated, tick → push) carry its
shard's index.
`margin_sweep_full` runs one sweep apart from it, as a safety net.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import numpy as np
import redis
from celery import current_app
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from portal import metrics
from portal.heartbeats import engine_heartbeat_name, heartbeat_beat
from portal.redis import Leadership, redis_client
from portal.shards import Shard, shards_count
from trading import margin
from trading.broadcasts import MarginUpdate, account_groups_followed, margin_updates_broadcast
from trading.marketdata import store
from trading.marketdata.store import TickBatch, TickSubscription
from trading.models import HealthAlert, Instrument, MarginCall
from trading.selectors import margin_params_get, money_decimal, price_max_age, ratio_decimal
from trading.services.figures_store import figures_store
from trading.services.health_alerts import HYSTERESIS, health_alerts_act
from trading.services.margin_book import NO_ACCOUNTS, BookFigures, MarginBook
from trading.services.margin_calls import LIQUIDATION_REQUEST_TTL_SECONDS, margin_calls_sync
from trading.services.orders import orders_match
from trading.services.perps import perp_positions_liquidate
from trading.services.snapshots import SnapshotRule, SnapshotTracker

logger = logging.getLogger(__name__)

# The book stays current from ticks and the changed set: the full sweep is a
# safety net, and rare enough that the ticks it delays stay out of the p99.
SWEEP_EVERY_SECONDS = 300.0
IDLE_SECONDS = 0.25  # how often changed accounts are picked up when no tick comes
DRAIN_SECONDS = 0.001  # batches already waiting are merged into the one at hand
DRAIN_MAX = 100
RETRY_SECONDS = 1.0
RETRY_MAX_SECONDS = 10.0
HEARTBEAT_SECONDS = 1.0
LOWEST_HEALTH_STEP = 0.01  # an open call's lowest health is recorded in these steps
LOCK_TTL_SECONDS = 30.0
# Figures equal at their shown precision (USDC and ratios: 6 places) are not re-pushed.
PUSH_EPSILON = 5e-7


@dataclass
class EngineStats:
    """Counters since the engine started, for its log lines and tests."""

    batches: int = 0
    sweeps: int = 0
    evaluated: int = 0
    calls_opened: int = 0
    calls_resolved: int = 0
    alerts_fired: int = 0
    liquidations_requested: int = 0
    snapshots: int = 0
    pushes: int = 0
    unfollowed: int = 0  # changed figures not pushed: no socket followed the account
    errors: int = 0
    busy_seconds: float = 0.0


def _moved_markets_act(batch: TickBatch) -> None:
    """After the margin pass: resting orders and perp isolated liquidation in moved markets.

    Matches resting orders through `trading.services.orders.orders_match`,
    then liquidates perp positions below maintenance in the moved perps. A
    failure of either is logged and costs this step of this batch only; a
    database outage is raised, for the engine's loop to log once per outage.
    """
    symbols = {quote.symbol for quote in batch.quotes}
    if not symbols:
        return
    moved = dict(Instrument.objects.filter(symbol__in=symbols).values_list("pk", "kind"))
    try:
        orders_match(instrument_ids=list(moved))
    except DatabaseError:
        raise
    except Exception:
        logger.exception("Resting order matching failed for a tick batch")
    try:
        perps = [pk for pk, kind in moved.items() if kind == Instrument.Kind.PERPETUAL]
        if perps:
            perp_positions_liquidate(instrument_ids=perps)
    except DatabaseError:
        raise
    except Exception:
        logger.exception("Perp isolated liquidation failed for a tick batch")


def _services_answer() -> bool:
    """Whether the database and Redis both answer now."""
    try:
        connection.ensure_connection()
        redis_client().ping()
    except (redis.RedisError, DatabaseError):
        return False
    return True


class MarginEngine:
    """Evaluates accounts as prices and balances move (see module docstring).

    `publish=False` pushes nothing; `consume_changes=False` leaves the
    "accounts changed" set to the engine process (both: `margin_sweep_full`).
    Per-account state lives in arrays aligned with the book's slots.
    """

    def __init__(
        self,
        *,
        sweep_every: float = SWEEP_EVERY_SECONDS,
        publish: bool = True,
        consume_changes: bool = True,
        clock: Callable[[], float] = time.time,
        snapshot_rule: SnapshotRule | None = None,
        shard: Shard | None = None,
        lock_ttl: float | None = None,
    ):
        if sweep_every <= 0:
            raise ValueError("The sweep interval must be positive.")
        self.sweep_every = sweep_every
        self.shard = shard or Shard()
        self._lock_ttl = lock_ttl
        self.book = MarginBook(self.shard)
        self.snapshots = SnapshotTracker(snapshot_rule)
        self.stats = EngineStats()
        self._publish = publish
        self._consume_changes = consume_changes
        self._clock = clock
        self._stopping = threading.Event()
        self._swept = False
        self._failed_in_a_row = 0
        self._beaten_at = -HEARTBEAT_SECONDS
        self._beat_detail: dict[str, object] = {}
        # Per account slot:
        self._call_open = np.zeros(0, dtype=bool)
        self._call_lowest = np.zeros(0)  # nan: no open call
        self._liquidation_recheck_at = np.zeros(0)  # epoch seconds
        self._pushed = np.zeros((0, 6))  # cash, AE, UM, health, status, stale last pushed
        self._deferred = np.zeros(0, dtype=bool)  # a call action waits for live prices
        # Per health alert (any order): its id, account slot, level and whether armed.
        self._alert_id = np.zeros(0, dtype=np.int64)
        self._alert_slot = np.zeros(0, dtype=np.int64)
        self._alert_level = np.zeros(0)
        self._alert_armed = np.zeros(0, dtype=bool)

    # One batch -----------------------------------------------------------------

    def process_batch(self, batch: TickBatch | None) -> BookFigures | None:
        """Process one tick batch (None: only accounts changed since the last call).

        Returns the figures of the accounts it evaluated (None if none).
        """
        started, pushes = time.perf_counter(), self.stats.pushes
        at = self._now()
        params = margin_params_get()  # cached; a policy change reaches it at once
        repriced = self._swept and params != self.book.params
        self.book.params = params
        self.book.price_max_age = price_max_age()
        refreshed = self.book.refresh_changed()
        self._grow()
        if refreshed.size:
            self._calls_load(refreshed)
            self._alerts_load(refreshed)
        moved = (
            self.book.prices_update((quote.symbol for quote in batch.quotes), at=at)
            if batch is not None
            else NO_ACCOUNTS
        )
        affected = np.union1d(refreshed, moved)
        if repriced and self.book.n_accounts:
            # New thresholds or haircuts move every account: evaluate them all now.
            affected = np.arange(self.book.n_accounts, dtype=np.int64)
        if batch is not None:
            self.stats.batches += 1
        figures = None
        if affected.size:
            figures = self.book.evaluate(affected, at=at)
            self._act(figures)
            if batch is not None and self.stats.pushes > pushes:
                metrics.tick_pushed(batch.ts.timestamp(), shard=self.shard.index)
            metrics.engine_turn_observed(
                shard=self.shard.index,
                kind="batch",
                seconds=time.perf_counter() - started,
                accounts=int(affected.size),
            )
            self._figures_store(figures)  # after calls and pushes: reads served from here
        if batch is not None and self.shard.index == 0:
            # Market-wide work (resting orders, perp isolation), not per account: shard 0's.
            _moved_markets_act(batch)
        return figures

    def sweep(self) -> BookFigures:
        """Reload everything and evaluate every account; return their figures."""
        started = time.perf_counter()
        at = self._now()
        self.book.load(consume_changes=self._consume_changes)
        self._grow()
        self._calls_load(None)
        self._alerts_load(None)
        figures = self.book.evaluate(None, at=at)
        self._act(figures)
        self._swept = True
        self.stats.sweeps += 1
        metrics.engine_turn_observed(
            shard=self.shard.index,
            kind="sweep",
            seconds=time.perf_counter() - started,
            accounts=len(figures),
        )
        return figures

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=UTC)

    def _grow(self) -> None:
        n, known = self.book.n_accounts, self._call_open.size
        if n > known:
            extra = n - known
            self._call_open = np.concatenate([self._call_open, np.zeros(extra, bool)])
            self._call_lowest = np.concatenate([self._call_lowest, np.full(extra, np.nan)])
            self._liquidation_recheck_at = np.concatenate(
                [self._liquidation_recheck_at, np.zeros(extra)]
            )
            self._pushed = np.concatenate([self._pushed, np.full((extra, 6), np.nan)])
            self._deferred = np.concatenate([self._deferred, np.zeros(extra, dtype=bool)])
        self.snapshots.track(self.book.account_ids)

    def _calls_load(self, slots: margin.IntArray | None) -> None:
        """Re-read which of these accounts (all: None) have an open call."""
        calls = MarginCall.objects.filter(status=MarginCall.Status.OPEN)
        if slots is None:
            self._call_open[:] = False
            self._call_lowest[:] = np.nan
        else:
            self._call_open[slots] = False
            self._call_lowest[slots] = np.nan
            calls = calls.filter(account_id__in=self.book.account_ids[slots].tolist())
        # An account opened since the book loaded is not in it yet: the next load has it.
        rows = [
            row for row in calls.values_list("account_id", "lowest_health") if row[0] in self.book
        ]
        if rows:
            open_slots = self.book.slots_of(account_id for account_id, _ in rows)
            self._call_open[open_slots] = True
            self._call_lowest[open_slots] = [float(lowest) for _, lowest in rows]

    def _alerts_load(self, slots: margin.IntArray | None) -> None:
        """Re-read the health alerts of these accounts (all: None), one query."""
        alerts = HealthAlert.objects.all()
        if slots is None:
            keep = np.zeros(self._alert_id.size, dtype=bool)
        else:
            keep = ~np.isin(self._alert_slot, slots)
            alerts = alerts.filter(account_id__in=self.book.account_ids[slots].tolist())
        rows = [
            row
            for row in alerts.values_list("pk", "account_id", "level", "armed")
            if row[1] in self.book
        ]
        slots_of = self.book.slots_of(account_id for _, account_id, _, _ in rows)
        self._alert_id = np.concatenate(
            [self._alert_id[keep], np.array([row[0] for row in rows], dtype=np.int64)]
        )
        self._alert_slot = np.concatenate([self._alert_slot[keep], slots_of.astype(np.int64)])
        self._alert_level = np.concatenate(
            [self._alert_level[keep], np.array([float(row[2]) for row in rows])]
        )
        self._alert_armed = np.concatenate(
            [self._alert_armed[keep], np.array([row[3] for row in rows], dtype=bool)]
        )

    def _alerts_act(self, figures: BookFigures) -> None:
        """Fire the armed alerts whose account's health fell below their level, re-arm
        the fired ones back above level + hysteresis: array work, and the database
        only for the alerts that cross (not on a stale price)."""
        if not self._alert_id.size:
            return
        row = np.full(self.book.n_accounts, -1, dtype=np.int64)
        row[figures.index] = np.arange(len(figures))
        at = row[self._alert_slot]
        seen = at >= 0
        if not seen.any():
            return
        health = np.full(self._alert_id.size, np.nan)
        health[seen] = figures.health[at[seen]]
        live = seen.copy()
        live[seen] = ~figures.stale[at[seen]]
        with np.errstate(invalid="ignore"):
            fire = live & self._alert_armed & (health < self._alert_level)
            rearm = live & ~self._alert_armed & (health >= self._alert_level + float(HYSTERESIS))
        crossing = fire | rearm
        if not crossing.any():
            return
        account_ids = self.book.account_ids[self._alert_slot[crossing]]
        readings = dict(zip(account_ids.tolist(), health[crossing].tolist(), strict=True))
        try:
            acted = health_alerts_act(health=readings, at=figures.at)
        except DatabaseError:
            raise
        except Exception:  # an alert must never hold up the figures' push
            logger.exception("margin engine: health alerts failed for a batch")
            return
        states = {state.alert_id: state for state in acted}
        known = np.isin(self._alert_id, list(states))
        for k in np.flatnonzero(known):
            state = states[int(self._alert_id[k])]
            self._alert_armed[k] = state.armed
            self.stats.alerts_fired += state.fired
        gone = crossing & ~known  # deleted meanwhile: the service returns all of the accounts'
        if gone.any():
            self._alert_id, self._alert_slot, self._alert_level, self._alert_armed = (
                array[~gone]
                for array in (
                    self._alert_id,
                    self._alert_slot,
                    self._alert_level,
                    self._alert_armed,
                )
            )

    def _figures_store(self, figures: BookFigures) -> None:
        """Store the evaluated accounts' priced figures for the reads
        (`trading.services.figures_store`); not in a sweep (every account: their
        reads compute and write back) nor with `publish=False`. A Redis error costs
        this step only: the reads compute meanwhile."""
        if not self._publish:
            return
        try:
            figures_store(account_ids=figures.account_id.tolist(), shard=self.shard.index)
        except redis.RedisError:
            logger.warning("margin engine: could not store figures for a batch (Redis)")

    def _act(self, figures: BookFigures) -> None:
        self.stats.evaluated += len(figures)
        self._calls_act(figures)
        self._alerts_act(figures)
        self._push(figures)
        self.stats.snapshots += self.snapshots.record(figures)

    def _calls_act(self, figures: BookFigures) -> None:
        slots, health = figures.index, figures.health
        now = figures.at.timestamp()
        below = figures.status == margin.MARGIN_CALL
        has_call = self._call_open[slots]
        with np.errstate(invalid="ignore"):
            deeper = has_call & (health < self._call_lowest[slots] - LOWEST_HEALTH_STEP)
        liquidate = (health < self.book.params.liquidation) & (
            self._liquidation_recheck_at[slots] <= now
        )
        acting = figures.custodial & ((below != has_call) | deeper | liquidate)
        self._defer_stale(figures, acting & figures.stale)
        candidates = acting & ~figures.stale
        if not candidates.any():
            return
        self._liquidation_recheck_at[slots[candidates & liquidate]] = (
            now + LIQUIDATION_REQUEST_TTL_SECONDS
        )
        states = margin_calls_sync(
            account_ids=figures.account_id[candidates].tolist(), now=figures.at
        )
        for state in states:
            slot = self.book.slots_of([state.account_id])[0]
            call = state.open_call
            self._call_open[slot] = call is not None
            self._call_lowest[slot] = np.nan if call is None else float(call.lowest_health)
            self.stats.calls_opened += state.opened
            self.stats.calls_resolved += state.resolved is not None
            self.stats.liquidations_requested += state.liquidation_requested

    def _defer_stale(self, figures: BookFigures, deferred: np.ndarray) -> None:
        """Leave the calls of accounts priced stale alone; say so (a log line when an
        account's deferral starts, the count in the heartbeat)."""
        self._deferred[figures.index[~deferred]] = False
        new = deferred & ~self._deferred[figures.index]
        self._deferred[figures.index[deferred]] = True
        self._beat_detail["calls_deferred_stale"] = int(self._deferred.sum())
        if not new.any():
            return
        rows = figures.take(new)
        for account_id, health, since in zip(
            rows.account_id.tolist(), rows.health.tolist(), rows.stale_since.tolist(), strict=True
        ):
            shown = (
                "never" if np.isnan(since) else datetime.fromtimestamp(since, tz=UTC).isoformat()
            )
            logger.warning(
                "margin engine: margin call action for account %s (health %.3f) deferred: "
                "its prices are stale (oldest from %s)",
                account_id,
                health,
                shown,
            )

    def _push(self, figures: BookFigures) -> None:
        """Push the figures that changed since last pushed to the accounts a socket
        follows (none on the first sweep: a client that connects reads a fresh
        snapshot over REST)."""
        current = np.column_stack(
            [
                figures.cash,
                figures.adjusted_equity,
                figures.used_margin,
                figures.health,
                figures.status,
                figures.stale,
            ]
        )
        previous = self._pushed[figures.index]
        with np.errstate(invalid="ignore"):
            same = (np.abs(current - previous) < PUSH_EPSILON) | (current == previous)
        changed = ~same.all(axis=1)
        if not changed.any():
            return
        # An account changing band (healthy / caution / margin call) changes the ops desk.
        band_changed = bool((current[changed, 4] != previous[changed, 4]).any())
        self._pushed[figures.index[changed]] = current[changed]
        if not (self._publish and self._swept):
            return
        rows = figures.take(changed)
        # Only the accounts a socket follows now: an update to a group nobody is in
        # reaches nobody (pub/sub keeps nothing), and a client that connects later
        # reads a fresh snapshot.
        followed = np.flatnonzero(account_groups_followed(rows.account_id.tolist()))
        skipped = len(rows) - len(followed)
        self.stats.unfollowed += skipped
        metrics.engine_updates_counted(
            shard=self.shard.index, followed=len(followed), skipped=skipped
        )
        if not (band_changed or len(followed)):
            return
        margin_updates_broadcast(  # one pipelined batch (with the desk's hint)
            desk_reason="health" if band_changed else None,
            updates=[
                MarginUpdate(
                    account_id=int(rows.account_id[i]),
                    cash=money_decimal(rows.cash[i]),
                    used_margin=money_decimal(rows.used_margin[i]),
                    adjusted_equity=money_decimal(rows.adjusted_equity[i]),
                    available_margin=money_decimal(rows.available_margin[i]),
                    health=ratio_decimal(rows.health[i]),
                    utilization=ratio_decimal(rows.utilization[i]),
                    status=margin.STATUS_NAMES[rows.status[i]],
                    may_borrow=bool(rows.may_borrow[i]),
                    at=rows.at,
                    stale=bool(rows.stale[i]),
                    stale_since=None
                    if np.isnan(rows.stale_since[i])
                    else datetime.fromtimestamp(rows.stale_since[i], tz=UTC),
                )
                for i in followed
            ],
        )
        self.stats.pushes += len(followed)

    # The loop ------------------------------------------------------------------

    def run(self, *, iterations: int = 0) -> EngineStats:
        """Sweep, then process tick batches until stopped (or `iterations` turns done).

        Holds the engine's role (`Leadership`): stands by while another engine
        holds it (turns spent standing by do not count towards `iterations`).
        A lost subscription is re-made with back-off (RETRY_SECONDS doubling
        up to RETRY_MAX_SECONDS), followed by a full sweep.
        """
        with Leadership(self.lock_name, ttl=self.lock_ttl) as leadership:
            # Import the task modules now, so the first margin call does not pay for it.
            current_app.loader.import_default_modules()
            self._run(iterations, leadership)
        return self.stats

    @property
    def lock_ttl(self) -> float:
        """Seconds the role's lock outlives a dead holder (settings ENGINE_LOCK_TTL_SECONDS,
        else LOCK_TTL_SECONDS); a standby takes over within 4/3 of it."""
        configured = getattr(settings, "ENGINE_LOCK_TTL_SECONDS", None)
        return float(self._lock_ttl or configured or LOCK_TTL_SECONDS)

    @property
    def lock_name(self) -> str:
        """The role's lock (`portal.redis.Leadership`): one per shard."""
        return "margin engine" if self.shard.whole else f"margin engine {self.shard.label}"

    def stop(self) -> None:
        """Finish after the current batch; safe to call from a signal handler."""
        self._stopping.set()

    def _run(self, iterations: int, leadership: Leadership) -> None:
        done = 0
        retry = RETRY_SECONDS
        while not self._stopping.is_set():
            if not leadership.held:  # standing by: the engine holding the role beats
                leadership.wait(IDLE_SECONDS)
                continue
            role = leadership.changes
            try:
                with store.ticks_subscribe() as subscription:
                    retry = RETRY_SECONDS
                    next_sweep = self._clock()  # (re)build the book: ticks may have been missed
                    while not self._stopping.is_set() and leadership.changes == role:
                        if self._clock() >= next_sweep:
                            swept = self._guarded(self.sweep)
                            next_sweep = self._clock() + (
                                self.sweep_every if swept else RETRY_SECONDS
                            )
                            self._log_stats()
                        wait = min(IDLE_SECONDS, max(0.0, next_sweep - self._clock()))
                        self._guarded(self.process_batch, self._receive(subscription, wait))
                        self._beat()
                        done += 1
                        if iterations and done >= iterations:
                            return
            except redis.RedisError:
                self.stats.errors += 1
                logger.warning(
                    "margin engine: lost the tick subscription (%s); retrying in %.0f s",
                    "Redis unreachable",
                    retry,
                )
                self._beat(subscribed=False)  # /ready/ says so
                self._stopping.wait(retry)
                retry = min(RETRY_MAX_SECONDS, retry * 2)

    def _beat(self, *, subscribed: bool = True) -> None:
        """At most every HEARTBEAT_SECONDS: the engine's heartbeat (portal.heartbeats)."""
        now = time.monotonic()
        if now - self._beaten_at < HEARTBEAT_SECONDS:
            return
        self._beaten_at = now
        heartbeat_beat(
            engine_heartbeat_name(self.shard.index, self.shard.count),
            shard=self.shard.index,
            shards=self.shard.count,
            subscribed=subscribed,
            accounts=self.book.n_accounts,
            batches=self.stats.batches,
            errors=self.stats.errors,
            **self._beat_detail,
        )

    def _receive(self, subscription: TickSubscription, wait: float) -> TickBatch | None:
        """The next batch, merged with any already waiting behind it (the quote
        store is re-read anyway, so only which instruments moved matters)."""
        batch = subscription.get(wait) if wait > 0 else None
        if batch is None:
            return None
        quotes = list(batch.quotes)
        for _ in range(DRAIN_MAX):
            waiting = subscription.get(DRAIN_SECONDS)
            if waiting is None:
                break
            quotes += waiting.quotes
            batch = waiting
        return TickBatch(ts=batch.ts, quotes=tuple(quotes))

    def _guarded(self, step: Callable, *args: object) -> bool:
        """Run one step; a Redis or database error is logged (once per outage) and
        counted, and the step reported failed."""
        started = time.perf_counter()
        if not connection.in_atomic_block:
            # A long-running process must expire its own connections, as
            # Django does per request (CONN_MAX_AGE, health checks).
            close_old_connections()
        try:
            step(*args)
        except (redis.RedisError, DatabaseError):
            self.stats.errors += 1
            if not self._failed_in_a_row:
                logger.exception("margin engine: a batch failed; retrying with the next")
            self._failed_in_a_row += 1
            return False
        else:
            if self._failed_in_a_row:
                if not _services_answer():  # the step needed neither: still out
                    return True
                logger.info("margin engine: recovered after %d failures", self._failed_in_a_row)
            self._failed_in_a_row = 0
            return True
        finally:
            self.stats.busy_seconds += time.perf_counter() - started

    def _log_stats(self) -> None:
        stats = self.stats
        logger.info(
            "margin engine: %d accounts, %d positions; %d batches, %d sweeps "
            "(%.2f ms busy per batch), %d calls opened, %d resolved, %d liquidations "
            "requested, %d snapshots, %d pushes (%d changed accounts nobody followed), %d errors",
            self.book.n_accounts,
            self.book.n_positions,
            stats.batches,
            stats.sweeps,
            1000 * stats.busy_seconds / max(stats.batches + stats.sweeps, 1),
            stats.calls_opened,
            stats.calls_resolved,
            stats.liquidations_requested,
            stats.snapshots,
            stats.pushes,
            stats.unfollowed,
            stats.errors,
        )


def margin_sweep_full() -> tuple[int, EngineStats]:
    """Evaluate every account once, apart from the engine process; return (accounts, stats).

    Opens and resolves margin calls (each re-checked under its account's
    lock), requests liquidations and stores due snapshots; pushes nothing and
    leaves the "accounts changed" set to the engine, so it is safe to run
    alongside it, and twice.

    With ENGINE_SHARDS > 1 it sweeps shard after shard, each with a book of
    its own accounts only (`portal.shards`: every account is in exactly one
    shard, so each is evaluated exactly once, and the memory held is one
    shard's book, not all of them at once).
    """
    count = shards_count()
    total, stats = 0, EngineStats()
    for index in range(count):
        engine = MarginEngine(
            publish=False, consume_changes=False, shard=Shard(index=index, count=count)
        )
        total += len(engine.sweep())
        for field in fields(EngineStats):
            setattr(
                stats, field.name, getattr(stats, field.name) + getattr(engine.stats, field.name)
            )
    return total, stats
