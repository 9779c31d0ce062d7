"""Partner-stream fan-out benchmark: N subscribers on one busy market's order book and
trades (/v1/stream), against a bare channel-layer message to N sockets in the same run.

    .venv/bin/python bench/stream_fanout.py [--clients 500] [--rounds 20] [--warmup 3]
        [--workers 1] [--client-processes 2] [--rate 10] [--duration 5]
        [--round-timeout 5] [--keep-db]

On real PostgreSQL and Redis it:

1. creates the database named by DATABASE_URL (default
   postgres://postgres@127.0.0.1:5432/bench_stream; the name must start with "bench",
   because it is dropped and re-created) and migrates it; seeds one binary market,
   BENCH-STREAM, listed on kalshi and polymarket (a LEVELS-deep book a side per venue
   in Redis), and one KYB-approved partner with a custodial account and
   ceil(N / STREAM_MAX_CONNECTIONS_PER_KEY) API keys on it (scopes intelligence,
   read, trade; issued by a staff user with `api_key_issue`): as many partners'
   keys as the per-key connection limit requires;
2. starts uvicorn on bench/asgi_bench.py (portal.asgi's application, plus the
   bench-only route /bench/bare-stream; `--workers`) in a subprocess on this
   database and Redis prefix, its log in a file read at the end;
3. from `--client-processes` spawned processes (websockets, asyncio on uvloop) opens
   N product sockets, each: ws://…/v1/stream, {"op":"auth"} with its key, then
   subscribe to orderbook and to trades of BENCH-STREAM (both acks and the
   snapshot), and N bare sockets on /bench/bare-stream (each joins the
   channel-layer group bench.market as it connects);
4. runs `--rounds` rounds of each path, interleaved, after `--warmup` uncounted ones:
   - product: one feed tick as the feed publishes it: `store.quotes_publish` of both
     venues' quotes (every level's size changes; the best price moves a cent and
     back) with TRADES_PER_TICK public trades: one Redis MULTI (the quote hash, one
     PUBLISH on md:ticks, one on md:trades). Each server process's MarketHub diffs
     the book once, serializes the update and the trades message once and hands
     them to its sockets, each of which frames them with its subscription's seq and
     queues them: every product socket gets 2 messages (an orderbook update, a
     trades message). Latency: from the tick's ts, taken just before building and
     publishing it (the update's "ts" and each trade's "ts"), to each message's
     receipt;
   - bare: this process group_sends 2 pre-serialized messages of the same shape and
     about the same size (an "orderbook" update and a "trades" message built from a
     tick the same way, with their own seq) to bench.market through the configured
     channel layer, one after the other: each is one PUBLISH that every server
     process receives once and hands, unchanged, to its local sockets (the bare
     consumer forwards "text" as is, skipping the base consumer's per-message
     database housekeeping as the product's consumers do): every bare socket gets
     2 messages. Latency: from the ts embedded the same way (taken before building
     and sending) to each message's receipt. Within a server process the layer
     hands a group message to each member through that member's own queue: a
     msgpack decode, a new task and an asyncio.wait per socket and message
     (channels' await_many_dispatch), where the hub calls each socket's deliver()
     directly; so the product's fan-out can cost less than this baseline (a ratio
     below 1), and the bare trades message waits behind every socket's update.
   A client's latency is its receipt wall time − the published ts (one machine,
   one clock). A round waits until every socket of the path has its 2 messages (or
   `--round-timeout` seconds; the rest count as missed), then SETTLE_SECONDS;
5. a sustained phase per path, product then bare: `--rate` ticks (bare: message
   pairs) a second for `--duration` seconds; delivered messages/s (messages / time
   from the first publish to the last receipt) and latency under a steady load;
6. prints for each path: sockets, messages delivered, messages/s (per round:
   messages / time from the publish to the last receipt; median over rounds),
   p50/p99/max latency, overall and per channel, mean message size, missed
   messages and seq gaps (every subscription's seq is checked on every message, in
   every phase: a gap is a lost message), the p99 ratio product / bare, the CPU per
   round of the server, the clients, PostgreSQL and Redis; then the server log's
   warnings and errors. Exits 1 if the product path lost (gaps) or missed messages,
   or a socket failed or was closed by the server.

Both paths run on the same server processes; the product sockets' background work
(each re-checks its key and renews its connection slot every
STREAM_KEY_RECHECK_SECONDS) weighs on both alike. Clients, server, PostgreSQL and
Redis share this machine's CPUs. The database is dropped at the end unless
--keep-db; the run's Redis keys (prefix REDIS_KEY_PREFIX, default
bench-stream-<pid>) are always deleted.
"""

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
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
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_stream")
os.environ.setdefault("REDIS_KEY_PREFIX", f"bench-stream-{os.getpid()}")

import django  # noqa: E402
from benchdb import database_drop, database_recreate, redis_keys_delete  # noqa: E402
from ws_fanout import (  # noqa: E402 (sets DJANGO_SETTINGS_MODULE=settings_bench)
    CONNECT_CONCURRENCY,
    LAYERS,
    Clients,
    Sender,
    Series,
    child_env,
    cpu_snapshot,
    free_port,
    layer_build,
    ms,
    process_stop,
)

from portal.net import uvicorn_proxy_argv  # noqa: E402

APP = "asgi_bench:application"
SYMBOL = "BENCH-STREAM"
VENUES = ("kalshi", "polymarket")
LEVELS = 5  # book levels a side per venue
TRADES_PER_TICK = 2
BID_LOW, BID_HIGH = Decimal("0.50"), Decimal("0.51")  # ticks alternate
STEP = Decimal("0.01")
BASE_SIZE = Decimal("1000")
SCOPES = ("intelligence", "read", "trade")
PATHS = ("product", "bare")
CHANNELS = ("orderbook", "trades")
MESSAGES_PER_TICK = len(CHANNELS)  # per socket
SETTLE_SECONDS = 0.2  # between rounds
HANDSHAKE_TIMEOUT = 30.0  # seconds for a product socket's auth, acks and snapshot
LOG_PATTERN = re.compile(r"warning|error|traceback|exception", re.IGNORECASE)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", type=int, default=500, help="product sockets, and as many bare (500)"
    )
    parser.add_argument("--rounds", type=int, default=20, help="rounds of each path (20)")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted rounds of each (3)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (1)")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="socket-holding processes (2)"
    )
    parser.add_argument(
        "--rate", type=float, default=10.0, help="sustained phase: ticks a second (10; 0: none)"
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="sustained phase: seconds per path (5)"
    )
    parser.add_argument(
        "--round-timeout",
        type=float,
        default=5.0,
        help="seconds a round waits for every message; the rest count as missed (5)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.clients < 1 or args.rounds < 1 or args.workers < 1 or args.warmup < 0:
        parser.error("--clients, --rounds and --workers must be positive; --warmup ≥ 0.")
    if not 1 <= args.client_processes <= args.clients:
        parser.error("--client-processes must lie in [1, --clients].")
    if args.rate < 0 or (args.rate and args.duration * args.rate < 1):
        parser.error("--rate must be ≥ 0, and --rate × --duration ≥ 1.")
    return args


# --- Seed and feed ------------------------------------------------------------------


def market_seed() -> None:
    """BENCH-STREAM, a binary market listed on VENUES (subscribe checks it exists)."""
    from django.utils import timezone

    from trading.models import EventGroup, Instrument, Listing, Venue

    event = EventGroup.objects.create(code="bench-stream", title="Benchmark event")
    instrument = Instrument.objects.create(
        symbol=SYMBOL,
        title="Benchmark busy market",
        kind=Instrument.Kind.BINARY,
        tick_size=STEP,
        event=event,
        expires_at=timezone.now() + timedelta(days=800),
    )
    for code in VENUES:
        venue, _ = Venue.objects.get_or_create(
            code=code, defaults={"name": code.title(), "kind": Venue.Kind.PREDICTION}
        )
        Listing.objects.create(instrument=instrument, venue=venue, venue_symbol=f"{SYMBOL}-{code}")


def keys_seed(n: int) -> list[str]:
    """`n` API keys (the secrets) of one KYB-approved partner's custodial account."""
    from accounts.models import Account, User
    from accounts.services.accounts import account_open
    from accounts.services.api_keys import api_key_issue

    staff = User.objects.create_user(email="ops@bench.invalid", is_staff=True)
    owner = User.objects.create_user(
        email="partner@bench.invalid", kyb_status=User.KybStatus.APPROVED
    )
    account = account_open(owner=owner, kind=Account.Kind.CUSTODIAL)
    return [
        api_key_issue(
            owner=owner, accounts=[account], scopes=SCOPES, name=f"bench partner {k}", actor=staff
        ).key
        for k in range(n)
    ]


def tick_build(k: int, ts: datetime):
    """Tick `k`: both venues' quotes (every size new, the best bid alternating between
    BID_LOW and BID_HIGH) and TRADES_PER_TICK public trades, all stamped `ts`."""
    from trading.marketdata.quotes import BookLevel, OrderBook, Outcome, PublicTrade, Quote

    bid = BID_HIGH if k % 2 else BID_LOW
    ask = bid + STEP
    quotes, trades = [], []
    for v, venue in enumerate(VENUES):
        size = BASE_SIZE + k * len(VENUES) + v
        book = OrderBook(
            bids=tuple(BookLevel(bid - i * STEP, size + i) for i in range(LEVELS)),
            asks=tuple(BookLevel(ask + i * STEP, size + i) for i in range(LEVELS)),
        )
        quotes.append(
            Quote(
                listing_key=f"{SYMBOL}@{venue}",
                is_binary=True,
                ts=ts,
                mark=(bid + ask) / 2,
                bid=bid,
                ask=ask,
                twap=(bid + ask) / 2,
                book=book,
                outcome=Outcome.YES,
            )
        )
    for j in range(TRADES_PER_TICK):
        venue = VENUES[j % len(VENUES)]
        trades.append(
            PublicTrade(
                trade_id=f"bench-{k}-{j}",
                listing_key=f"{SYMBOL}@{venue}",
                outcome=Outcome.YES,
                side="buy" if j % 2 else "sell",
                price=ask if j % 2 else bid,
                size=Decimal(10 + j),
                ts=ts,
            )
        )
    return quotes, trades


def product_tick(k: int) -> float:
    """Publish tick `k` as the feed does; return its ts (taken just before building it)."""
    from trading.marketdata import store

    now = datetime.now(UTC)
    quotes, trades = tick_build(k, now)
    store.quotes_publish(quotes, ts=now, trades=trades)
    return now.timestamp()


class BareFeed:
    """The bare path's messages: a tick's update and trades, serialized as the stream's
    would be (the same fields, a "seq" of their own), sent as is to BARE_GROUP."""

    def __init__(self, sender: Sender, layer, group: str):
        self.sender, self.layer, self.group = sender, layer, group
        self.seq = dict.fromkeys(CHANNELS, 0)
        self.k = 0

    def texts(self, ts: datetime) -> list[str]:
        import orjson

        from trading.api import dec, price

        self.k += 1
        quotes, trades = tick_build(self.k, ts)
        stamp = ts.isoformat()

        def levels(side) -> list[dict]:
            return [{"price": price(level.price), "size": dec(level.size)} for level in side]

        books = [
            {
                "venue": q.venue,
                "ts": stamp,
                "bids": levels(q.book.bids),
                "asks": levels(q.book.asks),
            }
            for q in quotes
        ]
        out = [
            {
                "id": t.trade_id,
                "venue": t.listing_key.rpartition("@")[2],
                "side": t.side,
                "price": price(t.price),
                "size": dec(t.size),
                "ts": t.ts.isoformat(),
            }
            for t in trades
        ]
        for channel in CHANNELS:
            self.seq[channel] += 1
        head = {"market_id": SYMBOL}
        return [
            orjson.dumps(
                {"channel": "orderbook", "seq": self.seq["orderbook"], "type": "update"}
                | head
                | {"ts": stamp, "books": books}
            ).decode(),
            orjson.dumps(
                {"channel": "trades", "seq": self.seq["trades"], "type": "trades"}
                | head
                | {"trades": out}
            ).decode(),
        ]

    def send(self) -> float:
        """Build and group_send one pair (in order); return their ts."""
        now = datetime.now(UTC)
        texts = self.texts(now)
        layer, group = self.layer, self.group

        async def send() -> None:
            for text in texts:
                await layer.group_send(group, {"type": "bench.text", "text": text})

        asyncio.run_coroutine_threadsafe(send(), self.sender.loop).result(timeout=60)
        return now.timestamp()


# --- Server -------------------------------------------------------------------------


def server_start(workers: int, env: dict[str, str], log) -> tuple[subprocess.Popen, int]:
    """uvicorn on APP (ws_fanout's server_start serves portal.asgi only)."""
    import httpx

    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", APP]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    argv += ["--lifespan", "off", "--log-level", "warning", "--no-access-log"]
    argv += uvicorn_proxy_argv()  # the product's trusted proxies (none by default)
    server = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            process_stop(server)
            raise RuntimeError("the server did not start (see its log)")
        time.sleep(0.1)
    time.sleep(1.0 if workers > 1 else 0.2)
    return server, port


# --- Clients (spawned processes) ----------------------------------------------------


def client_main(port: int, keys: list[str], bare: int, bare_path: str, control) -> None:
    """Hold one product socket per key in `keys` and `bare` bare sockets; answer:

    ("arm", round, path, per_socket) → count `path`'s messages published from now on,
    expecting `per_socket` per socket of the path; answers ("armed", round), then
    ("done", round) unprompted once they have all come; ("collect", round) →
    ("result", round, {channel: [latency, …]}, messages, bytes, last receipt,
    {path: {gaps, disorder}}, errors, closed); ("stop",) → close everything.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(_client(port, keys, bare, bare_path, control))
    else:
        uvloop.run(_client(port, keys, bare, bare_path, control))


async def _client(port: int, keys: list[str], bare: int, bare_path: str, control) -> None:
    import orjson
    import websockets

    loop = asyncio.get_running_loop()
    sizes = {"product": len(keys), "bare": bare}
    arm = {"round": None, "path": None, "since": math.inf, "expect": 0, "got": 0}
    latencies: dict[str, list[float]] = {channel: [] for channel in CHANNELS}
    received = {"bytes": 0, "last": 0.0}
    totals = {path: {"gaps": 0, "disorder": 0} for path in PATHS}
    errors: list[str] = []
    closed: list[str] = []
    stamps: dict[str, float] = {}
    connections, opened = [], []
    stopping = False
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
    subscribe = [
        orjson.dumps({"op": "subscribe", "channel": channel, "market_id": SYMBOL})
        for channel in CHANNELS
    ]

    def stamp(iso: str) -> float:
        value = stamps.get(iso)
        if value is None:
            if len(stamps) > 10_000:
                stamps.clear()
            value = stamps[iso] = datetime.fromisoformat(iso).timestamp()
        return value

    def sequence(path: str, seqs: dict, channel: str, seq: int) -> None:
        expected = seqs.get(channel, 0) + 1
        if seq > expected:
            totals[path]["gaps"] += seq - expected
        elif seq < expected:
            totals[path]["disorder"] += 1
        seqs[channel] = max(seq, expected - 1)

    def take(path: str, raw: str | bytes, arrived: float, seqs: dict) -> None:
        message = orjson.loads(raw)
        channel = message.get("channel")
        if channel is None:
            if message.get("type") == "error":
                errors.append(str(raw)[:300])
            return
        sequence(path, seqs, channel, message["seq"])
        kind = message["type"]
        if kind == "update":
            sent = stamp(message["ts"])
        elif kind == "trades":
            sent = stamp(message["trades"][0]["ts"])
        else:  # the orderbook snapshot
            return
        if arm["path"] != path or sent < arm["since"]:  # not armed for it, or late
            return
        latencies[channel].append(arrived - sent)
        received["bytes"] += len(raw)
        received["last"] = max(received["last"], arrived)
        arm["got"] += 1
        if arm["got"] == arm["expect"]:
            control.send(("done", arm["round"]))

    async def listen(path: str, ws, seqs: dict) -> None:
        try:
            async for raw in ws:
                take(path, raw, time.time(), seqs)
        except websockets.ConnectionClosed:
            pass
        if not stopping:
            closed.append(f"{path}: {ws.close_code} {ws.close_reason}")

    async def connect(path: str):
        return await websockets.connect(
            f"ws://127.0.0.1:{port}{'/v1/stream' if path == 'product' else bare_path}",
            compression=None,
            ping_interval=None,
            open_timeout=120,
            max_queue=None,
        )

    async def product(key: str) -> None:
        seqs: dict[str, int] = {}

        async def handshake(ws) -> None:
            """Authenticate and subscribe: wait for both acks and the snapshot."""
            await ws.send(orjson.dumps({"op": "auth", "key": key}).decode())
            reply = orjson.loads(await ws.recv())
            if reply.get("type") != "authenticated":
                raise RuntimeError(f"auth answered {reply}")
            for message in subscribe:
                await ws.send(message.decode())
            acks = 0
            while acks < len(CHANNELS) or "orderbook" not in seqs:
                reply = orjson.loads(await ws.recv())
                if reply.get("type") == "subscribed":
                    acks += 1
                elif "seq" in reply:
                    sequence("product", seqs, reply["channel"], reply["seq"])
                else:
                    raise RuntimeError(f"subscribe answered {reply}")

        async with limit:
            ws = await connect("product")
            connections.append(ws)
            try:
                await asyncio.wait_for(handshake(ws), HANDSHAKE_TIMEOUT)
            except TimeoutError:
                raise RuntimeError(
                    f"no authentication, subscription acks and snapshot within "
                    f"{HANDSHAKE_TIMEOUT:g} s (seqs seen: {seqs})"
                ) from None
        opened.append(ws)
        await listen("product", ws, seqs)

    async def bare_socket() -> None:
        async with limit:
            ws = await connect("bare")
            connections.append(ws)
        opened.append(ws)
        await listen("bare", ws, {})

    tasks = [loop.create_task(product(key)) for key in keys]
    tasks += [loop.create_task(bare_socket()) for _ in range(bare)]
    n = len(tasks)
    while len(opened) < n:
        failed = [task for task in tasks if task.done() and task.exception() is not None]
        if failed:
            control.send(("failed", repr(failed[0].exception())))
            return
        await asyncio.sleep(0.05)
    control.send(("open", n))
    while True:
        command = await loop.run_in_executor(None, control.recv)
        if command[0] == "arm":
            _, number, path, per_socket = command
            for channel in CHANNELS:
                latencies[channel] = []
            received.update(bytes=0, last=0.0)
            expect = per_socket * sizes[path]
            arm.update(round=number, path=path, since=time.time(), expect=expect, got=0)
            control.send(("armed", number))
            if expect == 0:
                control.send(("done", number))
        elif command[0] == "collect":
            arm.update(path=None, since=math.inf)
            control.send(
                (
                    "result",
                    command[1],
                    latencies,
                    arm["got"],
                    received["bytes"],
                    received["last"],
                    {path: dict(counts) for path, counts in totals.items()},
                    list(errors),
                    list(closed),
                )
            )
        else:
            break
    stopping = True
    for ws in connections:
        await ws.close()
    for task in tasks:
        task.cancel()


def clients_start(port: int, keys: list[str], processes: int, bare_path: str) -> Clients:
    """The client processes, each with its share of product and bare sockets open."""
    context = multiprocessing.get_context("spawn")
    pipes, children = [], []
    for i in range(processes):
        share = keys[i::processes]
        bare = len(range(i, len(keys), processes))
        parent, child = context.Pipe()
        process = context.Process(
            target=client_main, args=(port, share, bare, bare_path, child), daemon=True
        )
        process.start()
        pipes.append(parent)
        children.append(process)
    clients = Clients(children, pipes, 2 * len(keys))
    clients.expect_all("open", timeout=600)
    return clients


# --- Rounds ---------------------------------------------------------------------------


@dataclass
class Result:
    """One armed period of one path, all client processes together."""

    started: float
    latencies: dict[str, list[float]]
    messages: int
    bytes: int
    last: float
    totals: dict[str, dict[str, int]]
    errors: list[str]
    closed: list[str]


def run_round(
    clients: Clients, number: int, path: str, per_socket: int, go, *, timeout: float
) -> Result:
    """Arm the clients for `path`, `go()` (returns the first ts published), wait until
    every message has come (or `timeout` seconds after `go` returns), collect."""
    clients.send_all(("arm", number, path, per_socket))
    clients.expect_all("armed", timeout=30, number=number)
    started = go()
    with contextlib.suppress(TimeoutError):  # what has not come counts as missed
        clients.expect_all("done", timeout=timeout, number=number)
    clients.send_all(("collect", number))
    result = Result(started, {channel: [] for channel in CHANNELS}, 0, 0, 0.0, {}, [], [])
    for answer in clients.expect_all("result", timeout=60, number=number):
        latencies, messages, size, last, totals, errors, closed = answer[2:]
        for channel, values in latencies.items():
            result.latencies[channel] += values
        result.messages += messages
        result.bytes += size
        result.last = max(result.last, last)
        for path_name, counts in totals.items():
            into = result.totals.setdefault(path_name, dict.fromkeys(counts, 0))
            for name, value in counts.items():
                into[name] += value
        result.errors += errors
        result.closed += closed
    return result


@dataclass
class PathStats:
    """One path's rounds: Series over all messages, and one per channel."""

    label: str
    sockets: int
    all: Series = field(init=False)
    channels: dict[str, Series] = field(init=False)
    bytes: int = 0
    delivered: int = 0

    def __post_init__(self) -> None:
        self.all = Series(self.label)
        self.channels = {channel: Series(channel) for channel in CHANNELS}

    def record(self, result: Result) -> None:
        expected = self.sockets * MESSAGES_PER_TICK
        values = [value for channel in CHANNELS for value in result.latencies[channel]]
        series = self.all
        series.rounds += 1
        series.latencies += values
        series.missed += max(0, expected - result.messages)
        series.extra += max(0, result.messages - expected)
        for channel in CHANNELS:
            self.channels[channel].latencies += result.latencies[channel]
        self.bytes += result.bytes
        self.delivered += result.messages
        if values:
            series.first.append(min(values))
            series.last.append(max(values))
            span = result.last - result.started
            series.rates.append(result.messages / span if span > 0 else float("inf"))


def row(label: str, series: Series, messages: str = "", rate: str = "", tail: str = "") -> str:
    worst = max(series.latencies, default=float("nan"))
    return (
        f"  {label:28s} {messages:>7s} {rate:>9s} {ms(series.percentile(50))} "
        f"{ms(series.percentile(99))} {ms(worst)}{tail}"
    )


def server_log_report(path: Path) -> None:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    flagged = [line for line in lines if LOG_PATTERN.search(line)]
    print(f"server log: {len(lines)} lines, {len(flagged)} warnings/errors")
    for line in flagged[:10]:
        print(f"  | {line[:200]}")
    if len(flagged) > 10:
        print(f"  | … {len(flagged) - 10} more")


# --- Main -------------------------------------------------------------------------------


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
    directory = Path(tempfile.mkdtemp(prefix="stream_fanout_"))
    try:
        call_command("migrate", verbosity=0, interactive=False)
        started = time.monotonic()
        market_seed()
        per_key = settings.STREAM_MAX_CONNECTIONS_PER_KEY
        keys = keys_seed(math.ceil(args.clients / per_key))
        product_tick(0)  # the books the hub's snapshots start from
        print(
            f"seeded {SYMBOL} ({', '.join(VENUES)}; {LEVELS} levels a side) and {len(keys)} API "
            f"keys of one KYB-approved partner's custodial account ({per_key} sockets a key at "
            f"most) in {time.monotonic() - started:.1f} s"
        )
        connections.close_all()
        sockets = [keys[k // per_key] for k in range(args.clients)]  # one key a socket
        run(args, sockets, directory, failures)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        redis_keys_delete()
        if not args.keep_db:
            database_drop(url, name)
        for failure in failures:
            print(f"FAILED: {failure}")
    return 1 if failures else 0


def run(args: argparse.Namespace, sockets: list[str], directory: Path, failures: list[str]):
    from asgi_bench import BARE_GROUP, BARE_PATH
    from django.conf import settings

    server = clients = sender = None
    log_path = directory / "server.log"
    n = len(sockets)
    product = PathStats("product: tick → hub → stream", n)
    bare = PathStats("bare: group_send → socket", n)
    try:
        with log_path.open("wb") as log:
            server, port = server_start(args.workers, child_env("settings_bench", BENCH), log)
        print(
            f"server: uvicorn {APP} (portal.asgi + {BARE_PATH}), {args.workers} worker(s); "
            f"channel layer {settings.CHANNEL_LAYERS['default']['BACKEND']}; "
            f"{os.cpu_count()} CPUs shared by everything"
        )
        started = time.monotonic()
        clients = clients_start(port, sockets, args.client_processes, BARE_PATH)
        print(
            f"{n} product sockets (auth, subscribe orderbook + trades {SYMBOL}) and {n} bare "
            f"sockets open ({args.client_processes} client processes) in "
            f"{time.monotonic() - started:.1f} s"
        )
        layer = layer_build(LAYERS["configured"])
        sender = Sender(layer)
        feed = BareFeed(sender, layer, BARE_GROUP)
        client_pids = [process.pid for process in clients.processes]
        ticks = iter(range(1, 10**9))

        def product_go() -> float:
            return product_tick(next(ticks))

        def round_of(path: str, number: int, per_socket: int, go, timeout: float) -> Result:
            result = run_round(clients, number, path, per_socket, go, timeout=timeout)
            for error in result.errors:
                failures.append(f"a socket was sent an error: {error}")
            for close in result.closed:
                failures.append(f"a socket was closed by the server: {close}")
            if result.errors or result.closed:
                raise RuntimeError("sockets failed; see FAILED below")
            return result

        # Warm-up: the first tick with time to spare, then a few rounds of each.
        round_of("product", -1, MESSAGES_PER_TICK, product_go, 30)
        round_of("bare", -1, MESSAGES_PER_TICK, feed.send, 30)
        for k in range(args.warmup):
            round_of("product", -2 - k, MESSAGES_PER_TICK, product_go, args.round_timeout)
            round_of("bare", -2 - k, MESSAGES_PER_TICK, feed.send, args.round_timeout)
            time.sleep(SETTLE_SECONDS)

        last: Result | None = None
        for number in range(args.rounds):
            for path, go in ((product, product_go), (bare, feed.send)):
                name = "product" if path is product else "bare"
                before = cpu_snapshot(server.pid, server.pid, client_pids)
                last = round_of(name, number, MESSAGES_PER_TICK, go, args.round_timeout)
                after = cpu_snapshot(server.pid, server.pid, client_pids)
                for snapshot in (before, after):
                    snapshot.pop("engine")  # no engine here: cpu_snapshot's slot for it
                for group, value in after.items():
                    path.all.cpu[group] = path.all.cpu.get(group, 0.0) + value - before[group]
                path.record(last)
                time.sleep(SETTLE_SECONDS)
        rounds_totals = last.totals

        print(
            f"\nrounds: {args.rounds} of each path, interleaved (+{args.warmup + 1} warm-up); "
            f"a round = one tick (product) or one message pair (bare): {MESSAGES_PER_TICK} "
            f"messages to each of the path's {n} sockets. Latency: published ts → receipt."
        )
        print(
            f"  {'path':28s} {'msgs':>7s} {'msgs/s':>9s} {'p50':>10s} {'p99':>10s} "
            f"{'max':>10s}  bytes/msg  missed  gaps"
        )
        for path, name in ((product, "product"), (bare, "bare")):
            rate = statistics.median(path.all.rates) if path.all.rates else float("nan")
            counts = rounds_totals[name]
            tail = (
                f"  {path.bytes / max(path.delivered, 1):9.0f}  {path.all.missed:6d}  "
                f"{counts['gaps']:4d}"
            )
            print(row(path.label, path.all, f"{path.delivered:,}", f"{rate:,.0f}", tail))
            for channel, series in path.channels.items():
                print(row(f"  {channel}", series))
        ratio = product.all.percentile(99) / bare.all.percentile(99)
        print(
            f"product / bare: p99 {ratio:.2f}, p50 "
            f"{product.all.percentile(50) / bare.all.percentile(50):.2f}; "
            f"time to the last socket (median over rounds): product "
            f"{ms(statistics.median(product.all.last)).strip()}, bare "
            f"{ms(statistics.median(bare.all.last)).strip()}"
        )
        print("CPU per round (seconds, all processes of each group):")
        for path in (product, bare):
            parts = ", ".join(
                f"{group} {seconds / max(path.all.rounds, 1):.3f}"
                for group, seconds in path.all.cpu.items()
            )
            print(f"  {path.label:28s} {parts}")
        for path, name in ((product, "product"), (bare, "bare")):
            counts = rounds_totals[name]
            if name == "product" and (path.all.missed or counts["gaps"] or counts["disorder"]):
                failures.append(
                    f"product rounds: {path.all.missed} messages missed, {counts['gaps']} lost "
                    f"(seq gaps), {counts['disorder']} out of order"
                )

        if args.rate:
            sustained(args, clients, product_go, feed.send, n, rounds_totals, failures)
    finally:
        if clients is not None:
            clients.stop()
        if sender is not None:
            sender.stop()
        if server is not None:
            process_stop(server)
        server_log_report(log_path)


def sustained(args, clients, product_go, bare_go, n: int, before: dict, failures: list[str]):
    """`--rate` ticks (pairs) a second for `--duration` seconds, product then bare."""
    ticks = max(1, round(args.rate * args.duration))
    print(
        f"\nsustained: {ticks} ticks (product) / message pairs (bare) at {args.rate:g} a "
        f"second for each path: {ticks * MESSAGES_PER_TICK * n:,} messages each"
    )
    print(
        f"  {'path':28s} {'msgs':>7s} {'msgs/s':>9s} {'p50':>10s} {'p99':>10s} "
        f"{'max':>10s}  offered/s  missed  gaps"
    )
    for number, (name, go) in enumerate((("product", product_go), ("bare", bare_go))):

        def paced(go=go) -> float:
            first = None
            start = time.monotonic()
            for k in range(ticks):
                delay = start + k / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                ts = go()
                first = ts if first is None else first
            return first

        result = run_round(
            clients,
            10**6 + number,
            name,
            ticks * MESSAGES_PER_TICK,
            paced,
            timeout=args.round_timeout,
        )
        series = Series(name)
        series.latencies = [value for channel in CHANNELS for value in result.latencies[channel]]
        expected = ticks * MESSAGES_PER_TICK * n
        span = result.last - result.started
        gaps = result.totals[name]["gaps"] - before[name]["gaps"]
        tail = (
            f"  {expected / (ticks / args.rate):9,.0f}  "
            f"{max(0, expected - result.messages):6d}  {gaps:4d}"
        )
        rate = f"{result.messages / span:,.0f}" if span > 0 else "-"
        print(row(name, series, f"{result.messages:,}", rate, tail))
        for error in result.errors + result.closed:
            failures.append(f"sustained {name}: {error}")
        if name == "product" and (expected > result.messages or gaps):
            failures.append(
                f"sustained product: {expected - result.messages} messages missed, {gaps} lost"
            )


if __name__ == "__main__":
    sys.exit(main())
