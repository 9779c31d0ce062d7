"""Seedable random-walk market simulator: the embedded source of market data.

Pure: no I/O and no clock of its own; the feed passes the time of each step.

- Every instrument has a fair value. Binary: an Ornstein–Uhlenbeck walk in
  logit space that reverts mildly to where it started, so a market wanders
  but does not pin to 0 or 1. Perpetual: geometric Brownian motion with an
  annualised volatility per base asset (BTC ~ 95,000, ETH ~ 3,500, SOL ~ 180).
- Every listing quotes around its instrument's fair value with its own small
  mean-reverting venue offset and spread, so two venues differ slightly.
- Prices are on the instrument's tick grid; for binary contracts
  tick ≤ bid < ask ≤ 1 − tick, so mark and TWAP are strictly inside (0, 1).
- Randomness comes from one numpy Generator per instrument and per listing,
  seeded from (seed, name): a path depends only on the seed, its own names,
  its start price and the step times, so adding or removing markets leaves
  every other market's path unchanged.
"""

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from functools import cached_property

import numpy as np

from trading.marketdata.quotes import (
    ONE,
    BookLevel,
    OrderBook,
    Outcome,
    PublicTrade,
    Quote,
    quantize_price,
)
from trading.marketdata.twap import TwapWindow

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_YEAR = 365.0 * SECONDS_PER_DAY
BPS = 1e-4


@dataclass(frozen=True)
class PerpProfile:
    start_price: Decimal
    annual_vol: float


PERP_PROFILES: dict[str, PerpProfile] = {
    "BTC": PerpProfile(Decimal(95_000), 0.55),
    "ETH": PerpProfile(Decimal(3_500), 0.70),
    "SOL": PerpProfile(Decimal(180), 0.90),
}
DEFAULT_PERP_PROFILE = PerpProfile(Decimal(100), 0.80)

# Funding per interval as the large perp venues compute it: the premium of the
# venue over the fair (index) price plus an interest term clamped to ±0.05 %,
# so a venue trading at par pays the interest rate (0.01 % per 8 hours).
FUNDING_INTEREST_PER_8H = 0.0001
FUNDING_CLAMP = 0.0005
DEFAULT_FUNDING_INTERVAL_HOURS = 8

# Decimal places of book sizes: whole contracts for binaries, 4 for perps.
BINARY_SIZE_PLACES = 0
PERP_SIZE_PLACES = 4


@dataclass(frozen=True)
class SimulationParams:
    """How markets move and how deep the simulated books are."""

    twap_seconds: float = 60.0
    # Binary fair value: logit volatility per √day, reversion half-life (s).
    binary_vol_per_day: float = 3.0
    binary_reversion_half_life: float = 6 * 3600.0
    # Venue offsets from the fair value (stationary standard deviation): logit
    # units for binary contracts, log-price units for perpetuals.
    binary_venue_offset: float = 0.03
    perp_venue_offset: float = 0.0003
    venue_offset_half_life: float = 120.0
    # Half-spread range a listing draws once; each tick it breathes by a
    # mean-one lognormal factor of volatility `spread_jitter`.
    binary_half_spread_ticks: tuple[float, float] = (0.2, 0.6)
    perp_half_spread_bps: tuple[float, float] = (0.2, 1.0)
    spread_jitter: float = 0.25
    perp_level_step_bps: float = 1.5
    book_levels: int = 5
    # Typical size of the best level (deeper levels are larger).
    binary_level_contracts: float = 1_500.0
    perp_level_notional: float = 150_000.0
    size_jitter: float = 0.4
    # Public trades: the chance a listing prints one in a step, and its size as a
    # fraction of the best level it takes (uniform in the range).
    print_probability: float = 0.3
    print_fraction: tuple[float, float] = (0.01, 0.2)


@dataclass(frozen=True)
class InstrumentSpec:
    """What the simulator needs to know about an instrument."""

    symbol: str
    is_binary: bool
    tick_size: Decimal
    base_asset: str = ""
    funding_interval_hours: int | None = None

    def __post_init__(self) -> None:
        if self.tick_size <= 0:
            raise ValueError(f"{self.symbol}: tick size must be positive.")
        if self.is_binary and self.max_ticks < 2:
            raise ValueError(f"{self.symbol}: tick {self.tick_size} leaves no bid below an ask.")

    @cached_property
    def max_ticks(self) -> int:
        """Binary: the highest price below 1 on the grid, in ticks."""
        return int((ONE - self.tick_size) / self.tick_size)


@dataclass(frozen=True)
class ListingSpec:
    key: str  # SYMBOL@venue
    instrument: InstrumentSpec


def _rng(seed: int, stream: str) -> np.random.Generator:
    digest = hashlib.blake2b(stream.encode(), digest_size=8).digest()
    return np.random.default_rng([seed, int.from_bytes(digest, "big")])


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _logit_limit(spec: InstrumentSpec) -> float:
    """The logit of the highest quotable price, 1 − tick."""
    tick = float(spec.tick_size)
    return math.log((1.0 - tick) / tick)


def _ou_step(
    x: float, mean: float, half_life: float, stationary_std: float, dt: float, z: float
) -> float:
    """Exact Ornstein–Uhlenbeck transition over dt (stable for any dt ≥ 0)."""
    decay = math.exp(-math.log(2) * dt / half_life)
    return mean + (x - mean) * decay + stationary_std * math.sqrt(1.0 - decay * decay) * z


class _FairValue:
    """An instrument's fair value: logit(p) for binary, log(price) for perps."""

    def __init__(
        self,
        spec: InstrumentSpec,
        rng: np.random.Generator,
        start: Decimal | None,
        params: SimulationParams,
    ):
        self.spec = spec
        self._rng = rng
        self._params = params
        self._last: float | None = None
        if spec.is_binary:
            limit = _logit_limit(spec)
            if start is None:
                x = float(rng.normal(0.0, 1.0))
            else:
                p = float(start)
                x = math.log(p / (1.0 - p)) if 0.0 < p < 1.0 else math.copysign(limit, p - 0.5)
            self.x = max(-limit, min(limit, x))
            self._anchor = self.x
        else:
            profile = PERP_PROFILES.get(spec.base_asset.upper(), DEFAULT_PERP_PROFILE)
            self.x = math.log(
                float(start if start is not None and start > 0 else profile.start_price)
            )
            self._sigma = profile.annual_vol / math.sqrt(SECONDS_PER_YEAR)

    def advance(self, now: float) -> None:
        dt = 0.0 if self._last is None else now - self._last
        if dt < 0:
            raise ValueError("The simulator cannot step back in time.")
        self._last = now
        z = float(self._rng.standard_normal())
        if self.spec.is_binary:
            params = self._params
            # OU with volatility σ per √s has stationary std σ·√(half-life / 2 ln 2).
            sigma = params.binary_vol_per_day / math.sqrt(SECONDS_PER_DAY)
            std = sigma * math.sqrt(params.binary_reversion_half_life / (2 * math.log(2)))
            x = _ou_step(self.x, self._anchor, params.binary_reversion_half_life, std, dt, z)
            limit = _logit_limit(self.spec)
            self.x = max(-limit, min(limit, x))
        else:
            self.x += -0.5 * self._sigma**2 * dt + self._sigma * math.sqrt(dt) * z


def _ladder(
    mid: float, half_spread: float, step: float, tick: float, levels: int, max_ticks: int | None
) -> tuple[list[int], list[int]]:
    """Bid and ask prices in ticks, best first.

    Bids strictly decrease and stay ≥ 1 tick, asks strictly increase and stay
    ≤ max_ticks (when bounded), and the best bid is below the best ask. Levels
    that would leave the bounds are dropped, so books near 0 or 1 are thinner.
    """
    best_bid = max(1, math.floor((mid - half_spread) / tick))
    if max_ticks is not None:
        best_bid = min(best_bid, max_ticks - 1)
    best_ask = max(math.ceil((mid + half_spread) / tick), best_bid + 1)
    if max_ticks is not None:
        best_ask = min(best_ask, max_ticks)
    bids, asks = [best_bid], [best_ask]
    for level in range(1, levels):
        depth = half_spread + level * step
        bid = min(math.floor((mid - depth) / tick), bids[-1] - 1)
        if bid >= 1:
            bids.append(bid)
        ask = max(math.ceil((mid + depth) / tick), asks[-1] + 1)
        if max_ticks is None or ask <= max_ticks:
            asks.append(ask)
    return bids, asks


def _size(units: float, places: int) -> Decimal:
    """A positive book size rounded to `places` decimals (at least one unit)."""
    scaled = max(1, round(units * 10**places))
    return Decimal(scaled).scaleb(-places)


class _ListingQuoter:
    """One venue's quotes around an instrument's fair value."""

    def __init__(self, spec: ListingSpec, rng: np.random.Generator, params: SimulationParams):
        self.spec = spec
        self._rng = rng
        self._params = params
        binary = spec.instrument.is_binary
        self._offset_std = params.binary_venue_offset if binary else params.perp_venue_offset
        self._offset = self._offset_std * float(rng.standard_normal())
        low, high = params.binary_half_spread_ticks if binary else params.perp_half_spread_bps
        self._half_spread = float(rng.uniform(low, high))
        self._twap = TwapWindow(params.twap_seconds)
        self._last: float | None = None

    def quote(self, fair: _FairValue, now: float) -> Quote:
        params, instrument = self._params, self.spec.instrument
        levels = params.book_levels
        draws = self._rng.standard_normal(2 + 2 * levels).tolist()
        dt = 0.0 if self._last is None else now - self._last
        self._last = now
        self._offset = _ou_step(
            self._offset, 0.0, params.venue_offset_half_life, self._offset_std, dt, draws[0]
        )
        jitter = params.spread_jitter
        half_spread = self._half_spread * math.exp(jitter * draws[1] - jitter * jitter / 2)
        tick = float(instrument.tick_size)
        x = fair.x + self._offset
        if instrument.is_binary:
            mid = _sigmoid(x)
            bids, asks = _ladder(mid, half_spread * tick, tick, tick, levels, instrument.max_ticks)
            base_size, places = params.binary_level_contracts, BINARY_SIZE_PLACES
            funding_rate = None
        else:
            mid = math.exp(x)
            bids, asks = _ladder(
                mid,
                half_spread * BPS * mid,
                params.perp_level_step_bps * BPS * mid,
                tick,
                levels,
                None,
            )
            base_size, places = params.perp_level_notional / mid, PERP_SIZE_PLACES
            funding_rate = self._funding_rate()
        # A fixed number of draws per step, whether or not levels were dropped
        # at a bound, keeps every later step of the path reproducible.
        book = OrderBook(
            bids=self._side(bids, draws[2 : 2 + levels], base_size, places),
            asks=self._side(asks, draws[2 + levels :], base_size, places),
        )
        bid, ask = book.bids[0].price, book.asks[0].price
        mark = quantize_price((bid + ask) / 2)
        self._twap.add(now, mark)
        return Quote(
            listing_key=self.spec.key,
            is_binary=instrument.is_binary,
            ts=datetime.fromtimestamp(now, tz=UTC),
            mark=mark,
            bid=bid,
            ask=ask,
            twap=self._twap.value(now),
            book=book,
            funding_rate=funding_rate,
            outcome=Outcome.YES if instrument.is_binary else None,
        )

    def _side(
        self, prices: list[int], draws: list[float], base_size: float, places: int
    ) -> tuple[BookLevel, ...]:
        tick_size = self.spec.instrument.tick_size
        jitter = self._params.size_jitter
        return tuple(
            BookLevel(
                price=ticks * tick_size,
                size=_size(
                    base_size * (1 + level / 2) * math.exp(jitter * z - jitter * jitter / 2),
                    places,
                ),
            )
            for level, (ticks, z) in enumerate(zip(prices, draws, strict=False))
        )

    def _funding_rate(self) -> Decimal:
        hours = self.spec.instrument.funding_interval_hours or DEFAULT_FUNDING_INTERVAL_HOURS
        interest = FUNDING_INTEREST_PER_8H * hours / 8
        premium = math.expm1(self._offset)  # venue mid over fair value, minus one
        rate = premium + max(-FUNDING_CLAMP, min(FUNDING_CLAMP, interest - premium))
        return quantize_price(Decimal(rate))


class MarketSimulator:
    """Moves a set of listings; deterministic given the seed and step times."""

    def __init__(self, *, seed: int, params: SimulationParams | None = None):
        if seed < 0:
            raise ValueError("The market-data seed must be a non-negative integer.")
        self.seed = seed
        self.params = params or SimulationParams()
        self._fair: dict[str, _FairValue] = {}
        self._quoters: dict[str, _ListingQuoter] = {}
        self._prints = _rng(seed, "prints")
        self._printed = 0

    @property
    def symbols(self) -> frozenset[str]:
        """Symbols of the instruments currently moving."""
        return frozenset(self._fair)

    def set_listings(
        self, listings: Iterable[ListingSpec], start_prices: Mapping[str, Decimal] | None = None
    ) -> None:
        """Make `listings` the set that moves from the next step on.

        Markets already moving keep their state (and take any new spec, e.g. a
        changed tick size). New instruments start at `start_prices[symbol]`,
        else at a default: binary drawn from the seed, perps at a typical
        price for the base asset (else 100). Instruments and listings not in
        `listings` are forgotten, freeing their memory.
        """
        start_prices = start_prices or {}
        fair: dict[str, _FairValue] = {}
        quoters: dict[str, _ListingQuoter] = {}
        for listing in sorted(listings, key=lambda spec: spec.key):
            instrument = listing.instrument
            value = fair.get(instrument.symbol) or self._fair.get(instrument.symbol)
            if value is None:
                rng = _rng(self.seed, f"instrument:{instrument.symbol}")
                start = start_prices.get(instrument.symbol)
                value = _FairValue(instrument, rng, start, self.params)
            value.spec = instrument
            fair[instrument.symbol] = value
            quoter = self._quoters.get(listing.key)
            if quoter is None:
                quoter = _ListingQuoter(
                    listing, _rng(self.seed, f"listing:{listing.key}"), self.params
                )
            quoter.spec = listing
            quoters[listing.key] = quoter
        self._fair, self._quoters = fair, quoters

    def step(self, now: float) -> list[Quote]:
        """Advance every market to `now` and quote every listing, by key.

        `now` is seconds since the epoch and must never decrease (ValueError).
        """
        for value in self._fair.values():
            value.advance(now)
        return [
            quoter.quote(self._fair[quoter.spec.instrument.symbol], now)
            for quoter in self._quoters.values()
        ]

    def prints(self, quotes: Sequence[Quote]) -> list[PublicTrade]:
        """The public trades of a step: each listing prints with `print_probability`,
        a taker buying the best ask or selling the best bid, a fraction of its size.

        Deterministic given the seed and the quotes; ids are unique per simulator.
        """
        params = self.params
        trades = []
        draws = self._prints.random((len(quotes), 3)).tolist()
        low, high = params.print_fraction
        for quote, (chance, direction, fraction) in zip(quotes, draws, strict=True):
            side = "buy" if direction < 0.5 else "sell"
            levels = quote.book.asks if side == "buy" else quote.book.bids
            if chance >= params.print_probability or not levels:
                continue
            best = levels[0]
            exponent = best.size.as_tuple().exponent
            size = (best.size * Decimal(low + (high - low) * fraction)).quantize(
                Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0), ROUND_DOWN
            )
            if size <= 0:
                continue
            self._printed += 1
            trades.append(
                PublicTrade(
                    trade_id=f"sim-{self.seed}-{int(quote.ts.timestamp() * 1000)}-{self._printed}",
                    listing_key=quote.listing_key,
                    outcome=quote.outcome,
                    side=side,
                    price=best.price,
                    size=size,
                    ts=quote.ts,
                )
            )
        return trades
