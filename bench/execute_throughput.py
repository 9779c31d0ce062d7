"""Execute throughput benchmark: `order_execute` under concurrent clients, against a
bare row-locked ledger write.

    .venv/bin/python bench/execute_throughput.py [--clients 8] [--seconds 10]
        [--notional 10] [--venue-latency-ms 0] [--processes] [--keep-db]

On real PostgreSQL and Redis it:

1. creates the database named by DATABASE_URL (default
   postgres://postgres@127.0.0.1:5432/bench_execute; the name must start with
   "bench", because it is dropped and re-created) and migrates it; seeds one
   binary market listed on one venue (kalshi, served by the simulated venue)
   with a deep book published to Redis and re-published every
   QUOTE_REFRESH_SECONDS by a background thread (the simulated venue refuses
   quotes older than the risk policy's `price_stale_after_seconds`), and
   `--clients` + 1 custodial accounts, each opened with `account_open` and funded with
   FUNDING USDC by a balanced deposit journal (a reconcilable ledger);
2. runs `--clients` client threads (each with its own database connection,
   closed when the thread ends) for `--seconds` each, calling
   `order_execute(…, side="buy", notional_usdc=--notional)` in a loop:
   (a) every client on its own account; (b) every client on ONE shared account,
   where the account row lock serialises them. Before each timed run every
   client executes once on its own account (connection and caches warm);
3. runs the baseline the same way: `--clients` threads, each on its own psycopg
   connection, each transaction a bare row-locked ledger write on a table pair
   created in the bench database (SELECT … FOR UPDATE, UPDATE the balance, two
   INSERTs into a postings table), (a) per-client rows and (b) one shared row;
4. prints executes/s and p50/p99 latency of each run, how long each execute
   held the account row lock (p50/p99: from the moment a SELECT … FOR UPDATE
   of the account row returns to the commit, summed over the execute's
   transactions), and the ratios full service / baseline for (a) and (b);
   with --venue-latency-ms N the simulated venue sleeps N ms in every order
   placement (a real venue's round trips), and the ONE-account rate is
   compared with the serial bound 1000/N per second of the old design that
   held the account lock across the venue call (one execute at a time per
   account, each at least N ms): target ≥ 5×, and the lock held p99 ≤ 10 ms;
5. verifies no update was lost: the shared account's cash_balance equals its
   ledger (`cash_balance_from_ledger`), its position equals the sum of its
   fills, its Fill rows equal the executes that succeeded, every account's Fill
   rows equal its successful executes, `ledger_reconcile().ok`, and the
   baseline's balances equal their funding minus the writes that committed.
   Exits 1 if any check fails.

Clients are threads by default (the service is meant to be DB-bound, and waits
on PostgreSQL and Redis release the GIL); --processes runs each client in its own
spawned process instead, to tell the GIL apart from a saturated machine. The CPU
time of each run is printed next to its wall time: with threads, this process's
(CPU ≈ wall means the GIL bounds the run); with processes, the clients' whole
lives, start-up (imports, django.setup) included. Either way the clients' process
freezes what start-up built (`portal.processes.startup_objects_freeze`), as the
web workers and Celery pool processes that run orders do.

The database is dropped at the end unless --keep-db; the run's Redis keys
(prefix REDIS_KEY_PREFIX, default bench-execute-<pid>) are always deleted.
Targets: without latency the full service's ratio to the baseline must not
fall below the figures before the three-step order path (0.047 own accounts,
0.082 ONE account on a 2-core machine; ARCHITECTURE "Performance" asks for
≥ 0.15); with --venue-latency-ms 100, lock held p99 ≤ 10 ms and ONE account
≥ 5× the serial bound.
"""

import argparse
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
os.environ.setdefault("DJANGO_DEBUG", "false")  # DEBUG would keep every query in memory
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_execute")
os.environ.setdefault("REDIS_KEY_PREFIX", f"bench-execute-{os.getpid()}")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402
import psycopg  # noqa: E402
from benchdb import (  # noqa: E402
    database_drop,
    database_recreate,
    funded_account_create,
    redis_keys_delete,
)

from portal.processes import startup_objects_freeze  # noqa: E402

SYMBOL = "BENCH-EXEC"
VENUE = "kalshi"
FUNDING = Decimal("1000000")
BOOK_SIZE = Decimal("1000000000")  # contracts per level: never runs out
QUOTE_REFRESH_SECONDS = 1.0
TARGET_RATIO = 0.15
LOCK_HELD_P99_TARGET = 0.010  # seconds, with a venue latency
SERIAL_BOUND_TARGET = 5.0  # ONE account's executes/s over 1000 / latency_ms


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="duration of each timed run (default 10)"
    )
    parser.add_argument(
        "--notional", type=Decimal, default=Decimal("10"), help="USDC per execute (default 10)"
    )
    parser.add_argument(
        "--venue-latency-ms",
        type=int,
        default=0,
        help="the simulated venue takes this long to answer each order (default 0)",
    )
    parser.add_argument(
        "--processes",
        action="store_true",
        help="run each client in its own spawned process instead of a thread",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.clients < 1 or args.seconds <= 0 or args.notional <= 0:
        parser.error("--clients, --seconds and --notional must be positive.")
    if args.venue_latency_ms < 0:
        parser.error("--venue-latency-ms cannot be negative.")
    return args


# --- Database ------------------------------------------------------------------


# --- Seed --------------------------------------------------------------------------


def quote_publish() -> None:
    """A deep, one-cent-wide book for SYMBOL on VENUE, stamped now."""
    from trading.marketdata import store
    from trading.marketdata.quotes import BookLevel, OrderBook, Outcome, Quote

    now = datetime.now(UTC)
    bid, ask = Decimal("0.49"), Decimal("0.50")
    quote = Quote(
        listing_key=f"{SYMBOL}@{VENUE}",
        is_binary=True,
        ts=now,
        mark=(bid + ask) / 2,
        bid=bid,
        ask=ask,
        twap=(bid + ask) / 2,
        book=OrderBook(bids=(BookLevel(bid, BOOK_SIZE),), asks=(BookLevel(ask, BOOK_SIZE),)),
        outcome=Outcome.YES,
    )
    store.quotes_publish([quote], ts=now)


class QuoteRefresher(threading.Thread):
    """Re-publishes the quote so the simulated venue never sees it stale."""

    def __init__(self):
        super().__init__(name="quote-refresher", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(QUOTE_REFRESH_SECONDS):
            quote_publish()

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def market_seed():
    from django.utils import timezone

    from trading.models import EventGroup, Instrument, Listing, Venue

    event = EventGroup.objects.create(code="bench-execute", title="Benchmark event")
    instrument = Instrument.objects.create(
        symbol=SYMBOL,
        title="Benchmark market",
        kind=Instrument.Kind.BINARY,
        tick_size=Decimal("0.01"),
        event=event,
        expires_at=timezone.now() + timedelta(days=30),
    )
    venue, _ = Venue.objects.get_or_create(
        code=VENUE, defaults={"name": VENUE.title(), "kind": Venue.Kind.PREDICTION}
    )
    Listing.objects.create(instrument=instrument, venue=venue, venue_symbol=f"{SYMBOL}-{VENUE}")
    quote_publish()
    return instrument


def account_seed(k: int):
    """Client k's funded custodial account."""
    return funded_account_create(email=f"client{k}@bench.invalid", funding=FUNDING)


# --- Runs ------------------------------------------------------------------------

BASELINE_SCHEMA = """
    CREATE TABLE bench_account (id bigint PRIMARY KEY, balance numeric(20, 6) NOT NULL);
    CREATE TABLE bench_posting (
        id bigserial PRIMARY KEY,
        account_id bigint NOT NULL REFERENCES bench_account (id),
        amount numeric(20, 6) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX bench_posting_account ON bench_posting (account_id);
"""
BASELINE_HOUSE = 0  # the other side of every baseline write (postings only)
BASELINE_SHARED = -1  # the one row of the one-row run; client i owns row i + 1


@dataclass(frozen=True)
class Spec:
    """What a client does; picklable, so that a spawned process can run it too."""

    kind: str  # "service" or "baseline"
    one_account: bool
    url: str
    notional: Decimal
    account_pks: tuple[int, ...]  # the service's per-client accounts
    shared_pk: int
    venue_latency_ms: int = 0


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    first_error: str = ""
    succeeded: Counter = field(default_factory=Counter)  # account or row id → successes
    finished: float = 0.0
    lock_held: list[float] = field(default_factory=list)  # per successful call, seconds


class LockProbe:
    """Times how long this thread's connection holds the account row lock: from the
    first SELECT … FOR UPDATE of accounts_account in a transaction to its commit
    (a rolled-back transaction is not counted). `take()` returns the sum since the
    last call: the lock time of one execute, whose steps are separate transactions."""

    def __init__(self, connection):
        self.connection = connection
        self.held = 0.0
        connection.execute_wrappers.append(self)

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "FOR UPDATE" in sql and '"accounts_account"' in sql and not self._armed():
            started = time.perf_counter()

            def committed() -> None:
                self.held += time.perf_counter() - started

            committed.lock_probe = True
            self.connection.on_commit(committed)
        return result

    def _armed(self) -> bool:
        pending = self.connection.run_on_commit
        return any(getattr(entry[1], "lock_probe", False) for entry in pending)

    def take(self) -> float:
        held, self.held = self.held, 0.0
        return held


def service_client(spec: Spec, i: int):
    """(warm, call, close, backend pid) of an `order_execute` client."""
    from django.conf import settings
    from django.db import connection

    from accounts.models import Account
    from trading.models import Order
    from trading.services.execute import order_execute

    settings.SIMULATED_VENUE_LATENCY_MS = spec.venue_latency_ms
    own = Account.objects.get(pk=spec.account_pks[i])
    target = Account.objects.get(pk=spec.shared_pk) if spec.one_account else own
    probe = LockProbe(connection)

    def execute(account, result: Result) -> None:
        probe.take()
        order = order_execute(
            account=account, symbol=SYMBOL, side="buy", notional_usdc=spec.notional
        )
        if order.status != Order.Status.FILLED:
            raise RuntimeError(f"order {order.public_id} is {order.status}")
        result.succeeded[account.pk] += 1
        result.lock_held.append(probe.take())

    def backend_pid() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    return (
        lambda result: execute(own, result),
        lambda result: execute(target, result),
        connection.close,
        backend_pid,
    )


def baseline_client(spec: Spec, i: int):
    """(warm, call, close, backend pid) of a bare row-locked ledger write client, on its
    own psycopg connection."""
    conn = psycopg.connect(spec.url)
    amount = spec.notional
    own = i + 1
    target = BASELINE_SHARED if spec.one_account else own

    def write(account_id: int, result: Result) -> None:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT balance FROM bench_account WHERE id = %s FOR UPDATE", (account_id,)
            )
            (balance,) = cursor.fetchone()
            cursor.execute(
                "UPDATE bench_account SET balance = %s WHERE id = %s",
                (balance - amount, account_id),
            )
            cursor.execute(
                "INSERT INTO bench_posting (account_id, amount) VALUES (%s, %s)",
                (account_id, -amount),
            )
            cursor.execute(
                "INSERT INTO bench_posting (account_id, amount) VALUES (%s, %s)",
                (BASELINE_HOUSE, amount),
            )
        conn.commit()
        result.succeeded[account_id] += 1

    return (
        lambda result: write(own, result),
        lambda result: write(target, result),
        conn.close,
        lambda: conn.info.backend_pid,
    )


def client_run(spec: Spec, i: int, ready, go, deadline) -> Result:
    """One client: warm once on its own account, wait for all, then loop until the
    deadline, timing each successful call."""
    result = Result()
    warm, call, close, _ = (service_client if spec.kind == "service" else baseline_client)(spec, i)
    try:
        warm(result)
        ready.wait()
        go.wait()
        end = deadline.value
        while (started := time.perf_counter()) < end:
            try:
                call(result)
            except Exception as exc:
                result.errors[type(exc).__name__] += 1
                result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                continue
            result.latencies.append(time.perf_counter() - started)
        result.finished = time.perf_counter()
    finally:
        close()
    return result


def client_process(spec: Spec, i: int, ready, go, deadline, queue) -> None:
    """A spawned process's entry point: set Django up, freeze what start-up built (as a
    web worker or a Celery pool process does), run one client, send its result."""
    django.setup()
    startup_objects_freeze()
    try:
        queue.put(client_run(spec, i, ready, go, deadline))
    except BaseException as exc:
        ready.abort()
        queue.put(Result(errors=Counter({type(exc).__name__: 1}), first_error=repr(exc)))
        raise


@dataclass
class Run:
    label: str
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    first_error: str = ""
    succeeded: Counter = field(default_factory=Counter)
    wall: float = 0.0
    cpu: float = 0.0
    lock_held: list[float] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.wall if self.wall > 0 else 0.0

    def add(self, result: Result) -> None:
        self.latencies.extend(result.latencies)
        self.errors.update(result.errors)
        self.first_error = self.first_error or result.first_error
        self.succeeded.update(result.succeeded)
        self.lock_held.extend(result.lock_held)


class Deadline:
    """The threads' stand-in for a shared multiprocessing Value."""

    value = 0.0


def run_clients(label: str, spec: Spec, clients: int, seconds: float, processes: bool) -> Run:
    """`clients` threads (or spawned processes) running `client_run`; returns the merged run."""
    import multiprocessing

    run = Run(label)
    if processes:
        context = multiprocessing.get_context("spawn")
        ready, go = context.Barrier(clients + 1), context.Event()
        deadline, queue = context.Value("d", 0.0), context.Queue()
        workers = [
            context.Process(
                target=client_process, args=(spec, i, ready, go, deadline, queue), daemon=True
            )
            for i in range(clients)
        ]
    else:
        ready, go, deadline = threading.Barrier(clients + 1), threading.Event(), Deadline()
        results: list[Result] = []

        def thread_main(i: int) -> None:
            try:
                results.append(client_run(spec, i, ready, go, deadline))
            except BaseException as exc:
                ready.abort()
                results.append(
                    Result(errors=Counter({type(exc).__name__: 1}), first_error=repr(exc))
                )

        workers = [
            threading.Thread(target=thread_main, args=(i,), name=f"client-{i}")
            for i in range(clients)
        ]
    for worker in workers:
        worker.start()
    ready.wait(timeout=300)
    before = os.times()
    started = time.perf_counter()
    deadline.value = started + seconds
    go.set()
    if processes:
        results = [queue.get(timeout=seconds + 300) for _ in workers]
    for worker in workers:
        worker.join()
    after = os.times()
    for result in results:
        run.add(result)
    finished = [result.finished for result in results if result.finished]
    run.wall = max(finished) - started if finished else 0.0
    run.cpu = sum(after[:4]) - sum(before[:4])  # this process and its waited-for children
    return run


def baseline_create(url: str, clients: int) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(BASELINE_SCHEMA)
        ids = [BASELINE_HOUSE, BASELINE_SHARED, *range(1, clients + 1)]
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO bench_account (id, balance) VALUES (%s, %s)",
                [(i, FUNDING) for i in ids],
            )


def baseline_verify(url: str, notional: Decimal, committed: Counter) -> list[str]:
    """Each row's balance equals its funding minus its committed writes, and its postings;
    the house's postings equal every committed write."""
    failures = []
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.id, a.balance, COALESCE(SUM(p.amount), 0) FROM bench_account a "
            "LEFT JOIN bench_posting p ON p.account_id = a.id GROUP BY a.id, a.balance"
        ).fetchall()
    for account_id, balance, posted in rows:
        if account_id == BASELINE_HOUSE:
            if posted != notional * sum(committed.values()):
                failures.append(f"baseline house postings {posted} ≠ the committed writes")
            continue
        expected = FUNDING - notional * committed[account_id]
        if balance != expected or balance != FUNDING + posted:
            failures.append(
                f"baseline row {account_id}: balance {balance}, expected {expected}, "
                f"funding + postings {FUNDING + posted}"
            )
    shared = committed[BASELINE_SHARED]
    print(
        f"  baseline: {sum(committed.values()):,} writes committed ({shared:,} on the one row); "
        f"balances {'match' if not failures else 'DO NOT match'} funding − writes and postings"
    )
    return failures


def backend_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a local PostgreSQL backend, from /proc; None if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_call(label: str, spec: Spec, calls: int) -> Counter:
    """One client, `calls` sequential calls: this process's CPU and its PostgreSQL backend's
    CPU per call (what bounds throughput when clients and server share the CPUs). Returns
    the successes by account or row id."""
    warm, call, close, backend_pid = (
        service_client if spec.kind == "service" else baseline_client
    )(spec, 0)
    try:
        result = Result()
        warm(result)
        pid = backend_pid()
        server_before, client_before = backend_cpu_seconds(pid), time.process_time()
        for _ in range(calls):
            call(result)
        client = (time.process_time() - client_before) / calls
        server_after = backend_cpu_seconds(pid)
    finally:
        close()
    server = (
        "n/a (server not local)"
        if server_before is None or server_after is None
        else f"{(server_after - server_before) / calls * 1000:5.2f} ms"
    )
    print(f"  {label:34s} client {client * 1000:5.2f} ms + PostgreSQL backend {server}")
    return result.succeeded


# --- Checks ------------------------------------------------------------------------


def service_verify(filled: Counter, accounts: list, shared_pk: int, instrument) -> list[str]:
    """No lost update on the shared account, nor anywhere in the ledger."""
    from django.db.models import Count, Sum

    from accounts.models import Account
    from accounts.services.ledger import cash_balance_from_ledger
    from accounts.services.reconciliation import ledger_reconcile
    from trading.models import Fill, Order, Position

    failures = []
    shared = Account.objects.get(pk=shared_pk)
    ledger = cash_balance_from_ledger(shared)
    fills = Fill.objects.filter(account=shared)
    totals = fills.aggregate(
        n=Count("pk"),
        quantity=Sum("quantity"),
        notional=Sum("notional"),
        fees=Sum("venue_fee") + Sum("commission"),
    )
    position = Position.objects.filter(account=shared, instrument=instrument, outcome="yes").first()
    held = position.quantity if position is not None else Decimal(0)
    expected_cash = FUNDING - (totals["notional"] or 0) - (totals["fees"] or 0)
    print(
        f"  shared account: {filled[shared.pk]:,} executes succeeded, "
        f"{totals['n']:,} Fill rows; cash {shared.cash_balance} (ledger {ledger}, "
        f"funding − fills − fees {expected_cash}); position {held} (Σ fills {totals['quantity']})"
    )
    if shared.cash_balance != ledger:
        failures.append(f"shared cash_balance {shared.cash_balance} ≠ ledger {ledger}")
    if shared.cash_balance != expected_cash:
        failures.append(f"shared cash_balance {shared.cash_balance} ≠ {expected_cash}")
    if held != (totals["quantity"] or 0):
        failures.append(f"shared position {held} ≠ Σ fills {totals['quantity']}")
    if totals["n"] != filled[shared.pk]:
        failures.append(f"shared Fill rows {totals['n']} ≠ executes {filled[shared.pk]}")
    per_account = dict(
        Fill.objects.values("account_id").annotate(n=Count("pk")).values_list("account_id", "n")
    )
    for account in accounts:
        if per_account.get(account.pk, 0) != filled[account.pk]:
            failures.append(
                f"account {account.public_id}: {per_account.get(account.pk, 0)} Fill rows ≠ "
                f"{filled[account.pk]} executes"
            )
    not_filled = Order.objects.exclude(status=Order.Status.FILLED).count()
    if not_filled:
        failures.append(f"{not_filled} orders not filled")
    report = ledger_reconcile()
    print(f"  {report.summary()}")
    if not report.ok:
        failures.append(report.summary())
    return failures


# --- Main ------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def line(run: Run) -> None:
    errors = ", ".join(f"{name} ×{n}" for name, n in run.errors.most_common())
    print(
        f"  {run.label:34s} {run.rate:8,.0f} /s  p50 {ms(percentile(run.latencies, 50))}  "
        f"p99 {ms(percentile(run.latencies, 99))}  ({run.count:,} in {run.wall:.2f} s; "
        f"CPU {run.cpu:.2f} s{'; errors: ' + errors if errors else ''})"
    )
    if run.lock_held:
        print(
            f"    account row lock held per execute: p50 {ms(percentile(run.lock_held, 50))}  "
            f"p99 {ms(percentile(run.lock_held, 99))}"
        )
    if run.first_error:
        print(f"    first error: {run.first_error}")


def main() -> int:
    args = parse_args()
    url = os.environ["DATABASE_URL"]
    name = database_recreate(url)
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    print(f"database {name} (created; {'kept' if args.keep_db else 'dropped'} at the end)")
    refresher = QuoteRefresher()
    failures: list[str] = []
    try:
        call_command("migrate", verbosity=0, interactive=False)
        instrument = market_seed()
        accounts = [account_seed(k) for k in range(args.clients)]
        shared = account_seed(args.clients)
        connection.close()  # the clients use their own connections
        baseline_create(url, args.clients)
        refresher.start()
        if not args.processes:  # the threads' process: frozen like a web worker
            startup_objects_freeze()
        mode = "spawned processes" if args.processes else "threads in one process"
        print(
            f"{args.clients} clients as {mode} (one DB connection each), {args.seconds:g} s a "
            f"run, buys of {args.notional} USDC of {SYMBOL} on {VENUE} (simulated venue, "
            f"{args.venue_latency_ms} ms per order); {os.cpu_count()} CPUs"
        )
        pks = tuple(account.pk for account in accounts)

        def measure(label: str, kind: str, one_account: bool) -> Run:
            spec = Spec(
                kind, one_account, url, args.notional, pks, shared.pk, args.venue_latency_ms
            )
            return run_clients(label, spec, args.clients, args.seconds, args.processes)

        full_own = measure("order_execute, own accounts", "service", False)
        base_own = measure("bare ledger write, own rows", "baseline", False)
        full_one = measure("order_execute, ONE account", "service", True)
        base_one = measure("bare ledger write, ONE row", "baseline", True)

        print("throughput and latency:")
        for run in (full_own, base_own, full_one, base_one):
            line(run)
        print(f"ratio full / baseline (target ≥ {TARGET_RATIO}):")
        for label, full, base in (
            ("own accounts", full_own, base_own),
            ("ONE account", full_one, base_one),
        ):
            ratio = full.rate / base.rate if base.rate else float("nan")
            verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
            print(
                f"  {label:13s} {ratio:.3f}  ({full.rate:,.0f} / {base.rate:,.0f} per s; "
                f"p50 {percentile(full.latencies, 50) / percentile(base.latencies, 50):.1f}× "
                f"the baseline's; target {verdict})"
            )

        if args.venue_latency_ms:
            serial = 1000 / args.venue_latency_ms
            times = full_one.rate / serial
            held = percentile(full_one.lock_held + full_own.lock_held, 99)
            print(
                f"with {args.venue_latency_ms} ms of venue latency: ONE account "
                f"{full_one.rate:,.1f} executes/s = {times:.1f}× the lock-across-the-venue "
                f"design's serial bound {serial:,.1f}/s (target ≥ {SERIAL_BOUND_TARGET:g}×: "
                f"{'met' if times >= SERIAL_BOUND_TARGET else 'NOT met'}); lock held p99 "
                f"{held * 1000:.2f} ms (target ≤ {LOCK_HELD_P99_TARGET * 1000:g} ms: "
                f"{'met' if held <= LOCK_HELD_P99_TARGET else 'NOT met'})"
            )

        calls = 300
        print(f"CPU per call (one client, {calls} sequential calls on its own account):")
        sequential = cpu_per_call(
            "order_execute", Spec("service", False, url, args.notional, pks, shared.pk), calls
        )
        sequential_base = cpu_per_call(
            "bare ledger write", Spec("baseline", False, url, args.notional, pks, shared.pk), calls
        )
        refresher.stop()

        print("lost updates:")
        filled = full_own.succeeded + full_one.succeeded + sequential
        failures += service_verify(filled, accounts, shared.pk, instrument)
        failures += baseline_verify(
            url, args.notional, base_own.succeeded + base_one.succeeded + sequential_base
        )
        for run in (full_own, full_one, base_own, base_one):
            if run.errors:
                failures.append(f"{run.label}: {sum(run.errors.values())} failed calls")
        if failures:
            for failure in failures:
                print(f"  FAILED: {failure}")
        else:
            print("  none: every check passed")
    finally:
        if refresher.is_alive():
            refresher.stop()
        redis_keys_delete()
        if not args.keep_db:
            database_drop(url, name)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
