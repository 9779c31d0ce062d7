"""Build margin scenarios through the real services, and watch what the engine sends.

The scenario: deposit 1,000 USDC, buy 2,000 TRUMP-WIN YES at 0.60 (cash
−200: a 200 USDC loan). With the collateral price p (the best bid of the one
quoted listing, a 30-day market) Margin Health is about

    p = 0.60 → 3.1    p = 0.30 → 1.6    p = 0.15 → 0.93    p = 0.10 → 0.65
"""

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from channels.layers import get_channel_layer
from django.db import transaction

from accounts import outbox
from accounts.models import Account
from accounts.services.ledger import accounts_changed_key
from portal.redis import redis_client, redis_key
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.quoting import put_quote
from trading.broadcasts import layer_run
from trading.enqueue import ACCOUNT_LIQUIDATE, MARKET_SETTLE
from trading.marketdata.store import TickBatch
from trading.models import Instrument
from trading.services.positions import Side, binary_fill_apply

LISTING = "TRUMP-WIN@kalshi"


def buy(account: Account, instrument: Instrument, quantity: str, price: str, outcome="yes"):
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        binary_fill_apply(
            account=locked,
            instrument=instrument,
            outcome=outcome,
            side=Side.BUY,
            quantity=Decimal(quantity),
            price=Decimal(price),
        )
    account.refresh_from_db()


def borrower(
    instrument: Instrument,
    *,
    deposit: str = "1000",
    quantity: str = "2000",
    price: str = "0.60",
    kind: Account.Kind = Account.Kind.CUSTODIAL,
) -> Account:
    """An account holding `quantity` contracts bought with `deposit` and, if short, a loan."""
    fields = {"margin_enabled": True, "margin_override": "granted"}
    account = open_account(kind=kind, **(fields if kind == Account.Kind.CUSTODIAL else {}))
    credit_cash(account, deposit)
    buy(account, instrument, quantity, price)
    return account


def tick(listing_key: str = LISTING, *, bid: str, ask: str | None = None) -> TickBatch:
    """Publish a quote (as the feed does) and return the batch the engine would receive."""
    ask = ask or str(Decimal(bid) + Decimal("0.02"))
    quote = put_quote(listing_key, bid=bid, ask=ask, twap=bid)
    return TickBatch(ts=quote.ts, quotes=(quote,))


def margin_keys_clear() -> None:
    """Forget what earlier tests left in this process's Redis: changed accounts,
    the engine lock."""
    redis_client().delete(accounts_changed_key(), redis_key("margin", "engine-lock"))


@dataclass
class SentTasks:
    """Tasks sent through the outbox, captured instead of run (tasks are eager in tests)."""

    calls: list[tuple[str, dict]]

    def named(self, name: str) -> list[dict]:
        return [kwargs for task, kwargs in self.calls if task == name]


def capture_outbox_sends(monkeypatch, *names: str) -> SentTasks:
    """Capture the outbox's sends of these tasks (default: liquidation and settlement);
    other tasks still run."""
    names = names or (ACCOUNT_LIQUIDATE, MARKET_SETTLE)
    sent = SentTasks(calls=[])
    send = outbox._send

    def capture(item_id: int, task: str, kwargs: dict, countdown: float) -> None:
        if task in names:
            sent.calls.append((task, kwargs))
        else:
            send(item_id, task, kwargs, countdown)

    monkeypatch.setattr(outbox, "_send", capture)
    return sent


PROBE = "test.probe"
_waiting: dict[str, asyncio.Future] = {}


def listen(group: str) -> str:
    """A channel in `group`, as a consumer's would be (read it with `receive`).

    Returns once the subscription is live: Redis pub/sub delivers a message only
    to subscriptions it already holds, so this sends probes to the group until
    one comes back (`receive` skips them).
    """

    async def join() -> str:
        layer = get_channel_layer()
        channel = await layer.new_channel("test.")
        await layer.group_add(group, channel)
        while True:
            await layer.group_send(group, {"type": PROBE})
            if await _next(channel, 0.2) is not None:
                return channel

    return layer_run(join(), timeout=10)


async def _next(channel: str, timeout: float) -> dict | None:
    # A receive that times out is kept for the next call rather than cancelled
    # (cancelling would drop the channel's subscription).
    waiting = _waiting.pop(channel, None) or asyncio.ensure_future(
        get_channel_layer().receive(channel)
    )
    done, _ = await asyncio.wait({waiting}, timeout=timeout)
    if not done:
        _waiting[channel] = waiting
        return None
    return waiting.result()


def receive(channel: str, timeout: float = 2.0) -> dict | None:
    """The next message on `channel` (probes skipped), or None after `timeout` seconds."""

    async def wait() -> dict | None:
        deadline = asyncio.get_running_loop().time() + timeout
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            message = await _next(channel, left)
            if message is not None and message["type"] != PROBE:
                return message
        return None

    return layer_run(wait(), timeout=timeout + 5)
