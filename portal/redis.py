"""The process's Redis client for settings.REDIS_URL, and the product's key names."""

import asyncio
import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
import redis.asyncio
from django.conf import settings
from redis.exceptions import LockNotOwnedError

logger = logging.getLogger(__name__)


@functools.cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def redis_client() -> redis.Redis:
    """A pooled, thread-safe client for `settings.REDIS_URL`."""
    return _client_for(settings.REDIS_URL)


_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis]" = (
    weakref.WeakKeyDictionary()
)


def redis_async_client() -> redis.asyncio.Redis:
    """An asyncio client for `settings.REDIS_URL`, one per event loop (its
    connections belong to the loop that opened them)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = redis.asyncio.Redis.from_url(settings.REDIS_URL)
    return client


def redis_key(*parts: str) -> str:
    """A key under this deployment's prefix: `<KEY_PREFIX>:<part>:<part>…`."""
    return ":".join((settings.KEY_PREFIX, *parts))


class AlreadyRunning(RuntimeError):
    """Another live process holds this singleton lock."""


@contextmanager
def singleton_lock(
    name: str, *, ttl: float = 30.0, on_lost: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold a Redis lock that only one process of a kind may hold at a time.

    The lock expires `ttl` seconds after its holder dies; a daemon thread
    renews it every ttl/3 whatever the holder is busy with. If it is lost
    anyway (Redis flushed, a pause longer than ttl), `on_lost` is called once
    so the holder can stop. Raises AlreadyRunning when a live holder exists.
    """
    # Not thread-local: the renewal thread must see the token the holder took.
    lock = redis_client().lock(redis_key("lock", name), timeout=ttl, thread_local=False)
    if not lock.acquire(blocking=False):
        raise AlreadyRunning(f"Another {name} is already running on this Redis.")
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl / 3):
            try:
                lock.reacquire()
            except LockNotOwnedError:
                logger.error("%s: lost its singleton lock", name)
                if on_lost is not None:
                    on_lost()
                return
            except redis.RedisError:
                logger.exception("%s: could not renew its singleton lock", name)

    renewer = threading.Thread(target=renew, name=f"{name}-lock", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        try:
            lock.release()
        except redis.RedisError:
            logger.warning("%s: its singleton lock had already expired", name)
