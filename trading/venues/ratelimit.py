"""A token bucket in Redis that every process of the deployment shares.

Venues limit requests per account, not per process: the web workers, the
Celery workers and the market-data poller all spend the same allowance. So
the bucket lives in Redis and is updated by one Lua script (atomic, and
timed by the Redis server's clock, so processes with skewed clocks agree).

The bucket works by reservation: `token_bucket_take` always takes its
tokens (a request's cost: Kalshi bills most calls 10 tokens, some 2),
letting the balance go negative, and answers how long the caller must wait
before its slot comes. Callers that wait that long never exceed the rate,
and waiting callers queue in arrival order instead of polling.

When the venue still refuses (a 429) or warns that it would have
(Polymarket's `Poly-RateLimit-Warning`), `token_bucket_penalize` empties the
bucket for a back-off, so every process slows down, not only the one that
was refused, and records the event; `token_buckets` reports every bucket's
state (tokens left now, rate, capacity, the last 429 and warning) for the
ops page. Bucket keys name a credential by a digest, never by a secret.
"""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from redis.commands.core import Script

from portal.redis import redis_client, redis_key

logger = logging.getLogger(__name__)

# KEYS[1]: the bucket. ARGV: rate (tokens per second), burst (capacity), cost.
# Returns the seconds to wait as a string (Lua numbers become integers in
# Redis replies, which would round every wait below one second to zero).
_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate) - cost
local wait = 0
if tokens < 0 then
  wait = -tokens / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now),
  'rate', tostring(rate), 'burst', tostring(burst))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + wait) * 1000) + 1000)
return tostring(wait)
"""

# KEYS[1]: the bucket, KEYS[2]: its events. ARGV: rate, burst, seconds of back-off,
# the event ("429" or "warning"), how long events are kept (ms).
_PENALIZE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local seconds = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or burst)
tokens = math.min(tokens, -seconds * rate)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now),
  'rate', tostring(rate), 'burst', tostring(burst))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + seconds) * 1000) + 1000)
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], 'last_' .. ARGV[4], tostring(now))
  redis.call('HINCRBY', KEYS[2], 'count_' .. ARGV[4], 1)
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
end
return tostring(now)
"""
EVENTS_KEPT_SECONDS = 7 * 24 * 3600

_scripts: dict[str, Script] = {}
_script_client: redis.Redis | None = None


def _script(source: str) -> Script:
    """The registered Lua script for the current Redis client (re-registered if it changed)."""
    global _script_client
    client = redis_client()
    if _script_client is not client:
        _scripts.clear()
        _script_client = client
    if source not in _scripts:
        _scripts[source] = client.register_script(source)
    return _scripts[source]


def token_bucket_take(key: str, rate_per_second: float, burst: float, cost: float = 1.0) -> float:
    """Take `cost` tokens from the shared bucket `key`; return the seconds to wait first.

    The bucket refills at `rate_per_second` up to `burst` tokens and is
    stored under `<KEY_PREFIX>:ratelimit:<key>` (it expires once idle and
    full again). 0.0 means go now. Raises ValueError for a rate, burst or
    cost that is not positive. When Redis cannot be reached the limiter
    fails open (returns 0.0 and logs a warning): the venue's own 429
    answers, which the caller retries, still protect the account.
    """
    if rate_per_second <= 0 or burst <= 0 or cost <= 0:
        raise ValueError("A token bucket needs a positive rate, burst and cost.")
    try:
        reply = _script(_TAKE_LUA)(
            keys=[redis_key("ratelimit", key)], args=[rate_per_second, burst, cost]
        )
    except redis.RedisError as exc:
        logger.warning("ratelimit: Redis unavailable for bucket %s (%s)", key, type(exc).__name__)
        return 0.0
    wait = float(reply.decode() if isinstance(reply, bytes) else reply)
    return max(0.0, wait)


def token_bucket_penalize(
    key: str, rate_per_second: float, burst: float, *, seconds: float, event: str = ""
) -> None:
    """Empty bucket `key` so that its next taker waits at least `seconds` (0: it refills
    from empty at the new `rate_per_second`), and record `event` ("429": the venue
    refused; "warning": it would have; "": nothing) with its time and count.

    Every process sharing the bucket slows down. Fails open (logs) without Redis.
    """
    if rate_per_second <= 0 or burst <= 0 or seconds < 0:
        raise ValueError("A penalty needs a positive rate and burst and a wait ≥ 0.")
    try:
        _script(_PENALIZE_LUA)(
            keys=[redis_key("ratelimit", key), redis_key("ratelimit-events", key)],
            args=[rate_per_second, burst, seconds, event, EVENTS_KEPT_SECONDS * 1000],
        )
    except redis.RedisError as exc:
        logger.warning("ratelimit: Redis unavailable for bucket %s (%s)", key, type(exc).__name__)


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket as it stands now (tokens may be negative: takers are queued)."""

    key: str
    tokens: float | None  # None: idle long enough to be full and forgotten
    rate: float | None
    burst: float | None
    last_429: datetime | None
    count_429: int
    last_warning: datetime | None
    count_warning: int


def _moment(value: bytes | str | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def token_buckets(prefix: str = "") -> list[BucketState]:
    """Every bucket (and every bucket with recorded events) whose key starts with
    `prefix`, sorted by key, its tokens refilled to now. Raises redis.RedisError."""
    client = redis_client()
    keys: set[str] = set()
    for namespace in ("ratelimit", "ratelimit-events"):
        pattern = redis_key(namespace, f"{prefix}*")
        base = len(redis_key(namespace, ""))
        for raw in client.scan_iter(match=pattern, count=500):
            keys.add((raw.decode() if isinstance(raw, bytes) else raw)[base:])
    now = time.time()
    states = []
    for key in sorted(keys):
        bucket = {
            (k.decode() if isinstance(k, bytes) else k): v
            for k, v in client.hgetall(redis_key("ratelimit", key)).items()
        }
        events = {
            (k.decode() if isinstance(k, bytes) else k): v
            for k, v in client.hgetall(redis_key("ratelimit-events", key)).items()
        }
        rate = float(bucket["rate"]) if "rate" in bucket else None
        burst = float(bucket["burst"]) if "burst" in bucket else None
        tokens = None
        if rate is not None and burst is not None and "tokens" in bucket:
            elapsed = max(0.0, now - float(bucket["ts"]))
            tokens = min(burst, float(bucket["tokens"]) + elapsed * rate)
        states.append(
            BucketState(
                key=key,
                tokens=tokens,
                rate=rate,
                burst=burst,
                last_429=_moment(events.get("last_429")),
                count_429=int(events.get("count_429", 0)),
                last_warning=_moment(events.get("last_warning")),
                count_warning=int(events.get("count_warning", 0)),
            )
        )
    return states
