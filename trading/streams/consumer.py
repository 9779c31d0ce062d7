"""The partner stream's socket (`/v1/stream`): thin. The protocol is in
`trading.streams` (package docstring) and the README; this class holds one
connection's state: its key, subscriptions and their sequence numbers, and
the queue of messages waiting for the client.

Order books and trades come from the process's `MarketHub`; account events
from the channel layer's `account.<id>` groups (`trading.broadcasts`);
commands, snapshots and pulses from the REST views (`trading.streams.commands`).
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from accounts.api_auth import KEY_FAILURES_MESSAGE, StreamCommand
from accounts.services.api_keys import (
    KeyIdentity,
    api_key_hash,
    api_key_identify,
    api_key_identity_get,
    api_key_touch,
)
from portal import metrics
from portal.api.parsers import json_loads
from portal.api.throttles import (
    key_failure_record_async,
    key_failures_wait_async,
    rate_window_check_async,
)
from portal.api.views import READ_SCOPES
from portal.errors import DomainError, ErrorCode, InvalidParams
from portal.net import scope_client_ip
from trading.broadcasts import (
    FILL_UPDATE,
    LEVERAGE_UPDATE,
    MARGIN_CALL,
    MARGIN_UPDATE,
    ORDER_UPDATE,
    POSITION_UPDATE,
    account_group,
    event_bare,
)
from trading.streams.commands import COMMANDS, Reply, command_run, rest_call
from trading.streams.hub import MarketHub, MarketRef, market_ref_get
from trading.streams.limits import connection_slot_release, connection_slot_take

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 4429
CLOSE_UNAVAILABLE = 1013  # "try again later"

MARKET_CHANNELS = ("orderbook", "trades")
ACCOUNT_CHANNELS = ("account", "positions")
# Channel-layer message types each account channel forwards.
FORWARDS = {
    "account": frozenset(
        {ORDER_UPDATE, FILL_UPDATE, POSITION_UPDATE, MARGIN_CALL, LEVERAGE_UPDATE}
    ),
    "positions": frozenset({POSITION_UPDATE, MARGIN_UPDATE}),
    "v4_orders": frozenset({ORDER_UPDATE}),
}
LAYER_TYPES = frozenset().union(*FORWARDS.values())
# Seed 002's subscriptions: pulsed reads (REST path, contents) and live orders.
PULSED = {"v4_positions": "positions", "v4_balances": "balances"}
SEED_CHANNELS = (*PULSED, "v4_orders")
AUTH_HELP = 'Authenticate first: send {"op":"auth","key":"lev_live_…"}.'


class StreamError(Exception):
    """A request on the socket refused with a code, as the REST API would."""

    def __init__(
        self, error: ErrorCode, message: str | None = None, *, retry_after: int | None = None
    ):
        if not isinstance(error, ErrorCode):
            raise TypeError(f"StreamError takes an ErrorCode member, not {error!r}.")
        self.error, self.code = error, error.code
        self.message, self.retry_after = message or error.message, retry_after
        super().__init__(self.message)


def market_id_canonical(market_id: str) -> str:
    """`TRUMP-WIN:yes` → `TRUMP-WIN`, `TRUMP-WIN:no` → `TRUMP-WIN:NO` (as subscriptions key)."""
    base, _, outcome = market_id.strip().partition(":")
    outcome = outcome.upper()
    return base if outcome in ("", "YES") else f"{base}:{outcome}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _dumps(payload: dict) -> str:
    return orjson.dumps(payload).decode()


@dataclass(eq=False)
class _Subscription:
    channel: str
    name: str  # market id, account id or "*" (every account of the key)
    accounts: dict[int, str] = field(default_factory=dict)  # pk → public id
    market: MarketRef | None = None
    seq: int = 0
    ready: bool = False  # False while its snapshot loads: messages wait in `held`
    held: list = field(default_factory=list)
    task: asyncio.Task | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.channel, self.name


class _HubSubscriber:
    """A market subscription as the hub sees it: `deliver` frames and queues."""

    __slots__ = ("consumer", "subscription")

    def __init__(self, consumer: "StreamConsumer", subscription: _Subscription):
        self.consumer, self.subscription = consumer, subscription

    def deliver(self, body: str) -> None:
        self.consumer._emit(self.subscription, body)


class StreamConsumer(AsyncWebsocketConsumer):
    """One partner connection on /v1/stream."""

    async def connect(self) -> None:
        self.connection_id = str(uuid.uuid4())
        self.identity: KeyIdentity | None = None
        self.key_hash = ""
        self.address = scope_client_ip(self.scope)
        headers = dict(self.scope.get("headers") or [])
        self.host = headers.get(b"host", b"").decode("latin-1")
        self.subscriptions: dict[tuple[str, str], _Subscription] = {}
        self.hub_subscribers: dict[tuple[str, str], _HubSubscriber] = {}
        self.joined: set[int] = set()
        self.queue: deque[str] = deque()
        self.writer: asyncio.Task | None = None
        self.closing = False
        self.slot_held = False
        self.tasks: set[asyncio.Task] = set()
        await self.accept()
        metrics.websocket_opened("partner_stream")
        self.counted_open = True
        self._spawn(self._auth_deadline())

    # -- plumbing ------------------------------------------------------------

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _queue(self, text: str) -> bool:
        """Queue `text` for the client; False (dropped) when the client is too far behind."""
        if self.closing:
            return False
        if len(self.queue) >= settings.STREAM_SEND_QUEUE:
            return False
        self.queue.append(text)
        if self.writer is None or self.writer.done():
            self.writer = asyncio.get_running_loop().create_task(self._write())
        return True

    async def _write(self) -> None:
        try:
            while self.queue:
                await self.send(text_data=self.queue.popleft())
        except Exception:  # the client went away mid-write: the disconnect cleans up
            logger.debug("stream: a write failed; dropping the queue", exc_info=True)
            self.queue.clear()

    def _reply(self, payload: dict) -> None:
        self._queue(_dumps(payload))

    def _error(self, error: StreamError, **echo) -> None:
        payload = {"type": "error", **echo, "code": error.code, "message": error.message}
        if error.retry_after is not None:
            payload["retry_after"] = error.retry_after
        self._reply(payload)

    def _emit(self, subscription: _Subscription, body: str) -> None:
        """Send one message of a subscription with its next sequence number.

        A message the queue cannot take still uses its number: the client sees
        the gap and asks for a snapshot. While the subscription's snapshot is
        loading, messages wait (numbered when sent, after it)."""
        if not subscription.ready:
            subscription.held.append(body)
            return
        subscription.seq += 1
        if subscription.channel in SEED_CHANNELS:  # seed 002's framing
            text = (
                f'{{"type":"channel_data","connection_id":"{self.connection_id}",'
                f'"message_id":{subscription.seq},"id":"{subscription.name}",'
                f'"channel":"{subscription.channel}","contents":[{body}]}}'
            )
        else:
            text = f'{{"channel":"{subscription.channel}","seq":{subscription.seq},{body[1:]}'
        self._queue(text)

    def _open(self, subscription: _Subscription, first: str | None = None) -> None:
        """Send a subscription's first message (a snapshot, framed and numbered here;
        None: the caller has queued it), then what waited for it."""
        subscription.ready = True
        if first is not None:
            self._emit(subscription, first)
        held, subscription.held = subscription.held, []
        for body in held:
            self._emit(subscription, body)

    async def _shut(self, code: int, error: StreamError) -> None:
        """Tell the client why, then close (after what is queued has been written)."""
        self._error(error)
        self.closing = True
        if self.writer is not None and not self.writer.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.writer), 5)
        await self.close(code=code, reason=error.message[:120])

    # -- lifecycle -----------------------------------------------------------

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(settings.STREAM_AUTH_TIMEOUT_SECONDS)
        if self.identity is None and not self.closing:
            timeout = settings.STREAM_AUTH_TIMEOUT_SECONDS
            await self._shut(
                CLOSE_UNAUTHENTICATED,
                StreamError(
                    ErrorCode.UNAUTHORIZED, f"No authentication within {timeout:g} s. {AUTH_HELP}"
                ),
            )

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted_open", False):
            metrics.websocket_closed("partner_stream")
            self.counted_open = False
        self.closing = True
        for task in list(self.tasks):
            task.cancel()
        for subscription in list(self.subscriptions.values()):
            self._market_unwatch(subscription)
        for account_id in list(self.joined):
            await self.channel_layer.group_discard(account_group(account_id), self.channel_name)
        self.joined.clear()
        if self.slot_held and self.identity is not None:
            try:
                await connection_slot_release(
                    key_pk=self.identity.pk, connection_id=self.connection_id
                )
            except RedisError:
                logger.warning("stream: could not release a connection slot", exc_info=True)
        if self.writer is not None:
            self.writer.cancel()

    async def _keepalive(self) -> None:
        """Re-check the key (revoked, accounts re-bound) and renew the connection's slot."""
        while True:
            await asyncio.sleep(settings.STREAM_KEY_RECHECK_SECONDS)
            try:
                identity = await database_sync_to_async(api_key_identity_get)(self.key_hash)
            except Exception:  # the database is away: keep the socket, check again later
                logger.warning("stream: could not re-check a key", exc_info=True)
                continue
            refusal = self._refusal(identity, unknown="This API key was revoked.")
            if refusal is not None:
                await self._shut(*refusal)
                return
            if identity.account_ids != self.identity.account_ids:
                await self._accounts_rebound(identity)
            self.identity = identity
            try:
                if not await connection_slot_take(
                    key_pk=identity.pk, connection_id=self.connection_id
                ):
                    await self._shut(CLOSE_TOO_MANY, self._too_many())
                    return
            except RedisError:
                logger.warning("stream: could not renew a connection slot", exc_info=True)

    async def _accounts_rebound(self, identity: KeyIdentity) -> None:
        """The key's accounts changed: account subscriptions keep only those still bound."""
        bound = dict(zip(identity.account_ids, identity.account_public_ids, strict=True))
        for subscription in list(self.subscriptions.values()):
            if subscription.channel in MARKET_CHANNELS:
                continue
            if subscription.name == "*":
                subscription.accounts = bound
            else:
                subscription.accounts = {
                    pk: public for pk, public in subscription.accounts.items() if pk in bound
                }
        await self._groups_sync()

    def _refusal(
        self, identity: KeyIdentity | None, *, unknown: str
    ) -> tuple[int, StreamError] | None:
        """Why this key may not hold the connection (close code, error), or None."""
        if identity is None:
            return CLOSE_UNAUTHENTICATED, StreamError(ErrorCode.UNAUTHORIZED, unknown)
        if not identity.allows_address(self.address):
            message = f"This key may not be used from {self.address}."
            return CLOSE_FORBIDDEN, StreamError(ErrorCode.FORBIDDEN, message)
        if "intelligence" not in identity.scopes:
            return CLOSE_FORBIDDEN, StreamError(
                ErrorCode.FORBIDDEN, "This key lacks the intelligence scope."
            )
        return None

    def _too_many(self) -> StreamError:
        """The refusal of one connection too many for the key (counted as a refusal)."""
        metrics.rate_limit_refused("stream_connections", transport="stream")
        limit = settings.STREAM_MAX_CONNECTIONS_PER_KEY
        return StreamError(
            ErrorCode.RATE_LIMITED,
            f"This key already has {limit} open stream connections (the limit per key): "
            "close one before opening another.",
        )

    # -- receiving -----------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.closing:
            return
        problem = ""
        try:
            message = json_loads(text_data if text_data is not None else bytes_data or b"")
        except InvalidParams as exc:  # not JSON, or nested too deeply (the API's reader)
            message, problem = None, f" {exc.message}"
        if not isinstance(message, dict):
            error = StreamError(
                ErrorCode.INVALID_PARAMS, f"Send each message as one JSON object.{problem}"
            )
            if self.identity is None:
                await self._shut(
                    CLOSE_UNAUTHENTICATED, StreamError(ErrorCode.UNAUTHORIZED, AUTH_HELP)
                )
            else:
                self._error(error)
            return
        if self.identity is None:
            if message.get("op") == "auth" or message.get("type") == "auth":
                await self._authenticate(message)
            else:
                await self._shut(
                    CLOSE_UNAUTHENTICATED, StreamError(ErrorCode.UNAUTHORIZED, AUTH_HELP)
                )
            return
        try:
            await self._handle(message)
        except StreamError as error:
            self._error(error, **self._echo(message))
        except DomainError as error:
            self._error(StreamError(error.error, error.message), **self._echo(message))

    @staticmethod
    def _echo(message: dict) -> dict:
        echo = {}
        for name in ("op", "channel", "market_id", "account_id", "id"):
            value = message.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                echo[name] = value
        if "op" not in echo and isinstance(message.get("type"), str):
            echo["command"] = message["type"]
        return echo

    async def _authenticate(self, message: dict) -> None:
        wait = await key_failures_wait_async(self.address)
        if wait:
            await self._shut(
                CLOSE_TOO_MANY,
                StreamError(
                    ErrorCode.RATE_LIMITED,
                    KEY_FAILURES_MESSAGE,
                    retry_after=max(1, round(wait + 0.499)),
                ),
            )
            return
        key = message.get("key")
        if key is None and isinstance(message.get("params"), dict):
            key = message["params"].get("api_key")
        identity = (
            await database_sync_to_async(api_key_identify)(key.strip())
            if isinstance(key, str)
            else None
        )
        if identity is None:
            await key_failure_record_async(self.address)
        refusal = self._refusal(identity, unknown="API key missing or invalid.")
        if refusal is not None:
            await self._shut(*refusal)
            return
        try:
            taken = await connection_slot_take(key_pk=identity.pk, connection_id=self.connection_id)
        except RedisError:
            logger.exception("stream: could not take a connection slot")
            await self._shut(
                CLOSE_UNAVAILABLE,
                StreamError(
                    ErrorCode.INTERNAL_ERROR, "The stream is unavailable; reconnect shortly."
                ),
            )
            return
        if not taken:
            await self._shut(CLOSE_TOO_MANY, self._too_many())
            return
        self.slot_held = True
        self.identity, self.key_hash = identity, api_key_hash(key.strip())
        await database_sync_to_async(api_key_touch)(identity=identity, address=self.address)
        self._spawn(self._keepalive())
        self._reply(
            {
                "type": "authenticated",
                "connection_id": self.connection_id,
                "key_prefix": identity.prefix,
                "scopes": sorted(identity.scopes),
                "accounts": list(identity.account_public_ids),
            }
        )

    async def _handle(self, message: dict) -> None:
        op, kind = message.get("op"), message.get("type")
        if op is not None:
            handler = {
                "subscribe": self._subscribe,
                "unsubscribe": self._unsubscribe,
                "snapshot": self._snapshot,
                "ping": self._ping,
                "auth": self._auth_again,
            }.get(op)
            if handler is None:
                raise StreamError(
                    ErrorCode.INVALID_PARAMS,
                    f"Unknown op {op!r}: use subscribe, unsubscribe, snapshot or ping.",
                )
            await handler(message)
        elif kind in COMMANDS:
            await self._command(kind, message)
        elif kind in ("subscribe", "unsubscribe"):
            await self._seed_subscription(kind, message)
        elif kind == "ping":
            await self._ping(message)
        elif kind == "auth":
            await self._auth_again(message)
        else:
            raise StreamError(
                ErrorCode.INVALID_PARAMS,
                "Send an op (subscribe, unsubscribe, snapshot, ping) or a command type ("
                + ", ".join(COMMANDS)
                + ", subscribe, unsubscribe).",
            )

    async def _ping(self, message: dict) -> None:
        self._reply(
            {"type": "pong", "ts": _now(), **({"id": message["id"]} if "id" in message else {})}
        )

    async def _auth_again(self, message: dict) -> None:
        raise StreamError(ErrorCode.INVALID_PARAMS, "This connection is already authenticated.")

    async def _rate_check(self) -> None:
        allowed, _, wait = await rate_window_check_async(
            group="market_data", key_pk=self.identity.pk
        )
        if not allowed:
            raise StreamError(
                ErrorCode.RATE_LIMITED,
                "Too many requests.",
                retry_after=max(1, round(wait + 0.499)),
            )

    def _scopes_check(self) -> None:
        missing = [scope for scope in READ_SCOPES if scope not in self.identity.scopes]
        if missing:
            raise StreamError(
                ErrorCode.FORBIDDEN, f"This key lacks the {', '.join(missing)} scope."
            )

    # -- seed 000 subscriptions ---------------------------------------------

    def _target(self, message: dict) -> tuple[str, str]:
        channel = message.get("channel")
        if channel in MARKET_CHANNELS:
            market_id = message.get("market_id")
            if not isinstance(market_id, str) or not market_id.strip():
                raise StreamError(ErrorCode.INVALID_PARAMS, f"market_id is required for {channel}.")
            return channel, market_id_canonical(market_id)
        if channel in ACCOUNT_CHANNELS:
            account_id = message.get("account_id")
            if account_id is None:
                return channel, "*"
            if (
                not isinstance(account_id, str)
                or account_id not in self.identity.account_public_ids
            ):
                raise StreamError(ErrorCode.NOT_FOUND, f"No account {account_id!r} for this key.")
            return channel, account_id
        raise StreamError(
            ErrorCode.INVALID_PARAMS,
            "channel is one of orderbook, trades, account, positions (seed 002: "
            + ", ".join(SEED_CHANNELS)
            + ' with {"type":"subscribe"}).',
        )

    def _accounts_of(self, name: str) -> dict[int, str]:
        bound = dict(zip(self.identity.account_ids, self.identity.account_public_ids, strict=True))
        if name == "*":
            return bound
        return {pk: public for pk, public in bound.items() if public == name}

    async def _subscribe(self, message: dict) -> None:
        channel, name = self._target(message)
        self._scopes_check()
        await self._rate_check()
        if (channel, name) in self.subscriptions:
            raise StreamError(ErrorCode.INVALID_PARAMS, f"Already subscribed to {channel} {name}.")
        if len(self.subscriptions) >= settings.STREAM_MAX_SUBSCRIPTIONS:
            raise StreamError(
                ErrorCode.INVALID_PARAMS,
                f"At most {settings.STREAM_MAX_SUBSCRIPTIONS} subscriptions per connection.",
            )
        subscription = _Subscription(channel=channel, name=name)
        if channel in MARKET_CHANNELS:
            subscription.market = await database_sync_to_async(market_ref_get)(name)
        else:
            subscription.accounts = self._accounts_of(name)
        self.subscriptions[subscription.key] = subscription
        ack = {"type": "subscribed", "channel": channel}
        ack |= {"market_id": subscription.name} if subscription.market else {"account_id": name}
        try:
            if channel == "orderbook":
                self._reply(ack)
                subscriber = self.hub_subscribers[subscription.key] = _HubSubscriber(
                    self, subscription
                )
                snapshot = await MarketHub.get().books_watch(subscription.market, subscriber)
                self._open(subscription, snapshot)
            elif channel == "trades":
                subscriber = self.hub_subscribers[subscription.key] = _HubSubscriber(
                    self, subscription
                )
                await MarketHub.get().trades_watch(subscription.market, subscriber)
                subscription.ready = True
                self._reply(ack)
            else:
                await self._groups_sync()
                self._reply(ack)
                self._open(subscription, await self._account_snapshot(subscription))
        except (TimeoutError, RedisError) as exc:
            self._drop(subscription)
            raise StreamError(
                ErrorCode.INTERNAL_ERROR, "Market data is unavailable right now; try again shortly."
            ) from exc
        except StreamError:
            self._drop(subscription)
            raise

    def _drop(self, subscription: _Subscription) -> None:
        self.subscriptions.pop(subscription.key, None)
        self._market_unwatch(subscription)
        if subscription.task is not None:
            subscription.task.cancel()

    def _market_unwatch(self, subscription: _Subscription) -> None:
        subscriber = self.hub_subscribers.pop(subscription.key, None)
        if subscriber is None:
            return
        hub = MarketHub.get()
        if subscription.channel == "orderbook":
            hub.books_unwatch(subscription.name, subscriber)
        else:
            hub.trades_unwatch(subscription.name, subscriber)

    async def _unsubscribe(self, message: dict) -> None:
        channel, name = self._target(message)
        await self._rate_check()
        subscription = self.subscriptions.get((channel, name))
        if subscription is None:
            raise StreamError(ErrorCode.NOT_FOUND, f"Not subscribed to {channel} {name}.")
        self._drop(subscription)
        await self._groups_sync()
        ack = {"type": "unsubscribed", "channel": channel}
        ack |= {"market_id": name} if channel in MARKET_CHANNELS else {"account_id": name}
        self._reply(ack)

    async def _snapshot(self, message: dict) -> None:
        """A fresh snapshot of a subscription, numbered in its sequence (after a gap)."""
        channel, name = self._target(message)
        await self._rate_check()
        subscription = self.subscriptions.get((channel, name))
        if subscription is None:
            raise StreamError(ErrorCode.NOT_FOUND, f"Not subscribed to {channel} {name}.")
        if channel == "trades":
            raise StreamError(
                ErrorCode.INVALID_PARAMS, "trades has no snapshot: trades are events, not state."
            )
        if channel == "orderbook":
            snapshot = MarketHub.get().snapshot(subscription.name)
        else:
            snapshot = await self._account_snapshot(subscription)
        if snapshot is not None:
            self._emit(subscription, snapshot)

    async def _groups_sync(self) -> None:
        """Be in exactly the groups of the accounts some subscription follows."""
        wanted = {
            pk
            for subscription in self.subscriptions.values()
            if subscription.channel not in MARKET_CHANNELS
            for pk in subscription.accounts
        }
        for pk in wanted - self.joined:
            await self.channel_layer.group_add(account_group(pk), self.channel_name)
            self.joined.add(pk)
        for pk in self.joined - wanted:
            await self.channel_layer.group_discard(account_group(pk), self.channel_name)
            self.joined.discard(pk)

    async def _read(self, path: str, query: dict) -> dict:
        """A REST read as this key (not rate-limited: the server sends it); its body.
        A REST error is raised as a StreamError with the same code."""
        auth = StreamCommand(key_hash=self.key_hash, address=self.address, throttled=False)
        reply = await database_sync_to_async(rest_call)(
            method="GET", path=path, query=query, body=None, auth=auth, host=self.host
        )
        error = reply.error()
        if error is not None:
            raise StreamError(ErrorCode.from_code(error["code"]), error["message"])
        return orjson.loads(reply.body)

    async def _account_snapshot(self, subscription: _Subscription) -> str:
        accounts = []
        for public_id in subscription.accounts.values():
            query = {"account_id": public_id}
            entry = {"account_id": public_id}
            entry["positions"] = (await self._read("positions", query))["positions"]
            if subscription.channel == "account":
                orders = await self._read("orders", query | {"status": "active", "limit": 500})
                entry["open_orders"] = orders["orders"]
            else:
                entry["margin"] = await self._read("margin", query)
            accounts.append(entry)
        return _dumps({"type": "snapshot", "ts": _now(), "accounts": accounts})

    # -- channel layer ---------------------------------------------------------

    async def dispatch(self, message: dict) -> None:
        """Forward account messages to the subscriptions that follow them, without a
        database hand-off (they touch no database); websocket events as usual."""
        kind = message["type"]
        if kind in LAYER_TYPES:
            self._forward(kind, message["account"], message["text"])
        elif kind.startswith("websocket."):
            await super().dispatch(message)
        else:
            logger.debug("stream: ignored a %s message", get_handler_name(message))

    def _forward(self, kind: str, account_pk: int, text: str) -> None:
        for subscription in self.subscriptions.values():
            forwards = FORWARDS.get(subscription.channel)
            if forwards is None or kind not in forwards:
                continue
            public_id = subscription.accounts.get(account_pk)
            if public_id is None:
                continue
            if subscription.channel in SEED_CHANNELS:  # contents: the bare order object
                self._emit(subscription, event_bare(text))
            else:
                self._emit(subscription, f'{{"account_id":"{public_id}",{text[1:]}')

    # -- seed 002 --------------------------------------------------------------

    async def _command(self, name: str, message: dict) -> None:
        params = message.get("params", {})
        echo = {"command": name, **({"id": message["id"]} if "id" in message else {})}
        if not isinstance(params, dict):
            raise StreamError(ErrorCode.INVALID_PARAMS, "params must be a JSON object.")
        auth = StreamCommand(
            key_hash=self.key_hash,
            address=self.address,
            command=name,
            params=orjson.dumps(params),
            timestamp=str(message.get("timestamp") or ""),
            signature=str(message.get("signature") or ""),
        )
        reply: Reply = await database_sync_to_async(command_run)(
            name=name, params=params, auth=auth, host=self.host
        )
        body = reply.error()
        if body is not None:
            error = StreamError(
                ErrorCode.from_code(body["code"]),
                body["message"],
                retry_after=int(reply.retry_after) if reply.retry_after else None,
            )
            self._error(error, **echo, status=reply.status)
            return
        head = _dumps({"type": "result", **echo, "status": reply.status})
        self._queue(f'{head[:-1]},"data":{reply.body.decode()}}}')

    async def _seed_subscription(self, kind: str, message: dict) -> None:
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        channel = message.get("channel") or params.get("channel")
        if channel not in SEED_CHANNELS:
            raise StreamError(
                ErrorCode.INVALID_PARAMS,
                f"channel is one of {', '.join(SEED_CHANNELS)} (seed 000's channels: "
                'use {"op":"subscribe"}).',
            )
        account_id = message.get("account_id") or params.get("account_id")
        if account_id is None and len(self.identity.account_public_ids) == 1:
            account_id = self.identity.account_public_ids[0]
        if account_id is None:
            raise StreamError(
                ErrorCode.INVALID_PARAMS,
                "account_id is required: this key is bound to "
                f"{len(self.identity.account_public_ids)} accounts "
                f"({', '.join(self.identity.account_public_ids)}).",
            )
        if account_id not in self.identity.account_public_ids:
            raise StreamError(ErrorCode.NOT_FOUND, f"No account {account_id!r} for this key.")
        key = (channel, account_id)
        await self._rate_check()
        if kind == "unsubscribe":
            subscription = self.subscriptions.get(key)
            if subscription is None:
                raise StreamError(ErrorCode.NOT_FOUND, f"Not subscribed to {channel} {account_id}.")
            self._drop(subscription)
            await self._groups_sync()
            self._reply({"type": "unsubscribed", "channel": channel, "id": account_id})
            return
        if key in self.subscriptions:
            raise StreamError(
                ErrorCode.INVALID_PARAMS, f"Already subscribed to {channel} {account_id}."
            )
        self._scopes_check()
        subscription = _Subscription(channel=channel, name=account_id)
        subscription.accounts = self._accounts_of(account_id)
        self.subscriptions[key] = subscription
        try:
            if channel in PULSED:
                contents = await self._pulse_contents(channel, account_id)
                subscription.task = self._spawn(self._pulse(subscription))
            else:
                await self._groups_sync()
                query = {"account_id": account_id, "status": "active", "limit": 500}
                contents = (await self._read("orders", query))["orders"]
        except StreamError:
            self._drop(subscription)
            raise
        subscription.seq = 1
        self._queue(self._seed_frame("subscribed", subscription, contents))
        self._open(subscription)

    def _seed_frame(self, kind: str, subscription: _Subscription, contents: list) -> str:
        return _dumps(
            {
                "type": kind,
                "connection_id": self.connection_id,
                "message_id": subscription.seq,
                "id": subscription.name,
                "channel": subscription.channel,
                "contents": contents,
            }
        )

    async def _pulse_contents(self, channel: str, account_id: str) -> list:
        body = await self._read(PULSED[channel], {"account_id": account_id})
        return body["positions"] if channel == "v4_positions" else [body]

    async def _pulse(self, subscription: _Subscription) -> None:
        """Every STREAM_PULSE_SECONDS, the subscription's read as it stands."""
        period = settings.STREAM_PULSE_SECONDS
        next_at = time.monotonic() + period
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + period, time.monotonic())
            try:
                contents = await self._pulse_contents(subscription.channel, subscription.name)
            except StreamError as error:  # e.g. the key lost a scope: the pulse stops
                self._drop(subscription)
                self._error(error, channel=subscription.channel, id=subscription.name)
                return
            subscription.seq += 1
            self._queue(self._seed_frame("channel_data", subscription, contents))
