"""Heartbeats of the long-running processes, for the readiness check and the ops console.

Each process of a kind stores `<prefix>:heartbeat:<name>` in Redis: the time of
its last sign of life and a few facts about its state. The market-data feed
beats when it publishes, the margin engine holding its role on every turn of
its loop (one heartbeat per shard, `engine-<i>`, when ENGINE_SHARDS > 1),
Celery workers when they run the outbox dispatcher. A beat that cannot be
stored (Redis down) is skipped: the reader then sees it age, which is the truth.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from portal.redis import redis_client, redis_key
from portal.shards import shards_count

logger = logging.getLogger(__name__)

# A beat older than this is gone from Redis: its process is long dead.
EXPIRES_SECONDS = 3600


@dataclass(frozen=True)
class Heartbeat:
    at: float  # Unix time
    detail: dict[str, Any]

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.at)


def heartbeat_key(name: str) -> str:
    return redis_key("heartbeat", name)


def heartbeat_beat(name: str, **detail: Any) -> None:
    """Store a sign of life of `name` now, with `detail` (JSON); never raises for Redis."""
    value = orjson.dumps({"at": time.time(), **detail})
    try:
        redis_client().set(heartbeat_key(name), value, ex=EXPIRES_SECONDS)
    except redis.RedisError:
        logger.debug("heartbeat of %s not stored: Redis unreachable", name)


def engine_heartbeat_name(index: int = 0, count: int = 1) -> str:
    """The heartbeat of margin engine shard `index` of `count` ("engine" with one shard)."""
    return "engine" if count <= 1 else f"engine-{index}"


def engine_heartbeats() -> list[tuple[str, str]]:
    """(heartbeat name, label) of every margin engine shard settings.ENGINE_SHARDS names."""
    count = shards_count()
    if count == 1:
        return [("engine", "Margin engine")]
    return [
        (engine_heartbeat_name(index, count), f"Margin engine shard {index} of {count}")
        for index in range(count)
    ]


def heartbeat_read(name: str) -> Heartbeat | None:
    """The last heartbeat of `name` (None: never, or over an hour ago). Raises RedisError."""
    raw = redis_client().get(heartbeat_key(name))
    if raw is None:
        return None
    data = orjson.loads(raw)
    return Heartbeat(at=float(data.pop("at")), detail=data)
