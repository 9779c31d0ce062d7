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
price tick: a handful of gathers and `bincount`s over all positions.
"""

from dataclasses import dataclass

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
class Grouping:
    """Which account, and which (account, event group) bucket, each position is in.

    Built once per set of positions (it changes with fills, not with prices).
    """

    account: IntArray  # per position: account index in [0, n_accounts)
    bucket: IntArray  # per position: (account, event group) bucket index
    bucket_account: IntArray  # per bucket: its account index
    n_accounts: int

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
    n = grouping.n_accounts
    value = quantity * price
    equity_part = value * (1.0 - haircut)
    collateral = np.bincount(grouping.account, weights=value, minlength=n)
    bucket_value = np.bincount(
        grouping.bucket, weights=value, minlength=grouping.bucket_account.size
    )
    bucket_total = collateral[grouping.bucket_account]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(bucket_total > 0, bucket_value / bucket_total, 0.0)
    hhi = np.bincount(grouping.bucket_account, weights=share * share, minlength=n)
    diversification = np.where(collateral > 0, 1.0 - params.c * hhi, 1.0)
    haircut_value = np.bincount(grouping.account, weights=equity_part, minlength=n)
    adjusted_equity = np.maximum(cash, 0.0) + diversification * haircut_value
    used_margin = np.maximum(-cash, 0.0)
    borrowing = used_margin > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        health = np.where(borrowing, adjusted_equity / used_margin, np.inf)
        utilization = np.where(
            borrowing,
            np.where(adjusted_equity > 0, used_margin / adjusted_equity, np.nan),
            0.0,
        )
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
    status = np.full(health.shape, CAUTION, dtype=np.int8)
    status[health > params.healthy] = HEALTHY
    status[health < params.maintenance] = MARGIN_CALL
    return status


def add_funds_needed(
    adjusted_equity: FloatArray, used_margin: FloatArray, target: float
) -> FloatArray:
    """The deposit d* = max(0, UM − AE/t) that brings health to exactly `target`.

    Exact because a deposit up to UM only repays borrowing: AE is unchanged
    (cash stays ≤ 0) and UM falls by d, so AE / (UM − d*) = t.
    """
    return np.maximum(used_margin - adjusted_equity / target, 0.0)
