"""Reference data cached in each process: rows every trade reads and ops rarely change.

Instruments and their listings, venues, haircut add-ons, the risk and fee
policies and the ledger accounts are read by every execute, order and margin
check, and change only when ops edit them, a market is listed, halted or
resolved. Each process keeps what it has read in memory, tagged with a
version number held in Redis (`<prefix>:refdata:version`):

- every save or delete of a tracked model (`refdata_track`) clears the
  saving process's copy at once and, after its transaction commits, bumps
  the version, so every other process drops its copy too;
- a reader revalidates against the version when its copy is older than
  settings.REFDATA_MAX_AGE seconds (50 ms by default: one Redis GET per
  thread at most that often), so another process's change is seen within
  that time, this process's own at once.

Values are shared between threads: treat them as read-only (to change a
row, read it from the database and save it). With Redis unreachable nothing
is trusted: each read goes to the database.
"""

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save
from redis.exceptions import RedisError

from portal.redis import redis_client, redis_key

logger = logging.getLogger(__name__)

T = TypeVar("T")

_UNCHECKED = -1


class _Generation:
    """One version's cached values; replaced whole when the version changes."""

    def __init__(self, version: int):
        self.version = version
        self.values: dict[tuple[str, Hashable], Any] = {}


_state = threading.local()
_lock = threading.Lock()
_current = _Generation(_UNCHECKED)


def _version_key() -> str:
    return redis_key("refdata", "version")


def _generation() -> _Generation:
    """The current generation, revalidated against Redis if this thread's check is old."""
    global _current
    now = time.monotonic()
    if now - getattr(_state, "checked_at", float("-inf")) < settings.REFDATA_MAX_AGE:
        return _current
    try:
        version = int(redis_client().get(_version_key()) or 0)
    except RedisError:
        logger.warning("refdata: Redis unreachable; reading reference data uncached")
        return _Generation(_UNCHECKED)
    _state.checked_at = now
    with _lock:
        if _current.version != version:
            _current = _Generation(version)
        return _current


def refdata_get(
    namespace: str,
    key: Hashable,
    load: Callable[[], T | None],
    create: Callable[[], T] | None = None,
) -> T | None:
    """The cached value of (`namespace`, `key`), loaded with `load()` on a miss.

    `load` returning None is not cached: then `create()`, if given, makes the
    row and its value is returned uncached (the creating transaction may
    still roll back); without it the result is None (an unknown symbol is
    looked up again next time).
    """
    generation = _generation()
    try:
        return generation.values[(namespace, key)]
    except KeyError:
        pass
    value = load()
    if value is None:
        return None if create is None else create()
    if generation.version != _UNCHECKED:
        generation.values[(namespace, key)] = value
    return value


def refdata_version() -> int | None:
    """The reference data's version as this thread last validated it (at most
    settings.REFDATA_MAX_AGE old); None with Redis unreachable. Values derived from
    reference data (the margin engine's stored figures) carry it, to be dropped when
    it moves."""
    version = _generation().version
    return None if version == _UNCHECKED else version


def refdata_clear() -> None:
    """Drop this process's cached values (the next read reloads them)."""
    global _current
    with _lock:
        _current = _Generation(_current.version)


def _bump() -> None:
    refdata_clear()
    try:
        redis_client().incr(_version_key())
    except RedisError:
        logger.exception("refdata: could not bump the version; other processes may lag")


def refdata_changed() -> None:
    """A tracked row changed: clear this process's copy now, every process's after commit."""
    refdata_clear()
    transaction.on_commit(_bump, robust=True)


def _changed(sender, **kwargs) -> None:
    refdata_changed()


def refdata_track(*models: type[Model]) -> None:
    """Bump the reference data whenever a row of one of `models` is saved or deleted.

    Call from an AppConfig.ready(). Queryset .update() and bulk writes send no
    signals: code that uses them on these models calls `refdata_changed()`.
    """
    for model in models:
        post_save.connect(_changed, sender=model, dispatch_uid=f"refdata-save-{model._meta}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"refdata-del-{model._meta}")
