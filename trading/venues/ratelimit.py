"""A token bucket in Redis that every process of the deployment shares.

Venues limit requests per account, not per process: the web workers, the
Celery workers and the market-data poller all spend the same allowance. So
the bucket lives in Redis and is updated by one Lua script (atomic, and
timed by the Redis server's clock, so processes with skewed clocks agree).

The bucket works by reservation: `token_bucket_take` always takes a token,
letting the balance go negative, and answers how long the caller must wait
before its slot comes. Callers that wait that long never exceed the rate,
and waiting callers queue in arrival order instead of polling.
"""

import logging

import redis
from redis.commands.core import Script

from portal.redis import redis_client, redis_key

logger = logging.getLogger(__name__)

# KEYS[1]: the bucket. ARGV: rate (tokens per second), burst (capacity).
# Returns the seconds to wait as a string (Lua numbers become integers in
# Redis replies, which would round every wait below one second to zero).
_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate) - 1
local wait = 0
if tokens < 0 then
  wait = -tokens / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + wait) * 1000) + 1000)
return tostring(wait)
"""

_script: Script | None = None
_script_client: redis.Redis | None = None


def _take_script() -> Script:
    """The registered Lua script for the current Redis client (re-registered if it changed)."""
    global _script, _script_client
    client = redis_client()
    if _script is None or _script_client is not client:
        _script = client.register_script(_TAKE_LUA)
        _script_client = client
    return _script


def token_bucket_take(key: str, rate_per_second: float, burst: float) -> float:
    """Take one token from the shared bucket `key`; return the seconds to wait first.

    The bucket refills at `rate_per_second` up to `burst` tokens and is
    stored under `<KEY_PREFIX>:ratelimit:<key>` (it expires once idle and
    full again). 0.0 means go now. Raises ValueError for a rate or burst
    that is not positive. When Redis cannot be reached the limiter fails
    open (returns 0.0 and logs a warning): the venue's own 429 answers,
    which the caller retries, still protect the account.
    """
    if rate_per_second <= 0 or burst <= 0:
        raise ValueError("A token bucket needs a positive rate and burst.")
    try:
        reply = _take_script()(keys=[redis_key("ratelimit", key)], args=[rate_per_second, burst])
    except redis.RedisError as exc:
        logger.warning("ratelimit: Redis unavailable for bucket %s (%s)", key, type(exc).__name__)
        return 0.0
    wait = float(reply.decode() if isinstance(reply, bytes) else reply)
    return max(0.0, wait)
