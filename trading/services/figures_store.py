"""Reads served from the engine: each account's priced figures, stored in Redis.

GET positions, GET margin, the dashboard's snapshot and (through GET positions and
GET margin) the partner stream's positions channel show an account's positions
re-priced from live quotes and its Margin Portfolio figures: work the margin engine
has just done for the accounts a tick or a change moved. After each batch the engine
(`trading.engine`) calls `figures_store` for the accounts it evaluated (their
prices moved, or their cash or positions did) that somebody reads: every read marks
its account watched for FIGURES_WATCHED_SECONDS (`<prefix>:figures:watched:<pk>`, set
in the read's own round trip), and accounts nobody has read lately are not priced
again for nobody (their next read computes). It prices them once more, in one
positions statement and one quotes round trip for all of them, shapes them with the
API's own presenters (`positions_body_present`, `margin_body_present`,
`dashboard_figures_present`: no second shape) and writes one key per account
(`<prefix>:figures:<account pk>`, a JSON record) in one pipeline, with a TTL of
FIGURES_MAX_AGE_SECONDS. Each record carries what it was computed from:

- `v`: the account's `figures_version`, which database triggers raise in the very
  transaction that changes its cash, holds, reservations, margin flag, linked cash
  or any position (accounts migration 0014, trading 0012): a trade or a deposit
  committed before a read makes the stored figures unusable for it
  (read-your-writes), whatever process wrote them and whenever;
- `r`: the reference-data version (`portal.refdata`: the risk policy, haircut
  add-ons, instruments' status and resolution, listings);
- `q`: the time of the quote of every listing its positions were priced from (None:
  never quoted): its quote version;
- `until`: when it stops being served: FIGURES_MAX_AGE_SECONDS after it was priced,
  or earlier, when the first of its live prices would turn stale by age
  (`price_stale`).

`account_figures_get` serves a record only if all four still hold, i.e. only when
computing now would give the same figures from the same inputs (the time-to-expiry
term of the haircuts and `as_of` are those of its pricing instant, at most
FIGURES_MAX_AGE_SECONDS ago). A quote that moved since is never accepted: a stored
price is either the live one or not served. Otherwise (no record, another version,
Redis unreachable) the read computes the figures as before, and writes them back for
the next read (the record carries the versions it read, so a write-back racing a
trade is simply not served). With FIGURES_STORE off nothing is stored or read.
Outcomes are counted in `portal_figures_reads`.
"""

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import redis
from django.conf import settings

from accounts.models import Account
from portal import metrics
from portal.redis import redis_client, redis_key
from portal.refdata import refdata_version
from trading.catalog import listings_get
from trading.marketdata import store
from trading.models import Instrument
from trading.presenters import (
    dashboard_figures_present,
    margin_body_present,
    positions_body_present,
)
from trading.selectors import (
    PositionBook,
    PricedPositions,
    margin_overview_get,
    margin_overview_of,
    margin_summaries_get,
    margin_utilization_get,
    net_deposits_get,
    position_book_get,
    position_books_get,
    price_max_age,
)

logger = logging.getLogger(__name__)

PARTS = ("positions", "margin", "dashboard")
META = ("a", "v", "r", "q", "at", "until")  # what a record was computed from


def figures_key(account_id: int) -> str:
    return redis_key("figures", str(account_id))


def watched_key(account_id: int) -> str:
    return redis_key("figures", "watched", str(account_id))


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _record(
    account: Account,
    priced: PricedPositions,
    book: PositionBook,
    *,
    deposits: dict,
    refdata: int | None,
    max_age: float,
) -> dict[str, Any]:
    (summary,) = margin_summaries_get([account], portfolio=book.portfolio, deposits=deposits)
    overview = margin_overview_of(book, summary)
    at = priced.at.timestamp()
    until = at + settings.FIGURES_MAX_AGE_SECONDS
    quoted: dict[str, float | None] = {}
    for instrument_id in {row[2] for row in priced.rows}:
        for listing in listings_get(priced.instruments[instrument_id]):
            quoted[listing.key] = _epoch(priced.quoted.get(listing.key))
    for (instrument_id, _), price in priced.prices.items():
        ages = priced.instruments[instrument_id].status == Instrument.Status.OPEN
        if ages and price.quoted_at is not None and not price.stale:
            until = min(until, price.quoted_at.timestamp() + max_age)
    return {
        "a": account.pk,
        "v": account.figures_version,
        "r": refdata,
        "q": quoted,
        "at": at,
        "until": until,
        "positions": positions_body_present(
            account_id=account.public_id,
            utilization=margin_utilization_get(book.portfolio),
            at=book.portfolio.at,
            positions=book.positions,
        ),
        "margin": margin_body_present(
            account_id=account.public_id, margin_enabled=account.margin_enabled, overview=overview
        ),
        "dashboard": dashboard_figures_present(overview, stale_after_seconds=max_age),
    }


def figures_compute(accounts: Sequence[Account]) -> list[dict[str, Any]]:
    """The figures records of `accounts` (freshly read rows: their cash and
    figures_version are used as they stand), priced together: one positions statement,
    one quotes round trip, one net-deposits query; each account's figures exactly as
    GET positions / GET margin compute them for it alone at that instant."""
    if not accounts:
        return []
    refdata = refdata_version()  # before pricing: a change meanwhile makes it older
    deposits = net_deposits_get(account_ids=[account.pk for account in accounts])
    max_age = price_max_age()
    return [
        _record(account, priced, book, deposits=deposits, refdata=refdata, max_age=max_age)
        for account, (priced, book) in zip(
            accounts, position_books_get(accounts=accounts), strict=True
        )
    ]


def _write(records: Sequence[dict[str, Any]]) -> int:
    """Write records in one pipeline, each whole or not at all (MULTI): one hash per
    account, its `meta` (what it was computed from) and one field per part. Those
    without a reference-data version (read while Redis was unreachable) are left
    out. Returns how many were written."""
    ttl = max(1, int(settings.FIGURES_MAX_AGE_SECONDS * 1000))
    pipe = redis_client().pipeline(transaction=True)
    written = 0
    for record in records:
        if record["r"] is None:
            continue
        key = figures_key(record["a"])
        meta = {name: record[name] for name in META}
        pipe.delete(key)
        pipe.hset(
            key,
            mapping={"meta": orjson.dumps(meta)}
            | {part: orjson.dumps(record[part]) for part in PARTS},
        )
        pipe.pexpire(key, ttl)
        written += 1
    if written:
        pipe.execute()
    return written


def figures_store(*, account_ids: Sequence[int], shard: int = 0) -> int:
    """The engine's step after an evaluation: price and store the figures of those of
    these accounts that are watched (read within FIGURES_WATCHED_SECONDS), at most
    FIGURES_STORE_MAX_ACCOUNTS of them (the others are computed by their next read).
    Returns how many were stored (timed under engine shard `shard`). Redis errors
    propagate."""
    if not settings.FIGURES_STORE or not account_ids:
        return 0
    started = time.perf_counter()
    ids = list(account_ids)
    marks = redis_client().mget([watched_key(pk) for pk in ids])
    ids = [pk for pk, mark in zip(ids, marks, strict=True) if mark is not None]
    ids = ids[: settings.FIGURES_STORE_MAX_ACCOUNTS]
    if not ids:
        return 0
    accounts = list(
        Account.objects.select_related("linked_credential").filter(pk__in=ids).order_by("pk")
    )
    written = _write(figures_compute(accounts))
    metrics.figures_store_observed(
        shard=shard, accounts=written, seconds=time.perf_counter() - started
    )
    return written


# The listing keys each account's last record was priced from, by account pk: a read
# asks for the record and those quotes in one round trip (bounded: cleared when full).
_listing_keys: dict[int, list[str]] = {}
LISTING_KEYS_MEMO = 10_000


def _stored(account: Account, part: str) -> tuple[str, Any]:
    """(outcome, the stored `part` of `account`'s figures, as JSON bytes, if they may be
    served): one round trip for the record and its quotes (the listings last seen for
    the account; a second one only if they changed), which also marks the account
    watched (the engine stores its figures)."""
    if not settings.FIGURES_STORE:
        return "off", None
    try:
        keys = _listing_keys.get(account.pk, [])
        pipe = redis_client().pipeline(transaction=False)
        pipe.hmget(figures_key(account.pk), ["meta", part])
        if keys:
            pipe.hmget(store.quotes_key(), keys)
        pipe.set(watched_key(account.pk), 1, ex=settings.FIGURES_WATCHED_SECONDS)
        replies = pipe.execute()
        raw_meta, body = replies[0]
        if raw_meta is None or body is None:
            return "missing", None
        meta = orjson.loads(raw_meta)
        if meta["a"] != account.pk or meta["v"] != account.figures_version:
            return "account_changed", None
        if time.time() >= meta["until"]:
            return "expired", None
        refdata = refdata_version()
        if refdata is None or meta["r"] != refdata:
            return "refdata_changed", None
        quoted = meta["q"]
        if list(quoted) != keys:
            if len(_listing_keys) >= LISTING_KEYS_MEMO:
                _listing_keys.clear()
            keys = _listing_keys[account.pk] = list(quoted)
            raws = redis_client().hmget(store.quotes_key(), keys) if keys else []
        else:
            raws = replies[1] if keys else []
        for key, raw in zip(keys, raws, strict=True):
            ts = None if raw is None else store.quote_parse(raw).ts.timestamp()
            if ts != quoted[key]:
                return "quotes_moved", None
    except redis.RedisError:
        logger.warning("figures store: Redis unreachable; computing the figures")
        return "redis_error", None
    return "hit", body


def _computed(account: Account, part: str) -> dict[str, Any]:
    """`part` computed as the API computed it before the store (FIGURES_STORE off)."""
    if part == "positions":
        book = position_book_get(account=account)
        return positions_body_present(
            account_id=account.public_id,
            utilization=margin_utilization_get(book.portfolio),
            at=book.portfolio.at,
            positions=book.positions,
        )
    overview = margin_overview_get(account=account)
    if part == "margin":
        return margin_body_present(
            account_id=account.public_id, margin_enabled=account.margin_enabled, overview=overview
        )
    return dashboard_figures_present(overview, stale_after_seconds=price_max_age())


def account_figures_get(*, account: Account, part: str) -> dict[str, Any]:
    """`account`'s figures `part` ("positions": GET positions' body, "margin": GET
    margin's, "dashboard": the dashboard's priced figures): stored ones when they may
    be served (see the module docstring), else computed (and written back).

    Pass a freshly read Account row (its figures_version decides)."""
    if part not in PARTS:
        raise ValueError(f"Unknown figures part {part!r}.")
    outcome, body = _stored(account, part)
    metrics.figures_read(part, outcome)
    if body is not None:
        return orjson.loads(body)
    if outcome in ("off", "redis_error"):
        return _computed(account, part)
    (record,) = figures_compute([account])
    try:
        metrics.figures_stored("reader", _write([record]))
    except redis.RedisError:
        logger.warning("figures store: Redis unreachable; figures not written back")
    return record[part]
