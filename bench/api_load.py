"""API load benchmark: GET positions and GET margin of the partner API under concurrent
load on the ASGI server, against a bare Django JSON view on the same server in the same run.

    .venv/bin/python bench/api_load.py [--seconds 10] [--concurrency 16] [--workers 2]
        [--rate R] [--client-processes 1] [--warmup 2] [--profile] [--keep-db]

On real PostgreSQL and Redis it:

1. creates the database named by DATABASE_URL (default
   postgres://postgres@127.0.0.1:5432/bench_api; the name must start with
   "bench", because it is dropped and re-created) and migrates it; seeds, through
   the real services, one KYB-approved owner's custodial margin account funded
   by a balanced deposit journal, BINARY_MARKETS binary markets in EVENTS events
   listed on kalshi and polymarket and two perpetuals on leviathan, quoted in
   Redis (`quotes_publish`), and buys the account's positions with
   `order_execute` (the YES and the NO contract of every binary market, a long
   and a short perpetual: it ends up borrowing a little); issues an API key for
   it (`api_key_issue`, scopes intelligence + read);
2. starts uvicorn in a subprocess (`--workers`, `--lifespan off`, as the
   Procfile) on this database and Redis prefix with
   DJANGO_SETTINGS_MODULE=settings_bench (bench/settings_bench.py: DEBUG off,
   API rate limits raised out of reach, so that the throttle still runs on
   every request but never answers 429; bench/urls_bench.py: the portal's URLs
   plus `/bench/bare`, a plain Django view returning a small fixed
   JsonResponse) and DB_CONN_MAX_AGE 0 (see SERVER_CONN_MAX_AGE), and waits for
   /health/;
3. closed loop: for each of the bare view, GET /v1/intelligence/positions and
   GET /v1/intelligence/margin, `--concurrency` keep-alive connections (httpx,
   asyncio, in `--client-processes` spawned processes) each send their next
   request as soon as the last is answered, for `--seconds` after `--warmup`
   seconds of the same load (during which the connections are opened one by
   one, so that every uvicorn worker accepts its share); prints requests/s,
   p50/p99 latency and the ratios positions / bare and margin / bare
   (target ≥ TARGET_RATIO);
4. open loop: the same three at one fixed offered rate (`--rate`, default half
   the closed-loop throughput of the slowest of them, so that none is past
   saturation), requests sent on schedule whether or not earlier ones were
   answered, latency measured from the scheduled send time (no coordinated
   omission); prints p50/p99 and whether p99 ≤ TARGET_TAIL × p50;
5. checks every response (status 200 and the expected body: the bare dict;
   the key's account and every seeded position; the margin figures with its
   exposure by asset class and breakdown) and counts the others as errors;
   prints, for each run, the CPU a request cost the server's processes (and
   how their work was shared), PostgreSQL (reaped backends included), Redis,
   the load generator and every other process, the PostgreSQL sessions opened
   a request, and how busy the machine was;
6. with --profile (server stopped): serves each target in this process,
   through Django's handler (test client) and through the ASGI application as
   uvicorn calls it, and prints wall and CPU time, SQL queries, Redis round
   trips, PostgreSQL sessions and sync_to_async hand-offs a request, then the
   time in each stage of the request (cProfile) and the top functions.

Client and server share this machine's CPUs, and with anything else running on
it: the load generator's CPU and the other processes' are printed beside the
server's, and a saturated machine bounds every figure.
The database is dropped at the end unless --keep-db; the run's Redis keys
(prefix REDIS_KEY_PREFIX, default bench-api-<pid>) are always deleted.
Exits 1 if any response was wrong.
"""

import argparse
import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for _path in (str(BENCH), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ["DJANGO_SETTINGS_MODULE"] = "settings_bench"  # this process and the server
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_api")
os.environ.setdefault("REDIS_KEY_PREFIX", f"bench-api-{os.getpid()}")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# The server's CONN_MAX_AGE (DB_CONN_MAX_AGE; this process uses the same). Under ASGI every
# request runs in its own context, so opens its own connection whatever this is; with a
# max age above 0 the finished requests' connections stay open until garbage-collected,
# and a load test exhausts PostgreSQL's max_connections ("too many clients"). 0, as the
# server of tests/api. BENCH_DB_CONN_MAX_AGE overrides it.
SERVER_CONN_MAX_AGE = os.environ.get("BENCH_DB_CONN_MAX_AGE", "0")
os.environ["DB_CONN_MAX_AGE"] = SERVER_CONN_MAX_AGE

import django  # noqa: E402
from benchdb import (  # noqa: E402
    database_drop,
    database_recreate,
    funded_account_create,
    redis_keys_delete,
)

from portal.net import uvicorn_proxy_argv  # noqa: E402

TARGET_RATIO = 0.8  # API throughput / bare view throughput, closed loop
TARGET_TAIL = 3.0  # p99 / p50 at the fixed offered rate
BARE_PATH = "/bench/bare"
POSITIONS_PATH = "/v1/intelligence/positions"
MARGIN_PATH = "/v1/intelligence/margin"
API_VERSION = "2026-04-01"

BINARY_VENUES = ("kalshi", "polymarket")
PERP_VENUE = "leviathan"
BINARY_MARKETS = 10  # each held YES and NO: 20 binary positions
EVENTS = 4
BINARY_NOTIONAL = Decimal("600")
# (symbol, base asset, mid price, side): a long and a short.
PERPS = (("BTC-PERP", "BTC", Decimal("50000"), "buy"), ("ETH-PERP", "ETH", Decimal("3000"), "sell"))
PERP_NOTIONAL = Decimal("1000")
FUNDING = Decimal("12000")  # a little less than the positions cost: the account borrows
BOOK_SIZE = Decimal("1000000000")
MAX_CONNECTION_RAMP = 0.05  # seconds between the warm-up's connection openings
DISTURBED_SHARE = 0.10  # other processes' share of the CPUs above which a warning is printed
SESSION_STATS_DELAY = 1.0  # seconds after a run before PostgreSQL's session count is read

POSITIONS_KEYS = frozenset({"account_id", "margin_utilization", "as_of", "positions"})
MARGIN_KEYS = frozenset(
    {
        "account_id",
        "margin_enabled",
        "health",
        "status",
        "cash",
        "used_margin",
        "adjusted_equity",
        "by_asset_class",
        "by_venue",
        "breakdown",
        "as_of",
    }
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="duration of each timed run (default 10)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="connections of the closed loop, and the open loop's pool (default 16)",
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop's offered rate, requests/s (default: half the bare view's "
        "closed-loop throughput)",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="load generator processes; connections and rate are split among them (default 1)",
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of load before each run (default 2)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also serve each target in this process and print where a request's time goes",
    )
    parser.add_argument(
        "--profile-requests",
        type=int,
        default=300,
        help="requests per target for --profile (default 300)",
    )
    parser.add_argument(
        "--figures-store",
        choices=("on", "off"),
        default="on",
        help="the server's FIGURES_STORE: on, reads served from the stored figures "
        "(trading.services.figures_store; no engine runs here: the first read's write-back "
        "stores them, and again every FIGURES_MAX_AGE_SECONDS); off, every read computes "
        "(default on)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.seconds <= 0 or args.concurrency < 1 or args.workers < 1 or args.warmup < 0:
        parser.error("--seconds, --concurrency and --workers must be positive.")
    if args.client_processes < 1 or args.client_processes > args.concurrency:
        parser.error("--client-processes must lie in [1, --concurrency].")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive.")
    return args


# --- Seed --------------------------------------------------------------------------


def binary_symbol(i: int) -> str:
    return f"BENCH-API-{i:02d}"


def quotes_publish() -> None:
    """Deep books for every seeded listing, stamped now: each binary one cent wide on
    kalshi, polymarket a cent dearer; each perpetual one dollar wide."""
    from trading.marketdata import store
    from trading.marketdata.quotes import BookLevel, OrderBook, Outcome, Quote

    now = datetime.now(UTC)
    quotes = []
    for i in range(BINARY_MARKETS):
        for k, venue in enumerate(BINARY_VENUES):
            ask = Decimal("0.25") + Decimal("0.05") * i + Decimal("0.01") * k
            bid = ask - Decimal("0.01")
            quotes.append(
                Quote(
                    listing_key=f"{binary_symbol(i)}@{venue}",
                    is_binary=True,
                    ts=now,
                    mark=(bid + ask) / 2,
                    bid=bid,
                    ask=ask,
                    twap=(bid + ask) / 2,
                    book=OrderBook(
                        bids=(BookLevel(bid, BOOK_SIZE),), asks=(BookLevel(ask, BOOK_SIZE),)
                    ),
                    outcome=Outcome.YES,
                )
            )
    for symbol, _, mid, _ in PERPS:
        bid, ask = mid - Decimal("0.5"), mid + Decimal("0.5")
        quotes.append(
            Quote(
                listing_key=f"{symbol}@{PERP_VENUE}",
                is_binary=False,
                ts=now,
                mark=mid,
                bid=bid,
                ask=ask,
                twap=mid,
                book=OrderBook(
                    bids=(BookLevel(bid, BOOK_SIZE),), asks=(BookLevel(ask, BOOK_SIZE),)
                ),
                outcome=None,
            )
        )
    store.quotes_publish(quotes, ts=now)


def markets_seed() -> None:
    from django.utils import timezone

    from trading.models import EventGroup, Instrument, Listing, Venue

    venues = {
        code: Venue.objects.get_or_create(
            code=code, defaults={"name": code.title(), "kind": Venue.Kind.PREDICTION}
        )[0]
        for code in BINARY_VENUES
    }
    perp_venue, _ = Venue.objects.get_or_create(
        code=PERP_VENUE, defaults={"name": PERP_VENUE.title(), "kind": Venue.Kind.PERPETUALS}
    )
    events = [
        EventGroup.objects.create(code=f"bench-api-{e}", title=f"Benchmark event {e}")
        for e in range(EVENTS)
    ]
    for i in range(BINARY_MARKETS):
        symbol = binary_symbol(i)
        instrument = Instrument.objects.create(
            symbol=symbol,
            title=f"Benchmark market {i}",
            kind=Instrument.Kind.BINARY,
            tick_size=Decimal("0.01"),
            event=events[i % EVENTS],
            expires_at=timezone.now() + timedelta(days=30 + i),
        )
        for code, venue in venues.items():
            Listing.objects.create(
                instrument=instrument, venue=venue, venue_symbol=f"{symbol}-{code}"
            )
    for symbol, base, _, _ in PERPS:
        instrument = Instrument.objects.create(
            symbol=symbol,
            title=f"{base} perpetual",
            kind=Instrument.Kind.PERPETUAL,
            tick_size=Decimal("0.5"),
            base_asset=base,
            max_leverage=20,
            default_leverage=5,
            maintenance_margin_fraction=Decimal("0.03"),
            funding_interval_hours=8,
        )
        Listing.objects.create(instrument=instrument, venue=perp_venue, venue_symbol=symbol)
    quotes_publish()


def account_seed():
    """A KYB-approved owner's custodial margin account, funded by a balanced deposit
    journal."""
    from accounts.models import Account

    account = funded_account_create(email="partner@bench.invalid", funding=FUNDING)
    Account.objects.filter(pk=account.pk).update(
        margin_enabled=True, margin_override=Account.MarginOverride.GRANTED
    )
    account.refresh_from_db()
    return account


def positions_seed(account) -> tuple[int, int]:
    """Buy the account's positions through `order_execute`; return (binary, perpetual)
    open positions."""
    from trading.models import Order, Position
    from trading.services.execute import order_execute

    trades = [(symbol, side, PERP_NOTIONAL) for symbol, _, _, side in PERPS]
    for i in range(BINARY_MARKETS):
        trades += [(binary_symbol(i), "buy", BINARY_NOTIONAL)]
        trades += [(f"{binary_symbol(i)}:NO", "buy", BINARY_NOTIONAL)]
    for symbol, side, notional in trades:
        quotes_publish()  # the simulated venue refuses a stale quote
        account.refresh_from_db()
        order = order_execute(account=account, symbol=symbol, side=side, notional_usdc=notional)
        if order.status != Order.Status.FILLED:
            raise RuntimeError(f"seed order {symbol} {side} is {order.status}")
    held = Position.objects.filter(account=account).exclude(quantity=0)
    binary = held.filter(instrument__kind="binary").count()
    return binary, held.count() - binary


def key_issue(account) -> str:
    from accounts.models import ApiKey, User
    from accounts.services.api_keys import api_key_issue

    ops = User.objects.create_user(email="ops@bench.invalid", is_staff=True)
    issued = api_key_issue(
        owner=account.owner,
        accounts=[account],
        scopes=[ApiKey.Scope.INTELLIGENCE, ApiKey.Scope.READ],
        name="bench api_load",
        actor=ops,
    )
    return issued.key


# --- Server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_start(workers: int, figures_store: str = "on") -> tuple[subprocess.Popen, str]:
    """uvicorn on the bench settings, this database and Redis prefix; (process, base URL)."""
    import httpx

    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings_bench",
        "FIGURES_STORE": "true" if figures_store == "on" else "false",
        "PYTHONPATH": os.pathsep.join(
            [str(BENCH), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    argv = [sys.executable, "-m", "uvicorn", "portal.asgi:application"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    argv += ["--lifespan", "off", "--log-level", "warning", "--no-access-log"]
    argv += uvicorn_proxy_argv()  # the product's trusted proxies (none by default)
    server = subprocess.Popen(argv, env=env, cwd=ROOT)  # noqa: S603 (our interpreter, fixed argv)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health/", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server_stop(server)
            raise RuntimeError("the API server did not start")
        time.sleep(0.1)
    # /health/ answered from one worker; give the others as long to come up.
    time.sleep(1.0)
    return server, base


def server_stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- CPU accounting ----------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    processes: dict[str, dict[int, float]]  # group → pid → CPU seconds so far
    machine: float  # busy CPU seconds of the whole machine so far (/proc/stat)


def machine_busy_seconds() -> float:
    """Busy CPU time of every CPU since boot: user, nice, system, irq, softirq, steal."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def sessions_opened(url: str, name: str) -> int | None:
    """PostgreSQL's count of sessions ever established to `name` (pg_stat_database)."""
    import psycopg

    maintenance = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    try:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            row = conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = %s", (name,)
            ).fetchone()
    except psycopg.Error:
        return None
    return None if row is None else int(row[0])


def cpu_sample(server_pid: int) -> CpuSample:
    """CPU seconds so far of each process of the server (uvicorn and its workers),
    PostgreSQL and Redis, by pid, and of the whole machine.

    A PostgreSQL process's figure includes its reaped children's: the postmaster
    collects the CPU of every backend that has exited (a session per request, when
    connections are not reused), so none is lost.
    """
    import psutil

    groups: dict[str, dict[int, float]] = {"server": {}, "postgres": {}, "redis": {}}
    try:
        parent = psutil.Process(server_pid)
        server = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        server = []
    for process in server:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        groups["server"][process.pid] = times.user + times.system
    for process in psutil.process_iter(["name"]):
        name = process.info["name"] or ""
        group = "postgres" if name.startswith("postgres") else "redis" if "redis" in name else None
        if group is None:
            continue
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        own = times.user + times.system
        groups[group][process.pid] = own + times.children_user + times.children_system
    return CpuSample(groups, machine_busy_seconds())


def cpu_delta(before: CpuSample, after: CpuSample) -> tuple[dict[str, float], list[float]]:
    """(CPU seconds each group and the machine used between two samples, the server
    processes' own deltas largest first). A process born in between counts whole."""
    totals, per_server = {}, []
    for group, processes in after.processes.items():
        deltas = [cpu - before.processes[group].get(pid, 0.0) for pid, cpu in processes.items()]
        totals[group] = sum(deltas)
        if group == "server":
            per_server = sorted(deltas, reverse=True)
    totals["machine"] = after.machine - before.machine
    return totals, per_server


# --- Load generator (runs in spawned processes) ------------------------------------


@dataclass(frozen=True)
class Target:
    label: str
    path: str
    kind: str  # "bare", "positions" or "margin"


@dataclass(frozen=True)
class Expected:
    """What a correct response holds; picklable for the client processes."""

    bare_body: dict
    account_id: str
    binary_positions: int
    perp_positions: int


@dataclass(frozen=True)
class Spec:
    base: str
    key: str
    target: Target
    expected: Expected
    connections: int
    seconds: float
    warmup: float
    rate: float | None  # None: closed loop; else requests/s of this process (open loop)
    phase: float  # open loop: this process's offset in the schedule, seconds


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    first_error: str = ""
    wall: float = 0.0
    cpu: float = 0.0
    sent: int = 0


def response_problem(response, target: Target, expected: Expected) -> str | None:
    """Why `response` is not a correct answer for `target` (None: it is)."""
    import orjson

    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return "invalid JSON"
    if target.kind == "bare":
        return None if body == expected.bare_body else "wrong body"
    if not isinstance(body, dict):
        return "not an object"
    keys = POSITIONS_KEYS if target.kind == "positions" else MARGIN_KEYS
    if missing := keys - body.keys():
        return f"missing {', '.join(sorted(missing))}"
    if body["account_id"] != expected.account_id:
        return "another account"
    if target.kind == "positions":
        positions = body["positions"]
        held = expected.binary_positions + expected.perp_positions
        if len(positions) != held:
            return f"{len(positions)} positions, not {held}"
        if any(not isinstance(p, dict) or "symbol" not in p for p in positions):
            return "position without symbol"
        return None
    by_class = body["by_asset_class"]
    counts = (by_class["prediction"]["positions"], by_class["perpetual"]["positions"])
    if counts != (expected.binary_positions, expected.perp_positions):
        return f"by_asset_class counts {counts}"
    if len(body["breakdown"]) != expected.binary_positions:
        return f"{len(body['breakdown'])} breakdown rows"
    return None


def note_error(result: Result, label: str, detail: str) -> None:
    result.errors[label] += 1
    if not result.first_error:
        result.first_error = f"{label}: {detail[:300]}"


async def _get(client, spec: Spec, result: Result, started: float) -> None:
    import httpx

    try:
        response = await client.get(spec.target.path)
    except httpx.HTTPError as exc:
        note_error(result, type(exc).__name__, str(exc))
        return
    finished = time.perf_counter()
    problem = response_problem(response, spec.target, spec.expected)
    if problem is not None:
        note_error(result, problem, response.text)
        return
    result.latencies.append(finished - started)


async def _closed_loop(
    client, spec: Spec, result: Result, seconds: float, ramp: float = 0.0
) -> None:
    """spec.connections loops, each sending its next request when the last is answered,
    for `seconds`; loop k starts k·`ramp` seconds late."""
    end = time.perf_counter() + seconds

    async def connection(k: int) -> None:
        await asyncio.sleep(k * ramp)
        while (started := time.perf_counter()) < end:
            await _get(client, spec, result, started)

    await asyncio.gather(*(connection(k) for k in range(spec.connections)))


async def _open_loop(client, spec: Spec, result: Result) -> None:
    """Send on a fixed schedule (one request every 1/rate s) for spec.seconds; latency
    from each request's scheduled time. Waits for the stragglers (at most 60 s)."""
    interval = 1.0 / spec.rate
    start = time.perf_counter() + spec.phase
    count = int(spec.seconds * spec.rate)
    tasks = []
    for i in range(count):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_get(client, spec, result, scheduled)))
    result.sent = count
    _, pending = await asyncio.wait(tasks, timeout=60) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    if pending:
        result.errors["unanswered after 60 s"] += len(pending)


async def _client_run(spec: Spec, ready, go) -> Result:
    import httpx

    limits = httpx.Limits(
        max_connections=spec.connections, max_keepalive_connections=spec.connections
    )
    headers = {"Authorization": f"Bearer {spec.key}", "Lev-Version": API_VERSION}
    timeout = httpx.Timeout(30.0, pool=None)
    async with httpx.AsyncClient(
        base_url=spec.base, headers=headers, limits=limits, timeout=timeout
    ) as client:
        # Open the connections one by one under load, so that each uvicorn worker accepts
        # its share: opened at once, they all go to the worker that wakes first.
        warm = Result()
        ramp = min(MAX_CONNECTION_RAMP, spec.warmup / 2 / spec.connections)
        await _closed_loop(client, spec, warm, spec.warmup, ramp=ramp)
        ready.wait()
        go.wait()
        result = Result()
        cpu, started = time.process_time(), time.perf_counter()
        if spec.rate is None:
            await _closed_loop(client, spec, result, spec.seconds)
        else:
            await _open_loop(client, spec, result)
        result.wall = time.perf_counter() - started
        result.cpu = time.process_time() - cpu
        if warm.errors and not result.first_error:
            result.first_error = f"(warm-up) {warm.first_error}"
        result.errors.update({f"(warm-up) {k}": n for k, n in warm.errors.items()})
    return result


def client_process(spec: Spec, ready, go, queue) -> None:
    """A spawned load generator process: one asyncio loop, spec.connections connections."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        queue.put(asyncio.run(_client_run(spec, ready, go)))
    except BaseException as exc:
        ready.abort()
        queue.put(Result(errors=Counter({type(exc).__name__: 1}), first_error=repr(exc)))
        raise


@dataclass
class Run:
    target: Target
    open_loop: bool
    rate: float | None = None
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    first_error: str = ""
    wall: float = 0.0
    sent: int = 0
    client_cpu: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # server, postgres, redis, machine
    server_processes: list[float] = field(default_factory=list)  # CPU s, largest first
    sessions: int | None = None  # PostgreSQL sessions opened during the run

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def answered(self) -> int:
        return self.count + sum(self.errors.values())

    @property
    def throughput(self) -> float:
        return self.count / self.wall if self.wall > 0 else 0.0

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)


@dataclass(frozen=True)
class Bench:
    """What every run needs to know about the server and the database."""

    base: str
    key: str
    expected: Expected
    server_pid: int
    url: str
    name: str


def load_run(bench: Bench, target: Target, args: argparse.Namespace, rate: float | None) -> Run:
    """One timed run of `target`, closed loop (rate None) or open loop at `rate` req/s,
    by --client-processes spawned processes; returns the merged run."""
    context = multiprocessing.get_context("spawn")
    processes = args.client_processes
    ready, go, queue = context.Barrier(processes + 1), context.Event(), context.Queue()
    workers = []
    for p in range(processes):
        connections = args.concurrency // processes + (p < args.concurrency % processes)
        spec = Spec(
            base=bench.base,
            key=bench.key,
            target=target,
            expected=bench.expected,
            connections=connections,
            seconds=args.seconds,
            warmup=args.warmup,
            rate=None if rate is None else rate / processes,
            phase=0.0 if rate is None else p / rate,
        )
        workers.append(
            context.Process(target=client_process, args=(spec, ready, go, queue), daemon=True)
        )
    for worker in workers:
        worker.start()
    run = Run(target=target, open_loop=rate is not None, rate=rate)
    try:
        ready.wait(timeout=120 + args.warmup)
    except threading.BrokenBarrierError:
        results = [queue.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=5)
        failed = next((result.first_error for result in results if result.first_error), "")
        raise RuntimeError(f"{target.label}: a load generator failed: {failed}") from None
    sessions_before = sessions_opened(bench.url, bench.name)
    before = cpu_sample(bench.server_pid)
    go.set()
    results = [queue.get(timeout=args.seconds + 180) for _ in workers]
    after = cpu_sample(bench.server_pid)
    time.sleep(SESSION_STATS_DELAY)  # finished backends report their session at exit
    sessions_after = sessions_opened(bench.url, bench.name)
    for worker in workers:
        worker.join(timeout=10)
    for result in results:
        run.latencies.extend(result.latencies)
        run.errors.update(result.errors)
        run.first_error = run.first_error or result.first_error
        run.wall = max(run.wall, result.wall)
        run.sent += result.sent
        run.client_cpu += result.cpu
    run.cpu, run.server_processes = cpu_delta(before, after)
    if sessions_before is not None and sessions_after is not None:
        run.sessions = sessions_after - sessions_before
    return run


# --- In-process profile ------------------------------------------------------------

# (label, path fragment of the file, function): stages of a request, cumulative time.
STAGES = (
    ("Django handler, middleware included", "django/core/handlers/base.py", "get_response"),
    ("  PostgreSQL connect", "django/db/backends/base/base.py", "connect"),
    ("  bare view", "urls_bench.py", "bare"),
    ("  DRF APIView.dispatch", "rest_framework/views.py", "dispatch"),
    ("    initial (auth, perms, throttle, version)", "rest_framework/views.py", "initial"),
    ("      ApiKeyAuthentication.authenticate", "accounts/api_auth.py", "authenticate"),
    ("        api_key_identify", "accounts/services/api_keys.py", "api_key_identify"),
    ("        api_key_touch (Redis SET NX)", "accounts/services/api_keys.py", "api_key_touch"),
    ("      ScopePermission", "accounts/api_auth.py", "has_permission"),
    ("      GroupRateThrottle (Redis Lua)", "portal/api/throttles.py", "allow_request"),
    ("      LevVersioning", "portal/api/versioning.py", "determine_version"),
    ("    view handler (trading/api.py)", "trading/api.py", "get"),
    ("      ApiView.account_get (SQL)", "portal/api/views.py", "account_get"),
    ("      position_book_get", "trading/selectors.py", "position_book_get"),
    (
        "        quotes_get_many (Redis HMGET + parse)",
        "trading/marketdata/store.py",
        "quotes_get_many",
    ),
    ("        instruments_get", "trading/catalog.py", "instruments_get"),
    ("      margin_overview_get", "trading/selectors.py", "margin_overview_get"),
    ("        margin_summaries_get", "trading/selectors.py", "margin_summaries_get"),
    ("      margin_utilization_get", "trading/selectors.py", "margin_utilization_get"),
    ("    finalize_response", "rest_framework/views.py", "finalize_response"),
    ("  response.render (OrjsonRenderer)", "rest_framework/response.py", "rendered_content"),
    ("SQL: CursorWrapper.execute", "django/db/backends/utils.py", "_execute_with_wrappers"),
    ("Redis: execute_command", "redis/client.py", "execute_command"),
    ("Redis: pipeline execute", "redis/client.py", "execute"),
    ("refdata_get", "portal/refdata.py", "refdata_get"),
)


class RedisCounter:
    """Counts Redis round trips of this process: commands outside pipelines, and
    pipeline executions, by command name."""

    def __init__(self):
        self.calls: Counter = Counter()

    def __enter__(self):
        import redis.client

        self._execute_command = redis.client.Redis.execute_command
        self._pipeline_execute = redis.client.Pipeline.execute
        counter, execute_command, pipeline_execute = (
            self.calls,
            self._execute_command,
            self._pipeline_execute,
        )

        def counted_command(client, *args, **options):
            counter[str(args[0]).upper()] += 1
            return execute_command(client, *args, **options)

        def counted_pipeline(pipe, *args, **options):
            counter["PIPELINE(" + "+".join(str(c[0][0]) for c in pipe.command_stack) + ")"] += 1
            return pipeline_execute(pipe, *args, **options)

        redis.client.Redis.execute_command = counted_command
        redis.client.Pipeline.execute = counted_pipeline
        return self

    def __exit__(self, *exc):
        import redis.client

        redis.client.Redis.execute_command = self._execute_command
        redis.client.Pipeline.execute = self._pipeline_execute


class HopCounter:
    """Counts asgiref's sync_to_async calls (each a hand-off of the request to a worker
    thread and back) in this process."""

    def __init__(self):
        self.calls = 0

    def __enter__(self):
        from asgiref.sync import SyncToAsync

        self._call = SyncToAsync.__call__
        original, counter = self._call, self

        async def counted(adapter, *args, **kwargs):
            counter.calls += 1
            return await original(adapter, *args, **kwargs)

        SyncToAsync.__call__ = counted
        return self

    def __exit__(self, *exc):
        from asgiref.sync import SyncToAsync

        SyncToAsync.__call__ = self._call


async def asgi_get(application, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One GET through the ASGI application, as uvicorn would call it; the status."""
    disconnected = asyncio.Event()
    received = False
    messages: list[dict] = []

    async def receive() -> dict:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await application(scope, receive, send)
    disconnected.set()
    return messages[0]["status"]


def timed(call, requests: int) -> tuple[float, float]:
    """(wall, CPU) seconds a call, over `requests` calls."""
    cpu, started = time.process_time(), time.perf_counter()
    for _ in range(requests):
        call()
    return (time.perf_counter() - started) / requests, (time.process_time() - cpu) / requests


def profile_in_process(targets: list[Target], key: str, requests: int, url: str, name: str):
    """Each target served `requests` times in this process, through Django's handler
    (test client) and through the ASGI application as uvicorn calls it: wall and CPU
    time, SQL queries, Redis round trips, new PostgreSQL sessions and thread hand-offs
    a request; then a cProfile of the handler's requests, by stage and by function."""
    import cProfile
    import pstats

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from portal.asgi import application

    client = Client(
        HTTP_HOST="127.0.0.1",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_LEV_VERSION=API_VERSION,
    )
    headers = [
        (b"host", b"127.0.0.1"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"lev-version", API_VERSION.encode()),
    ]
    loop = asyncio.new_event_loop()

    def measured(call) -> tuple[float, float, float, str]:
        """(wall, CPU, PostgreSQL CPU) seconds a request and new PostgreSQL sessions a
        request, over `requests` calls."""
        sessions = sessions_opened(url, name)
        before = cpu_sample(os.getpid())
        wall, cpu = timed(call, requests)
        after = cpu_sample(os.getpid())
        time.sleep(SESSION_STATS_DELAY)
        opened = sessions_opened(url, name)
        postgres = cpu_delta(before, after)[0]["postgres"] / requests
        new = "?" if None in (sessions, opened) else f"{(opened - sessions) / requests:.2f}"
        return wall, cpu, postgres, new

    print(
        f"in-process profile ({requests} requests a target in this process, server stopped; "
        "PostgreSQL's CPU counts all its clients):"
    )
    connect_wall, connect_cpu = timed(lambda: (connection.close(), connection.connect()), 50)
    connection.close()
    print(
        f"  a new PostgreSQL connection (Django's connect, this process's side): "
        f"{connect_wall * 1000:.2f} ms wall, {connect_cpu * 1000:.2f} ms CPU"
    )
    for target in targets:
        status = client.get(target.path).status_code
        if status != 200:
            print(f"  {target.label}: HTTP {status}; not profiled")
            continue
        timed(lambda target=target: client.get(target.path), 30)  # warm
        with CaptureQueriesContext(connection) as queries, RedisCounter() as redis_calls:
            wall, cpu, postgres, sessions = measured(lambda target=target: client.get(target.path))
        with HopCounter() as hops:
            asgi_wall, asgi_cpu, asgi_postgres, asgi_sessions = measured(
                lambda target=target: loop.run_until_complete(
                    asgi_get(application, target.path, headers)
                )
            )
        print(
            f"  {target.label}: {len(queries) / requests:.2f} SQL queries and "
            f"{sum(redis_calls.calls.values()) / requests:.2f} Redis round trips a request"
        )
        print(
            f"    Django handler (test client: one connection kept) {wall * 1000:6.2f} ms wall, "
            f"{cpu * 1000:6.2f} ms CPU, PostgreSQL {postgres * 1000:5.2f} ms CPU, "
            f"{sessions} new sessions a request"
        )
        print(
            f"    ASGI application (as uvicorn calls it)          {asgi_wall * 1000:6.2f} ms "
            f"wall, {asgi_cpu * 1000:6.2f} ms CPU, PostgreSQL {asgi_postgres * 1000:5.2f} ms "
            f"CPU, {asgi_sessions} new sessions, {hops.calls / requests:.0f} sync_to_async "
            "hand-offs a request"
        )
        statements = Counter(
            " ".join(query["sql"].split()[:4])[:70] for query in queries.captured_queries
        )
        for sql, n in statements.most_common(6):
            print(f"      SQL   {n / requests:5.2f}×  {sql}…")
        for command, n in redis_calls.calls.most_common(6):
            print(f"      Redis {n / requests:5.2f}×  {command}")
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            client.get(target.path)
        profiler.disable()
        stats = pstats.Stats(profiler).stats
        total = sum(row[2] for row in stats.values())
        print(
            f"    stages (Django handler under cProfile, {total / requests * 1000:.2f} ms a "
            "request: cumulative wall ms a request, inflated by the profiler):"
        )
        for label, fragment, function in STAGES:
            matched = [
                row
                for (filename, _, name_), row in stats.items()
                if name_ == function and filename.replace(os.sep, "/").endswith(fragment)
            ]
            calls = sum(row[1] for row in matched)
            if calls:
                cumulative = sum(row[3] for row in matched)
                print(
                    f"      {label:52s} {cumulative / requests * 1000:7.3f} ms "
                    f"({calls / requests:.2f} calls)"
                )
        print("    top functions by own time (ms a request):")
        rows = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:12]
        for (filename, line, function), row in rows:
            where = "/".join(Path(filename).parts[-2:]) if filename != "~" else ""
            print(
                f"      {row[2] / requests * 1000:7.3f}  {function} ({where}:{line}; "
                f"{row[1] / requests:.1f} calls)"
            )
    loop.close()


# --- Main --------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def run_line(run: Run) -> None:
    errors = sum(run.errors.values())
    print(
        f"  {run.target.label:24s} {run.throughput:8,.0f} /s  p50 {ms(run.percentile(50))}  "
        f"p99 {ms(run.percentile(99))}  ({run.count:,} OK in {run.wall:.2f} s, "
        f"{errors:,} errors)"
    )
    if run.errors:
        print(f"    errors: {', '.join(f'{n} ×{k}' for n, k in run.errors.most_common())}")
        print(f"    first error: {run.first_error}")


def cpu_line(run: Run) -> None:
    """CPU a request: the server's workers, PostgreSQL, Redis, the load generator and the
    rest of the machine; how busy the machine was; the workers' shares."""
    n = run.answered
    if not n or run.wall <= 0:
        return
    cpus = os.cpu_count() or 1
    shares = [cpu / run.cpu["server"] for cpu in run.server_processes if run.cpu["server"] > 0]
    workers = "/".join(f"{share:.0%}" for share in shares if share >= 0.005)
    sessions = "" if run.sessions is None else f", {run.sessions / n:.2f} new sessions"
    print(
        f"  {run.target.label:24s} server {run.cpu['server'] / n * 1000:5.2f} ms "
        f"(processes {workers})  PostgreSQL (all databases) "
        f"{run.cpu['postgres'] / n * 1000:5.2f} ms"
        f"{sessions}  Redis {run.cpu['redis'] / n * 1000:4.2f} ms  load generator "
        f"{run.client_cpu / n * 1000:5.2f} ms; other processes {other_share(run):.0%} of the "
        f"CPUs; CPUs {run.cpu['machine'] / (run.wall * cpus):.0%} busy"
    )


def other_share(run: Run) -> float:
    """The share of the machine's CPUs that processes other than the server, PostgreSQL,
    Redis and the load generator used during the run."""
    if run.wall <= 0:
        return 0.0
    known = run.cpu["server"] + run.cpu["postgres"] + run.cpu["redis"] + run.client_cpu
    return max(0.0, run.cpu["machine"] - known) / (run.wall * (os.cpu_count() or 1))


def main() -> int:
    args = parse_args()
    url = os.environ["DATABASE_URL"]
    name = database_recreate(url)
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections
    from urls_bench import BARE_BODY

    print(f"database {name} (created; {'kept' if args.keep_db else 'dropped'} at the end)")
    server = None
    failures: list[str] = []
    try:
        call_command("migrate", verbosity=0, interactive=False)
        markets_seed()
        account = account_seed()
        binary, perps = positions_seed(account)
        key = key_issue(account)
        account.refresh_from_db()
        expected = Expected(
            bare_body=BARE_BODY,
            account_id=account.public_id,
            binary_positions=binary,
            perp_positions=perps,
        )
        connections.close_all()
        print(
            f"seeded: account {account.public_id} (custodial, margin; cash "
            f"{account.cash_balance} USDC after buying) with {binary} binary positions in "
            f"{BINARY_MARKETS} markets of {EVENTS} events on {' and '.join(BINARY_VENUES)} and "
            f"{perps} perpetual positions on {PERP_VENUE}, all bought with order_execute; "
            "an API key with scopes intelligence, read"
        )
        server, base = server_start(args.workers, args.figures_store)
        bench = Bench(base, key, expected, server.pid, url, name)
        print(
            f"server: uvicorn portal.asgi:application on {base}, {args.workers} worker(s), "
            f"DJANGO_SETTINGS_MODULE=settings_bench: DEBUG off; API_RATE_LIMITS raised to "
            f"{min(settings.API_RATE_LIMITS.values()):,}/min per key and group (the throttle "
            "runs on every request but never refuses one; the real market_data limit, "
            f"300/min per key, would cap this test at 5 requests/s); DB_CONN_MAX_AGE "
            f"{SERVER_CONN_MAX_AGE}; Redis prefix {settings.KEY_PREFIX}; FIGURES_STORE "
            f"{args.figures_store}"
        )
        print(
            f"load: {args.client_processes} load generator process(es) (httpx, asyncio), "
            f"{args.concurrency} keep-alive connections, {args.warmup:g} s warm-up then "
            f"{args.seconds:g} s a run. Client and server share this machine's "
            f"{os.cpu_count()} CPUs (and with any other process: see 'other processes'); "
            "PostgreSQL's and Redis's CPU counts every client of theirs"
        )
        targets = [
            Target("bare Django JSON view", BARE_PATH, "bare"),
            Target("GET positions", POSITIONS_PATH, "positions"),
            Target("GET margin", MARGIN_PATH, "margin"),
        ]
        import httpx

        headers = {"Authorization": f"Bearer {key}", "Lev-Version": API_VERSION}
        for target in targets:
            response = httpx.get(f"{base}{target.path}", headers=headers, timeout=30)
            problem = response_problem(response, target, expected)
            if problem is not None:
                print(f"  {target.label}: {problem}: {response.text[:300]}")
                failures.append(f"{target.label} answers wrongly before any load: {problem}")
        if failures:
            return 1

        closed = [load_run(bench, target, args, None) for target in targets]
        print(f"closed loop ({args.concurrency} connections, each request after the last):")
        for run in closed:
            run_line(run)
        bare = closed[0]
        print(f"throughput / the bare view's (target ≥ {TARGET_RATIO}):")
        for run in closed[1:]:
            ratio = run.throughput / bare.throughput if bare.throughput else float("nan")
            print(
                f"  {run.target.label:24s} {ratio:.3f}  ({run.throughput:,.0f} / "
                f"{bare.throughput:,.0f} per s; p50 "
                f"{run.percentile(50) / bare.percentile(50):.1f}× the bare view's; target "
                f"{'met' if ratio >= TARGET_RATIO else 'NOT met'})"
            )
        print("CPU a request, closed loop:")
        for run in closed:
            cpu_line(run)

        if args.rate is not None:
            rate, source = args.rate, "--rate"
        else:
            slowest = min(closed, key=lambda run: run.throughput)
            rate = max(1.0, round(slowest.throughput / 2))
            source = f"half the closed-loop throughput of the slowest, {slowest.target.label}"
        opened = [load_run(bench, target, args, rate) for target in targets]
        print(
            f"open loop at one fixed offered rate, {rate:,.0f} requests/s ({source}; "
            "evenly spaced, latency from each request's scheduled send time):"
        )
        for run, capacity in zip(opened, closed, strict=True):
            run_line(run)
            p50, p99 = run.percentile(50), run.percentile(99)
            tail = p99 / p50 if p50 > 0 else float("nan")
            load = rate / capacity.throughput if capacity.throughput else float("nan")
            print(
                f"    p99 / p50 = {tail:.2f} (target ≤ {TARGET_TAIL:g}: "
                f"{'met' if tail <= TARGET_TAIL else 'NOT met'}); {run.sent:,} sent, answered "
                f"at {run.throughput:,.0f}/s; the rate is {load:.0%} of its closed-loop "
                "throughput"
            )
        print("CPU a request, open loop:")
        for run in opened:
            cpu_line(run)

        disturbed = max(other_share(run) for run in (*closed, *opened))
        if disturbed > DISTURBED_SHARE:
            print(
                f"WARNING: other processes used up to {disturbed:.0%} of the CPUs during a run: "
                "every figure above is disturbed by them; rerun on a quiet machine"
            )
        for run in (*closed, *opened):
            if run.errors:
                failures.append(
                    f"{run.target.label} ({'open' if run.open_loop else 'closed'} loop): "
                    f"{sum(run.errors.values())} wrong or failed responses"
                )
        if args.profile:
            server_stop(server)
            profile_in_process(targets, key, args.profile_requests, url, name)
        if failures:
            for failure in failures:
                print(f"  FAILED: {failure}")
        else:
            print("responses: every one correct (status 200 and the expected body)")
    finally:
        if server is not None:
            server_stop(server)
        redis_keys_delete()
        if not args.keep_db:
            database_drop(url, name)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
