"""Pure perpetual formulas (SPEC §5): one place for selectors, services and tests.

Decimal in, Decimal out, no rounding: callers quantize for display or
posting. `quantity` is the signed position s (long > 0, short < 0); `margin`
the position's isolated margin M; `mmf` the market's maintenance margin
fraction.
"""

from decimal import Decimal

ZERO = Decimal(0)
ONE = Decimal(1)


def isolated_margin_required(*, quantity: Decimal, price: Decimal, leverage: int) -> Decimal:
    """Initial isolated margin for |quantity| contracts at `price`: |s|·price/L."""
    if leverage < 1:
        raise ValueError("Leverage is at least 1.")
    return abs(quantity) * price / Decimal(leverage)


def unrealized_pnl(*, quantity: Decimal, entry: Decimal, mark: Decimal) -> Decimal:
    """uPnL = s·(mark − entry)."""
    return quantity * (mark - entry)


def maintenance_margin(*, quantity: Decimal, mark: Decimal, mmf: Decimal) -> Decimal:
    """Maintenance margin |s|·mark·MMF."""
    return abs(quantity) * mark * mmf


def position_equity(
    *, margin: Decimal, quantity: Decimal, entry: Decimal, mark: Decimal
) -> Decimal:
    """Isolated equity M + uPnL."""
    return margin + unrealized_pnl(quantity=quantity, entry=entry, mark=mark)


def is_liquidatable(
    *, margin: Decimal, quantity: Decimal, entry: Decimal, mark: Decimal, mmf: Decimal
) -> bool:
    """True when M + uPnL < |s|·mark·MMF (a flat position never is)."""
    if quantity == ZERO:
        return False
    equity = position_equity(margin=margin, quantity=quantity, entry=entry, mark=mark)
    return equity < maintenance_margin(quantity=quantity, mark=mark, mmf=mmf)


def liquidation_price(
    *, quantity: Decimal, entry: Decimal, margin: Decimal, mmf: Decimal
) -> Decimal | None:
    """The mark at which the position reaches maintenance (None when flat).

    Long: (entry − M/|s|)/(1 − MMF); short: (entry + M/|s|)/(1 + MMF). A long
    whose margin covers the whole entry price cannot be liquidated: 0.
    """
    if quantity == ZERO:
        return None
    per_contract = margin / abs(quantity)
    if quantity > ZERO:
        return max(ZERO, (entry - per_contract) / (ONE - mmf))
    return (entry + per_contract) / (ONE + mmf)


def funding_payment(*, quantity: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """Funding paid by the position for one interval: s·mark·rate (negative: received).

    A positive rate makes longs pay and shorts receive.
    """
    return quantity * mark * rate
