"""Rate limits per API key and endpoint group (seed "Rate Limits"), shared through Redis.

A sliding one-minute window per (key, group), kept as a sorted set of request
times and checked atomically by a Lua script on Redis's own clock, so every
process and server enforces one limit. Groups and limits come from
settings.API_RATE_LIMITS (requests per minute): market data (reads) 300,
order management 60, prime execute 30. The 429 carries Retry-After: the
seconds until the oldest request in the window leaves it.
"""

import functools
import secrets

import redis
from django.conf import settings
from redis.commands.core import Script
from rest_framework.throttling import BaseThrottle

from portal.redis import redis_async_client, redis_client, redis_key

WINDOW_MS = 60_000

# KEYS[1]: the window's sorted set. ARGV: window (ms), limit, a unique member.
# Returns {allowed (1/0), remaining, retry_after_ms}.
_SLIDING_WINDOW = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, limit - used - 1, 0}
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


def _window_check(key: str, limit: int) -> tuple[bool, int, float]:
    script = _sliding_window(redis_client())
    return _window_result(script(keys=[key], args=[WINDOW_MS, limit, secrets.token_hex(8)]))


async def rate_window_check_async(*, group: str, key_pk: int) -> tuple[bool, int, float]:
    """The same window as the REST throttle, from async code (the partner stream):
    (allowed, remaining, seconds to wait)."""
    script = redis_async_client().register_script(_SLIDING_WINDOW)
    limit = settings.API_RATE_LIMITS[group]
    reply = await script(
        keys=[rate_window_key(group, key_pk)], args=[WINDOW_MS, limit, secrets.token_hex(8)]
    )
    return _window_result(reply)


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
        return allowed

    def wait(self) -> float:
        return self._wait
