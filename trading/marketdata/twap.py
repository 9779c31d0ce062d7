"""Time-weighted average of a listing's mid over a short window.

A mid holds from the moment it is observed until the next observation, so
the average weights each mid by how long it stood. A mid that has just
appeared has stood for no time yet: a one-tick spike barely moves the TWAP,
which is why collateral is valued at min(best bid, TWAP).
"""

from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from itertools import islice

from trading.marketdata.quotes import quantize_price

Sample = tuple[float, Decimal]  # (seconds since the epoch, mid)


def time_weighted_average(samples: Sequence[Sample], *, now: float, window: float) -> Decimal:
    """The average of the piecewise-constant series over [now − window, now].

    `samples` are in time order; each value holds until the next sample's
    time, the last one until `now`. Time before the first sample does not
    count, so a series younger than the window is averaged over its own life.
    When no time has elapsed at all, the latest value is returned. The result
    is rounded to price precision and lies between the smallest and largest
    value averaged. Raises ValueError for an empty series.
    """
    if not samples:
        raise ValueError("A time-weighted average needs at least one sample.")
    start = now - window
    weighted = Decimal(0)
    duration = Decimal(0)
    ends = [ts for ts, _ in islice(samples, 1, None)]
    ends.append(now)
    for (ts, value), until in zip(samples, ends, strict=True):
        held = min(until, now) - max(ts, start)
        if held > 0:
            seconds = Decimal(held)
            weighted += value * seconds
            duration += seconds
    if duration == 0:
        return quantize_price(samples[-1][1])
    return quantize_price(weighted / duration)


class TwapWindow:
    """The recent mids of one listing, holding no more than the window needs.

    Memory is bounded: a sample is dropped once a later sample already covers
    the start of the window, so at most (window / tick interval) + 2 samples
    are kept.
    """

    def __init__(self, seconds: float):
        if seconds <= 0:
            raise ValueError("The TWAP window must be positive.")
        self.seconds = seconds
        self._samples: deque[Sample] = deque()

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, ts: float, mid: Decimal) -> None:
        """Record the mid observed at `ts` (not earlier than the last one)."""
        if self._samples and ts < self._samples[-1][0]:
            raise ValueError("TWAP samples must arrive in time order.")
        self._samples.append((ts, mid))
        start = ts - self.seconds
        while len(self._samples) >= 2 and self._samples[1][0] <= start:
            self._samples.popleft()

    def value(self, now: float) -> Decimal:
        """The TWAP over the window ending at `now` (see time_weighted_average)."""
        return time_weighted_average(self._samples, now=now, window=self.seconds)
