"""Margin sweep benchmark: the vectorised engine against a per-account ORM loop.

    .venv/bin/python bench/margin_sweep.py [--accounts 100000] [--positions-per-account 10]
        [--orm-sample 500] [--repeat 30] [--ticks 200] [--latency-accounts 1,100]
        [--tick-interval 0.5] [--engine-sweep-every 3600] [--no-latency] [--keep-db]

On real PostgreSQL and Redis it:

1. creates the database named by DATABASE_URL (default
   postgres://postgres@127.0.0.1:5432/bench_margin; the name must start with
   "bench", because it is dropped and re-created), migrates it and seeds a
   synthetic book with COPY: `--accounts` custodial margin accounts of
   `--positions-per-account` binary positions each, over ~1,000 markets of
   ~300 events listed on two venues, quoted in Redis. Cash is set so every
   account starts at health ≥ 1.15 (or does not borrow): no margin call is
   due until the latency part pushes some accounts down. Account cash is
   written directly, without ledger journals: this database is a benchmark
   fixture, not a reconcilable ledger;
2. loads the book once (`portfolio_load`, as the engine's full refresh does),
   builds the Grouping once (it changes with fills, not ticks), then times
   `--repeat` sweeps after moving every contract's price: the per-contract
   haircut, the gather of prices and haircuts to positions and
   `margin_evaluate` over every position, single-threaded. Prints the best
   and median, and `margin_evaluate` alone;
3. times the "before": for `--orm-sample` random accounts, load the account
   and its positions with ORM queries, price its contracts (`contracts_get`)
   and compute SPEC §4 in plain Python, one account at a time; scales the
   time to all accounts, prints the ratio, and checks both give the same
   figures (max abs difference printed; exits 1 if above 1e-6);
4. unless --no-latency: runs `manage.py run_margin_engine` against this
   database and, for each N of `--latency-accounts`, publishes ticks
   (`quotes_publish`) of a market held by N extra accounts, alternately
   pushing them to health ≈ 0.93 (a margin call, above liquidation) and back
   to ≈ 1.15, one tick every `--tick-interval` seconds (the feed's cadence:
   as in production, a batch's after-commit work, notifications and pushes,
   may still be running when the next tick comes). For each downward tick
   it measures the time
   from publish to all N accounts' MarginCall rows being visible (and for
   each upward one, to all resolved); prints p50/p99 over `--ticks` ticks,
   against a bare Redis publish → subscribe round trip measured in the same
   run. The engine's periodic full reload is set to `--engine-sweep-every`
   (default an hour) so that it stays out of the measurement: at 100,000
   accounts a full reload takes seconds, and ticks wait behind it.

The database is dropped at the end unless --keep-db; the run's Redis keys
(prefix REDIS_KEY_PREFIX, default bench-margin-<pid>) are always deleted.
Targets (SPEC §4, ARCHITECTURE "Performance"): a sweep of 1,000,000 positions
under 50 ms on one core, ≥ 100× the ORM loop, tick-to-margin-call p99 under
100 ms.
"""

import argparse
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

# One core: set before NumPy loads its BLAS.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
os.environ.setdefault("DJANGO_DEBUG", "false")  # DEBUG would log every query of the ORM loop
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_margin")
os.environ.setdefault("REDIS_KEY_PREFIX", f"bench-margin-{os.getpid()}")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402
import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from benchdb import database_drop, database_recreate, redis_keys_delete  # noqa: E402

SECONDS_PER_DAY = 86400.0
N_MARKETS = 1000
MAX_MARKETS_PER_EVENT = 6
VICTIM_QUANTITY = 10_000
VICTIM_PRICE_HIGH = Decimal("0.80")  # health ≈ 1.15 (caution)
VICTIM_PRICE_LOW = Decimal("0.70")  # health ≈ 0.93 (margin call, above liquidation)
VICTIM_HEALTH_HIGH = 1.15
MATCH_TOLERANCE = 1e-6  # USDC; ratios relative


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--positions-per-account", type=int, default=10)
    parser.add_argument("--orm-sample", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=30, help="timed sweeps (default 30)")
    parser.add_argument("--ticks", type=int, default=200, help="latency samples (default 200)")
    parser.add_argument(
        "--latency-accounts",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 100],
        help="accounts pushed into a margin call per tick, one series per number (default 1,100)",
    )
    parser.add_argument(
        "--tick-interval",
        type=float,
        default=0.5,
        help="seconds between the latency part's ticks (default 0.5)",
    )
    parser.add_argument(
        "--engine-sweep-every",
        type=float,
        default=3600.0,
        help="the engine's full-reload interval in seconds (default 3600: none while measuring)",
    )
    parser.add_argument("--no-latency", action="store_true", help="skip the engine part")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument("--seed", type=int, default=20261121)
    args = parser.parse_args()
    if not 1 <= args.positions_per_account <= N_MARKETS:
        parser.error(f"--positions-per-account must be in [1, {N_MARKETS}].")
    if args.accounts < 1 or not 1 <= args.orm_sample <= args.accounts:
        parser.error("--accounts must be ≥ 1 and --orm-sample in [1, accounts].")
    if min(args.latency_accounts) < 1:
        parser.error("--latency-accounts must be positive numbers.")
    return args


# --- Database ------------------------------------------------------------------


def copy_rows(table: str, columns: list[str], lines) -> None:
    """COPY tab-separated lines (NULL as \\N) into `table`."""
    from django.db import connection

    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        batch = []
        for line in lines:
            batch.append(line)
            if len(batch) == 50_000:
                copy.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            copy.write("\n".join(batch) + "\n")


def ids_of(table: str) -> np.ndarray:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} ORDER BY id")
        return np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)


# --- Synthetic book ----------------------------------------------------------------


class Book:
    """What was seeded: markets, their quotes' collateral prices, and who holds what."""

    def __init__(self, args: argparse.Namespace, rng: np.random.Generator):
        self.args = args
        self.rng = rng
        self.now = datetime.now(UTC)

    def seed(self) -> None:
        started = time.perf_counter()
        self._markets()
        self._positions()
        self._cash()
        self._accounts_copy()
        self._positions_copy()
        self._victims()
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(
            f"seeded {self.args.accounts:,} accounts, {self.account_of.size:,} positions, "
            f"{N_MARKETS} markets of {self.n_events} events "
            f"in {time.perf_counter() - started:.1f} s"
        )

    def _markets(self) -> None:
        from trading.marketdata import store
        from trading.marketdata.quotes import BookLevel, OrderBook, Outcome, Quote
        from trading.models import EventGroup, Instrument, InstrumentHaircut, Listing, Venue
        from trading.selectors import risk_policy_get

        rng = self.rng
        sizes = []
        while sum(sizes) < N_MARKETS:
            sizes.append(int(rng.integers(1, MAX_MARKETS_PER_EVENT + 1)))
        sizes[-1] -= sum(sizes) - N_MARKETS
        self.n_events = len(sizes)
        events = EventGroup.objects.bulk_create(
            EventGroup(code=f"bench-event-{g}", title=f"Benchmark event {g}")
            for g in range(self.n_events)
        )
        event_of = np.repeat(np.arange(self.n_events), sizes)
        self.expiry_days = rng.uniform(1.0, 365.0, N_MARKETS)
        instruments = Instrument.objects.bulk_create(
            Instrument(
                symbol=f"BENCH-{m:04d}",
                title=f"Benchmark market {m}",
                kind=Instrument.Kind.BINARY,
                tick_size=Decimal("0.01"),
                event=events[event_of[m]],
                expires_at=self.now + timedelta(days=float(self.expiry_days[m])),
            )
            for m in range(N_MARKETS)
        )
        self.instrument_ids = np.array([instrument.pk for instrument in instruments])
        self.event_ids = np.array([events[g].pk for g in event_of])
        venues = Venue.objects.bulk_create(
            Venue(code=code, name=code.title(), kind=Venue.Kind.PREDICTION)
            for code in ("kalshi", "polymarket")
        )
        self.kalshi = venues[0]
        both = rng.random(N_MARKETS) < 0.5
        Listing.objects.bulk_create(
            Listing(instrument=instrument, venue=venue, venue_symbol=instrument.symbol)
            for m, instrument in enumerate(instruments)
            for venue in (venues if both[m] else venues[:1])
        )
        policy = risk_policy_get()
        addons = rng.random(N_MARKETS) < 0.1
        InstrumentHaircut.objects.bulk_create(
            InstrumentHaircut(policy=policy, instrument=instrument, addon=Decimal("0.05"))
            for m, instrument in enumerate(instruments)
            if addons[m]
        )
        self.addon = np.where(addons, 0.05, 0.0)

        fair = np.round(rng.uniform(0.05, 0.95, N_MARKETS), 2)
        quotes = []
        collateral = np.zeros((N_MARKETS, 2))  # YES, NO: best over venues
        for m, instrument in enumerate(instruments):
            for v, venue in enumerate(venues if both[m] else venues[:1]):
                spread = Decimal("0.01") * (v + 1)
                mid = Decimal(str(fair[m]))
                bid, ask = mid - spread, mid + spread
                quote = Quote(
                    listing_key=f"{instrument.symbol}@{venue.code}",
                    is_binary=True,
                    ts=self.now,
                    mark=mid,
                    bid=bid,
                    ask=ask,
                    twap=mid,
                    book=OrderBook(
                        bids=(BookLevel(bid, Decimal(100_000)),),
                        asks=(BookLevel(ask, Decimal(100_000)),),
                    ),
                    outcome=Outcome.YES,
                )
                quotes.append(quote)
                for o, outcome in enumerate((Outcome.YES, Outcome.NO)):
                    price = float(quote.for_outcome(outcome).collateral_price)
                    collateral[m, o] = max(collateral[m, o], price)
        store.quotes_publish(quotes, ts=self.now)
        self.collateral = collateral
        self.fair = fair

    def _positions(self) -> None:
        """Each account holds K distinct markets spaced by a random stride, so that
        neighbouring markets of one event share a bucket (stride 1: concentrated;
        large strides: spread over many events)."""
        rng, n, k = self.rng, self.args.accounts, self.args.positions_per_account
        max_stride = max(1, min(40, (N_MARKETS - 1) // max(k - 1, 1)))
        offset = rng.integers(0, N_MARKETS, n)
        stride = rng.integers(1, max_stride + 1, n)
        market = (offset[:, None] + stride[:, None] * np.arange(k)) % N_MARKETS
        self.account_of = np.repeat(np.arange(n), k)
        self.market_of = market.ravel()
        self.outcome_of = rng.integers(0, 2, n * k)  # 0 YES, 1 NO
        self.quantity = rng.integers(10, 5001, n * k).astype(np.float64)

    def _cash(self) -> None:
        """Cash per account: 35 % without borrowing, the rest borrowing at health 1.15–4."""
        from trading import margin
        from trading.selectors import margin_params_get

        rng, n = self.rng, self.args.accounts
        params = margin_params_get()
        price = self.collateral[self.market_of, self.outcome_of]
        days = self.expiry_days[self.market_of]
        haircut = margin.haircut(price, days, self.addon[self.market_of], params)
        grouping = margin.Grouping.build(self.account_of, self.event_ids[self.market_of], n)
        result = margin.margin_evaluate(
            grouping=grouping,
            quantity=self.quantity,
            price=price,
            haircut=haircut,
            cash=np.zeros(n),
            params=params,
        )
        target = rng.uniform(VICTIM_HEALTH_HIGH, 4.0, n)
        borrowing = rng.random(n) < 0.65
        self.cash = np.where(
            borrowing,
            np.ceil(-result.adjusted_equity / target * 1e6) / 1e6,  # health ≥ its target
            np.round(rng.uniform(0, 20_000, n), 2),
        )

    def _accounts_copy(self) -> None:
        n = self.args.accounts
        n_users = -(-n // 10)
        self.user_ids = self._users_copy(n_users, "bench")
        now = self.now.isoformat()
        copy_rows(
            "accounts_account",
            [
                "public_id",
                "owner_id",
                "index",
                "name",
                "kind",
                "status",
                "margin_enabled",
                "margin_override",
                "lifetime_volume",
                "cash_balance",
                "withdrawals_held",
                "orders_reserved",
                "created_at",
            ],
            (
                f"acct_bench{k:08d}\t{self.user_ids[k // 10]}\t{k % 10}\t\tcustodial\tactive"
                f"\tt\tgranted\t0\t{self.cash[k]:.6f}\t0\t0\t{now}"
                for k in range(n)
            ),
        )
        self.account_ids = ids_of("accounts_account")

    def _users_copy(self, count: int, tag: str) -> np.ndarray:
        now = self.now.isoformat()
        before = ids_of("accounts_user")
        copy_rows(
            "accounts_user",
            [
                "password",
                "is_superuser",
                "email",
                "full_name",
                "is_staff",
                "is_active",
                "date_joined",
                "kyb_status",
                "kyb_note",
            ],
            (f"!\tf\t{tag}{u}@bench.invalid\t\tf\tt\t{now}\tapproved\t" for u in range(count)),
        )
        return np.setdiff1d(ids_of("accounts_user"), before)

    def _positions_copy(self) -> None:
        now = self.now.isoformat()
        outcome = np.array(["yes", "no"])[self.outcome_of]
        yes_price = self.fair[self.market_of]
        average = np.where(self.outcome_of == 0, yes_price, 1.0 - yes_price)
        account = self.account_ids[self.account_of]
        instrument = self.instrument_ids[self.market_of]
        copy_rows(
            "trading_position",
            [
                "account_id",
                "instrument_id",
                "outcome",
                "quantity",
                "average_price",
                "realized_pnl",
                "isolated_margin",
                "opened_at",
                "updated_at",
            ],
            (
                f"{account[i]}\t{instrument[i]}\t{outcome[i]}\t{self.quantity[i]:.0f}"
                f"\t{average[i]:.2f}\t0\t0\t{now}\t{now}"
                for i in range(account.size)
            ),
        )

    def _victims(self) -> None:
        """One victim market per --latency-accounts number N, held by N accounts."""
        self.victims = [
            VictimMarket.create(f"BENCH-VICTIM-{s}", count, self.kalshi, self._users_copy)
            for s, count in enumerate(self.args.latency_accounts)
        ]


class VictimMarket:
    """A market whose holders sit at health 1.15 at the high price and ≈ 0.93 at the
    low one (below maintenance, above liquidation): each low tick opens their calls."""

    def __init__(self, symbol: str, account_ids: list[int]):
        self.symbol = symbol
        self.account_ids = account_ids

    @classmethod
    def create(cls, symbol: str, count: int, venue, users_copy) -> "VictimMarket":
        from accounts.models import Account
        from trading.models import EventGroup, Instrument, Listing, Position
        from trading.selectors import margin_params_get

        params = margin_params_get()
        event = EventGroup.objects.create(code=symbol.lower(), title=f"{symbol} event")
        instrument = Instrument.objects.create(
            symbol=symbol,
            title=f"{symbol} market",
            kind=Instrument.Kind.BINARY,
            tick_size=Decimal("0.01"),
            event=event,
            expires_at=datetime.now(UTC) + timedelta(days=365),
        )
        Listing.objects.create(instrument=instrument, venue=venue, venue_symbol=symbol)
        _, equity = cls._figures(VICTIM_PRICE_HIGH, -1.0, params)
        cash = math.floor(-equity / VICTIM_HEALTH_HIGH * 1e6) / 1e6
        low, _ = cls._figures(VICTIM_PRICE_LOW, cash, params)
        if not params.liquidation < low < params.maintenance:
            sys.exit(f"The victim scenario does not fit the risk policy (low health {low:.3f}).")
        owners = users_copy(-(-count // 10), symbol.lower())
        accounts = Account.objects.bulk_create(
            Account(
                public_id=f"acct_{symbol.lower()}_{k:06d}",
                owner_id=int(owners[k // 10]),
                index=k % 10,
                kind=Account.Kind.CUSTODIAL,
                margin_enabled=True,
                margin_override=Account.MarginOverride.GRANTED,
                cash_balance=Decimal(f"{cash:.6f}"),
            )
            for k in range(count)
        )
        Position.objects.bulk_create(
            Position(
                account=account,
                instrument=instrument,
                outcome=Position.Outcome.YES,
                quantity=Decimal(VICTIM_QUANTITY),
                average_price=VICTIM_PRICE_HIGH,
            )
            for account in accounts
        )
        market = cls(symbol, [account.pk for account in accounts])
        market.quote(VICTIM_PRICE_HIGH)
        return market

    @staticmethod
    def _figures(price: Decimal, cash: float, params) -> tuple[float, float]:
        """(health, Adjusted Equity) of one holder at `price` with `cash`."""
        from trading import margin

        p = np.array([float(price)])
        result = margin.margin_evaluate(
            grouping=margin.Grouping.build(np.zeros(1, np.int64), np.zeros(1, np.int64), 1),
            quantity=np.array([float(VICTIM_QUANTITY)]),
            price=p,
            haircut=margin.haircut(p, np.array([365.0]), np.zeros(1), params),
            cash=np.array([cash]),
            params=params,
        )
        return float(result.health[0]), float(result.adjusted_equity[0])

    def quote(self, bid: Decimal) -> None:
        """Publish the market at collateral price `bid`, as the feed would."""
        from trading.marketdata import store
        from trading.marketdata.quotes import BookLevel, OrderBook, Outcome, Quote

        ask = bid + Decimal("0.01")
        now = datetime.now(UTC)
        quote = Quote(
            listing_key=f"{self.symbol}@kalshi",
            is_binary=True,
            ts=now,
            mark=bid + Decimal("0.005"),
            bid=bid,
            ask=ask,
            twap=bid,
            book=OrderBook(
                bids=(BookLevel(bid, Decimal(1_000_000)),),
                asks=(BookLevel(ask, Decimal(1_000_000)),),
            ),
            outcome=Outcome.YES,
        )
        store.quotes_publish([quote], ts=now)


# --- Measurements ------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f} ms"


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


class Sweep:
    """The engine's inputs for every account, loaded once as its full refresh does."""

    def __init__(self, book: Book):
        from accounts.models import Account
        from trading.selectors import margin_params_get, portfolio_load

        self.params = margin_params_get()
        started = time.perf_counter()
        accounts = list(
            Account.objects.filter(pk__in=book.account_ids.tolist())
            .order_by("pk")
            .only("pk", "kind", "cash_balance")
        )
        self.portfolio = portfolio_load(accounts=accounts)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        self.grouping = self.portfolio.grouping()
        built = time.perf_counter() - started
        contracts = self.portfolio.contracts
        self.price = np.array([float(c.collateral_price) for c in contracts])
        self.expiry = np.array([c.expires_at.timestamp() for c in contracts])
        self.addon = np.array([c.addon for c in contracts])
        self.position_contract = self.portfolio.position_contract
        print(
            f"loaded {len(accounts):,} accounts and {self.position_contract.size:,} positions "
            f"({len(contracts):,} contracts) in {loaded:.1f} s; Grouping.build {ms(built)}"
        )

    def evaluate(self, price: np.ndarray, at: datetime, buffers=None):
        """One sweep: haircut per contract, gathered to positions, then margin_evaluate."""
        from trading import margin

        days = (self.expiry - at.timestamp()) / SECONDS_PER_DAY
        haircut = margin.haircut(price, days, self.addon, self.params)
        if buffers is None:
            position_price = price[self.position_contract]
            position_haircut = haircut[self.position_contract]
        else:
            position_price, position_haircut = buffers
            np.take(price, self.position_contract, out=position_price, mode="clip")
            np.take(haircut, self.position_contract, out=position_haircut, mode="clip")
        return margin.margin_evaluate(
            grouping=self.grouping,
            quantity=self.portfolio.quantity,
            price=position_price,
            haircut=position_haircut,
            cash=self.portfolio.cash,
            params=self.params,
        )

    def time(self, repeat: int, rng: np.random.Generator) -> tuple[list[float], list[float]]:
        """`repeat` sweeps, each after every contract's price moved (untimed, as the feed
        moves them); returns the times of whole sweeps and of margin_evaluate alone."""
        from trading import margin

        size = self.position_contract.size
        buffers = (np.empty(size), np.empty(size))
        price = self.price.copy()
        sweeps, evaluations = [], []
        for _ in range(repeat + 2):  # the first two warm the caches and the allocator
            price = np.clip(price + rng.normal(0.0, 0.005, price.size), 0.01, 0.99)
            at = datetime.now(UTC)
            started = time.perf_counter()
            self.evaluate(price, at, buffers)
            sweeps.append(time.perf_counter() - started)
            started = time.perf_counter()
            margin.margin_evaluate(
                grouping=self.grouping,
                quantity=self.portfolio.quantity,
                price=buffers[0],
                haircut=buffers[1],
                cash=self.portfolio.cash,
                params=self.params,
            )
            evaluations.append(time.perf_counter() - started)
        return sweeps[2:], evaluations[2:]


def plain_account_margin(account, positions, contracts, at: datetime, params) -> dict[str, float]:
    """SPEC §4 for one account, written out plainly: the "before"."""
    cash = float(account.cash_balance)
    total = haircut_value = 0.0
    by_event: dict[int, float] = defaultdict(float)
    for position in positions:
        contract = contracts[(position.instrument_id, position.outcome)]
        p = min(max(float(contract.collateral_price), 0.0), 1.0)
        tau = max((contract.expires_at - at).total_seconds() / SECONDS_PER_DAY, 0.0)
        h = params.a * 4 * p * (1 - p) + params.b * math.exp(-tau / params.tau0_days)
        h = min(max(h + contract.addon, 0.0), params.h_max)
        value = float(position.quantity) * p
        total += value
        haircut_value += value * (1 - h)
        by_event[contract.event_group_id] += value
    hhi = sum((v / total) ** 2 for v in by_event.values()) if total > 0 else 0.0
    diversification = 1 - params.c * hhi if total > 0 else 1.0
    adjusted_equity = max(0.0, cash) + diversification * haircut_value
    used_margin = max(0.0, -cash)
    return {
        "collateral_value": total,
        "diversification": diversification,
        "adjusted_equity": adjusted_equity,
        "used_margin": used_margin,
        "available_margin": adjusted_equity - used_margin,
        "health": adjusted_equity / used_margin if used_margin > 0 else math.inf,
    }


def orm_loop(account_ids: list[int], at: datetime, params) -> tuple[float, dict[int, dict]]:
    """One account at a time: its row, its positions, its contracts' prices, the maths."""
    from accounts.models import Account
    from trading.models import Instrument, Position
    from trading.selectors import contracts_get

    figures = {}
    started = time.perf_counter()
    for account_id in account_ids:
        account = Account.objects.get(pk=account_id)
        positions = list(
            Position.objects.filter(
                account=account, instrument__kind=Instrument.Kind.BINARY, quantity__gt=0
            )
        )
        contracts = contracts_get((p.instrument_id, p.outcome) for p in positions)
        figures[account_id] = plain_account_margin(account, positions, contracts, at, params)
    return time.perf_counter() - started, figures


def figures_compare(sweep: Sweep, sample: list[int], plain: dict[int, dict]) -> bool:
    """Max abs difference per figure between the sweep and the plain loop; True if equal."""
    result = sweep.evaluate(sweep.price, sweep.portfolio.at)
    index = {account_id: k for k, account_id in enumerate(sweep.portfolio.account_ids)}
    equal = True
    print("  sweep vs per-account loop on the sample, max |difference|:")
    for name in plain[sample[0]]:
        diffs = []
        for account_id in sample:
            expected, got = plain[account_id][name], float(getattr(result, name)[index[account_id]])
            if math.isinf(expected) or math.isinf(got):
                diffs.append(0.0 if expected == got else math.inf)
            elif name == "health":
                diffs.append(abs(got - expected) / max(abs(expected), 1.0))
            else:
                diffs.append(abs(got - expected))
        worst = max(diffs)
        equal &= worst <= MATCH_TOLERANCE
        print(f"    {name:18s} {worst:.3e}{' (relative)' if name == 'health' else ''}")
    return equal


def redis_round_trips(count: int) -> list[float]:
    """Bare baseline: publish on a channel, receive it on a subscription."""
    from portal.redis import redis_client, redis_key

    client = redis_client()
    channel = redis_key("bench", "ping")
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=5.0)  # the subscription's confirmation
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        client.publish(channel, b"ping")
        while (message := pubsub.get_message(timeout=5.0)) is None or message["type"] != "message":
            pass
        samples.append(time.perf_counter() - started)
    pubsub.close()
    return samples


class Engine:
    """`manage.py run_margin_engine` in a subprocess against the bench database."""

    def __init__(self, sweep_every: float):
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives as long as the engine)
            prefix="bench-margin-engine-", suffix=".log", delete=False
        )
        command = [
            sys.executable,
            str(ROOT / "manage.py"),
            "run_margin_engine",
            "--sweep-every",
            str(sweep_every),
        ]
        env = {**os.environ, "LOG_LEVEL": "INFO"}
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and manage.py)
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            sys.exit(f"The margin engine exited ({self.process.returncode}); see {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class CallWatcher:
    """Margin call rows as their transactions commit: a trigger on the bench database
    NOTIFYs each insert and status change, and this connection LISTENs, so waiting
    costs no polling that would compete with the engine for the CPU."""

    CHANNEL = "bench_margin_calls"
    TRIGGERS = f"""
        CREATE FUNCTION bench_margincall_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', NEW.status || ':' || NEW.account_id);
            RETURN NULL;
        END $$;
        CREATE TRIGGER bench_margincall_opened AFTER INSERT ON trading_margincall
            FOR EACH ROW EXECUTE FUNCTION bench_margincall_notify();
        CREATE TRIGGER bench_margincall_changed AFTER UPDATE OF status ON trading_margincall
            FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
            EXECUTE FUNCTION bench_margincall_notify();
    """

    def __init__(self, url: str):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(self.TRIGGERS)
        self.connection = psycopg.connect(url, autocommit=True)
        self.connection.execute(f"LISTEN {self.CHANNEL}")

    def wait(self, status: str, account_ids: list[int], engine: "Engine", timeout: float) -> None:
        """Block until the call of every one of `account_ids` has turned `status`."""
        pending = set(account_ids)
        deadline = time.monotonic() + timeout
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                engine.check_alive()
                sys.exit(f"No margin calls after {timeout:.0f} s; engine log: {engine.log.name}")
            for notify in self.connection.notifies(timeout=min(remaining, 1.0)):
                got, _, account_id = notify.payload.partition(":")
                if got == status:
                    pending.discard(int(account_id))
                if not pending:
                    break

    def close(self) -> None:
        self.connection.close()


@dataclass
class Latencies:
    accounts: int
    opened: list[float]  # publish → all calls visible
    resolved: list[float]  # publish → all calls resolved


def tick_to_call(book: Book, args: argparse.Namespace) -> list[Latencies]:
    """Per victim market: ticks down and up, one every --tick-interval seconds."""
    from trading.models import MarginCall

    opened, resolved = MarginCall.Status.OPEN, MarginCall.Status.RESOLVED
    watcher = CallWatcher(os.environ["DATABASE_URL"])
    engine = Engine(args.engine_sweep_every)
    series = []
    try:
        started = time.perf_counter()
        for market in book.victims:
            # Warm-up: the engine loads the whole book before it handles its first tick.
            market.quote(VICTIM_PRICE_LOW)
            watcher.wait(opened, market.account_ids, engine, timeout=900)
            market.quote(VICTIM_PRICE_HIGH)
            watcher.wait(resolved, market.account_ids, engine, timeout=120)
        print(f"  engine up and warm in {time.perf_counter() - started:.1f} s")
        next_tick = time.perf_counter()
        for market in book.victims:
            latencies = Latencies(accounts=len(market.account_ids), opened=[], resolved=[])
            for _ in range(args.ticks):
                for price, status, samples in (
                    (VICTIM_PRICE_LOW, opened, latencies.opened),
                    (VICTIM_PRICE_HIGH, resolved, latencies.resolved),
                ):
                    time.sleep(max(0.0, next_tick - time.perf_counter()))
                    next_tick = time.perf_counter() + args.tick_interval
                    published = time.perf_counter()
                    market.quote(price)
                    watcher.wait(status, market.account_ids, engine, timeout=120)
                    samples.append(time.perf_counter() - published)
            series.append(latencies)
    finally:
        engine.stop()
        watcher.close()
    Path(engine.log.name).unlink()  # kept, and named, when the run fails
    return series


# --- Main ------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    url = os.environ["DATABASE_URL"]
    name = database_recreate(url)
    django.setup()
    from django.core.management import call_command

    print(f"database {name} (created; {'kept' if args.keep_db else 'dropped'} at the end)")
    ok = True
    try:
        call_command("migrate", verbosity=0, interactive=False)
        rng = np.random.default_rng(args.seed)
        book = Book(args, rng)
        book.seed()

        sweep = Sweep(book)
        sweeps, evaluations = sweep.time(args.repeat, rng)
        best, median = min(sweeps), float(np.median(sweeps))
        print(f"vectorised sweep, {sweep.position_contract.size:,} positions, one thread:")
        print(f"  haircut + gather + margin_evaluate  best {ms(best)}  median {ms(median)}")
        print(
            f"  margin_evaluate alone               best {ms(min(evaluations))}  "
            f"median {ms(float(np.median(evaluations)))}"
        )

        sample = sorted(rng.choice(book.account_ids, size=args.orm_sample, replace=False).tolist())
        orm_loop(sample[:5], sweep.portfolio.at, sweep.params)  # warm the connection
        spent, plain = orm_loop(sample, sweep.portfolio.at, sweep.params)
        scaled = spent / len(sample) * args.accounts
        print(f"per-account ORM loop: {len(sample)} accounts in {spent:.2f} s")
        print(f"  scaled to {args.accounts:,} accounts    {ms(scaled)}")
        print(f"  ratio ORM / sweep (median)          {scaled / median:,.0f}×")
        equal = figures_compare(sweep, sample, plain)
        print(f"  same figures: {'yes' if equal else 'NO'} (tolerance {MATCH_TOLERANCE:g})")
        ok &= equal

        if not args.no_latency:
            baseline = redis_round_trips(args.ticks)
            base50, base99 = percentile(baseline, 50), percentile(baseline, 99)
            print(
                f"tick → margin calls visible ({args.ticks} ticks each way, one every "
                f"{args.tick_interval:g} s; the engine holds {args.accounts:,} accounts):"
            )
            for latencies in tick_to_call(book, args):
                p50, p99 = percentile(latencies.opened, 50), percentile(latencies.opened, 99)
                print(
                    f"  {latencies.accounts:4d} accounts a tick: calls opened   "
                    f"p50 {ms(p50)}  p99 {ms(p99)}   "
                    f"(/ Redis p50 {p50 / base50:,.0f}×, p99 {p99 / base99:,.0f}×)"
                )
                print(
                    f"  {latencies.accounts:4d} accounts a tick: calls resolved "
                    f"p50 {ms(percentile(latencies.resolved, 50))}  "
                    f"p99 {ms(percentile(latencies.resolved, 99))}"
                )
            print(f"  Redis publish → subscribe round trip  p50 {ms(base50)}  p99 {ms(base99)}")
    finally:
        redis_keys_delete()
        if not args.keep_db:
            database_drop(url, name)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
