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

A fill also goes out, anonymized, as a public trade of its market
(`trading.marketdata.store.trades_publish`).

Pushes are hints (SPEC §8): REST stays the source of truth. They are sent
after the caller's transaction commits (at once outside one), so a client is
never told about a change that rolled back; a failed push is logged, never
raised into the caller.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from portal.money import dec, money, price, qty
from trading.marketdata.quotes import Outcome, PublicTrade
from trading.marketdata.store import trades_publish
from trading.models import Fill, MarginCall, Order, Position

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
    stale: bool = False  # some position is priced with a stale price
    stale_since: datetime | None = None  # the oldest such price's time

    def to_text(self) -> str:
        return _json(
            {
                "type": "margin",
                "ts": self.at.isoformat(),
                "status": self.status,
                "health": dec(self.health),
                "utilization": dec(self.utilization),
                "cash": str(self.cash),
                "used_margin": str(self.used_margin),
                "adjusted_equity": str(self.adjusted_equity),
                "available_margin": str(self.available_margin),
                "stale": self.stale,
                "stale_since": None if self.stale_since is None else self.stale_since.isoformat(),
            }
        )


def margin_updates_broadcast(*, updates: Sequence[MarginUpdate]) -> None:
    """Push each update to its account's group, after the current transaction commits."""
    messages = [
        (
            account_group(update.account_id),
            {"type": MARGIN_UPDATE, "account": update.account_id, "text": update.to_text()},
        )
        for update in updates
    ]
    _send_on_commit(messages)


def margin_calls_broadcast(*, calls: Sequence[tuple[MarginCall, Decimal | None]]) -> None:
    """Push margin calls' openings or resolutions to their accounts' groups, after commit."""
    _send_on_commit(
        [
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
    """Push an order's state (filled, pending, rejected…) to its account's group, after commit."""
    payload = {
        "type": "order",
        "order_id": order.public_id,
        "client_order_id": order.client_order_id,
        "status": order.status,
        "side": order.side,
        "symbol": order.instrument.symbol,
        "outcome": order.outcome or None,
        "venue": order.venue.code if order.venue_id else None,
        "quantity": qty(order.quantity),
        "price": price(order.limit_price),
        "filled_quantity": qty(order.filled_quantity),
        "filled_notional": money(order.filled_notional),
        "average_fill_price": price(order.average_fill_price),
        "fees": money(order.fees),
        "reject_code": order.reject_code or None,
        "ts": order.updated_at.isoformat(),
    }
    _send_on_commit([_account_message(order.account_id, ORDER_UPDATE, payload)])


def fill_broadcast(*, fill: Fill, order: Order, position: Position) -> None:
    """After commit: the fill and the position it left to the account's group, and
    the fill, without the account, as a public trade of its market."""
    symbol = fill.instrument.symbol
    account_id = fill.account_id
    ts = fill.created_at.isoformat()
    messages = [
        _account_message(
            account_id,
            FILL_UPDATE,
            {
                "type": "fill",
                "fill_id": fill.public_id,
                "order_id": order.public_id,
                "client_order_id": order.client_order_id,
                "symbol": symbol,
                "outcome": fill.outcome or None,
                "side": fill.side,
                "quantity": qty(fill.quantity),
                "price": price(fill.price),
                "notional": money(fill.notional),
                "fees": money(fill.venue_fee + fill.commission),
                "realized_pnl": money(fill.realized_pnl),
                "liquidity": fill.liquidity,
                "venue": fill.venue.code,
                "ts": ts,
            },
        ),
        _account_message(
            account_id,
            POSITION_UPDATE,
            {
                "type": "position",
                "symbol": symbol,
                "outcome": position.outcome or None,
                "quantity": qty(position.quantity),
                "average_price": price(position.average_price),
                "realized_pnl": money(position.realized_pnl),
                "isolated_margin": money(position.isolated_margin),
                "leverage": position.leverage,
                "ts": ts,
            },
        ),
    ]
    trade = PublicTrade(
        trade_id=fill.public_id,
        listing_key=f"{symbol}@{fill.venue.code}",
        outcome=Outcome(fill.outcome) if fill.outcome else None,
        side=fill.side,
        price=fill.price,
        size=fill.quantity,
        ts=fill.created_at,
    )
    _send_on_commit(messages)
    transaction.on_commit(lambda: _trades_publish([trade]))


def leverage_broadcast(
    *, account_id: int, symbol: str, old: int, new: int, cancelled_order_ids: Sequence[str]
) -> None:
    """Push an applied leverage change to the account's group, after commit."""
    _send_on_commit(
        [
            _account_message(
                account_id,
                LEVERAGE_UPDATE,
                {
                    "type": "leverage",
                    "symbol": symbol,
                    "old_leverage": old,
                    "new_leverage": new,
                    "cancelled_order_ids": list(cancelled_order_ids),
                    "ts": timezone.now().isoformat(),
                },
            )
        ]
    )


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
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        layer_run(_group_send_all(layer, messages), timeout=SEND_TIMEOUT_SECONDS)
    except Exception:
        # A push is a hint; the caller's work (already committed) must not fail for it.
        logger.exception("broadcasts: could not push %d messages", len(messages))


async def _group_send_all(layer, messages: list[tuple[str, dict]]) -> None:
    # Concurrent, but on a bounded number of Redis connections.
    limit = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(group: str, message: dict) -> None:
        async with limit:
            await layer.group_send(group, message)

    await asyncio.gather(*(send(group, message) for group, message in messages))
