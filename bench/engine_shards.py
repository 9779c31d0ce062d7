"""Margin engine shards: sweep time per shard and tick → margin call latency, against one shard.

    .venv/bin/python bench/engine_shards.py [--positions 10000000] [--shards 4] [--repeat 10]
        [--no-parallel] [--db-accounts 20000] [--latency-accounts 100] [--ticks 100]
        [--tick-interval 0.5] [--no-latency] [--keep-db]

1. Sweep (no database: the book is built in memory, as the engine's arrays after a
   full load). `--positions` positions (10 per account, over 1,000 markets of ~300
   events, as bench/margin_sweep.py seeds them; accounts numbered 1…N as PostgreSQL
   would) go into one `MarginBook` per shard, each holding the accounts
   `portal.shards` gives it, and one whole book: the one-shard baseline, in the same
   run. Each book is timed doing what the engine's sweep evaluates,
   `MarginBook.evaluate(None)` (haircuts, stale-price check, `margin_evaluate` over
   every position; the grouping is built once, as in the engine), `--repeat` times
   after moving every contract's price, one thread. Then, unless --no-parallel, the
   shards sweep at the same time in one process each (what N engine processes on
   one machine do), and the wall time of a round (all shards done) is reported:
   on this machine the shards share its cores, so this is bounded below by
   positions / cores, not by positions / shards.
2. Tick → margin calls opened (unless --no-latency), on real PostgreSQL and Redis:
   seeds `--db-accounts` accounts of 10 positions and a victim market held by
   `--latency-accounts` accounts with bench/margin_sweep.py's seeding (the database
   named by DATABASE_URL, default bench_shards: dropped and re-created), runs
   `manage.py run_margin_engine` once as one engine (ENGINE_SHARDS=1), then as
   `--shards` shard engines (ENGINE_SHARDS=N, `--shard-index` 0…N-1), and for each
   measures publish → every victim's MarginCall visible (a PostgreSQL trigger
   NOTIFYs; margin_sweep.CallWatcher) over `--ticks` down-ticks, one every
   `--tick-interval` seconds (resolving up-ticks between them). The victims fall in
   every shard, so a tick's latency is that of the slowest shard.

Targets (issue 20): 10M positions over shards ≤ 50 ms; tick → call p99 ≤ 100 ms with
shards.
"""

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_shards")
os.environ.setdefault("REDIS_KEY_PREFIX", f"bench-shards-{os.getpid()}")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402
import numpy as np  # noqa: E402

N_MARKETS = 1000
MAX_MARKETS_PER_EVENT = 6
POSITIONS_PER_ACCOUNT = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=10_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=10, help="timed sweeps per book")
    parser.add_argument("--no-parallel", action="store_true", help="skip the concurrent sweep")
    parser.add_argument("--db-accounts", type=int, default=20_000)
    parser.add_argument("--latency-accounts", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--tick-interval", type=float, default=0.5)
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--seed", type=int, default=20261207)
    args = parser.parse_args()
    if args.shards < 2 or args.positions < POSITIONS_PER_ACCOUNT * args.shards:
        parser.error("--shards must be ≥ 2 and --positions enough for every shard.")
    return args


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f} ms"


# --- 1. Sweep ---------------------------------------------------------------------------


class Synthetic:
    """The whole book as arrays: markets, contracts (market × outcome), positions, cash."""

    def __init__(self, n_accounts: int, rng: np.random.Generator):
        from trading import margin
        from trading.selectors import SECONDS_PER_DAY

        self.now = time.time()
        sizes = []
        while sum(sizes) < N_MARKETS:
            sizes.append(int(rng.integers(1, MAX_MARKETS_PER_EVENT + 1)))
        sizes[-1] -= sum(sizes) - N_MARKETS
        event_of = np.repeat(np.arange(len(sizes)), sizes)
        expiry_days = rng.uniform(1.0, 365.0, N_MARKETS)
        addon = np.where(rng.random(N_MARKETS) < 0.1, 0.05, 0.0)
        fair = np.round(rng.uniform(0.05, 0.95, N_MARKETS), 2)
        # Contracts: market m's YES is 2m, its NO 2m + 1 (collateral: the bid).
        self.contract_price = np.column_stack([fair - 0.01, 1.0 - fair - 0.01]).ravel()
        self.contract_expiry = np.repeat(self.now + expiry_days * SECONDS_PER_DAY, 2)
        self.contract_addon = np.repeat(addon, 2)
        self.contract_group = np.repeat(event_of, 2).astype(np.int64)
        # Positions as bench/margin_sweep.py seeds them: K markets at a random stride.
        k = POSITIONS_PER_ACCOUNT
        max_stride = max(1, min(40, (N_MARKETS - 1) // (k - 1)))
        offset = rng.integers(0, N_MARKETS, n_accounts)
        stride = rng.integers(1, max_stride + 1, n_accounts)
        market = ((offset[:, None] + stride[:, None] * np.arange(k)) % N_MARKETS).ravel()
        self.account_ids = np.arange(1, n_accounts + 1, dtype=np.int64)
        self.position_account = np.repeat(np.arange(n_accounts, dtype=np.int64), k)
        self.position_contract = 2 * market + rng.integers(0, 2, market.size)
        self.quantity = rng.integers(10, 5001, market.size).astype(np.float64)
        # Cash: 35 % without borrowing, the rest borrowing at health 1.15–4.
        params = margin.MarginParams()
        days = (self.contract_expiry - self.now) / SECONDS_PER_DAY
        haircut = margin.haircut(self.contract_price, days, self.contract_addon, params)
        result = margin.margin_evaluate(
            grouping=margin.Grouping.build(
                self.position_account,
                self.contract_group[self.position_contract],
                n_accounts,
            ),
            quantity=self.quantity,
            price=self.contract_price[self.position_contract],
            haircut=haircut[self.position_contract],
            cash=np.zeros(n_accounts),
            params=params,
        )
        target = rng.uniform(1.15, 4.0, n_accounts)
        self.cash = np.where(
            rng.random(n_accounts) < 0.65,
            np.ceil(-result.adjusted_equity / target * 1e6) / 1e6,
            np.round(rng.uniform(0, 20_000, n_accounts), 2),
        )

    def book(self, accounts: np.ndarray):
        """A MarginBook of these accounts (a mask over accounts), as a full load leaves it."""
        from trading.services.margin_book import MarginBook

        book = MarginBook()
        ids = self.account_ids[accounts]
        book.account_ids = ids
        book._slot = dict(zip(ids.tolist(), range(ids.size), strict=True))
        book.custodial = np.ones(ids.size, dtype=bool)
        book.may_borrow = np.ones(ids.size, dtype=bool)
        book.cash = self.cash[accounts].copy()
        slot_of = np.full(self.account_ids.size, -1, dtype=np.int64)
        slot_of[np.flatnonzero(accounts)] = np.arange(ids.size)
        kept = accounts[self.position_account]
        book.position_account = slot_of[self.position_account[kept]]
        book.position_contract = self.position_contract[kept]
        book.quantity = self.quantity[kept]
        book.contract_price = self.contract_price.copy()
        book._contract_quoted_at = np.full(self.contract_price.size, self.now)
        book._contract_ages = np.ones(self.contract_price.size, dtype=bool)
        book._contract_expiry = self.contract_expiry
        book._contract_addon = self.contract_addon
        book._contract_group = self.contract_group
        book.price_max_age = 1e9  # moved prices stay live for the whole run
        return book


def sweeps_time(book, repeat: int, rng: np.random.Generator, barrier=None) -> list[float]:
    """`repeat` sweeps (`evaluate(None)`), each after every contract's price moved
    (untimed); the first two warm the grouping cache and the allocator."""
    samples = []
    for _ in range(repeat + 2):
        book.contract_price = np.clip(
            book.contract_price + rng.normal(0.0, 0.005, book.contract_price.size), 0.01, 0.99
        )
        at = datetime.now(UTC)
        if barrier is not None:
            barrier.wait()
        started = time.perf_counter()
        book.evaluate(None, at=at)
        samples.append(time.perf_counter() - started)
    return samples[2:]


def _shard_worker(book, repeat, seed, barrier, results, index) -> None:
    samples = sweeps_time(book, repeat, np.random.default_rng(seed), barrier)
    results.put((index, samples))


def parallel_rounds(books: list, repeat: int, seed: int) -> tuple[list[list[float]], list[float]]:
    """Every shard in its own process (fork: the books are inherited), sweeping in
    lock-step rounds; returns each shard's sweep times and each round's wall time."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(books) + 1)
    results = context.Queue()
    workers = [
        context.Process(target=_shard_worker, args=(book, repeat, seed + i, barrier, results, i))
        for i, book in enumerate(books)
    ]
    for worker in workers:
        worker.start()
    per_shard: list[list[float]] = [[] for _ in books]
    for _ in range(repeat + 2):
        barrier.wait()  # every shard starts its sweep of the round together
    collected = [results.get(timeout=600) for _ in books]
    for worker in workers:
        worker.join()
    for index, samples in collected:
        per_shard[index] = samples
    # A round ends when its slowest shard is done: start of the round + its longest sweep.
    walls = [max(samples[r] for samples in per_shard) for r in range(repeat)]
    return per_shard, walls


def sweep_part(args: argparse.Namespace) -> None:
    from portal.shards import Shard

    rng = np.random.default_rng(args.seed)
    n_accounts = args.positions // POSITIONS_PER_ACCOUNT
    started = time.perf_counter()
    synthetic = Synthetic(n_accounts, rng)
    whole = synthetic.book(np.ones(n_accounts, dtype=bool))
    books = [
        synthetic.book(Shard(index, args.shards).mask(synthetic.account_ids))
        for index in range(args.shards)
    ]
    print(
        f"built {n_accounts:,} accounts, {whole.n_positions:,} positions in memory, one whole "
        f"book and {args.shards} shard books, in {time.perf_counter() - started:.1f} s "
        f"({os.cpu_count()} CPUs)"
    )
    assert sum(book.n_accounts for book in books) == n_accounts  # each account once
    assert sum(book.n_positions for book in books) == whole.n_positions

    baseline = sweeps_time(whole, args.repeat, rng)
    base = float(np.median(baseline))
    print(f"sweep, MarginBook.evaluate(None), one thread, median of {args.repeat}:")
    print(
        f"  one shard (baseline) {whole.n_positions:>11,} positions  best {ms(min(baseline))}"
        f"  median {ms(base)}  ({base / whole.n_positions * 1e9:.1f} ns/position)"
    )
    medians = []
    for index, book in enumerate(books):
        samples = sweeps_time(book, args.repeat, rng)
        medians.append(float(np.median(samples)))
        print(
            f"  shard {index} of {args.shards}       {book.n_positions:>11,} positions  best "
            f"{ms(min(samples))}  median {ms(medians[-1])}  (/ baseline {medians[-1] / base:.2f})"
        )
    print(
        f"  slowest shard alone                                  median {ms(max(medians))}"
        f"  (/ baseline {max(medians) / base:.2f}; the shards on separate cores)"
    )
    if not args.no_parallel:
        per_shard, walls = parallel_rounds(books, args.repeat, args.seed)
        print(
            f"  {args.shards} shards at once on this machine ({os.cpu_count()} CPUs): round "
            f"(all done) median {ms(float(np.median(walls)))}, best {ms(min(walls))}; per "
            "shard median "
            + ", ".join(ms(float(np.median(samples))).strip() for samples in per_shard)
        )


# --- 2. Tick → call ---------------------------------------------------------------------


class Engines:
    """`manage.py run_margin_engine` processes: one, or one per shard."""

    def __init__(self, shards: int, sweep_every: float = 3600.0):
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives as long as the engines)
            prefix="bench-shards-engine-", suffix=".log", delete=False
        )
        env = {**os.environ, "LOG_LEVEL": "INFO", "ENGINE_SHARDS": str(shards)}
        self.processes = [
            subprocess.Popen(  # noqa: S603 (our own interpreter and manage.py)
                [
                    sys.executable,
                    str(ROOT / "manage.py"),
                    "run_margin_engine",
                    "--sweep-every",
                    str(sweep_every),
                    "--shard-index",
                    str(index),
                ],
                cwd=ROOT,
                env=env,
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
            for index in range(shards)
        ]

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                sys.exit(f"An engine exited ({process.returncode}); see {self.log.name}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.log.close()
        Path(self.log.name).unlink()


def tick_to_call(market, watcher, shards: int, args: argparse.Namespace) -> list[float]:
    """Publish → every victim's call open, over --ticks down-ticks (resolving between)."""
    from margin_sweep import VICTIM_PRICE_HIGH, VICTIM_PRICE_LOW

    from trading.models import MarginCall

    opened, resolved = MarginCall.Status.OPEN, MarginCall.Status.RESOLVED
    from portal.heartbeats import engine_heartbeat_name, heartbeat_key
    from portal.redis import redis_client

    names = [heartbeat_key(engine_heartbeat_name(index, shards)) for index in range(shards)]
    redis_client().delete(*names)
    engines = Engines(shards)
    samples = []
    try:
        started = time.perf_counter()
        # Warm-up: every engine loads its book and beats before the first tick (a quote
        # older than the policy's stale limit would defer the calls, as it should).
        while redis_client().exists(*names) < len(names):
            engines.check_alive()
            time.sleep(0.2)
        market.quote(VICTIM_PRICE_LOW)
        watcher.wait(opened, market.account_ids, engines, timeout=900)
        market.quote(VICTIM_PRICE_HIGH)
        watcher.wait(resolved, market.account_ids, engines, timeout=120)
        warm = time.perf_counter() - started
        next_tick = time.perf_counter()
        for _ in range(args.ticks):
            for price, status in ((VICTIM_PRICE_LOW, opened), (VICTIM_PRICE_HIGH, resolved)):
                time.sleep(max(0.0, next_tick - time.perf_counter()))
                next_tick = time.perf_counter() + args.tick_interval
                published = time.perf_counter()
                market.quote(price)
                watcher.wait(status, market.account_ids, engines, timeout=120)
                if status == opened:
                    samples.append(time.perf_counter() - published)
    finally:
        engines.stop()
    print(f"  ({shards} engine process{'es' if shards > 1 else ''} up and warm in {warm:.1f} s)")
    return samples


def latency_part(args: argparse.Namespace) -> None:
    from benchdb import database_drop, database_recreate, redis_keys_delete
    from margin_sweep import Book, CallWatcher

    from portal.shards import shard_of

    url = os.environ["DATABASE_URL"]
    name = database_recreate(url)
    django.setup()
    from django.core.management import call_command

    try:
        call_command("migrate", verbosity=0, interactive=False)
        seed_args = argparse.Namespace(
            accounts=args.db_accounts,
            positions_per_account=POSITIONS_PER_ACCOUNT,
            latency_accounts=[args.latency_accounts],
        )
        book = Book(seed_args, np.random.default_rng(args.seed))
        book.seed()
        market = book.victims[0]
        spread = np.bincount(
            [shard_of(pk, args.shards) for pk in market.account_ids], minlength=args.shards
        )
        watcher = CallWatcher(url)
        print(
            f"tick → {args.latency_accounts} margin calls visible ({args.ticks} ticks, one "
            f"every {args.tick_interval:g} s; {args.db_accounts:,} accounts in the database; "
            f"victims per shard {spread.tolist()}):"
        )
        results = {}
        for shards in (1, args.shards):
            samples = tick_to_call(market, watcher, shards, args)
            results[shards] = samples
            print(
                f"  {shards} shard{'s' if shards > 1 else ' '} calls opened  p50 "
                f"{ms(float(np.percentile(samples, 50)))}  p99 "
                f"{ms(float(np.percentile(samples, 99)))}"
            )
        one, many = results[1], results[args.shards]
        print(
            f"  ratio {args.shards} shards / 1 shard: p50 "
            f"{np.percentile(many, 50) / np.percentile(one, 50):.2f}, p99 "
            f"{np.percentile(many, 99) / np.percentile(one, 99):.2f}"
        )
        watcher.close()
    finally:
        redis_keys_delete()
        if not args.keep_db:
            database_drop(url, name)


def main() -> int:
    args = parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    django.setup()
    sweep_part(args)
    if not args.no_latency:
        latency_part(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
