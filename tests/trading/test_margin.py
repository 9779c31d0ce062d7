"""The Margin Portfolio's maths (trading.margin, SPEC §4) against figures worked
out by hand, and its properties (hypothesis), including the simulation
service's add-funds answer and buying power over generated portfolios.

Worked examples use the default policy: a = 0.30, b = 0.20, τ0 = 14 days,
h_max = 0.95, c = 0.25; thresholds 1.5 / 1.2 / 1.0.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.margin import (
    CAUTION,
    HEALTHY,
    MARGIN_CALL,
    Grouping,
    MarginParams,
    add_funds_needed,
    haircut,
    margin_evaluate,
    margin_status,
)
from trading.marketdata.quotes import BookLevel, OrderBook
from trading.selectors import Contract, Portfolio
from trading.services.routing import VenueBook, trade_route
from trading.services.simulation import (
    CENT,
    PortfolioChange,
    account_state,
    add_funds_project,
    buy_change,
    buying_power_find,
    change_project,
    worst_case,
)
from trading.venues.base import Side

PARAMS = MarginParams()
PROPERTY_SETTINGS = settings(max_examples=75, deadline=None)


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def evaluate(
    positions: list[tuple[float, float, float, int]],
    cash: float,
    *,
    addon: float = 0.0,
    params: MarginParams = PARAMS,
):
    """One account: positions as (quantity, collateral price, days to expiry, event group)."""
    quantity, price, days, group = (
        np.array([p[i] for p in positions], dtype=np.float64) for i in range(4)
    )
    return margin_evaluate(
        grouping=Grouping.build(
            np.zeros(len(positions), np.int64), group.astype(np.int64), n_accounts=1
        ),
        quantity=quantity,
        price=price,
        haircut=haircut(price, days, np.full(len(positions), addon), params),
        cash=arr(cash),
        params=params,
        per_position=True,
    )


# ---------------------------------------------------------------------------
# Haircut


@pytest.mark.parametrize(
    ("price", "days", "addon", "expected"),
    [
        # 0.3·4·0.5·0.5 + 0.2·e^(−14/14) = 0.3 + 0.2·0.367879 = 0.373576
        (0.5, 14.0, 0.0, 0.373576),
        # 0.3·4·0.1·0.9 + 0.2·e^(−28/14) = 0.108 + 0.2·0.135335 = 0.135067
        (0.1, 28.0, 0.0, 0.135067),
        # expiring now: 0.3·4·0.9·0.1 + 0.2·e^0 = 0.108 + 0.2 = 0.308
        (0.9, 0.0, 0.0, 0.308),
        # expired 3 days ago: τ < 0 counts as 0, so the same 0.308 (not 0.2·e^(3/14))
        (0.9, -3.0, 0.0, 0.308),
        # add-on: 0.373576 + 0.1 = 0.473576
        (0.5, 14.0, 0.1, 0.473576),
        # 0.3 + 0.2 + 0.5 = 1.0, capped at h_max = 0.95
        (0.5, 0.0, 0.5, 0.95),
        # near-certain and far out: 0.3·4·0.99·0.01 + 0.2·e^(−365/14) = 0.01188 + 0.000000
        (0.99, 365.0, 0.0, 0.011880),
    ],
)
def test_haircut_worked_examples(price, days, addon, expected):
    h = haircut(arr(price), arr(days), arr(addon), PARAMS)
    assert h[0] == pytest.approx(expected, abs=5e-7)


def test_uncertain_and_soon_expiring_contracts_are_valued_more_conservatively():
    prices = arr(0.5, 0.7, 0.9, 0.99)
    by_price = haircut(prices, np.full(4, 30.0), np.zeros(4), PARAMS)
    assert list(by_price) == sorted(by_price, reverse=True)
    days = arr(0.0, 1.0, 14.0, 60.0)
    by_expiry = haircut(np.full(4, 0.8), days, np.zeros(4), PARAMS)
    assert list(by_expiry) == sorted(by_expiry, reverse=True)
    # Symmetric in p: YES at 0.3 and NO at 0.7 of the same market carry the same haircut.
    pair = haircut(arr(0.3, 0.7), arr(10.0, 10.0), np.zeros(2), PARAMS)
    assert pair[0] == pytest.approx(pair[1], abs=1e-15)


# ---------------------------------------------------------------------------
# Adjusted Equity, Used Margin, health, utilization, status


def test_single_position_worked_example():
    # 1000 contracts at p = 0.5, τ = 14 d: V = 500, h = 0.373576.
    # One position: HHI = 1, D = 1 − 0.25 = 0.75.
    # AE = max(0, −200) + 0.75·500·(1 − 0.373576) = 234.909042; UM = 200.
    # health = 234.909042 / 200 = 1.174545 (caution); utilization = 200 / 234.909042 = 0.851393.
    result = evaluate([(1000, 0.5, 14.0, 0)], cash=-200.0)
    assert result.collateral_value[0] == pytest.approx(500.0)
    assert result.diversification[0] == pytest.approx(0.75)
    assert result.adjusted_equity[0] == pytest.approx(234.909042, abs=5e-7)
    assert result.used_margin[0] == 200.0
    assert result.available_margin[0] == pytest.approx(34.909042, abs=5e-7)
    assert result.health[0] == pytest.approx(1.174545, abs=5e-7)
    assert result.utilization[0] == pytest.approx(0.851393, abs=5e-7)
    assert result.status[0] == CAUTION
    # Its contribution is all of AE (cash below zero adds nothing).
    assert result.value[0] == pytest.approx(500.0)
    assert result.contribution[0] == pytest.approx(234.909042, abs=5e-7)


def test_positive_cash_adds_to_adjusted_equity_and_nothing_is_borrowed():
    # AE = 300 + 234.909042 = 534.909042; UM = 0: health unbounded, healthy, utilization 0.
    result = evaluate([(1000, 0.5, 14.0, 0)], cash=300.0)
    assert result.adjusted_equity[0] == pytest.approx(534.909042, abs=5e-7)
    assert result.used_margin[0] == 0.0
    assert result.health[0] == np.inf
    assert result.status[0] == HEALTHY
    assert result.utilization[0] == 0.0


def test_no_positions_and_no_borrowing():
    # No positions: D = 1, AE = cash = 100, UM = 0 → unbounded, healthy, utilization 0.
    result = evaluate([], cash=100.0)
    assert result.diversification[0] == 1.0
    assert result.adjusted_equity[0] == 100.0
    assert result.health[0] == np.inf
    assert result.status[0] == HEALTHY
    assert result.utilization[0] == 0.0


def test_borrowing_with_nothing_to_show_for_it():
    # Cash −100, no positions: AE = 0, UM = 100: health 0 (margin call), utilization undefined.
    result = evaluate([], cash=-100.0)
    assert result.adjusted_equity[0] == 0.0
    assert result.health[0] == 0.0
    assert result.status[0] == MARGIN_CALL
    assert np.isnan(result.utilization[0])


def test_status_boundaries():
    health = arr(np.inf, 1.5000001, 1.5, 1.2, 1.0, 0.9999999, 0.0)
    assert list(margin_status(health, PARAMS)) == [
        HEALTHY,
        HEALTHY,
        CAUTION,  # exactly 1.5 is not above 1.5
        CAUTION,
        CAUTION,  # exactly 1.0 is not below 1.0
        MARGIN_CALL,
        MARGIN_CALL,
    ]


def test_two_markets_of_one_event_are_one_concentration_bucket():
    # A: 600 at 0.5, τ = 14 → V = 300, h = 0.373576.
    # B: 250 at 0.4, τ = 28 → V = 100, h = 0.3·4·0.4·0.6 + 0.2·e^−2 = 0.288 + 0.027067 = 0.315067.
    a, b = (600, 0.5, 14.0), (250, 0.4, 28.0)
    # Same event: one bucket, HHI = (400/400)² = 1, D = 0.75.
    # Contributions 0.75·300·0.626424 = 140.945425 and 0.75·100·0.684933 = 51.369971.
    same = evaluate([(*a, 7), (*b, 7)], cash=-100.0)
    assert same.diversification[0] == pytest.approx(0.75)
    assert same.contribution == pytest.approx([140.945425, 51.369971], abs=5e-7)
    assert same.adjusted_equity[0] == pytest.approx(192.315396, abs=5e-7)
    # Two events: HHI = 0.75² + 0.25² = 0.625, D = 1 − 0.25·0.625 = 0.84375.
    # Contributions 0.84375·300·0.626424 = 158.563603 and 0.84375·100·0.684933 = 57.791217.
    apart = evaluate([(*a, 7), (*b, 8)], cash=-100.0)
    assert apart.diversification[0] == pytest.approx(0.84375)
    assert apart.contribution == pytest.approx([158.563603, 57.791217], abs=5e-7)
    assert apart.adjusted_equity[0] == pytest.approx(216.354820, abs=5e-7)
    # Diversifying across events raises health: 1.923154 → 2.163548.
    assert same.health[0] == pytest.approx(1.923154, abs=5e-7)
    assert apart.health[0] == pytest.approx(2.163548, abs=5e-7)


def test_four_equal_events_diversify_the_most():
    # Four events of V = 100 each: HHI = 4·0.25² = 0.25, D = 1 − 0.0625 = 0.9375.
    # τ huge: h = 0.3 exactly; AE = 0.9375·400·0.7 = 262.5.
    result = evaluate([(200, 0.5, 1e6, g) for g in range(4)], cash=0.0)
    assert result.diversification[0] == pytest.approx(0.9375)
    assert result.adjusted_equity[0] == pytest.approx(262.5)


def test_accounts_evaluate_independently_in_one_pass():
    # Account 0: the single-position example; 1: cash only; 2: the two-events example.
    # Positions arrive out of account order: the figures must not depend on it.
    quantity = arr(600, 1000, 250)
    price = arr(0.5, 0.5, 0.4)
    days = arr(14.0, 14.0, 28.0)
    grouping = Grouping.build(
        np.array([2, 0, 2], np.int64), np.array([7, 3, 8], np.int64), n_accounts=3
    )
    result = margin_evaluate(
        grouping=grouping,
        quantity=quantity,
        price=price,
        haircut=haircut(price, days, np.zeros(3), PARAMS),
        cash=arr(-200.0, 50.0, -100.0),
        params=PARAMS,
    )
    assert result.adjusted_equity == pytest.approx([234.909042, 50.0, 216.354820], abs=5e-7)
    assert result.used_margin.tolist() == [200.0, 0.0, 100.0]
    assert result.diversification == pytest.approx([0.75, 1.0, 0.84375])
    assert result.status.tolist() == [CAUTION, HEALTHY, HEALTHY]


def test_grouping_refuses_a_position_outside_the_accounts():
    with pytest.raises(ValueError, match="account index"):
        Grouping.build(np.array([0, 2], np.int64), np.array([0, 0], np.int64), n_accounts=2)


def test_add_funds_needed_worked_example():
    # AE = 234.909042, UM = 200 (health 1.174545).
    # t = 1.5: d* = 200 − 234.909042/1.5 = 200 − 156.606028 = 43.393972.
    # t = 1.2: d* = 200 − 234.909042/1.2 = 200 − 195.757535 = 4.242465.
    ae, um = arr(234.909042), arr(200.0)
    for target, expected in ((1.5, 43.393972), (1.2, 4.242465)):
        d = add_funds_needed(ae, um, target)
        assert d[0] == pytest.approx(expected, abs=5e-7)
        # The deposit only repays the loan: AE is unchanged and UM − d* = AE/t.
        assert ae[0] / (um[0] - d[0]) == pytest.approx(target, rel=1e-12)
    # Already above target (400 / 200 = 2 ≥ 1.5), or not borrowing: nothing to add.
    assert add_funds_needed(arr(400.0, 10.0), arr(200.0, 0.0), 1.5).tolist() == [0.0, 0.0]


# ---------------------------------------------------------------------------
# Properties of margin_evaluate

prices = st.floats(0.01, 0.99)


def micro_dollars(low: int, high: int) -> st.SearchStrategy[float]:
    """USDC amounts as the ledger holds them (6 decimals), as the engine's floats."""
    return st.integers(low * 10**6, high * 10**6).map(lambda n: n / 1e6)


position_rows = st.tuples(
    st.integers(0, 3),  # account
    st.integers(0, 10**11).map(lambda n: n / 1e6),  # quantity: contracts, 6 decimals
    prices,  # collateral price
    st.floats(-5.0, 400.0),  # days to expiry
    st.integers(0, 4),  # event group
    st.floats(0.0, 0.2),  # add-on
)


@st.composite
def books_of_accounts(draw):
    rows = draw(st.lists(position_rows, min_size=1, max_size=12))
    cash = draw(st.lists(micro_dollars(-100_000, 100_000), min_size=4, max_size=4))
    return rows, arr(*cash)


def _evaluate_rows(rows, cash, params=PARAMS, price_override=None):
    account, quantity, price, days, group, addon = (
        np.array([r[i] for r in rows], dtype=np.float64) for i in range(6)
    )
    if price_override is not None:
        price = price_override
    return margin_evaluate(
        grouping=Grouping.build(account.astype(np.int64), group.astype(np.int64), n_accounts=4),
        quantity=quantity,
        price=price,
        haircut=haircut(price, days, addon, params),
        cash=cash,
        params=params,
    )


@PROPERTY_SETTINGS
@given(books_of_accounts(), st.data())
def test_health_never_rises_when_a_positions_price_falls(book, data):
    """With the default policy (h = 0.3·4p(1−p) + 0.2·e^(−τ/τ0) + add-on ≤ 0.7 for add-ons
    ≤ 0.2), a position's AE term q·p·(1−h) grows with p at a rate ≥ 0.2·q, and the rise in D
    its fall can bring (diversification) is worth at most 2c·(s − HHI) ≤ 0.125·q per unit of
    price: AE, hence health, falls or stays."""
    rows, cash = book
    j = data.draw(st.integers(0, len(rows) - 1))
    fall = data.draw(st.floats(0.0, 1.0, exclude_max=True))
    before = _evaluate_rows(rows, cash)
    price = arr(*(r[2] for r in rows))
    price[j] = max(0.001, price[j] * fall)
    after = _evaluate_rows(rows, cash, price_override=price)
    assert np.all(after.adjusted_equity <= before.adjusted_equity * (1 + 1e-12) + 1e-9)
    assert np.all(after.health <= before.health * (1 + 1e-12) + 1e-12)


@PROPERTY_SETTINGS
@given(
    books_of_accounts(),
    st.lists(micro_dollars(0, 1_000_000), min_size=4, max_size=4),
    st.builds(
        MarginParams,
        a=st.floats(0.0, 0.5),
        b=st.floats(0.0, 0.5),
        tau0_days=st.floats(1.0, 60.0),
        h_max=st.floats(0.5, 1.0),
        c=st.floats(0.0, 0.9),
    ),
)
def test_adding_funds_never_lowers_health(book, deposits, params):
    rows, cash = book
    before = _evaluate_rows(rows, cash, params)
    after = _evaluate_rows(rows, cash + arr(*deposits), params)
    assert np.all(after.health >= before.health)
    assert np.all(after.adjusted_equity >= before.adjusted_equity)
    assert np.all(after.used_margin <= before.used_margin)


# ---------------------------------------------------------------------------
# Properties of the simulation service over generated one-account portfolios

AT = datetime(2026, 3, 1, tzinfo=UTC)


def contract(i: int, price: Decimal, days: float, group: int, addon: float = 0.0) -> Contract:
    return Contract(
        instrument_id=i,
        outcome="yes",
        symbol=f"M{i}",
        title=f"Market {i}",
        event_group_id=group,
        expires_at=AT + timedelta(days=days),
        addon=addon,
        collateral_price=price,
    )


cents = st.integers(1, 99).map(lambda n: Decimal(n) / 100)
contract_specs = st.tuples(cents, st.floats(0.0, 400.0), st.integers(0, 3), st.floats(0.0, 0.2))


@st.composite
def one_account_states(draw, *, margin_enabled=True):
    specs = draw(st.lists(contract_specs, max_size=5))
    contracts = [contract(i, p, d, g, a) for i, (p, d, g, a) in enumerate(specs)]
    quantities = [Decimal(draw(st.integers(0, 50_000_000))) / 100 for _ in contracts]
    cash = Decimal(draw(st.integers(-5_000_000, 5_000_000))) / 100
    portfolio = Portfolio(
        account_ids=[1],
        cash=arr(float(cash)),
        position_ids=list(range(len(contracts))),
        position_account=np.zeros(len(contracts), np.int64),
        position_contract=np.arange(len(contracts), dtype=np.int64),
        quantity=np.array([float(q) for q in quantities], dtype=np.float64),
        quantity_exact=quantities,
        contracts=contracts,
        at=AT,
    )
    return account_state(
        portfolio=portfolio, cash=cash, margin_enabled=margin_enabled, params=PARAMS
    )


@PROPERTY_SETTINGS
@given(
    one_account_states(),
    st.sampled_from([Decimal("1.5"), Decimal("1.2"), Decimal("1.0"), Decimal("2.75")]),
)
def test_the_add_funds_answer_lands_exactly_on_the_target(state, target):
    answer = add_funds_project(state=state, target=target)
    after = answer.projection
    assert after.change == PortfolioChange(cash=answer.amount)
    assert after.result.health[0] >= float(target)
    assert after.after.health is None or after.after.health >= target
    if answer.amount == 0:
        assert state.result.health[0] >= float(target)
        return
    # Minimal to the micro-dollar: one micro-dollar less falls short of the target.
    short = change_project(
        state=state, change=PortfolioChange(cash=answer.amount - Decimal("0.000001"))
    )
    assert short.result.health[0] < float(target)


def asks_book(best: Decimal, sizes: list[int]) -> OrderBook:
    levels = [
        BookLevel(best + CENT * i, Decimal(size))
        for i, size in enumerate(sizes)
        if best + CENT * i < 1
    ]
    return OrderBook(bids=(), asks=tuple(levels))


def _buy(state, target, books, notional: Decimal):
    """The projection of buying `notional` of `target` as execute checks it (the worst
    case at the default 50 bps slippage limit), or None if no book can fill it."""
    route = trade_route(books=books, side=Side.BUY, notional=notional)
    if route is None:
        return None
    worst = worst_case(
        side=Side.BUY,
        notional=notional,
        estimate=route.estimate,
        slippage_bps=50,
        fee_of=lambda quantity, price: Decimal(0),
    )
    return change_project(
        state=state, change=buy_change(contract=target, notional=notional, worst=worst)
    )


@st.composite
def buying_power_cases(draw, *, margin_enabled=True):
    state = draw(one_account_states(margin_enabled=margin_enabled))
    held = state.portfolio.contracts
    if held and draw(st.booleans()):
        target = draw(st.sampled_from(held))  # add to a position already held
    else:
        price, days, group, addon = draw(contract_specs)
        target = contract(99, price, days, group, addon)
    spread = Decimal(draw(st.integers(1, 10))) / 100
    best = min(target.collateral_price + spread, Decimal("0.99"))
    sizes = draw(st.lists(st.integers(1_000_000, 100_000_000), min_size=1, max_size=3))
    return state, target, [VenueBook("kalshi", asks_book(best, sizes))]


@PROPERTY_SETTINGS
@given(buying_power_cases())
def test_buying_power_lands_on_the_initial_requirement_within_a_cent(case):
    state, target, books = case
    power = buying_power_find(state=state, contract=target, books=books)
    assert power.notional == power.notional.quantize(CENT)
    at = _buy(state, target, books, power.notional) if power.notional else None
    over = _buy(state, target, books, power.notional + CENT)
    if at is not None:
        assert at.is_valid_trade
        assert at.result.used_margin[0] == 0 or at.result.health[0] >= PARAMS.initial
    assert power.fillable <= power.notional
    # A cent more is refused: projected health below 1.2 (or no book deep enough).
    assert over is None or not over.is_valid_trade
    if over is not None:
        assert over.result.health[0] < PARAMS.initial


@PROPERTY_SETTINGS
@given(buying_power_cases(margin_enabled=False))
def test_without_margin_buying_power_is_the_cash(case):
    state, target, books = case
    power = buying_power_find(state=state, contract=target, books=books)
    over = _buy(state, target, books, power.notional + CENT)
    assert power.notional <= max(state.cash, Decimal(0))
    if power.notional:
        assert _buy(state, target, books, power.notional).after.cash >= 0
    assert over is None or over.after.cash < 0
