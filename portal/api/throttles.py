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

One Redis call a request: a key is recognised in-process, then key authentication
looks at the address's failures and counts the key's group window in one script call
(`key_failures_wait` with `group`; GroupRateThrottle takes that outcome), unless the key
may still be refused for its IP allowlist or a signature (then the look comes first and
the throttle counts after); an unknown key's failure is counted and checked in one.
"""

import functools
import logging
import secrets
from typing import NamedTuple

import redis
from django.conf import settings
from django.http import HttpRequest
from redis.commands.core import Script
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from portal.metrics import rate_limit_refused
from portal.redis import redis_async_client, redis_client, redis_key

logger = logging.getLogger(__name__)

WINDOW_MS = 60_000

# KEYS: sliding windows (sorted sets of request times). ARGV: for each window, its length
# (ms), its limit and a unique member: one more use, counted only when every window
# allows it, or "" (the window is only looked at). Checked in order on Redis's clock.
# Returns {allowed (1/0), the last window's remaining, retry_after_ms, the refusing
# window (1-based; 0 when allowed)}.
_SLIDING_WINDOWS = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local used = {}
for i, key in ipairs(KEYS) do
  local window, limit = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window)
  used[i] = redis.call('ZCARD', key)
  if used[i] >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local retry = window
    if oldest[2] then retry = tonumber(oldest[2]) + window - now_ms end
    return {0, 0, retry, i}
  end
end
local remaining = 0
for i, key in ipairs(KEYS) do
  local window, limit, member = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), ARGV[3 * i]
  if member ~= '' then
    redis.call('ZADD', key, now_ms, member)
    redis.call('PEXPIRE', key, window)
    used[i] = used[i] + 1
  end
  remaining = limit - used[i]
end
return {1, remaining, 0, 0}
"""


class Window(NamedTuple):
    """One sliding window of a check: its Redis key and limit; `count`: this request is
    one use of it (counted if every window of the check allows), else only a look."""

    key: str
    limit: int
    window_ms: int = WINDOW_MS
    count: bool = True


class Outcome(NamedTuple):
    """A check's answer: allowed, the last window's remaining uses, the seconds to wait
    when refused, and the refusing window's index in the check (None when allowed)."""

    allowed: bool
    remaining: int
    wait: float
    refused_by: int | None


def rate_window_key(group: str, key_pk: int) -> str:
    """The Redis key of one API key's window in one group."""
    return redis_key("api", "rate", group, str(key_pk))


def _script_call(windows: tuple[Window, ...]) -> tuple[list[str], list]:
    args: list = []
    for window in windows:
        args += [window.window_ms, window.limit, secrets.token_hex(8) if window.count else ""]
    return [window.key for window in windows], args


def _outcome(reply: list) -> Outcome:
    allowed, remaining, retry_ms, refused_by = reply
    wait = max(0, int(retry_ms)) / 1000
    return Outcome(bool(allowed), int(remaining), wait, None if allowed else int(refused_by) - 1)


@functools.cache
def _sliding_windows(client: redis.Redis) -> Script:
    return client.register_script(_SLIDING_WINDOWS)


def _windows_check(*windows: Window) -> Outcome:
    """Check `windows` in one Redis call (each use counted only when all allow). Redis
    errors are raised."""
    keys, args = _script_call(windows)
    return _outcome(_sliding_windows(redis_client())(keys=keys, args=args))


async def _windows_check_async(*windows: Window) -> Outcome:
    """`_windows_check` from async code."""
    keys, args = _script_call(windows)
    script = redis_async_client().register_script(_SLIDING_WINDOWS)
    return _outcome(await script(keys=keys, args=args))


def _group_window(group: str, key_pk: int) -> Window:
    return Window(rate_window_key(group, key_pk), settings.API_RATE_LIMITS[group])


async def rate_window_check_async(*, group: str, key_pk: int) -> tuple[bool, int, float]:
    """The same window as the REST throttle, from async code (the partner stream):
    (allowed, remaining, seconds to wait)."""
    allowed, remaining, wait, _ = await _windows_check_async(_group_window(group, key_pk))
    if not allowed:
        rate_limit_refused(group, transport="stream")
    return allowed, remaining, wait


class GroupRateThrottle(BaseThrottle):
    """The view's `throttle_group` limit for the request's API key. When the key's
    authentication already counted this use (`key_failures_wait` with `group`: one
    Redis call for both), its outcome is taken from the request."""

    def allow_request(self, request, view) -> bool:
        identity = request.auth
        group = getattr(view, "throttle_group", None)
        stream = getattr(request._request, "stream_command", None)
        if identity is None or group is None or (stream is not None and not stream.throttled):
            return True
        window = _group_window(group, identity.pk)
        counted = getattr(request._request, "rate_window_counted", None)
        if counted is not None and counted[0] == window.key:
            outcome = counted[1]
        else:
            outcome = _windows_check(window)
        self._wait = outcome.wait
        request.rate_limit = (window.limit, outcome.remaining)
        if not outcome.allowed:
            rate_limit_refused(group, transport="rest")
        return outcome.allowed

    def wait(self) -> float:
        return self._wait


def throttle_group_of(view) -> str:
    """The rate-limit group GroupRateThrottle applies to `view` ("" when none does)."""
    if GroupRateThrottle not in getattr(view, "throttle_classes", ()):
        return ""
    return getattr(view, "throttle_group", None) or ""


# --- Failed API key authentications, per client address ----------------------------------


def _key_failures_window(address: str, *, count: bool) -> Window:
    """`address`'s failed key authentications."""
    return Window(
        redis_key("api", "key-failures", address or "unknown"),
        settings.API_KEY_FAILURE_LIMIT,
        round(settings.API_KEY_FAILURE_WINDOW_SECONDS * 1000),
        count,
    )


def _failures_wait(outcome: Outcome, *, transport: str) -> float:
    """0.0 unless the address's failures window (a check's first) refused: then the
    seconds until it may authenticate again (the refusal counted in the metrics)."""
    if outcome.refused_by != 0:
        return 0.0
    rate_limit_refused("key_failures", transport=transport)
    return max(outcome.wait, 0.001)


def key_failures_wait(
    address: str, *, request: HttpRequest | None = None, group: str = "", key_pk: int = 0
) -> float:
    """0.0 when `address` may authenticate with a key; else the seconds until it may
    (its failures in the window reached the limit). Counts no failure.

    With `group` (and the `request` and the identified key's `key_pk`), the same Redis
    call also counts this request in that key's `group` window, when the address is
    not refused, and leaves the outcome on `request` for GroupRateThrottle (one round
    trip for both checks). A Redis error is then raised, as the throttle raises it.

    Without `group` it fails open: with Redis unreachable it answers 0.0 (logged), so
    an outage never turns key authentication into an error or locks every partner out;
    the rest of the request meets the outage on its own terms."""
    failures = _key_failures_window(address, count=False)
    if group and request is not None:
        group_window = _group_window(group, key_pk)
        outcome = _windows_check(failures, group_window)
        if outcome.refused_by != 0:
            request.rate_window_counted = (group_window.key, outcome)
    else:
        try:
            outcome = _windows_check(failures)
        except RedisError:
            logger.warning("key failure limit: Redis unreachable, not checked", exc_info=True)
            return 0.0
    return _failures_wait(outcome, transport="rest")


def key_failure_record(address: str) -> float:
    """Count one failed key authentication (bad, unknown or revoked key) from
    `address`: 0.0, or, when its failures had already reached the limit (this one is not
    counted), the seconds until it may authenticate again. Fails open like
    `key_failures_wait` (not counted, logged, 0.0)."""
    try:
        outcome = _windows_check(_key_failures_window(address, count=True))
    except RedisError:
        logger.warning("key failure limit: Redis unreachable, not counted", exc_info=True)
        return 0.0
    return _failures_wait(outcome, transport="rest")


async def key_failures_wait_async(address: str) -> float:
    """`key_failures_wait` from async code (the partner stream); fails open too."""
    try:
        outcome = await _windows_check_async(_key_failures_window(address, count=False))
    except RedisError:
        logger.warning("key failure limit: Redis unreachable, not checked", exc_info=True)
        return 0.0
    return _failures_wait(outcome, transport="stream")


async def key_failure_record_async(address: str) -> None:
    """`key_failure_record` from async code (the partner stream); fails open too."""
    try:
        await _windows_check_async(_key_failures_window(address, count=True))
    except RedisError:
        logger.warning("key failure limit: Redis unreachable, not counted", exc_info=True)
