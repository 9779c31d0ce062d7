"""The partner stream (`/v1/stream`, seeds 000 and 002) for asyncio.

    async with client.stream() as stream:
        await stream.subscribe("orderbook", market_id="BTC-PERP")
        order = await stream.command("add_order", {...})
        async for event in stream:
            print(event.channel, event.type, event.data)
            book = stream.books["BTC-PERP"]   # kept from snapshot + updates

What it takes care of:
- auth as the first message; a refused key raises (close 4401/4403) instead of
  reconnecting for ever;
- sequence numbers per subscription: a gap (messages the server dropped for a
  slow reader) sends {"op": "snapshot"} and the book is rebuilt from it;
- reconnects with exponential back-off and full jitter, re-authenticating and
  restoring every subscription (an event of type "reconnected" says so);
- a watchdog: it pings every `ping_every` seconds and reconnects when nothing
  (no message, no pong) arrived for `stale_after` seconds;
- seed 002 commands with their id, answered by `command()` (the REST body) or
  the API's typed error.
"""

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import websockets

from . import _models as m
from ._core import Config
from ._errors import ApiError, LeviathanError
from .errors import ERRORS

REFUSED = {4401, 4403}  # a key the server will not take: reconnecting cannot help
CHANNELS_BY_MARKET = {"orderbook", "trades"}


class StreamClosed(LeviathanError):
    """The stream was closed (by `close()`, or the server refused the key)."""


# Account events whose fields are the REST object's, field for field.
EVENT_MODELS: dict[str, type[m.Model]] = {
    "order": m.Order,
    "fill": m.Fill,
    "position": m.Position,
}


@dataclass(frozen=True)
class StreamEvent:
    """One message of a subscription: its channel, type ("snapshot", "update",
    "order", …), sequence number and the whole message as sent (`data`). `model`
    is an account event's typed object (an `order` event's `Order`, a `fill`'s
    `Fill`, a `position`'s `Position`), None for the others."""

    channel: str
    type: str
    seq: int | None
    data: dict[str, Any]
    model: m.Model | None = None


@dataclass
class VenueBook:
    ts: str | None = None
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)


class OrderBook:
    """A market's book as the stream describes it: per venue, from the snapshot and
    every update after it (a level of size 0 is removed)."""

    def __init__(self, market_id: str):
        self.market_id = market_id
        self.venues: dict[str, VenueBook] = {}

    def apply(self, message: dict[str, Any]) -> None:
        if message.get("type") == "snapshot":
            self.venues = {}
        for book in message.get("books") or []:
            venue = self.venues.setdefault(book["venue"], VenueBook())
            venue.ts = book.get("ts", venue.ts)
            for side in ("bids", "asks"):
                levels = getattr(venue, side)
                for level in book.get(side) or []:
                    price, size = Decimal(level["price"]), Decimal(level["size"])
                    if size:
                        levels[price] = size
                    else:
                        levels.pop(price, None)

    def best_bid(self) -> Decimal | None:
        prices = [p for venue in self.venues.values() for p in venue.bids]
        return max(prices, default=None)

    def best_ask(self) -> Decimal | None:
        prices = [p for venue in self.venues.values() for p in venue.asks]
        return min(prices, default=None)


def _subscription(channel: str, market_id: str | None, account_id: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"channel": channel}
    if market_id is not None:
        message["market_id"] = market_id
    if account_id is not None:
        message["account_id"] = account_id
    return message


class Stream:
    """One partner stream connection that stays up (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        *,
        ping_every: float = 10.0,
        stale_after: float = 30.0,
        reconnect_base: float = 0.5,
        reconnect_max: float = 30.0,
    ):
        self.config = config
        self.url = f"{config.stream_url}/stream"
        self.ping_every = ping_every
        self.stale_after = stale_after
        self.reconnect_base = reconnect_base
        self.reconnect_max = reconnect_max
        self.books: dict[str, OrderBook] = {}
        self.reconnects = 0
        self._subscriptions: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._seq: dict[tuple[str, str | None], int] = {}
        self._events: asyncio.Queue[StreamEvent | BaseException] = asyncio.Queue()
        self._pending: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._ws: Any = None
        self._last_seen = 0.0
        self._closing = False
        self._connected = asyncio.Event()
        self._runner: asyncio.Task | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> "Stream":
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect and authenticate; then the stream keeps itself connected."""
        await self._open()
        self._runner = asyncio.create_task(self._run())

    async def close(self) -> None:
        self._closing = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        if self._ws is not None:
            await self._ws.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(StreamClosed("The stream was closed."))

    async def _open(self) -> None:
        self._ws = await websockets.connect(self.url, ping_interval=None, open_timeout=10)
        await self._ws.send(json.dumps({"op": "auth", "key": self.config.api_key}))
        reply = json.loads(await asyncio.wait_for(self._ws.recv(), timeout=10))
        if reply.get("type") != "authenticated":
            raise _error(reply)
        self._last_seen = time.monotonic()
        self._seq.clear()
        for subscription in self._subscriptions.values():
            await self._ws.send(json.dumps({"op": "subscribe", **subscription}))

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            watchdog = asyncio.create_task(self._watch())
            try:
                async for raw in self._ws:
                    attempt = 0
                    self._last_seen = time.monotonic()
                    await self._dispatch(json.loads(raw))
            except websockets.ConnectionClosed:
                pass
            finally:
                watchdog.cancel()
            code = getattr(self._ws, "close_code", None)
            if self._closing:
                return
            if code in REFUSED:
                await self._events.put(StreamClosed(f"The server refused the key ({code})."))
                return
            while not self._closing:  # back off, reconnect, restore the subscriptions
                ceiling = min(self.reconnect_max, self.reconnect_base * 2**attempt)
                await asyncio.sleep(random.uniform(0, ceiling))  # noqa: S311 (jitter)
                attempt += 1
                try:
                    await self._open()
                except ApiError as refused:
                    if refused.status in (401, 403):
                        await self._events.put(refused)
                        return
                except (OSError, websockets.WebSocketException, TimeoutError):
                    continue
                self.reconnects += 1
                await self._events.put(StreamEvent("", "reconnected", None, {}))
                break

    async def _watch(self) -> None:
        """Ping; drop a connection that went quiet for `stale_after` seconds."""
        while True:
            await asyncio.sleep(min(self.ping_every, self.stale_after / 2))
            if time.monotonic() - self._last_seen > self.stale_after:
                await self._ws.close(code=4000, reason="stale")
                return
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._ws.send(json.dumps({"op": "ping"}))

    # -- messages ----------------------------------------------------------------

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("result", "error") and str(message.get("id")) in self._pending:
            future = self._pending.pop(str(message["id"]))
            if kind == "result":
                future.set_result(message.get("data"))
            else:
                future.set_exception(_error(message))
            return
        if kind in ("pong", "subscribed", "unsubscribed") or "channel" not in message:
            if kind == "error":
                await self._events.put(StreamEvent("", "error", None, message))
            return
        channel = message["channel"]
        key = self._key(channel, message)
        seq = message.get("seq")
        if isinstance(seq, int):
            last = self._seq.get(key)
            self._seq[key] = seq
            if last is not None and seq != last + 1 and kind != "snapshot":
                # Messages were dropped: ask for a fresh snapshot and carry on from it.
                await self._send({"op": "snapshot", **self._subscriptions.get(key, {})})
                await self._events.put(StreamEvent(channel, "gap", seq, {"after": last}))
        if channel == "orderbook" and message.get("market_id"):
            book = self.books.setdefault(message["market_id"], OrderBook(message["market_id"]))
            book.apply(message)
        kind_model = EVENT_MODELS.get(str(kind))
        model = kind_model.from_json(message) if kind_model is not None else None
        await self._events.put(StreamEvent(channel, str(kind), seq, message, model))

    def _key(self, channel: str, message: dict[str, Any]) -> tuple[str, str | None]:
        if channel in CHANNELS_BY_MARKET:
            return channel, message.get("market_id")
        if (channel, None) in self._subscriptions:
            return channel, None
        return channel, message.get("account_id")

    async def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._ws.send(json.dumps(message))

    # -- what callers do ---------------------------------------------------------

    async def subscribe(
        self, channel: str, *, market_id: str | None = None, account_id: str | None = None
    ) -> None:
        """Follow a channel (restored after every reconnect)."""
        subscription = _subscription(channel, market_id, account_id)
        self._subscriptions[(channel, market_id or account_id)] = subscription
        await self._send({"op": "subscribe", **subscription})

    async def unsubscribe(
        self, channel: str, *, market_id: str | None = None, account_id: str | None = None
    ) -> None:
        subscription = _subscription(channel, market_id, account_id)
        self._subscriptions.pop((channel, market_id or account_id), None)
        self._seq.pop((channel, market_id or account_id), None)
        await self._send({"op": "unsubscribe", **subscription})

    async def command(self, command: str, params: dict[str, Any], *, timeout: float = 30) -> Any:
        """A seed 002 command (`add_order`, `cancel_order`, `set_leverage`, …): the REST
        body it answers, or its typed error (InsufficientMarginError, …)."""
        ident = f"sdk-{next(self._ids)}"
        future = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self._send({"type": command, "params": params, "id": ident})
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(ident, None)

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        while True:
            item = await self._events.get()
            if isinstance(item, BaseException):
                raise item
            yield item


def _error(message: dict[str, Any]) -> ApiError:
    code = str(message.get("code") or "stream_error")
    status = int(message.get("status") or {"unauthorized": 401, "forbidden": 403}.get(code, 400))
    kind = ERRORS.get(code, ApiError)
    return kind(
        str(message.get("message") or code),
        code=code,
        status=status,
        retry_after=message.get("retry_after"),
        body=message,
    )
