"""WebSocket fan-out benchmark: a price tick reaching N live dashboards, against a bare
channel-layer message to the same sockets in the same run.

    .venv/bin/python bench/ws_fanout.py [--clients 1000] [--rounds 20] [--workers 1]
        [--client-processes 2] [--burst 5] [--layers configured,list,list-capacity]
        [--round-timeout 3] [--keep-db]

On real PostgreSQL and Redis it:

1. creates the database named by DATABASE_URL (default
   postgres://postgres@127.0.0.1:5432/bench_ws; the name must start with "bench",
   because it is dropped and re-created) and migrates it; seeds one binary market
   (BENCH-WS on kalshi, deep book in Redis) and `--clients` KYB-approved users, each
   with a custodial margin account funded by a balanced deposit journal
   (bench/benchdb.py) that buys BUY_NOTIONAL USDC of BENCH-WS with `order_execute`
   (the one busy market every account holds; each borrows a little, so a tick moves
   Adjusted Equity and Margin Health), and a signed-in browser session per user;
2. starts uvicorn (portal.asgi: the product's origin check, session auth and
   DashboardConsumer; `--workers`) and the margin engine
   (`manage.py run_margin_engine`, the Procfile's `risk` process) in subprocesses on
   this database and Redis prefix;
3. opens one dashboard socket per account (ws/dashboard/<account>/, with the
   session cookie and the page's Origin) from `--client-processes` spawned
   processes (websockets, asyncio), then prints what holding them open costs
   with nothing pushed: each process group's CPU a second over IDLE_SECONDS (the
   server's: its sockets' session re-checks and pings). The clients and this
   process (the bare path's sender) then freeze what they have built
   (`gc.freeze`), as the product's processes do once started, so the
   instrument's own full collections do not stall a round;
4. runs `--rounds` rounds of each path, interleaved:
   - product: the feed's way of publishing a tick (`store.quotes_publish`: the
     quote hash and the ticks channel) moving BENCH-WS by one cent; the engine
     re-prices it, evaluates the N holders in one vectorised pass, records due
     snapshots, serializes each account's update once and group_sends it to
     `account.<id>`; the consumers forward the text. Latency: from just before
     the publish to each socket's receipt of its update;
   - bare: this process group_sends a small fixed message to each of the N
     `account.<id>` groups through the same channel layer, SEND_CONCURRENCY at
     a time (as trading.broadcasts does), and the same consumers forward it.
     Latency: from just before the first send to each socket's receipt;
5. a burst: `--burst` ticks published back to back; the engine merges the ticks
   waiting behind the one at hand and each socket keeps only the newest
   waiting update, so a client gets at most one update per engine pass and its
   last one carries the last tick's figures (checked against margin_summary_get);
6. prints p50/p99/max latency and messages/s of each path, the ratio of the p99s
   (target ≤ TARGET_RATIO) and the p99 target (< TARGET_P99_MS), the median time to
   the first and the last socket of a round (first ≈ what comes before any
   fan-out: for the product, the engine's pass) and both round by round (a p99
   is often one slow round's), and the CPU each process group spent per round.
   Exits 1 if a socket missed an update on the configured layer.

Steps 2–6 run once per channel layer of `--layers` (default: all three), on the
same seeded accounts; the server, the engine and this process's bare sender all
use that layer:

- configured: CHANNEL_LAYERS as portal/settings has it
  (portal.channel_layer.RedisPubSubBatchChannelLayer: Redis pub/sub, each server
  process streams its subscriptions on one connection; the engine publishes a
  tick's updates in one pipeline with group_send_batch; the bare path still
  group_sends one message per round trip);
- pubsub: channels_redis.pubsub.RedisPubSubChannelLayer, the same pub/sub
  without group_send_batch: the engine publishes one PUBLISH per update, on one
  round trip each (the product before the batch);
- list: channels_redis.core.RedisChannelLayer with its default capacity (100),
  the product's layer before: every socket of one server process shares one
  Redis sorted set as its inbox, holding at most `capacity` messages, so a
  fan-out larger than that in one burst loses the rest (the "missed" column),
  and the process reads that inbox one message at a time, four Redis commands
  each;
- list-capacity: the same with capacity RAISED_CAPACITY (nothing lost; the
  one-at-a-time read is what remains).

Only the configured layer's misses fail the run (exit 1); the others are there
to compare.

Clients, server, engine, PostgreSQL and Redis share this machine's CPUs. The
database is dropped at the end unless --keep-db; the run's Redis keys (prefix
REDIS_KEY_PREFIX, default bench-ws-<pid>) are always deleted.
"""

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for _path in (str(BENCH), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ["DJANGO_SETTINGS_MODULE"] = "settings_bench"  # this process, server and engine
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_ws")
os.environ.setdefault("REDIS_KEY_PREFIX", f"bench-ws-{os.getpid()}")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402
from benchdb import (  # noqa: E402
    database_drop,
    database_recreate,
    funded_account_create,
    redis_keys_delete,
)

from portal.net import uvicorn_proxy_argv  # noqa: E402
from portal.processes import startup_objects_freeze  # noqa: E402

TARGET_P99_MS = 100.0
TARGET_RATIO = 2.0  # product p99 / bare p99
SYMBOL = "BENCH-WS"
VENUE = "kalshi"
LISTING = f"{SYMBOL}@{VENUE}"
FUNDING = Decimal("100")
BUY_NOTIONAL = Decimal("120")  # a 20 USDC loan; health about 3 at 0.50
BOOK_SIZE = Decimal("1000000000")
BID_LOW, BID_HIGH = Decimal("0.50"), Decimal("0.51")  # the product rounds alternate
SEND_CONCURRENCY = 32  # as trading.broadcasts
RAISED_CAPACITY = 100_000  # messages a layer channel may hold (the "capacity" variant)
SETTLE_SECONDS = 0.2  # between rounds
CONNECT_CONCURRENCY = 16  # handshakes in flight per client process
IDLE_SECONDS = 5.0  # the sockets' upkeep is measured this long before the rounds


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000, help="sockets, one per account")
    parser.add_argument("--rounds", type=int, default=20, help="rounds of each path (20)")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted rounds of each (3)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (1)")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="socket-holding processes (2)"
    )
    parser.add_argument("--burst", type=int, default=5, help="ticks in the burst (5; 0: none)")
    parser.add_argument(
        "--layers",
        default="configured,list,list-capacity",
        help="channel layers to run, in order (default configured,list,list-capacity): "
        "configured = the product's settings; capacity = RedisChannelLayer with a raised "
        "capacity; pubsub = RedisPubSubChannelLayer without the batch",
    )
    parser.add_argument(
        "--round-timeout",
        type=float,
        default=3.0,
        help="seconds a round waits for every socket; the rest count as missed (3)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    args.layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    unknown = [name for name in args.layers if name not in LAYERS]
    if unknown or not args.layers:
        parser.error(f"--layers: choose among {', '.join(LAYERS)}.")
    if args.clients < 1 or args.rounds < 1 or args.workers < 1 or args.warmup < 0:
        parser.error("--clients, --rounds and --workers must be positive.")
    if not 1 <= args.client_processes <= args.clients or args.burst < 0:
        parser.error("--client-processes must lie in [1, --clients]; --burst ≥ 0.")
    return args


# --- Seed --------------------------------------------------------------------------


def quote_publish(bid: Decimal) -> float:
    """Publish BENCH-WS at `bid` / bid + 0.01 (TWAP = bid: collateral price = bid) as the
    feed does: quote hash + tick. Returns the wall-clock time just before publishing."""
    from trading.marketdata import store
    from trading.marketdata.quotes import BookLevel, OrderBook, Outcome, Quote

    now = datetime.now(UTC)
    ask = bid + Decimal("0.01")
    quote = Quote(
        listing_key=LISTING,
        is_binary=True,
        ts=now,
        mark=(bid + ask) / 2,
        bid=bid,
        ask=ask,
        twap=bid,
        book=OrderBook(bids=(BookLevel(bid, BOOK_SIZE),), asks=(BookLevel(ask, BOOK_SIZE),)),
        outcome=Outcome.YES,
    )
    started = time.time()
    store.quotes_publish([quote], ts=now)
    return started


def market_seed():
    from django.utils import timezone

    from trading.models import EventGroup, FeePolicy, Instrument, Listing, Venue

    FeePolicy.objects.update_or_create(pk=1, defaults={"broker_commission_bps": 0})
    venue, _ = Venue.objects.get_or_create(
        code=VENUE, defaults={"name": "Kalshi", "kind": Venue.Kind.PREDICTION}
    )
    event = EventGroup.objects.create(code="bench-ws", title="Benchmark event")
    instrument = Instrument.objects.create(
        symbol=SYMBOL,
        title="Benchmark busy market",
        kind=Instrument.Kind.BINARY,
        tick_size=Decimal("0.01"),
        event=event,
        # Far from expiry: every account's figures depend on the price alone.
        expires_at=timezone.now() + timedelta(days=800),
    )
    Listing.objects.create(instrument=instrument, venue=venue, venue_symbol=SYMBOL)
    quote_publish(BID_LOW)
    return instrument


def accounts_seed(n: int) -> list[tuple[str, str, int]]:
    """N accounts with their position and session: [(public id, session key, pk)]."""
    from django.conf import settings
    from django.test import Client

    from accounts.models import Account
    from trading.models import Order
    from trading.services.execute import order_execute

    seeded, published, started = [], time.monotonic(), time.monotonic()
    for k in range(n):
        account = funded_account_create(email=f"ws{k}@bench.invalid", funding=FUNDING)
        Account.objects.filter(pk=account.pk).update(
            margin_enabled=True, margin_override=Account.MarginOverride.GRANTED
        )
        account.refresh_from_db()
        if time.monotonic() - published > 1.0:  # the simulated venue refuses stale quotes
            quote_publish(BID_LOW)
            published = time.monotonic()
        order = order_execute(
            account=account, symbol=SYMBOL, side="buy", notional_usdc=BUY_NOTIONAL
        )
        if order.status != Order.Status.FILLED:
            raise RuntimeError(f"seed order of account {k} is {order.status}")
        browser = Client()
        browser.force_login(account.owner)
        seeded.append(
            (account.public_id, browser.cookies[settings.SESSION_COOKIE_NAME].value, account.pk)
        )
        if (k + 1) % 250 == 0:
            print(f"  seeded {k + 1}/{n} accounts ({time.monotonic() - started:.0f} s)")
    return seeded


# --- Server and engine -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env(settings_module: str, directory: Path) -> dict[str, str]:
    """The environment of the server and the engine: this database and Redis prefix."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "PYTHONPATH": os.pathsep.join(
            [str(directory), str(BENCH), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }


def server_start(workers: int, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    import httpx

    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "portal.asgi:application"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    argv += ["--lifespan", "off", "--log-level", "warning", "--no-access-log"]
    argv += uvicorn_proxy_argv()  # the product's trusted proxies (none by default)
    server = subprocess.Popen(argv, env=env, cwd=ROOT)  # noqa: S603 (fixed argv)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            process_stop(server)
            raise RuntimeError("the server did not start")
        time.sleep(0.1)
    time.sleep(1.0 if workers > 1 else 0.2)
    return server, port


def engine_start(env: dict[str, str]) -> subprocess.Popen:
    argv = [sys.executable, "manage.py", "run_margin_engine"]
    return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: S603


def process_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- Clients (spawned processes) ---------------------------------------------------


def client_main(port: int, sockets: list[tuple[str, str]], control) -> None:
    """Hold one dashboard socket per (account, session); answer the parent's commands:

    ("arm", round) → forget the last round, count from now; answers ("armed", round);
    when every socket has had a message since: ("done", round), unprompted;
    ("collect", round) → ("result", round, first arrival per socket (None: none),
    messages per socket, last message per socket); ("stop",) → close everything.
    """
    asyncio.run(_client(port, sockets, control))


async def _client(port: int, sockets: list[tuple[str, str]], control) -> None:
    import websockets

    loop = asyncio.get_running_loop()
    n = len(sockets)
    state = {"round": None, "remaining": n}
    first: list[float | None] = [None] * n
    counts = [0] * n
    last: list[str | None] = [None] * n
    connections = []
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def listen(i: int, account_id: str, session: str) -> None:
        async with limit:
            ws = await websockets.connect(
                f"ws://127.0.0.1:{port}/ws/dashboard/{account_id}/",
                origin=f"http://127.0.0.1:{port}",
                additional_headers={"Cookie": f"sessionid={session}"},
                compression=None,
                ping_interval=None,
                open_timeout=120,
                max_queue=None,
            )
        connections.append(ws)
        opened.append(i)
        async for message in ws:
            arrived = time.time()
            if state["round"] is None:
                continue
            counts[i] += 1
            last[i] = message
            if first[i] is None:
                first[i] = arrived
                state["remaining"] -= 1
                if state["remaining"] == 0:
                    control.send(("done", state["round"]))

    opened: list[int] = []
    tasks = [
        loop.create_task(listen(i, account_id, session))
        for i, (account_id, session) in enumerate(sockets)
    ]
    while len(opened) < n:
        failed = [task for task in tasks if task.done() and task.exception() is not None]
        if failed:
            control.send(("failed", repr(failed[0].exception())))
            return
        await asyncio.sleep(0.05)
    startup_objects_freeze()  # the instrument too: no full collection walks the sockets
    control.send(("open", n))
    while True:
        command = await loop.run_in_executor(None, control.recv)
        if command[0] == "arm":
            first[:] = [None] * n
            counts[:] = [0] * n
            last[:] = [None] * n
            state["remaining"] = n
            state["round"] = command[1]
            control.send(("armed", command[1]))
        elif command[0] == "collect":
            state["round"] = None
            control.send(("result", command[1], list(first), list(counts), list(last)))
        else:
            break
    for ws in connections:
        await ws.close()
    for task in tasks:
        task.cancel()


@dataclass
class Clients:
    processes: list
    pipes: list
    sockets: int

    def stop(self) -> None:
        self.send_all(("stop",))
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()

    def send_all(self, command: tuple) -> None:
        for pipe in self.pipes:
            pipe.send(command)

    def expect_all(self, kind: str, timeout: float, number: int | None = None) -> list[tuple]:
        """Each process's next `kind` answer (of round `number`); others are dropped
        (a "done" of a round that timed out, say)."""
        answers = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            while True:
                if not pipe.poll(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"a client process did not answer {kind!r}")
                answer = pipe.recv()
                if answer[0] == "failed":
                    raise RuntimeError(f"a client socket failed: {answer[1]}")
                if answer[0] == kind and (number is None or answer[1] == number):
                    answers.append(answer)
                    break
        return answers


def clients_start(port: int, seeded: list[tuple[str, str, int]], processes: int) -> Clients:
    context = multiprocessing.get_context("spawn")
    shares = [seeded[i::processes] for i in range(processes)]
    pipes, children = [], []
    for share in shares:
        parent, child = context.Pipe()
        process = context.Process(
            target=client_main,
            args=(port, [(account_id, session) for account_id, session, _ in share], child),
            daemon=True,
        )
        process.start()
        pipes.append(parent)
        children.append(process)
    clients = Clients(children, pipes, len(seeded))
    clients.expect_all("open", timeout=600)
    return clients


# --- Bare sends (this process) -------------------------------------------------------


class Sender:
    """A long-lived event loop in a thread, for channel-layer group sends (as
    trading.broadcasts keeps one, so its Redis connections stay open)."""

    def __init__(self, layer):
        self.layer = layer
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.loop.run_forever()
        self.loop.close()  # the layer closes its Redis connections on this loop

    def group_send_all(self, groups: list[str], text: str) -> float:
        """Send {"type": "margin.update", "text": text} to every group; return the time
        just before the first send."""
        layer = self.layer
        message = {"type": "margin.update", "text": text}

        async def send_all() -> None:
            limit = asyncio.Semaphore(SEND_CONCURRENCY)

            async def send(group: str) -> None:
                async with limit:
                    await layer.group_send(group, message)

            await asyncio.gather(*(send(group) for group in groups))

        started = time.time()
        asyncio.run_coroutine_threadsafe(send_all(), self.loop).result(timeout=60)
        return started

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def idle_report(sockets: int, snapshot) -> None:
    """Print what holding `sockets` open costs with nothing pushed: each group's CPU a
    second over IDLE_SECONDS (the server's is its sockets' upkeep: pings, session
    re-checks)."""
    before = snapshot()
    time.sleep(IDLE_SECONDS)
    after = snapshot()
    cost = ", ".join(
        f"{group} {(after[group] - before[group]) / IDLE_SECONDS:.3f}"
        for group in ("server", "engine", "clients", "postgres", "redis")
    )
    print(f"idle, {sockets} sockets open, nothing pushed ({IDLE_SECONDS:g} s): CPU s/s {cost}")


# --- Rounds ---------------------------------------------------------------------------


@dataclass
class Series:
    """One path's measurements over its rounds."""

    label: str
    latencies: list[float] = field(default_factory=list)  # seconds
    first: list[float] = field(default_factory=list)  # per round: first socket served
    last: list[float] = field(default_factory=list)  # per round: last socket served
    rates: list[float] = field(default_factory=list)  # per round: messages / s
    missed: int = 0
    extra: int = 0  # messages beyond one per socket and round
    cpu: dict[str, float] = field(default_factory=dict)
    rounds: int = 0

    def percentile(self, q: float) -> float:
        """The q-th percentile of the latencies (nearest rank)."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run_round(clients: Clients, number: int, go, *, timeout: float, settle: float = 0):
    """Arm the clients, `go()` (returns the start time), wait until every socket has
    a message (or `timeout` seconds), let `settle` seconds pass, collect.

    Returns (start, [first arrival or None per socket], [messages per socket], [last])."""
    clients.send_all(("arm", number))
    clients.expect_all("armed", timeout=30, number=number)
    started = go()
    with contextlib.suppress(TimeoutError):  # the sockets not served count as missed
        clients.expect_all("done", timeout=timeout, number=number)
    time.sleep(settle)
    clients.send_all(("collect", number))
    arrivals, counts, lasts = [], [], []
    for answer in clients.expect_all("result", timeout=60, number=number):
        arrivals += answer[2]
        counts += answer[3]
        lasts += answer[4]
    return started, arrivals, counts, lasts


def record(path: Series, started: float, arrivals: list, counts: list) -> None:
    served = [arrival - started for arrival in arrivals if arrival is not None]
    path.rounds += 1
    path.latencies += served
    path.missed += sum(arrival is None for arrival in arrivals)
    path.extra += sum(max(0, count - 1) for count in counts)
    if served:
        path.first.append(min(served))
        path.last.append(max(served))
        path.rates.append(len(served) / max(served) if max(served) > 0 else float("inf"))


# --- CPU accounting -------------------------------------------------------------------


def cpu_snapshot(server_pid: int, engine_pid: int, client_pids: list[int]) -> dict[str, float]:
    import psutil

    def tree(pid: int) -> float:
        try:
            parent = psutil.Process(pid)
            total = 0.0
            for process in [parent, *parent.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system
            return total
        except psutil.Error:
            return 0.0

    groups = {
        "server": tree(server_pid),
        "engine": tree(engine_pid),
        "clients": sum(tree(pid) for pid in client_pids),
        "bench": sum(psutil.Process().cpu_times()[:2]),
        "postgres": 0.0,
        "redis": 0.0,
    }
    for process in psutil.process_iter(["name"]):
        name = process.info["name"] or ""
        group = "postgres" if name.startswith("postgres") else "redis" if "redis" in name else None
        if group is None:
            continue
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        groups[group] += times.user + times.system + times.children_user + times.children_system
    return groups


def cpu_add(path: Series, before: dict[str, float], after: dict[str, float]) -> None:
    for group, value in after.items():
        path.cpu[group] = path.cpu.get(group, 0.0) + value - before.get(group, 0.0)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


# --- Main -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A channel-layer configuration the whole run (server, engine, bare sender) uses."""

    name: str
    description: str
    backend: str | None  # None: the product's settings as they are
    config: dict = field(default_factory=dict)  # merged into the configured CONFIG


LAYERS = {
    layer.name: layer
    for layer in (
        Layer("configured", "the product's CHANNEL_LAYERS (portal/settings)", None),
        Layer(
            "pubsub",
            "channels_redis.pubsub.RedisPubSubChannelLayer: no group_send_batch, so the "
            "engine publishes one message per round trip (the product before the batch)",
            "channels_redis.pubsub.RedisPubSubChannelLayer",
        ),
        Layer(
            "list",
            "channels_redis.core.RedisChannelLayer, default capacity 100",
            "channels_redis.core.RedisChannelLayer",
        ),
        Layer(
            "list-capacity",
            f"channels_redis.core.RedisChannelLayer, capacity {RAISED_CAPACITY:,}",
            "channels_redis.core.RedisChannelLayer",
            {"capacity": RAISED_CAPACITY},
        ),
    )
}


def layer_settings(layer: Layer, directory: Path) -> str:
    """The settings module the server and the engine run with for `layer`: the bench
    settings, with CHANNEL_LAYERS replaced unless `layer` is the configured one (a
    module written to `directory`, which goes on their PYTHONPATH)."""
    if layer.backend is None:
        return "settings_bench"
    module = f"settings_ws_fanout_{layer.name}"
    (directory / f"{module}.py").write_text(
        f"""\"\"\"bench/ws_fanout.py's settings for the {layer.name} channel layer.\"\"\"

from settings_bench import *  # noqa: F403
from settings_bench import CHANNEL_LAYERS as CONFIGURED

CHANNEL_LAYERS = {{
    "default": {{
        "BACKEND": {layer.backend!r},
        "CONFIG": {{**CONFIGURED["default"]["CONFIG"], **{layer.config!r}}},
    }}
}}
"""
    )
    return module


def layer_build(layer: Layer):
    """This process's own instance of `layer`, for the bare sends."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    configured = settings.CHANNEL_LAYERS["default"]
    backend = layer.backend or configured["BACKEND"]
    return import_string(backend)(**{**configured.get("CONFIG", {}), **layer.config})


def main() -> int:
    args = parse_args()
    url = os.environ["DATABASE_URL"]
    name = database_recreate(url)
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    print(f"database {name} (created; {'kept' if args.keep_db else 'dropped'} at the end)")
    failures: list[str] = []
    directory = Path(tempfile.mkdtemp(prefix="ws_fanout_"))
    try:
        call_command("migrate", verbosity=0, interactive=False)
        market_seed()
        started = time.monotonic()
        seeded = accounts_seed(args.clients)
        print(
            f"seeded {args.clients} accounts in {time.monotonic() - started:.0f} s: each a "
            f"KYB-approved user's custodial margin account, {FUNDING} USDC deposited, "
            f"{BUY_NOTIONAL} USDC of {SYMBOL} bought with order_execute, a session"
        )
        connections.close_all()
        configured = settings.CHANNEL_LAYERS["default"]
        print(f"configured channel layer: {configured['BACKEND']}")
        results = {}
        for layer_name in args.layers:
            layer = LAYERS[layer_name]
            print(f"\n== channel layer: {layer.name} — {layer.description}")
            results[layer.name] = variant_run(
                args, layer, layer_settings(layer, directory), directory, seeded, failures
            )
        if len(results) > 1:
            print("\nsummary (product path p50 / p99, bare p99, missed socket-rounds):")
            for layer_name, (product, bare) in results.items():
                print(
                    f"  {layer_name:11s} {ms(product.percentile(50))} / "
                    f"{ms(product.percentile(99))}   bare {ms(bare.percentile(99))}   "
                    f"missed {product.missed} / {bare.missed}"
                )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        redis_keys_delete()
        if not args.keep_db:
            database_drop(url, name)
        for failure in failures:
            print(f"FAILED: {failure}")
    return 1 if failures else 0


def variant_run(
    args: argparse.Namespace,
    layer: Layer,
    settings_module: str,
    directory: Path,
    seeded: list[tuple[str, str, int]],
    failures: list[str],
) -> tuple["Series", "Series"]:
    """Server, engine and sockets on `layer`; the rounds, the report and the burst."""
    server = engine = clients = sender = None
    label = f"[{layer.name}] "
    product, bare = Series("product: tick → engine → push"), Series("bare: group_send")
    try:
        env = child_env(settings_module, directory)
        server, port = server_start(args.workers, env)
        engine = engine_start(env)
        print(
            f"server: uvicorn portal.asgi:application, {args.workers} worker(s); engine: "
            f"manage.py run_margin_engine; {os.cpu_count()} CPUs shared by everything"
        )
        started = time.monotonic()
        clients = clients_start(port, seeded, args.client_processes)
        print(
            f"{len(seeded)} dashboard sockets open (session cookie + Origin, "
            f"{args.client_processes} client processes) in {time.monotonic() - started:.1f} s"
        )
        sender = Sender(layer_build(layer))
        groups = [f"account.{pk}" for _, _, pk in seeded]
        client_pids = [process.pid for process in clients.processes]
        idle_report(len(seeded), lambda: cpu_snapshot(server.pid, engine.pid, client_pids))
        startup_objects_freeze()  # the bare path's sender is this process: short collections
        bid = BID_LOW

        def product_go() -> float:
            nonlocal bid
            bid = BID_HIGH if bid == BID_LOW else BID_LOW
            return quote_publish(bid)

        def bare_go(number: int):
            text = f'{{"type":"margin","bench":"bare","round":{number}}}'
            return lambda: sender.group_send_all(groups, text)

        # Warm-up: the engine pushes nothing until its first sweep is done: tick until
        # a socket hears from it; then a few rounds of each path (connections, caches).
        deadline = time.monotonic() + 120
        while True:
            _, arrivals, _, _ = run_round(clients, -1, product_go, timeout=args.round_timeout)
            if any(arrival is not None for arrival in arrivals):
                break
            if time.monotonic() > deadline:
                failures.append(f"{label}the engine never pushed during the warm-up")
                return product, bare
        for k in range(args.warmup):
            run_round(clients, -2 - k, product_go, timeout=args.round_timeout)
            run_round(clients, -2 - k, bare_go(-2 - k), timeout=args.round_timeout)

        for number in range(args.rounds):
            for path, go in ((product, product_go), (bare, bare_go(number))):
                before = cpu_snapshot(server.pid, engine.pid, client_pids)
                started_at, arrivals, counts, _ = run_round(
                    clients, number, go, timeout=args.round_timeout
                )
                cpu_add(path, before, cpu_snapshot(server.pid, engine.pid, client_pids))
                record(path, started_at, arrivals, counts)
                time.sleep(SETTLE_SECONDS)

        print(
            f"latency from the publish (product) or the first send (bare) to each socket's "
            f"message; {args.rounds} rounds of {len(seeded)} sockets each:"
        )
        print(
            f"  {'path':32s} {'p50':>10s} {'p99':>10s} {'max':>10s} {'msgs/s':>9s} "
            f"{'1st sock':>10s} {'last sock':>10s}  missed"
        )
        for path in (product, bare):
            print(
                f"  {path.label:32s} {ms(path.percentile(50))} {ms(path.percentile(99))} "
                f"{ms(max(path.latencies, default=float('nan')))} "
                f"{statistics.median(path.rates) if path.rates else float('nan'):9,.0f} "
                f"{ms(statistics.median(path.first) if path.first else float('nan'))} "
                f"{ms(statistics.median(path.last) if path.last else float('nan'))}  "
                f"{path.missed}"
            )
            if path.missed and layer.backend is None:
                failures.append(
                    f"{label}{path.label}: {path.missed} of {path.rounds * len(seeded)} "
                    "socket-rounds got no message"
                )
        for path in (product, bare):
            rounds = " ".join(
                f"{first * 1000:.0f}/{last * 1000:.0f}"
                for first, last in zip(path.first, path.last, strict=True)
            )
            print(f"  first/last socket by round (ms), {path.label}: {rounds}")
        ratio = product.percentile(99) / bare.percentile(99)
        p99 = product.percentile(99) * 1000
        print(
            f"product p99 {p99:.1f} ms: target < {TARGET_P99_MS:g} ms "
            f"{'met' if p99 < TARGET_P99_MS else 'NOT met'}; product / bare p99 {ratio:.2f} "
            f"(p50 {product.percentile(50) / bare.percentile(50):.2f}): target ≤ "
            f"{TARGET_RATIO:g} {'met' if ratio <= TARGET_RATIO else 'NOT met'}"
        )
        print("CPU per round (seconds, all processes of each group):")
        for path in (product, bare):
            parts = ", ".join(
                f"{group} {seconds / max(path.rounds, 1):.3f}"
                for group, seconds in path.cpu.items()
            )
            print(f"  {path.label:32s} {parts}")
        if args.burst:
            burst_run(clients, args.burst, seeded, failures, label, args.round_timeout)
    finally:
        if clients is not None:
            clients.stop()
        if sender is not None:
            sender.stop()
        for process in (engine, server):
            if process is not None:
                process_stop(process)
    return product, bare


def burst_run(
    clients: Clients, ticks: int, seeded: list, failures: list[str], label: str, timeout: float
) -> None:
    """`ticks` ticks back to back, ending at a price no earlier round used: count the
    updates each socket got and check its last one carries the last tick's figures."""
    import orjson

    from accounts.models import Account
    from trading.selectors import margin_summary_get

    prices = [BID_LOW - Decimal("0.01") * (k + 1) for k in range(ticks)]

    def go() -> float:
        started = quote_publish(prices[0])
        for price in prices[1:]:
            quote_publish(price)
        return started

    started, arrivals, counts, lasts = run_round(clients, 10**6, go, timeout=timeout, settle=1.0)
    expected = margin_summary_get(account=Account.objects.get(pk=seeded[0][2]))
    final = str(expected.adjusted_equity)
    wrong = sum(
        last is None or orjson.loads(last).get("adjusted_equity") != final for last in lasts
    )
    served = sorted(arrival - started for arrival in arrivals if arrival is not None) or [
        float("nan")
    ]
    print(
        f"burst of {ticks} ticks published back to back ({prices[0]} … {prices[-1]}): "
        f"{sum(counts) / len(counts):.2f} updates per socket on average (max {max(counts)}), "
        f"first update p50 {statistics.median(served) * 1000:.1f} ms; "
        f"last update = the last tick's figures (AE {final}) on "
        f"{len(lasts) - wrong}/{len(lasts)} sockets"
    )
    if wrong:
        failures.append(f"{label}burst: {wrong} sockets did not end on the last tick's figures")


if __name__ == "__main__":
    sys.exit(main())
