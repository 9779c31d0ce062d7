"""The margin maths' fast paths give what a plain per-account reading of SPEC §4 gives.

`margin_evaluate` sums per account with segment sums when positions come in
account order and with a bincount otherwise, keeps its position-sized
temporaries in per-thread scratch memory, and patches quotients by index
instead of np.where. Each path is checked here against `reference`, a
deliberately plain loop over accounts, on random portfolios: accounts with
no positions, no positions at all, single positions, several markets of one
event, borrowing and not, zero cash.
"""

import math
import threading
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading import margin

PARAMS = margin.MarginParams()
REL = 1e-12


@dataclass
class Case:
    n_accounts: int
    account: np.ndarray
    group: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    haircut: np.ndarray
    cash: np.ndarray


def reference(case: Case, params: margin.MarginParams = PARAMS) -> list[dict[str, float]]:
    """SPEC §4 account by account, position by position."""
    figures = []
    for k in range(case.n_accounts):
        mine = np.flatnonzero(case.account == k)
        total, haircut_value, by_group = 0.0, 0.0, defaultdict(float)
        for i in mine:
            value = case.quantity[i] * case.price[i]
            total += value
            haircut_value += value * (1.0 - case.haircut[i])
            by_group[case.group[i]] += value
        if total > 0:
            hhi = sum((group_value / total) ** 2 for group_value in by_group.values())
            diversification = 1.0 - params.c * hhi
        else:
            diversification = 1.0
        cash = case.cash[k]
        adjusted_equity = max(0.0, cash) + diversification * haircut_value
        used_margin = max(0.0, -cash)
        if used_margin > 0:
            health = adjusted_equity / used_margin
            utilization = used_margin / adjusted_equity if adjusted_equity > 0 else math.nan
        else:
            health, utilization = math.inf, 0.0
        figures.append(
            {
                "collateral_value": total,
                "diversification": diversification,
                "adjusted_equity": adjusted_equity,
                "used_margin": used_margin,
                "available_margin": adjusted_equity - used_margin,
                "health": health,
                "utilization": utilization,
            }
        )
    return figures


def reference_status(health: float, params: margin.MarginParams = PARAMS) -> int:
    if health < params.maintenance:
        return margin.MARGIN_CALL
    if health > params.healthy:
        return margin.HEALTHY
    return margin.CAUTION


def assert_close(actual: float, expected: float, what: str) -> None:
    if math.isnan(expected) or math.isinf(expected):
        assert actual == expected or (math.isnan(actual) and math.isnan(expected)), what
    else:
        assert actual == pytest.approx(expected, rel=REL, abs=1e-9), what


def assert_matches_reference(case: Case, result: margin.MarginResult) -> None:
    for k, expected in enumerate(reference(case)):
        for name, value in expected.items():
            assert_close(float(getattr(result, name)[k]), value, f"account {k} {name}")
        assert result.status[k] == margin.margin_status(result.health[k : k + 1], PARAMS)[0]


def evaluate(case: Case, grouping: margin.Grouping | None = None, **kwargs):
    return margin.margin_evaluate(
        grouping=grouping or margin.Grouping.build(case.account, case.group, case.n_accounts),
        quantity=case.quantity,
        price=case.price,
        haircut=case.haircut,
        cash=case.cash,
        params=PARAMS,
        **kwargs,
    )


def shuffled(case: Case, seed: int) -> Case:
    order = np.random.default_rng(seed).permutation(case.account.size)
    return Case(
        n_accounts=case.n_accounts,
        account=case.account[order],
        group=case.group[order],
        quantity=case.quantity[order],
        price=case.price[order],
        haircut=case.haircut[order],
        cash=case.cash,
    )


# Amounts a ledger can hold: quantities of 6 decimals, prices of 8, cash up to 1e9.
quantities = st.one_of(st.just(0.0), st.floats(1e-6, 1e7))
prices = st.one_of(st.just(0.0), st.just(1.0), st.floats(1e-8, 1.0))
money = st.one_of(st.just(0.0), st.floats(-1e9, 1e9).filter(lambda cash: abs(cash) >= 1e-6))


@st.composite
def cases(draw) -> Case:
    """Random portfolios in account order (as portfolio_load returns them)."""
    n_accounts = draw(st.integers(min_value=0, max_value=7))
    counts = [draw(st.integers(min_value=0, max_value=6)) for _ in range(n_accounts)]
    size = sum(counts)
    return Case(
        n_accounts=n_accounts,
        account=np.repeat(np.arange(n_accounts, dtype=np.int64), counts),
        group=np.array(
            draw(st.lists(st.integers(0, 3), min_size=size, max_size=size)), dtype=np.int64
        ),
        quantity=np.array(
            draw(st.lists(quantities, min_size=size, max_size=size)), dtype=np.float64
        ),
        price=np.array(draw(st.lists(prices, min_size=size, max_size=size)), dtype=np.float64),
        haircut=np.array(
            draw(st.lists(st.floats(0.0, PARAMS.h_max), min_size=size, max_size=size)),
            dtype=np.float64,
        ),
        cash=np.array(
            draw(st.lists(money, min_size=n_accounts, max_size=n_accounts)), dtype=np.float64
        ),
    )


# --- Account order: segment sums --------------------------------------------


@settings(max_examples=300, deadline=None)
@given(cases())
def test_positions_in_account_order_take_segment_sums_and_match_the_reference(case):
    grouping = margin.Grouping.build(case.account, case.group, case.n_accounts)
    assert grouping._position_runs.starts is not None
    assert_matches_reference(case, evaluate(case, grouping))


@settings(max_examples=300, deadline=None)
@given(cases(), st.integers(0, 2**32 - 1))
def test_positions_in_any_order_fall_back_to_bincount_with_the_same_figures(case, seed):
    mixed = shuffled(case, seed)
    grouping = margin.Grouping.build(mixed.account, mixed.group, mixed.n_accounts)
    if np.any(mixed.account[1:] < mixed.account[:-1]):
        assert grouping._position_runs.starts is None
    assert_matches_reference(mixed, evaluate(mixed, grouping))


@settings(max_examples=200, deadline=None)
@given(cases(), st.integers(0, 2**32 - 1))
def test_per_position_figures_stay_in_the_callers_order(case, seed):
    mixed = shuffled(case, seed)
    result = evaluate(mixed, per_position=True)
    diversification = [row["diversification"] for row in reference(mixed)]
    for i in range(mixed.account.size):
        value = mixed.quantity[i] * mixed.price[i]
        assert result.value[i] == value
        expected = diversification[mixed.account[i]] * value * (1.0 - mixed.haircut[i])
        assert_close(float(result.contribution[i]), expected, f"position {i}")


def test_accounts_without_positions_are_zero_and_unconcentrated():
    # Accounts 0, 2 and 4 hold nothing; 1 holds one position, 3 two markets of one event.
    case = Case(
        n_accounts=5,
        account=np.array([1, 3, 3]),
        group=np.array([7, 2, 2]),
        quantity=np.array([100.0, 50.0, 150.0]),
        price=np.array([0.4, 0.5, 0.2]),
        haircut=np.array([0.1, 0.2, 0.3]),
        cash=np.array([0.0, -10.0, 25.0, -25.0, -1.0]),
    )
    grouping = margin.Grouping.build(case.account, case.group, case.n_accounts)
    assert grouping._position_runs.occupied.tolist() == [1, 3]
    result = evaluate(case, grouping)
    assert_matches_reference(case, result)
    assert result.collateral_value.tolist() == [0.0, 40.0, 0.0, 55.0, 0.0]
    # One position, or one event's markets: a single bucket, HHI = 1.
    assert result.diversification.tolist() == [1.0, 0.75, 1.0, 0.75, 1.0]
    assert result.health[0] == math.inf and result.utilization[0] == 0.0
    assert math.isnan(result.utilization[4])  # borrowing against nothing
    assert result.status.tolist() == [
        margin.HEALTHY,
        margin.HEALTHY,
        margin.HEALTHY,
        margin.CAUTION,
        margin.MARGIN_CALL,
    ]


def test_no_positions_at_all():
    case = Case(
        n_accounts=3,
        account=np.zeros(0, np.int64),
        group=np.zeros(0, np.int64),
        quantity=np.zeros(0),
        price=np.zeros(0),
        haircut=np.zeros(0),
        cash=np.array([10.0, 0.0, -3.0]),
    )
    result = evaluate(case, per_position=True)
    assert_matches_reference(case, result)
    assert result.value.size == 0 and result.contribution.size == 0
    assert result.adjusted_equity.tolist() == [10.0, 0.0, 0.0]


def test_no_accounts_at_all():
    empty = np.zeros(0, np.int64)
    result = margin.margin_evaluate(
        grouping=margin.Grouping.build(empty, empty, 0),
        quantity=np.zeros(0),
        price=np.zeros(0),
        haircut=np.zeros(0),
        cash=np.zeros(0),
        params=PARAMS,
    )
    assert result.health.size == 0 and result.status.size == 0


def test_a_grouping_built_by_hand_takes_the_same_paths():
    case = Case(
        n_accounts=2,
        account=np.array([0, 0, 1]),
        group=np.array([0, 1, 0]),
        quantity=np.array([10.0, 30.0, 5.0]),
        price=np.array([0.5, 0.5, 0.9]),
        haircut=np.array([0.2, 0.2, 0.1]),
        cash=np.array([-10.0, 1.0]),
    )
    grouping = margin.Grouping(
        account=case.account,
        bucket=np.array([0, 1, 2]),
        bucket_account=np.array([0, 0, 1]),
        n_accounts=2,
    )
    assert grouping._position_runs.starts.tolist() == [0, 2]
    assert_matches_reference(case, evaluate(case, grouping))


# --- Scratch memory ----------------------------------------------------------


def random_case(rng: np.random.Generator, n_accounts: int, per_account: int) -> Case:
    size = n_accounts * per_account
    return Case(
        n_accounts=n_accounts,
        account=np.repeat(np.arange(n_accounts), per_account),
        group=rng.integers(0, 5, size),
        quantity=rng.uniform(0, 1000, size),
        price=rng.uniform(0, 1, size),
        haircut=rng.uniform(0, PARAMS.h_max, size),
        cash=rng.uniform(-300, 300, n_accounts),
    )


def test_results_do_not_share_memory_with_later_evaluations():
    rng = np.random.default_rng(7)
    first_case, second_case = random_case(rng, 50, 8), random_case(rng, 300, 4)
    first = evaluate(first_case)
    kept = {name: getattr(first, name).copy() for name in ("adjusted_equity", "health")}
    with_positions = evaluate(first_case, per_position=True)
    kept_value = with_positions.value.copy()
    evaluate(second_case)
    evaluate(second_case, per_position=True)
    for name, values in kept.items():
        assert np.array_equal(getattr(first, name), values, equal_nan=True)
    assert np.array_equal(with_positions.value, kept_value)
    assert_matches_reference(first_case, first)


def test_threads_evaluating_at_once_each_get_their_own_figures():
    rng = np.random.default_rng(11)
    cases_by_thread = [random_case(rng, 400, 5 + k) for k in range(4)]
    expected = [evaluate(case).adjusted_equity for case in cases_by_thread]
    groupings = [
        margin.Grouping.build(case.account, case.group, case.n_accounts) for case in cases_by_thread
    ]
    wrong: list[int] = []
    barrier = threading.Barrier(len(cases_by_thread))

    def work(k: int) -> None:
        barrier.wait()
        for _ in range(200):
            got = evaluate(cases_by_thread[k], groupings[k]).adjusted_equity
            if not np.array_equal(got, expected[k]):
                wrong.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(cases_by_thread))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


# --- Status without masked stores ---------------------------------------------


def test_status_follows_the_thresholds_at_and_around_them():
    health = np.array([np.inf, 1.5000001, 1.5, 1.2, 1.0, 0.9999999, 0.5, 0.0, np.nan])
    assert margin.margin_status(health, PARAMS).tolist() == [
        reference_status(float(h)) for h in health
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=30),
    st.floats(0.0, 3.0),
    st.floats(0.0, 3.0),
)
def test_status_matches_the_plain_rule_even_for_crossed_thresholds(health, healthy, maintenance):
    # Below maintenance wins, as in the plain rule, even if a policy had
    # healthy below maintenance (the database forbids it; the maths does not care).
    params = margin.MarginParams(healthy=healthy, maintenance=maintenance)
    status = margin.margin_status(np.array(health, dtype=np.float64), params)
    assert status.dtype == np.int8
    assert status.tolist() == [reference_status(h, params) for h in health]
