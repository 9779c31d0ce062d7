"""bench/stream_fanout.py's server application: the product's `portal.asgi.application`
for everything, plus one bench-only WebSocket route, BARE_PATH, for the bare baseline.

A socket on BARE_PATH joins the channel-layer group BARE_GROUP when it connects and
forwards the "text" of every `bench.text` message it is sent, as is: no
authentication, no database, no hub, no per-socket framing, and (like the
product's consumers) without the base consumer's per-message database
housekeeping, a thread hand-off each. A `group_send` to
BARE_GROUP on the configured layer (channels_redis RedisPubSubChannelLayer) is one
Redis PUBLISH that each server process receives once and hands to its local
members, the same "one publish → each process → N sockets" shape as the partner
stream's tick, without the stream's work.

Used with bench/ on PYTHONPATH: `uvicorn asgi_bench:application`.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings_bench")

from channels.generic.websocket import AsyncWebsocketConsumer

from portal.asgi import application as portal_application  # sets Django up

BARE_PATH = "/bench/bare-stream"
BARE_GROUP = "bench.market"


class BareStreamConsumer(AsyncWebsocketConsumer):
    """Joins BARE_GROUP (AsyncWebsocketConsumer adds `groups` before `connect`)."""

    groups = [BARE_GROUP]

    async def dispatch(self, message: dict) -> None:
        if message["type"] == "bench.text":
            await self.send(text_data=message["text"])
        else:
            await super().dispatch(message)


bare_application = BareStreamConsumer.as_asgi()


async def application(scope, receive, send):
    if scope["type"] == "websocket" and scope["path"] == BARE_PATH:
        return await bare_application(scope, receive, send)
    return await portal_application(scope, receive, send)
