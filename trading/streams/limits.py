"""Open partner-stream connections per API key, counted across every server process.

Each connection holds a slot: a member of the key's Redis sorted set scored
with its expiry. A connection renews its slot while it lives and gives it
back when it closes; a process that dies without closing its sockets frees
their slots when they expire (settings.STREAM_SLOT_TTL_SECONDS). Taking a
slot is one Lua script on Redis's clock: drop expired members, then add this
connection if fewer than settings.STREAM_MAX_CONNECTIONS_PER_KEY remain (or
renew it if it is already there).
"""

from django.conf import settings

from portal.redis import redis_async_client, redis_key

# KEYS[1]: the key's slots. ARGV: limit, ttl (ms), the connection id. Returns 1 or 0.
_SLOT_TAKE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now_ms + ttl, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
return 0
"""


def _slots_key(key_pk: int) -> str:
    return redis_key("stream", "connections", str(key_pk))


async def connection_slot_take(*, key_pk: int, connection_id: str) -> bool:
    """Take (or renew) a connection's slot; False when the key's slots are all held."""
    script = redis_async_client().register_script(_SLOT_TAKE)
    taken = await script(
        keys=[_slots_key(key_pk)],
        args=[
            settings.STREAM_MAX_CONNECTIONS_PER_KEY,
            int(settings.STREAM_SLOT_TTL_SECONDS * 1000),
            connection_id,
        ],
    )
    return bool(taken)


async def connection_slot_release(*, key_pk: int, connection_id: str) -> None:
    await redis_async_client().zrem(_slots_key(key_pk), connection_id)
