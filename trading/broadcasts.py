"""The one place that pushes to channel groups (Channels, Redis layer).

Every account has a group `account.<id>`; the dashboard's and the partner
stream's consumers join it. Messages carry their client payload already
serialized (`text`, JSON): it is built once here, in the sender, and a
consumer forwards it to any number of sockets as is. The payload does not
name the account (the dashboard's socket is one account's; the partner
stream adds the account's public id from the message's `account`).

    {"type": "margin.update",   "account": <id>, "text": '{"type":"margin",…}'}
    {"type": "margin.call",     "account": <id>, "text": '{"type":"margin_call",…}'}
    {"type": "order.update",    "account": <id>, "text": '{"type":"order",…}'}
    {"type": "fill.update",     "account": <id>, "text": '{"type":"fill",…}'}
    {"type": "position.update", "account": <id>, "text": '{"type":"position",…}'}
    {"type": "leverage.update", "account": <id>, "text": '{"type":"leverage",…}'}

The ops risk desk's sockets join `ops.desk` and get a bare hint that what the desk
lists changed (`desk_changed_broadcast`; margin calls send it too):

    {"type": "desk.changed", "text": '{"type":"desk_changed","reason":"…"}'}

A payload is `{"type": <kind>}` followed by the resource as `trading.presenters`
shapes it for the REST API, field for field: an `order` is GET orders/{id}'s
body, a `fill` a GET fills item, a `position` a GET positions item (priced when
the push is sent, after commit; a closed position has quantity 0), a `margin`
GET margin's headline figures (`margin_headline_present`), a `leverage` POST
leverage's APPLIED body without `requestId` / `accountId` / `message`. The
`type` comes first, so a consumer can strip `{"type":"<kind>",` to forward the
bare object (`event_bare`).

A fill also goes out, anonymized, as a public trade of its market
(`trading.marketdata.store.trades_publish`).

Each call's messages go out as one batch: with the configured layer
(`portal.channel_layer.RedisPubSubBatchChannelLayer`) one Redis pipeline of
PUBLISH commands, so the margin engine's updates of a tick cost one round trip
(per 1,000), not one each; the messages are those `group_send` would publish.

The margin engine asks first which of its accounts somebody follows
(`account_groups_followed`: the layer's `groups_followed`, one PUBSUB NUMSUB round
trip per 1,000) and builds updates for those only: a tick that moves 100,000
holders of a market but only 300 open dashboards costs 300 updates, not 100,000
published to nobody.

Pushes are hints (SPEC §8): REST stays the source of truth. They are sent
after the caller's transaction commits (at once outside one), so a client is
never told about a change that rolled back; a failed push is logged, never
raised into the caller.
"""

import asyncio
import copy
import logging
import os
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from channels.layers import get_channel_layer
from django.db import transaction
from redis.exceptions import RedisError

from portal import metrics
from portal.money import dec
from trading.marketdata.quotes import Outcome, PublicTrade
from trading.marketdata.store import trades_publish
from trading.models import Fill, MarginCall, Order, Position
from trading.presenters import (
    fill_present,
    fill_row,
    leverage_change_present,
    margin_headline_present,
    order_of,
    position_present,
)
from trading.selectors import position_view_get

logger = logging.getLogger(__name__)
T = TypeVar("T")

MARGIN_UPDATE = "margin.update"
MARGIN_CALL = "margin.call"
ORDER_UPDATE = "order.update"
FILL_UPDATE = "fill.update"
POSITION_UPDATE = "position.update"
LEVERAGE_UPDATE = "leverage.update"
SEND_CONCURRENCY = 32
SEND_TIMEOUT_SECONDS = 5.0
APPLIED = "APPLIED"  # seed 004's status of an applied leverage change (the only one pushed)


def event_bare(text: str) -> str:
    """A payload's resource without its leading `"type"` (kinds never hold a comma)."""
    return "{" + text.partition(",")[2]


def account_group(account_id: int) -> str:
    """The channel group of one account's live updates."""
    return f"account.{account_id}"


def _account_message(account_id: int, kind: str, payload: dict) -> tuple[str, dict]:
    return account_group(account_id), {"type": kind, "account": account_id, "text": _json(payload)}


@dataclass(frozen=True, slots=True)
class MarginUpdate:
    """An account's headline margin figures (the dashboard gauge and summary)."""

    account_id: int
    cash: Decimal
    used_margin: Decimal
    adjusted_equity: Decimal
    available_margin: Decimal
    health: Decimal | None  # None: unbounded (no borrowing)
    utilization: Decimal | None  # None: AE = 0 while borrowing
    status: str
    at: datetime
    may_borrow: bool = True  # margin enabled: Available Margin is credit it can draw
    stale: bool = False  # some position is priced with a stale price
    stale_since: datetime | None = None  # the oldest such price's time

    def to_text(self) -> str:
        return _json({"type": "margin", **margin_headline_present(self)})


def account_groups_followed(account_ids: Sequence[int]) -> list[bool]:
    """Whether each account's group has a socket in it now (a dashboard, a positions
    page, a partner stream's account channel). All True when the channel layer cannot
    tell, or cannot be asked (logged): better an update published to nobody than one
    withheld from somebody."""
    layer = get_channel_layer()
    if layer is None or not hasattr(type(layer), "groups_followed"):
        return [True] * len(account_ids)
    groups = [account_group(account_id) for account_id in account_ids]
    try:
        return layer_run(layer.groups_followed(groups), timeout=SEND_TIMEOUT_SECONDS)
    except Exception:
        logger.warning("broadcasts: could not ask which accounts are followed", exc_info=True)
        return [True] * len(account_ids)


def margin_updates_broadcast(
    *, updates: Sequence[MarginUpdate], desk_reason: str | None = None
) -> None:
    """Push each update to its account's group (and, given `desk_reason`, the ops desk
    its hint), after the current transaction commits: one batch, one pipeline."""
    messages = [_desk_message(desk_reason)] if desk_reason else []
    messages += [
        (
            account_group(update.account_id),
            {"type": MARGIN_UPDATE, "account": update.account_id, "text": update.to_text()},
        )
        for update in updates
    ]
    _send_on_commit(messages)


def margin_calls_broadcast(*, calls: Sequence[tuple[MarginCall, Decimal | None]]) -> None:
    """Push margin calls' openings or resolutions to their accounts' groups (and a hint
    to the ops risk desk), after commit."""
    _send_on_commit(
        ([_desk_message("margin_call")] if calls else [])
        + [
            _account_message(
                call.account_id,
                MARGIN_CALL,
                {
                    "type": "margin_call",
                    "margin_call_id": call.pk,
                    "status": call.status,
                    "health": dec(health),
                    "opened_at": call.opened_at.isoformat(),
                    "resolved_at": call.resolved_at.isoformat() if call.resolved_at else None,
                },
            )
            for call, health in calls
        ]
    )


def order_update_broadcast(*, order: Order) -> None:
    """Push an order as it stands (the order object) to its account's group, after commit."""
    payload = {"type": "order", **order_of(order)}
    messages = [_account_message(order.account_id, ORDER_UPDATE, payload)]
    public_id, status, account_id = order.public_id, order.status, order.account_id

    def send() -> None:
        # Logged under the request id of the work that changed the order (portal.logs).
        logger.info("push: order %s %s to account %s", public_id, status, account_id)
        _send(messages)

    transaction.on_commit(send)


def fill_broadcast(*, fill: Fill, order: Order, position: Position) -> None:
    """After commit: the fill and the position it left (priced then) to the account's
    group, and the fill, without the account, as a public trade of its market."""
    symbol = fill.instrument.symbol
    account_id = fill.account_id
    fill_message = _account_message(
        account_id, FILL_UPDATE, {"type": "fill", **fill_present(fill_row(fill, order=order))}
    )
    held = copy.copy(position)  # as this fill left it, whatever later fills in the transaction do
    trade = PublicTrade(
        trade_id=fill.public_id,
        listing_key=f"{symbol}@{fill.venue.code}",
        outcome=Outcome(fill.outcome) if fill.outcome else None,
        side=fill.side,
        price=fill.price,
        size=fill.quantity,
        ts=fill.created_at,
    )

    def send() -> None:
        if get_channel_layer() is None:
            return
        messages = [fill_message]
        try:
            view = position_view_get(position=held)
        except Exception:  # Redis away: the fill still goes; the client re-reads positions
            logger.exception("broadcasts: could not price position %s for its push", held.pk)
        else:
            payload = {"type": "position", **position_present(view)}
            messages.append(_account_message(account_id, POSITION_UPDATE, payload))
        _send(messages)

    transaction.on_commit(send)
    transaction.on_commit(lambda: _trades_publish([trade]))


def leverage_broadcast(
    *, account_id: int, symbol: str, old: int, new: int, cancelled_order_ids: Sequence[str]
) -> None:
    """Push an applied leverage change to the account's group, after commit."""
    change = leverage_change_present(
        symbol=symbol,
        status=APPLIED,
        old_leverage=old,
        new_leverage=new,
        cancelled_order_ids=cancelled_order_ids,
    )
    _send_on_commit([_account_message(account_id, LEVERAGE_UPDATE, {"type": "leverage", **change})])


OPS_DESK_GROUP = "ops.desk"
DESK_CHANGED = "desk.changed"


def _desk_message(reason: str) -> tuple[str, dict]:
    return OPS_DESK_GROUP, {
        "type": DESK_CHANGED,
        "text": _json({"type": "desk_changed", "reason": reason}),
    }


def desk_changed_broadcast(*, reason: str) -> None:
    """Hint the ops risk desk's sockets (group `ops.desk`) that what it lists changed
    (`reason`: "margin_call", "health", "liquidation", "withdrawal", "kyb", ...), after
    commit. The page re-reads /ops/desk.json: the hint carries no figures."""
    _send_on_commit([_desk_message(reason)])


def _trades_publish(trades: list[PublicTrade]) -> None:
    try:
        trades_publish(trades)
    except RedisError:
        logger.exception("broadcasts: could not publish %d public trades", len(trades))


def _json(payload: dict) -> str:
    return orjson.dumps(payload).decode()


def _send_on_commit(messages: list[tuple[str, dict]]) -> None:
    if messages:
        transaction.on_commit(lambda: _send(messages))


class _SendLoop:
    """This process's event loop for channel-layer sends, run by a daemon thread.

    One long-lived loop keeps the layer's Redis connections open between sends
    (async_to_sync would start a loop, and connect, on every call).
    """

    def __init__(self):
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="broadcasts", daemon=True).start()


_send_loop: _SendLoop | None = None
_send_loop_lock = threading.Lock()


def _loop() -> asyncio.AbstractEventLoop:
    global _send_loop
    with _send_loop_lock:
        if _send_loop is None or _send_loop.pid != os.getpid():  # new, or forked
            _send_loop = _SendLoop()
        return _send_loop.loop


def layer_run(coroutine: Coroutine[Any, Any, T], *, timeout: float) -> T:
    """Run `coroutine` on this process's channel-layer loop; its result, or TimeoutError.

    Channel-layer calls must all run on that one loop: the pub/sub layer keeps
    one Redis connection, subscriptions and inboxes per event loop.
    """
    return asyncio.run_coroutine_threadsafe(coroutine, _loop()).result(timeout=timeout)


def _send(messages: list[tuple[str, dict]]) -> None:
    """Publish `messages` in one batch: one Redis pipeline when the layer has
    `group_send_batch` (the configured `portal.channel_layer` one), else one
    group_send each."""
    layer = get_channel_layer()
    if layer is None:
        return
    # Looked up on the class: channels_redis' layers answer unknown attributes only
    # inside an event loop.
    batch = layer.group_send_batch if hasattr(type(layer), "group_send_batch") else None
    started = time.perf_counter()
    try:
        if batch is not None:
            layer_run(batch(messages), timeout=SEND_TIMEOUT_SECONDS)
        else:
            layer_run(_group_send_all(layer, messages), timeout=SEND_TIMEOUT_SECONDS)
    except Exception:
        # A push is a hint; the caller's work (already committed) must not fail for it.
        logger.exception("broadcasts: could not push %d messages", len(messages))
    else:
        metrics.push_batch_observed(
            mode="per_message" if batch is None else "pipelined",
            messages=len(messages),
            seconds=time.perf_counter() - started,
        )


async def _group_send_all(layer, messages: list[tuple[str, dict]]) -> None:
    # Concurrent, but on a bounded number of Redis connections.
    limit = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(group: str, message: dict) -> None:
        async with limit:
            await layer.group_send(group, message)

    await asyncio.gather(*(send(group, message) for group, message in messages))
