"""The random-walk simulator: determinism, binary bounds, realistic perps."""

import itertools
import math
import statistics
from decimal import Decimal

import pytest

from tests.trading.conftest import T0
from trading.marketdata.quotes import Quote
from trading.marketdata.simulator import (
    InstrumentSpec,
    ListingSpec,
    MarketSimulator,
    SimulationParams,
)

D = Decimal


def binary(symbol: str = "TRUMP-WIN", tick: str = "0.01") -> InstrumentSpec:
    return InstrumentSpec(symbol=symbol, is_binary=True, tick_size=D(tick))


def perp(
    symbol: str = "BTC-PERP", base: str = "BTC", hours: int = 8, tick: str = "0.5"
) -> InstrumentSpec:
    return InstrumentSpec(
        symbol=symbol,
        is_binary=False,
        tick_size=D(tick),
        base_asset=base,
        funding_interval_hours=hours,
    )


def listings(instrument: InstrumentSpec, *venues: str) -> list[ListingSpec]:
    return [ListingSpec(f"{instrument.symbol}@{venue}", instrument) for venue in venues]


def run(sim: MarketSimulator, steps: int, dt: float = 1.0) -> list[list[Quote]]:
    return [sim.step(T0 + i * dt) for i in range(steps)]


def by_key(path: list[list[Quote]], key: str) -> list[Quote]:
    return [quote for step in path for quote in step if quote.listing_key == key]


def assert_valid_binary(quote: Quote, tick: Decimal) -> None:
    top = 1 - tick
    assert tick <= quote.bid < quote.ask <= top, quote
    assert quote.bid % tick == 0 and quote.ask % tick == 0, quote
    assert 0 < quote.mark < 1 and 0 < quote.twap < 1, quote
    assert quote.bid <= quote.mark <= quote.ask
    bids = [level.price for level in quote.book.bids]
    asks = [level.price for level in quote.book.asks]
    assert bids[0] == quote.bid and asks[0] == quote.ask
    assert bids == sorted(set(bids), reverse=True) and asks == sorted(set(asks))
    assert all(tick <= price <= top and price % tick == 0 for price in bids + asks)
    assert all(level.size > 0 for level in quote.book.bids + quote.book.asks)


def test_same_seed_gives_identical_paths():
    specs = listings(binary(), "kalshi", "polymarket") + listings(perp(), "leviathan")
    first, second = MarketSimulator(seed=42), MarketSimulator(seed=42)
    first.set_listings(specs)
    second.set_listings(specs)
    assert run(first, 2_000) == run(second, 2_000)


def test_another_seed_gives_another_path():
    specs = listings(binary(), "kalshi") + listings(perp(), "leviathan")
    first, second = MarketSimulator(seed=42), MarketSimulator(seed=43)
    first.set_listings(specs)
    second.set_listings(specs)
    marks = [[q.mark for q in step] for step in run(first, 300)]
    other = [[q.mark for q in step] for step in run(second, 300)]
    assert marks != other


def test_adding_a_market_does_not_change_the_others_paths():
    alone, crowded = MarketSimulator(seed=7), MarketSimulator(seed=7)
    alone.set_listings(listings(binary(), "kalshi"))
    crowded.set_listings(
        listings(binary("RAIN-NYC"), "kalshi")
        + listings(binary(), "kalshi")
        + listings(perp(), "leviathan")
    )
    key = "TRUMP-WIN@kalshi"
    assert by_key(run(alone, 500), key) == by_key(run(crowded, 500), key)


@pytest.mark.parametrize(
    ("tick", "params", "extreme"),
    [
        # The default: a market drifting over hours.
        ("0.01", SimulationParams(), False),
        # One logit per second: it lives at the edges.
        ("0.001", SimulationParams(binary_vol_per_day=300.0), True),
        # Absurd: slams from edge to edge every tick, venues far off the fair
        # value and spreads far below a tick, so every clamp is exercised.
        (
            "0.01",
            SimulationParams(
                binary_vol_per_day=5_000.0,
                binary_venue_offset=3.0,
                binary_half_spread_ticks=(0.01, 0.05),
            ),
            True,
        ),
    ],
)
def test_binary_prices_stay_inside_the_unit_interval_on_the_grid(tick, params, extreme):
    sim = MarketSimulator(seed=2026, params=params)
    sim.set_listings(listings(binary(tick=tick), "kalshi", "polymarket"))
    path = run(sim, 8_000)
    tick_size = D(tick)
    quotes = [quote for step in path for quote in step]
    for quote in quotes:
        assert_valid_binary(quote, tick_size)
    marks = [quote.mark for quote in quotes]
    assert max(marks) - min(marks) >= 10 * tick_size  # it does move
    at_edge = sum(q.bid == tick_size or q.ask == 1 - tick_size for q in quotes)
    if extreme:
        # The clamps hold at both ends, and neither end is a trap.
        assert min(q.bid for q in quotes) == tick_size
        assert max(q.ask for q in quotes) == 1 - tick_size
        assert sum(q.mark > D("0.5") for q in quotes) > len(quotes) / 5
        assert sum(q.mark < D("0.5") for q in quotes) > len(quotes) / 5
    else:
        # Mean reversion keeps a realistic market off the edges.
        assert at_edge < len(quotes) / 100


def test_venues_quote_the_same_market_slightly_differently():
    sim = MarketSimulator(seed=11)
    sim.set_listings(listings(binary(), "kalshi", "polymarket"))
    path = run(sim, 5_000)
    gaps = [abs(kalshi.mark - polymarket.mark) for kalshi, polymarket in path]
    assert sum(gap > 0 for gap in gaps) > len(gaps) / 4
    assert max(gaps) <= D("0.06")


def test_binary_starts_where_it_left_off():
    sim = MarketSimulator(seed=5)
    sim.set_listings(listings(binary(), "kalshi"), start_prices={"TRUMP-WIN": D("0.83")})
    (first,) = sim.step(T0)
    assert abs(first.mark - D("0.83")) <= D("0.03")
    assert first.twap == first.mark


def test_binary_start_beyond_the_grid_is_clamped():
    sim = MarketSimulator(seed=5)
    sim.set_listings(listings(binary(), "kalshi"), start_prices={"TRUMP-WIN": D("0.9999")})
    (first,) = sim.step(T0)
    assert_valid_binary(first, D("0.01"))
    assert first.ask >= D("0.97")


@pytest.mark.parametrize(
    ("base", "price", "tick"),
    [("BTC", 95_000, "0.5"), ("ETH", 3_500, "0.05"), ("SOL", 180, "0.01"), ("DOGE", 100, "0.01")],
)
def test_perps_start_at_typical_prices_with_tight_deep_books(base, price, tick):
    sim = MarketSimulator(seed=3)
    sim.set_listings(listings(perp(f"{base}-PERP", base, tick=tick), "leviathan"))
    (quote,) = sim.step(T0)
    assert abs(quote.mark / price - 1) < D("0.002")
    assert (quote.ask - quote.bid) / quote.mark < D("0.0005")
    assert len(quote.book.bids) == len(quote.book.asks) == 5
    notional = sum(level.price * level.size for level in quote.book.asks)
    assert notional > 300_000
    assert quote.funding_rate is not None and abs(quote.funding_rate) < D("0.002")


def test_btc_volatility_is_realistic():
    sim = MarketSimulator(seed=8)
    sim.set_listings(listings(perp(), "leviathan"))
    marks = [float(step[0].mark) for step in run(sim, 24 * 60, dt=60.0)]
    returns = [math.log(b / a) for a, b in itertools.pairwise(marks)]
    annual_vol = statistics.pstdev(returns) * math.sqrt(365 * 24 * 60)
    assert 0.45 < annual_vol < 0.70  # BTC trades around 55 %


def test_funding_at_par_is_the_interest_rate_per_interval():
    params = SimulationParams(perp_venue_offset=0.0)
    sim = MarketSimulator(seed=1, params=params)
    sim.set_listings(
        listings(perp("BTC-PERP", "BTC", hours=8), "leviathan")
        + listings(perp("ETH-PERP", "ETH", hours=1), "leviathan")
    )
    btc, eth = sim.step(T0)
    assert btc.funding_rate == D("0.0001")  # 0.01 % per 8 hours
    assert eth.funding_rate == D("0.0000125")  # the same rate per 1-hour interval


def test_binary_quotes_carry_no_funding_and_are_for_yes():
    sim = MarketSimulator(seed=1)
    sim.set_listings(listings(binary(), "kalshi"))
    (quote,) = sim.step(T0)
    assert quote.funding_rate is None
    assert quote.outcome == "yes"


def test_forgotten_markets_stop_and_free_their_state():
    sim = MarketSimulator(seed=1)
    sim.set_listings(listings(binary(), "kalshi") + listings(perp(), "leviathan"))
    run(sim, 10)
    sim.set_listings(listings(perp(), "leviathan"))
    assert sim.symbols == {"BTC-PERP"}
    assert [q.listing_key for q in sim.step(T0 + 10)] == ["BTC-PERP@leviathan"]


def test_a_new_tick_size_applies_without_losing_the_walk():
    sim = MarketSimulator(seed=1)
    sim.set_listings(listings(binary(tick="0.01"), "kalshi"))
    before = run(sim, 30)[-1][0]
    sim.set_listings(listings(binary(tick="0.001"), "kalshi"))
    after = sim.step(T0 + 30)[0]
    assert_valid_binary(after, D("0.001"))
    assert abs(after.mark - before.mark) <= D("0.02")


def test_time_cannot_go_backwards():
    sim = MarketSimulator(seed=1)
    sim.set_listings(listings(binary(), "kalshi"))
    sim.step(T0 + 10)
    with pytest.raises(ValueError):
        sim.step(T0)


def test_unquotable_tick_and_negative_seed_are_rejected():
    with pytest.raises(ValueError):
        binary(tick="0.4")  # no bid below an ask strictly inside (0, 1)
    with pytest.raises(ValueError):
        MarketSimulator(seed=-1)


def test_public_trades_take_the_best_level_and_repeat_with_the_seed():
    def tape(seed: int) -> list:
        sim = MarketSimulator(seed=seed)
        sim.set_listings(listings(binary(), "kalshi", "polymarket") + listings(perp(), "leviathan"))
        return [(step, sim.prints(step)) for step in run(sim, 200)]

    first, again, other = tape(7), tape(7), tape(8)
    assert [trades for _, trades in first] == [trades for _, trades in again]
    assert [trades for _, trades in first] != [trades for _, trades in other]
    printed = [trade for _, trades in first for trade in trades]
    # About print_probability of 3 listings × 200 steps, each at the best price it took.
    assert 120 < len(printed) < 240
    assert len({trade.trade_id for trade in printed}) == len(printed)
    for step, trades in first:
        quotes = {quote.listing_key: quote for quote in step}
        for trade in trades:
            quote = quotes[trade.listing_key]
            best = quote.book.asks[0] if trade.side == "buy" else quote.book.bids[0]
            assert trade.price == best.price and 0 < trade.size <= best.size * D("0.2")
            assert trade.outcome == quote.outcome and trade.ts == quote.ts
