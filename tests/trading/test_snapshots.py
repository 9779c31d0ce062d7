"""Margin snapshots: written when the figures move meaningfully, in bulk."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from tests.factories import open_account
from trading import margin
from trading.models import MarginSnapshot
from trading.services.margin_book import BookFigures
from trading.services.snapshots import SnapshotTracker

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def account_ids() -> np.ndarray:
    return np.array([open_account().pk for _ in range(3)], dtype=np.int64)


def figures(
    account_ids: np.ndarray,
    *,
    health: list[float],
    equity: list[float] | None = None,
    at: datetime = T0,
) -> BookFigures:
    """Figures of every account: Used Margin 100 (none for unbounded health), AE from health."""
    health_array = np.array(health, dtype=np.float64)
    borrowing = np.isfinite(health_array)
    used = np.where(borrowing, 100.0, 0.0)
    ae = np.array(equity) if equity is not None else np.where(borrowing, health_array, 0.5) * 100
    return BookFigures(
        index=np.arange(len(health), dtype=np.int64),
        account_id=account_ids,
        custodial=np.ones(len(health), dtype=bool),
        may_borrow=np.ones(len(health), dtype=bool),
        cash=-used,
        adjusted_equity=ae,
        used_margin=used,
        available_margin=ae - used,
        health=health_array,
        utilization=np.where(borrowing, 1 / np.where(borrowing, health_array, 1.0), 0.0),
        status=margin.margin_status(health_array, margin.MarginParams()),
        stale=np.zeros(len(health), dtype=bool),
        stale_since=np.full(len(health), np.nan),
        at=at,
    )


def tracker_for(account_ids: np.ndarray) -> SnapshotTracker:
    tracker = SnapshotTracker()
    tracker.track(account_ids)
    return tracker


def test_every_account_gets_a_first_snapshot_then_only_on_change(account_ids):
    tracker = tracker_for(account_ids)
    assert tracker.record(figures(account_ids, health=[2.0, 1.2, np.inf])) == 3
    rows = {s.account_id: s for s in MarginSnapshot.objects.all()}
    assert rows[account_ids[0]].health == Decimal("2.000000")
    assert rows[account_ids[0]].status == "healthy"
    assert rows[account_ids[0]].used_margin == Decimal("100.000000")
    assert rows[account_ids[0]].cash == Decimal("-100.000000")
    assert rows[account_ids[1]].status == "caution"
    assert rows[account_ids[2]].health is None  # unbounded: not borrowing
    assert rows[account_ids[2]].adjusted_equity == Decimal("50.000000")

    later = T0 + timedelta(seconds=30)
    assert tracker.record(figures(account_ids, health=[2.0, 1.2, np.inf], at=later)) == 0
    assert MarginSnapshot.objects.count() == 3


def test_status_and_one_percent_moves_are_meaningful_smaller_ones_are_not(account_ids):
    tracker = tracker_for(account_ids)
    tracker.record(figures(account_ids, health=[2.0, 1.02, 1.30]))
    at = T0 + timedelta(seconds=10)
    # 2.0 → 2.019 (< 1 %), 1.02 → 0.99 (status: margin call), 1.30 → 1.32 (≥ 1 %).
    written = tracker.record(figures(account_ids, health=[2.019, 0.99, 1.32], at=at))
    assert written == 2
    latest = MarginSnapshot.objects.filter(ts=at)
    assert {(s.account_id, s.status) for s in latest} == {
        (account_ids[1], "margin_call"),
        (account_ids[2], "caution"),
    }


def test_equity_moves_count_relative_to_at_least_one_dollar(account_ids):
    tracker = tracker_for(account_ids)
    tracker.record(figures(account_ids, health=[np.inf] * 3, equity=[0.0, 1000.0, 1000.0]))
    at = T0 + timedelta(seconds=10)
    # 0 → 0.009 is dust; 1000 → 1009 is 0.9 %; 1000 → 1010 is 1 %.
    moved = figures(account_ids, health=[np.inf] * 3, equity=[0.009, 1009.0, 1010.0], at=at)
    assert tracker.record(moved) == 1
    assert MarginSnapshot.objects.get(ts=at).account_id == account_ids[2]


def test_after_five_minutes_any_change_is_recorded_but_no_change_never_is(account_ids):
    tracker = tracker_for(account_ids)
    tracker.record(figures(account_ids, health=[2.0, 2.0, 2.0]))
    four_minutes = T0 + timedelta(minutes=4)
    assert tracker.record(figures(account_ids, health=[2.001, 2.0, 2.0], at=four_minutes)) == 0
    five_minutes = T0 + timedelta(minutes=5)
    assert tracker.record(figures(account_ids, health=[2.001, 2.0, 2.0], at=five_minutes)) == 1
    an_hour = T0 + timedelta(hours=1)
    assert tracker.record(figures(account_ids, health=[2.001, 2.0, 2.0], at=an_hour)) == 0


def test_crossing_between_bounded_and_unbounded_health_is_recorded(account_ids):
    tracker = tracker_for(account_ids)
    tracker.record(figures(account_ids, health=[np.inf, 5.0, 5.0]))
    at = T0 + timedelta(seconds=1)
    assert tracker.record(figures(account_ids, health=[5.0, np.inf, 5.0], at=at)) == 2


def test_a_new_tracker_continues_from_the_last_stored_snapshots(account_ids):
    tracker_for(account_ids).record(figures(account_ids, health=[2.0, 1.2, np.inf]))
    at = T0 + timedelta(seconds=30)
    restarted = tracker_for(account_ids)
    assert restarted.record(figures(account_ids, health=[2.0, 1.25, np.inf], at=at)) == 1
    assert MarginSnapshot.objects.filter(account_id=account_ids[1]).count() == 2


def test_health_beyond_what_the_column_holds_is_stored_at_its_cap(account_ids):
    tracker_for(account_ids).record(figures(account_ids, health=[5e9, 1.0, 1.0]))
    assert MarginSnapshot.objects.get(account_id=account_ids[0]).health == Decimal("999999")
