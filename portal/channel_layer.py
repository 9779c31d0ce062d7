"""The product's channel layer: Redis pub/sub, plus one pipelined publish for a batch.

`channels_redis.pubsub.RedisPubSubChannelLayer` publishes each `group_send` on its
own round trip (and its shard connection serializes them behind a lock), so the
margin engine pushing a tick's updates to 1,000 accounts paid 1,000 round trips
before the last socket's server saw its message. `group_send_batch` sends the same
messages, serialized the same way to the same Redis channels (consumers read
them unchanged), as PUBLISH commands in one pipeline per shard, `BATCH_CHUNK` at a
time: one round trip per chunk. Chunks of 100 cost no more than one pipeline of
1,000 (bench/push_batch.py: ~8 ms for 1,000 messages either way, against ~100 ms
one round trip each) and let the first servers start forwarding while the rest
is still being packed.

Not a transaction (MULTI): each PUBLISH stands alone, so a subscriber sees each
message as soon as Redis runs its command, as with separate sends.

`groups_followed` tells which groups have a subscriber now (PUBSUB NUMSUB on each
group's shard): a message to a group nobody follows reaches nobody (pub/sub keeps
nothing), so a sender with many of them (the margin engine) builds and publishes only
the ones somebody will receive.

It reads two private parts of channels_redis 4.3 (pinned in requirements.txt):
the loop layer's `_get_group_channel_name` / `_get_shard` and a shard's
`_ensure_redis` / `_redis`; `tests/portal/test_channel_layer.py` checks the
messages still reach a consumer as a `group_send`'s do.
"""

import asyncio
from collections.abc import Iterable, Sequence

from channels_redis.pubsub import RedisPubSubChannelLayer

BATCH_CHUNK = 100  # PUBLISH commands per pipeline round trip
NUMSUB_CHUNK = 1_000  # channels asked about per PUBSUB NUMSUB


class RedisPubSubBatchChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer with `group_send_batch` (a pipelined publish)."""

    async def group_send_batch(self, messages: Iterable[tuple[str, dict]]) -> int:
        """Send each (group, message) as `group_send` would, pipelined per shard;
        return the number of messages published."""
        layer = self._get_layer()
        by_shard: dict[object, list[tuple[str, bytes]]] = {}
        for group, message in messages:
            channel = layer._get_group_channel_name(group)
            shard = layer._get_shard(channel)
            by_shard.setdefault(shard, []).append((channel, self.serialize(message)))
        await asyncio.gather(*(_publish_all(shard, items) for shard, items in by_shard.items()))
        return sum(len(items) for items in by_shard.values())

    async def groups_followed(self, groups: Sequence[str]) -> list[bool]:
        """Whether each of `groups` has a subscriber now (a consumer in it, in any
        server process): PUBSUB NUMSUB on each group's shard, NUMSUB_CHUNK channels a
        round trip."""
        layer = self._get_layer()
        by_shard: dict[object, list[tuple[int, str]]] = {}
        for index, group in enumerate(groups):
            channel = layer._get_group_channel_name(group)
            by_shard.setdefault(layer._get_shard(channel), []).append((index, channel))
        followed = [False] * len(groups)
        for shard, items in by_shard.items():
            shard._ensure_redis()
            for start in range(0, len(items), NUMSUB_CHUNK):
                chunk = items[start : start + NUMSUB_CHUNK]
                counts = await shard._redis.pubsub_numsub(*(channel for _, channel in chunk))
                for (index, _), (_, subscribers) in zip(chunk, counts, strict=True):
                    followed[index] = subscribers > 0
        return followed


async def _publish_all(shard, items: list[tuple[str, bytes]]) -> None:
    shard._ensure_redis()
    for start in range(0, len(items), BATCH_CHUNK):
        pipeline = shard._redis.pipeline(transaction=False)
        for channel, data in items[start : start + BATCH_CHUNK]:
            pipeline.publish(channel, data)
        await pipeline.execute()
