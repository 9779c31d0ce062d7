"""The process's Redis client for settings.REDIS_URL, and the product's key names."""

import asyncio
import functools
import logging
import threading
import weakref

import redis
import redis.asyncio
from django.conf import settings
from redis.backoff import ExponentialBackoff
from redis.exceptions import LockNotOwnedError
from redis.retry import Retry

logger = logging.getLogger(__name__)


# One quick retry: enough for a pooled connection that died with a Redis restart
# (reconnects at once), short enough that an outage fails fast (redis-py's default,
# three retries backing off up to 10 s, would hold every request for seconds). The
# asyncio client has no read timeout: it waits on pub/sub subscriptions.
CONNECTION_OPTIONS = {"socket_connect_timeout": 2.0, "health_check_interval": 30}
SOCKET_TIMEOUT_SECONDS = 5.0


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1)


@functools.cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, retry=_retry(), socket_timeout=SOCKET_TIMEOUT_SECONDS, **CONNECTION_OPTIONS
    )


def redis_client() -> redis.Redis:
    """A pooled, thread-safe client for `settings.REDIS_URL`."""
    return _client_for(settings.REDIS_URL)


_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis]" = (
    weakref.WeakKeyDictionary()
)


def _async_retry() -> redis.asyncio.retry.Retry:
    return redis.asyncio.retry.Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1)


def redis_async_client() -> redis.asyncio.Redis:
    """An asyncio client for `settings.REDIS_URL`, one per event loop (its
    connections belong to the loop that opened them)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, retry=_async_retry(), **CONNECTION_OPTIONS
        )
    return client


def redis_key(*parts: str) -> str:
    """A key under this deployment's prefix: `<KEY_PREFIX>:<part>:<part>…`."""
    return ":".join((settings.KEY_PREFIX, *parts))


class Leadership:
    """The right to be the one running process of a kind (one feed, one margin engine)
    on this Redis, kept for the life of the process, through Redis outages.

    A Redis lock (`<prefix>:lock:<name>`) with a `ttl`, which a daemon thread
    renews every ttl/3 whatever the holder is busy with, so it expires
    `ttl` seconds after its holder dies. While the process does not hold it
    (at start, when a live holder exists, or after losing it) the thread
    tries to take it at the same pace. Losing it because Redis forgot it (a
    restart without persistence, a flush) means taking it again at once;
    only a second live holder makes this process stand by, and it takes
    over when that one's lock expires. A Redis outage changes nothing: the
    holder keeps its role (no other process can take the lock meanwhile)
    and renews once Redis is back.

    Use as a context manager; `held` says whether to work now, `changes`
    counts gains and losses so a holder can notice that it lost the role
    and got it back (and re-read what it holds in memory).
    """

    def __init__(self, name: str, *, ttl: float = 30.0):
        self.name = name
        self.ttl = ttl
        self.changes = 0
        self._held = threading.Event()
        self._stop = threading.Event()
        # Not thread-local: the renewal thread must see the token the holder took.
        self._lock = redis_client().lock(redis_key("lock", name), timeout=ttl, thread_local=False)
        self._thread = threading.Thread(target=self._keep, name=f"{name}-lock", daemon=True)
        self._standing_by_logged = False
        self._unreachable_logged = False

    @property
    def held(self) -> bool:
        return self._held.is_set()

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds to hold the role; return whether it is held."""
        return self._held.wait(timeout)

    def __enter__(self) -> "Leadership":
        self._try_take()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.held:
            try:
                self._lock.release()
            except redis.RedisError:
                logger.warning("%s: its lock had already expired", self.name)
            self._held.clear()

    def _set(self, held: bool) -> None:
        if held != self.held:
            self.changes += 1
            (self._held.set if held else self._held.clear)()

    def _try_take(self) -> None:
        try:
            taken = self._lock.acquire(blocking=False)
        except redis.RedisError:
            self._unreachable("take")
            return
        self._unreachable_logged = False
        if taken:
            logger.info("%s: holds its lock; running", self.name)
            self._standing_by_logged = False
            self._set(True)
        elif not self._standing_by_logged:
            logger.warning(
                "%s: another live one holds the lock; standing by to take over", self.name
            )
            self._standing_by_logged = True

    def _keep(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            if not self.held:
                self._try_take()
                continue
            try:
                self._lock.reacquire()
                self._unreachable_logged = False
            except LockNotOwnedError:
                # Redis no longer has our token: it restarted or expired it. Take it
                # again unless another process already did.
                self._set(False)
                logger.warning("%s: lost its lock; taking it again", self.name)
                self._try_take()
            except redis.RedisError:
                self._unreachable("renew")

    def _unreachable(self, action: str) -> None:
        if not self._unreachable_logged:
            logger.warning(
                "%s: Redis unreachable; will %s its lock when it answers", self.name, action
            )
            self._unreachable_logged = True
