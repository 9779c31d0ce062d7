"""Rate limits per API key and endpoint group (seed "Rate Limits"), shared through Redis.

A sliding one-minute window per (key, group), kept as a sorted set of request
times and checked atomically by a Lua script on Redis's own clock, so every
process and server enforces one limit. Groups and limits come from
settings.API_RATE_LIMITS (requests per minute): market data (reads) 300,
order management 60, prime execute 30. The 429 carries Retry-After: the
seconds until the oldest request in the window leaves it.

The same window, per client address, counts failed API key authentications (a
bad, unknown or revoked key): after settings.API_KEY_FAILURE_LIMIT of them within
API_KEY_FAILURE_WINDOW_SECONDS, that address's key authentications are refused
with 429 until the oldest failure leaves the window, on REST and on the partner
stream alike, so keys cannot be guessed at speed.
"""

import functools
import logging
import secrets

import redis
from django.conf import settings
from redis.commands.core import Script
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from portal.metrics import rate_limit_refused
from portal.redis import redis_async_client, redis_client, redis_key

logger = logging.getLogger(__name__)

WINDOW_MS = 60_000

# KEYS[1]: the window's sorted set. ARGV: window (ms), limit, a unique member (one more
# use, counted when allowed), or "" to only look (nothing counted).
# Returns {allowed (1/0), remaining, retry_after_ms}.
_SLIDING_WINDOW = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
  if ARGV[3] ~= '' then
    redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window)
    used = used + 1
  end
  return {1, limit - used, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now_ms}
"""


def rate_window_key(group: str, key_pk: int) -> str:
    """The Redis key of one API key's window in one group."""
    return redis_key("api", "rate", group, str(key_pk))


def _window_result(reply: list) -> tuple[bool, int, float]:
    allowed, remaining, retry_ms = reply
    return bool(allowed), int(remaining), max(0, int(retry_ms)) / 1000


@functools.cache
def _sliding_window(client: redis.Redis) -> Script:
    return client.register_script(_SLIDING_WINDOW)


def _window_check(
    key: str, limit: int, *, window_ms: int = WINDOW_MS, count: bool = True
) -> tuple[bool, int, float]:
    """(allowed, remaining, seconds to wait) of window `key`; `count`: this is one use
    (counted if allowed), else only a look. Redis errors are raised."""
    script = _sliding_window(redis_client())
    member = secrets.token_hex(8) if count else ""
    return _window_result(script(keys=[key], args=[window_ms, limit, member]))


async def _window_check_async(
    key: str, limit: int, *, window_ms: int = WINDOW_MS, count: bool = True
) -> tuple[bool, int, float]:
    """`_window_check` from async code."""
    script = redis_async_client().register_script(_SLIDING_WINDOW)
    member = secrets.token_hex(8) if count else ""
    return _window_result(await script(keys=[key], args=[window_ms, limit, member]))


async def rate_window_check_async(*, group: str, key_pk: int) -> tuple[bool, int, float]:
    """The same window as the REST throttle, from async code (the partner stream):
    (allowed, remaining, seconds to wait)."""
    result = await _window_check_async(
        rate_window_key(group, key_pk), settings.API_RATE_LIMITS[group]
    )
    if not result[0]:
        rate_limit_refused(group, transport="stream")
    return result


class GroupRateThrottle(BaseThrottle):
    """The view's `throttle_group` limit for the request's API key."""

    def allow_request(self, request, view) -> bool:
        identity = request.auth
        group = getattr(view, "throttle_group", None)
        stream = getattr(request._request, "stream_command", None)
        if identity is None or group is None or (stream is not None and not stream.throttled):
            return True
        limit = settings.API_RATE_LIMITS[group]
        key = rate_window_key(group, identity.pk)
        allowed, remaining, self._wait = _window_check(key, limit)
        request.rate_limit = (limit, remaining)
        if not allowed:
            rate_limit_refused(group, transport="rest")
        return allowed

    def wait(self) -> float:
        return self._wait


# --- Failed API key authentications, per client address ----------------------------------


def _key_failures_window(address: str) -> tuple[str, int, int]:
    """(Redis key, limit, window in ms) of `address`'s failed key authentications."""
    key = redis_key("api", "key-failures", address or "unknown")
    window_ms = round(settings.API_KEY_FAILURE_WINDOW_SECONDS * 1000)
    return key, settings.API_KEY_FAILURE_LIMIT, window_ms


def key_failures_wait(address: str) -> float:
    """0.0 when `address` may authenticate with a key; else the seconds until it may
    (its failures in the window reached the limit). Counts nothing.

    Fails open: with Redis unreachable it answers 0.0 (logged), so an outage never
    turns key authentication into an error or locks every partner out; the rest of
    the request meets the outage on its own terms."""
    key, limit, window_ms = _key_failures_window(address)
    try:
        allowed, _, wait = _window_check(key, limit, window_ms=window_ms, count=False)
    except RedisError:
        logger.warning("key failure limit: Redis unreachable, not checked", exc_info=True)
        return 0.0
    if not allowed:
        rate_limit_refused("key_failures", transport="rest")
    return 0.0 if allowed else max(wait, 0.001)


def key_failure_record(address: str) -> None:
    """Count one failed key authentication (bad, unknown or revoked key) from
    `address`. Fails open like `key_failures_wait` (not counted, logged)."""
    key, limit, window_ms = _key_failures_window(address)
    try:
        _window_check(key, limit, window_ms=window_ms)
    except RedisError:
        logger.warning("key failure limit: Redis unreachable, not counted", exc_info=True)


async def key_failures_wait_async(address: str) -> float:
    """`key_failures_wait` from async code (the partner stream); fails open too."""
    key, limit, window_ms = _key_failures_window(address)
    try:
        allowed, _, wait = await _window_check_async(key, limit, window_ms=window_ms, count=False)
    except RedisError:
        logger.warning("key failure limit: Redis unreachable, not checked", exc_info=True)
        return 0.0
    if not allowed:
        rate_limit_refused("key_failures", transport="stream")
    return 0.0 if allowed else max(wait, 0.001)


async def key_failure_record_async(address: str) -> None:
    """`key_failure_record` from async code (the partner stream); fails open too."""
    key, limit, window_ms = _key_failures_window(address)
    try:
        await _window_check_async(key, limit, window_ms=window_ms)
    except RedisError:
        logger.warning("key failure limit: Redis unreachable, not counted", exc_info=True)
