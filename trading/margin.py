"""The Margin Portfolio's maths (SPEC §4): pure functions over NumPy arrays.

No ORM, no I/O. Every figure the product shows or checks — the dashboard,
the API, simulations, the pre-trade check, the sweep, margin calls and
liquidation — comes from `margin_evaluate`, which evaluates one account or
all accounts at once:

    V_i   = q_i · p_i                       (p: collateral price)
    h_i   = min(h_max, a·4p(1−p) + b·exp(−τ/τ0) + addon)
    HHI   = Σ_g (V_g / ΣV)²  per account, over event groups g
    D     = 1 − c · HHI      (no positions: D = 1)
    AE    = max(0, cash) + D · Σ_i V_i (1 − h_i)
    UM    = max(0, −cash)
    health = AE / UM         (UM = 0: unbounded, +inf here)

Risk ratios are float64; callers turn amounts into Decimal at the edge.
Positions are grouped once (`Grouping`) and re-evaluated cheaply on every
price tick: three elementwise passes, two segment sums and one `bincount`
over all positions (see `bench/margin_sweep.py`). The segment sums need
positions in account order, as `portfolio_load` returns them; any other
order gives the same figures through a slower `bincount`.
"""

import threading
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

HEALTHY, CAUTION, MARGIN_CALL = 0, 1, 2
STATUS_NAMES = ("healthy", "caution", "margin_call")


@dataclass(frozen=True, slots=True)
class MarginParams:
    """The risk policy's parameters as floats (see trading.models.RiskPolicy)."""

    a: float = 0.30
    b: float = 0.20
    tau0_days: float = 14.0
    h_max: float = 0.95
    c: float = 0.25
    healthy: float = 1.5
    initial: float = 1.2
    maintenance: float = 1.0
    liquidation: float = 0.9


def haircut(
    price: FloatArray, days_to_expiry: FloatArray, addon: FloatArray, params: MarginParams
) -> FloatArray:
    """Haircut per contract: uncertainty (peaks at p = 0.5) plus nearness to expiry.

    `days_to_expiry` below zero counts as zero; the result lies in [0, h_max].
    """
    p = np.clip(price, 0.0, 1.0)
    tau = np.maximum(days_to_expiry, 0.0)
    raw = params.a * 4.0 * p * (1.0 - p) + params.b * np.exp(-tau / params.tau0_days) + addon
    return np.clip(raw, 0.0, params.h_max)


@dataclass(frozen=True, slots=True)
class _AccountRuns:
    """Per-account sums over items (positions, or buckets) that each belong to an account.

    Items in account order (each account's items contiguous, accounts
    ascending) are summed with one `np.add.reduceat` over the accounts' runs,
    items in any other order with a `bincount`: the same sums up to rounding
    (reduceat adds a long run in blocks, bincount one item after another).
    """

    account: IntArray  # per item: its account index
    n_accounts: int
    starts: IntArray | None  # per occupied account: its run's first item; None: not in order
    occupied: IntArray | None  # the accounts that hold items; None: every account does

    @classmethod
    def of(cls, account: IntArray, n_accounts: int) -> "_AccountRuns":
        account = np.asarray(account, dtype=np.int64)
        if np.any(account[1:] < account[:-1]):
            return cls(account=account, n_accounts=n_accounts, starts=None, occupied=None)
        starts = np.flatnonzero(np.diff(account, prepend=-1))
        occupied = account[starts]
        return cls(
            account=account,
            n_accounts=n_accounts,
            starts=starts,
            occupied=None if occupied.size == n_accounts else occupied,
        )

    def sum(self, values: FloatArray) -> FloatArray:
        """Σ values per account (length n_accounts; 0 for an account without items)."""
        if self.starts is None:
            return np.bincount(self.account, weights=values, minlength=self.n_accounts)
        if self.occupied is None:
            return np.add.reduceat(values, self.starts)
        sums = np.zeros(self.n_accounts)
        if self.starts.size:
            sums[self.occupied] = np.add.reduceat(values, self.starts)
        return sums


@dataclass(frozen=True, slots=True)
class Grouping:
    """Which account, and which (account, event group) bucket, each position is in.

    Built once per set of positions (it changes with fills, not with prices).
    `build` numbers buckets in (account, event group) order, so buckets are
    always in account order; positions are when the caller's are.
    """

    account: IntArray  # per position: account index in [0, n_accounts)
    bucket: IntArray  # per position: (account, event group) bucket index
    bucket_account: IntArray  # per bucket: its account index
    n_accounts: int
    _position_runs: _AccountRuns = field(init=False, repr=False, compare=False)
    _bucket_runs: _AccountRuns = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_position_runs", _AccountRuns.of(self.account, self.n_accounts))
        object.__setattr__(
            self, "_bucket_runs", _AccountRuns.of(self.bucket_account, self.n_accounts)
        )

    @classmethod
    def build(cls, account: IntArray, group: IntArray, n_accounts: int) -> "Grouping":
        account = np.asarray(account, dtype=np.int64)
        group = np.asarray(group, dtype=np.int64)
        if account.size and (account.min() < 0 or account.max() >= n_accounts):
            raise ValueError("Every position's account index must be in [0, n_accounts).")
        n_groups = int(group.max()) + 1 if group.size else 1
        keys = account * n_groups + group
        unique_keys, bucket = np.unique(keys, return_inverse=True)
        return cls(
            account=account,
            bucket=bucket.astype(np.int64, copy=False),
            bucket_account=(unique_keys // n_groups).astype(np.int64, copy=False),
            n_accounts=n_accounts,
        )


class _Scratch(threading.local):
    """Each thread's reusable memory for a sweep's position-sized temporaries.

    Fresh arrays of a million positions cost more than the arithmetic on
    them: the allocator returns such blocks to the OS and faults them back in
    on every tick. Nothing handed to a caller lives here.
    """

    def __init__(self) -> None:
        self.buffer: FloatArray = np.empty(0)

    def pair(self, size: int) -> tuple[FloatArray, FloatArray]:
        if self.buffer.size < 2 * size:
            self.buffer = np.empty(2 * size)
        return self.buffer[:size], self.buffer[size : 2 * size]


_scratch = _Scratch()


@dataclass(frozen=True, slots=True)
class MarginResult:
    """Per-account figures (length n_accounts) and, if asked, per-position ones."""

    collateral_value: FloatArray  # Σ V
    diversification: FloatArray  # D
    adjusted_equity: FloatArray
    used_margin: FloatArray
    available_margin: FloatArray
    health: FloatArray  # +inf when UM = 0
    utilization: FloatArray  # UM / AE; 0 when UM = 0; nan when AE = 0 < UM
    status: NDArray[np.int8]
    value: FloatArray | None = None  # per position V
    contribution: FloatArray | None = None  # per position D·V(1−h)


def margin_evaluate(
    *,
    grouping: Grouping,
    quantity: FloatArray,
    price: FloatArray,
    haircut: FloatArray,
    cash: FloatArray,
    params: MarginParams,
    per_position: bool = False,
) -> MarginResult:
    """Evaluate every account of `grouping` at once.

    `quantity`, `price` (collateral price) and `haircut` are per position;
    `cash` is per account. With `per_position`, also returns each position's
    value and contribution to Adjusted Equity.
    """
    size = grouping.account.size
    if per_position:
        value, equity_part = np.empty(size), np.empty(size)
    else:
        value, equity_part = _scratch.pair(size)
    np.multiply(quantity, price, out=value)
    np.subtract(1.0, haircut, out=equity_part)
    np.multiply(equity_part, value, out=equity_part)
    collateral = grouping._position_runs.sum(value)
    haircut_value = grouping._position_runs.sum(equity_part)
    # HHI = Σ_g (V_g / ΣV)² = (Σ_g V_g²) / (ΣV)²: square the bucket values in
    # place (the squares of any amount a ledger can hold are normal floats).
    bucket_square = np.bincount(
        grouping.bucket, weights=value, minlength=grouping.bucket_account.size
    )
    np.multiply(bucket_square, bucket_square, out=bucket_square)
    square_sum = grouping._bucket_runs.sum(bucket_square)
    # Plain quotients first, then the exceptions patched by index: np.where
    # over a sweep's accounts (borrowing or not, at random) is several times
    # slower than either.
    with np.errstate(divide="ignore", invalid="ignore"):
        diversification = 1.0 - params.c * (square_sum / (collateral * collateral))
        diversification[np.flatnonzero(~(collateral > 0))] = 1.0
        adjusted_equity = np.maximum(cash, 0.0) + diversification * haircut_value
        used_margin = np.maximum(-cash, 0.0)
        health = adjusted_equity / used_margin
        utilization = used_margin / adjusted_equity
    borrowing = used_margin > 0
    not_borrowing = np.flatnonzero(~borrowing)
    health[not_borrowing] = np.inf
    utilization[not_borrowing] = 0.0
    utilization[np.flatnonzero(borrowing & ~(adjusted_equity > 0))] = np.nan
    status = margin_status(health, params)
    contribution = None
    if per_position:
        contribution = diversification[grouping.account] * equity_part
    return MarginResult(
        collateral_value=collateral,
        diversification=diversification,
        adjusted_equity=adjusted_equity,
        used_margin=used_margin,
        available_margin=adjusted_equity - used_margin,
        health=health,
        utilization=utilization,
        status=status,
        value=value if per_position else None,
        contribution=contribution,
    )


def margin_status(health: FloatArray, params: MarginParams) -> NDArray[np.int8]:
    """healthy above `healthy`, caution down to `maintenance`, margin call below."""
    below = health < params.maintenance
    above = health > params.healthy
    # Arithmetic on the codes (HEALTHY, CAUTION, MARGIN_CALL = 0, 1, 2) rather
    # than masked stores, which are many times slower over a sweep's accounts.
    # Below maintenance wins over above healthy, whatever the thresholds.
    status = np.full(health.shape, CAUTION, dtype=np.int8)
    status += below
    status -= above > below
    return status


def add_funds_needed(
    adjusted_equity: FloatArray, used_margin: FloatArray, target: float
) -> FloatArray:
    """The deposit d* = max(0, UM − AE/t) that brings health to exactly `target`.

    Exact because a deposit up to UM only repays borrowing: AE is unchanged
    (cash stays ≤ 0) and UM falls by d, so AE / (UM − d*) = t.
    """
    return np.maximum(used_margin - adjusted_equity / target, 0.0)
