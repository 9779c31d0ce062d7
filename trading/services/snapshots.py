"""Margin snapshots: the health-history series, written when the figures move.

The rule (`SnapshotRule`, defaults in brackets): an account gets a snapshot
when it has none yet, when its status changes, when Margin Health moves by
[1 %] or more of its last stored value or between bounded and unbounded,
when Adjusted Equity or Used Margin moves by [1 %] or more of the larger of
its last value and [1 USDC] (dust never counts), or when [5 minutes] have
passed since its last snapshot and any figure changed at all. An account
whose figures stand still writes nothing, however long.

`SnapshotTracker` keeps each account's last stored figures in arrays aligned
with a MarginBook's slots, decides for a whole evaluation at once and writes
the due rows in one INSERT.
"""

from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import OuterRef, Subquery

from accounts.models import Account
from trading import margin
from trading.models import MarginSnapshot
from trading.services.margin_book import BookFigures, BoolArray

# MarginSnapshot.health holds 6 integer digits: larger (finite) health is
# stored as this cap, which the chart shows as "off the scale" all the same.
HEALTH_STORED_MAX = 999_999.0
# Two amounts equal at USDC precision differ by less than this.
MONEY_EPSILON = 5e-7
STATUS_CODES = {name: code for code, name in enumerate(margin.STATUS_NAMES)}


@dataclass(frozen=True, slots=True)
class SnapshotRule:
    health_change: float = 0.01  # relative to the last stored health
    money_change: float = 0.01  # relative to max(last AE or UM, money_floor)
    money_floor: float = 1.0  # USDC
    heartbeat_seconds: float = 300.0


class SnapshotTracker:
    """The last stored snapshot of each of a MarginBook's accounts, by slot."""

    def __init__(self, rule: SnapshotRule | None = None) -> None:
        self.rule = rule or SnapshotRule()
        self._ts = np.zeros(0)  # epoch seconds; nan: no snapshot yet
        self._status = np.zeros(0, dtype=np.int8)
        self._health = np.zeros(0)
        self._adjusted_equity = np.zeros(0)
        self._used_margin = np.zeros(0)

    def track(self, account_ids: margin.IntArray) -> None:
        """Follow the book's slots beyond those already tracked.

        `account_ids` is the book's `account_ids`; the new slots' last
        snapshots are read from the database in one query (one index lookup
        per account), so a restarted engine continues the series.
        """
        start = self._ts.size
        new_ids = account_ids[start:]
        if not new_ids.size:
            return
        n = new_ids.size
        self._ts = np.concatenate([self._ts, np.full(n, np.nan)])
        self._status = np.concatenate([self._status, np.full(n, -1, dtype=np.int8)])
        self._health = np.concatenate([self._health, np.full(n, np.nan)])
        self._adjusted_equity = np.concatenate([self._adjusted_equity, np.full(n, np.nan)])
        self._used_margin = np.concatenate([self._used_margin, np.full(n, np.nan)])
        slot_of = {int(account_id): start + i for i, account_id in enumerate(new_ids)}
        latest = (
            MarginSnapshot.objects.filter(account_id=OuterRef("pk"))
            .order_by("-ts", "-pk")
            .values("pk")[:1]
        )
        rows = MarginSnapshot.objects.filter(
            pk__in=Account.objects.filter(pk__in=slot_of)
            .annotate(last_snapshot=Subquery(latest))
            .values("last_snapshot")
        ).values_list("account_id", "ts", "status", "health", "adjusted_equity", "used_margin")
        for account_id, ts, status, health, adjusted_equity, used_margin in rows:
            slot = slot_of[account_id]
            self._ts[slot] = ts.timestamp()
            self._status[slot] = STATUS_CODES[status]
            self._health[slot] = np.inf if health is None else float(health)
            self._adjusted_equity[slot] = float(adjusted_equity)
            self._used_margin[slot] = float(used_margin)

    def due(self, figures: BookFigures) -> BoolArray:
        """Which of these accounts the rule says need a snapshot now."""
        rule, slots = self.rule, figures.index
        ts, health = self._ts[slots], self._health[slots]
        ae, um = self._adjusted_equity[slots], self._used_margin[slots]
        bounded, was_bounded = np.isfinite(figures.health), np.isfinite(health)
        with np.errstate(invalid="ignore"):
            health_step = np.abs(figures.health - health)
            health_moved = (bounded != was_bounded) | (
                bounded & was_bounded & (health_step >= rule.health_change * np.abs(health))
            )
            ae_step = np.abs(figures.adjusted_equity - ae)
            um_step = np.abs(figures.used_margin - um)
            money_moved = (ae_step >= rule.money_change * np.maximum(ae, rule.money_floor)) | (
                um_step >= rule.money_change * np.maximum(um, rule.money_floor)
            )
            changed = (
                (bounded != was_bounded)
                | (bounded & (health_step >= 1e-6))
                | (ae_step >= MONEY_EPSILON)
                | (um_step >= MONEY_EPSILON)
            )
            stale = figures.at.timestamp() - ts >= rule.heartbeat_seconds
        return (
            np.isnan(ts)
            | (figures.status != self._status[slots])
            | health_moved
            | money_moved
            | (stale & changed)
        )

    def record(self, figures: BookFigures) -> int:
        """Store a snapshot for each account of `figures` that is due; return how many.

        One INSERT for all of them. Every slot in `figures` must be tracked
        (`track` with the book's account ids).
        """
        due = figures.take(self.due(figures))
        if not len(due):
            return 0
        _insert(due)
        slots = due.index
        self._ts[slots] = due.at.timestamp()
        self._status[slots] = due.status
        self._health[slots] = due.health
        self._adjusted_equity[slots] = due.adjusted_equity
        self._used_margin[slots] = due.used_margin
        return len(due)


def _insert(due: BookFigures) -> None:
    """On PostgreSQL INSERT … SELECT FROM unnest(arrays): each column travels as one array.

    A price move can make thousands of accounts due at once, on the engine's
    hot path; `bulk_create` costs a Python model instance and per-field
    preparation per row, this a string per value. Amounts and ratios are
    rounded to their columns' 6 places here (as decimal text: exact at any
    magnitude); unbounded health is NULL; health above the column's range is
    stored at HEALTH_STORED_MAX.
    """
    meta = MarginSnapshot._meta
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(meta.get_field(name).column)
        for name in ("account", "ts", "cash", "used_margin", "adjusted_equity", "health", "status")
    )
    bounded = np.isfinite(due.health)
    health = np.minimum(due.health, HEALTH_STORED_MAX)
    values = [
        due.account_id.tolist(),
        _decimal_texts(due.cash),
        _decimal_texts(due.used_margin),
        _decimal_texts(due.adjusted_equity),
        [
            f"{value:.6f}" if finite else None
            for value, finite in zip(health.tolist(), bounded.tolist(), strict=True)
        ],
        [margin.STATUS_NAMES[code] for code in due.status.tolist()],
    ]
    table = quote(meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "  # noqa: S608 - names from the model
                "SELECT a, %s, c, u, e, h, s FROM unnest("
                "%s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], "
                "%s::text[]) AS row(a, c, u, e, h, s)",
                [due.at, *values],
            )
        else:  # SQLite (make run's embedded default): one statement, many rows
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)",  # noqa: S608
                [(row[0], due.at, *row[1:]) for row in zip(*values, strict=True)],
            )


def _decimal_texts(values: margin.FloatArray) -> list[str]:
    return [f"{value:.6f}" for value in values.tolist()]
