"""One shape per resource: a partner-stream event is the REST object, field for field.

The `order`, `fill`, `position`, `margin` and `leverage` events of the account and
positions channels carry, besides the stream's own `channel`, `seq`, `account_id`
and `type`, exactly the object GET orders/{id}, GET fills, GET positions, GET
margin and POST leverage answer (`trading.presenters`): the same names, the same
decimal strings, the same timestamps.
"""

import asyncio
import json

import httpx

from accounts.models import Account
from tests.streams.conftest import connect, receive, run, silent
from trading.broadcasts import MarginUpdate, margin_updates_broadcast
from trading.selectors import margin_summary_get

ENVELOPE = ("channel", "seq", "account_id", "type")


def _resource(event: dict) -> dict:
    return {name: value for name, value in event.items() if name not in ENVELOPE}


def test_order_fill_and_position_events_are_the_rest_objects_field_by_field(stream_server, market):
    account, key = market
    headers = {"Authorization": f"Bearer {key}"}
    api = f"{stream_server}/v1/intelligence"

    async def body():
        ws = await connect(stream_server, key)
        await ws.send(json.dumps({"op": "subscribe", "channel": "account"}))
        await ws.send(json.dumps({"op": "subscribe", "channel": "positions"}))
        for _ in range(4):  # two acks, two snapshots
            await receive(ws)
        async with httpx.AsyncClient(headers=headers) as client:
            executed = (
                await client.post(
                    f"{api}/execute",
                    json={
                        "symbol": "CMD-MKT:NO",
                        "side": "buy",
                        "notional_usdc": "20",
                        "client_order_id": "shape-1",
                    },
                )
            ).json()
            events = await silent(ws, 2.0)
            order = (await client.get(f"{api}/orders/{executed['id']}")).json()
            fills = (await client.get(f"{api}/fills")).json()["fills"]
            positions = (await client.get(f"{api}/positions")).json()["positions"]
        await ws.close()
        return executed, events, order, fills, positions

    executed, events, order, fills, positions = run(body())
    account_events = [e for e in events if e["channel"] == "account"]
    assert {e["account_id"] for e in events} == {account.public_id}

    # The order: the last event about it is GET orders/{id}, every field.
    order_events = [e for e in account_events if e["type"] == "order"]
    assert order_events and all(e["id"] == executed["id"] for e in order_events)
    pushed = _resource(order_events[-1])
    assert set(pushed) == set(order)  # no field left out on either side
    for name, value in order.items():
        assert pushed[name] == value, name
    assert pushed["symbol"] == "CMD-MKT:NO"  # the contract, as REST names it
    assert (pushed["status"], pushed["client_order_id"]) == ("filled", "shape-1")
    assert pushed["average_price"] == executed["average_price"]

    # The fill: a GET fills item.
    (fill_event,) = [e for e in account_events if e["type"] == "fill"]
    (fill,) = fills
    assert _resource(fill_event) == fill
    assert fill["order_id"] == executed["id"]

    # The position (on both channels): a GET positions item, priced when pushed.
    (position,) = positions
    position_events = [e for e in events if e["type"] == "position"]
    assert {e["channel"] for e in position_events} == {"account", "positions"}
    for event in position_events:
        assert _resource(event) == position
    assert position["symbol"] == "CMD-MKT:NO"


def test_margin_and_leverage_events_are_the_rest_objects(stream_server, market):
    account, key = market
    headers = {"Authorization": f"Bearer {key}"}
    api = f"{stream_server}/v1/intelligence"

    async def body():
        ws = await connect(stream_server, key)
        await ws.send(json.dumps({"op": "subscribe", "channel": "account"}))
        await ws.send(json.dumps({"op": "subscribe", "channel": "positions"}))
        for _ in range(4):
            await receive(ws)
        async with httpx.AsyncClient(headers=headers) as client:
            await asyncio.to_thread(_margin_push, account)
            margin_event = await receive(ws)
            margin = (await client.get(f"{api}/margin")).json()
            changed = await client.post(
                f"{api}/leverage", json={"symbol": "BTC-PERP", "leverage": 3}
            )
            leverage_event = await receive(ws)
        await ws.close()
        return margin_event, margin, changed.json(), leverage_event

    margin_event, margin, changed, leverage_event = run(body())

    assert (margin_event["channel"], margin_event["type"]) == ("positions", "margin")
    pushed = _resource(margin_event)
    pushed.pop("as_of")  # when each was computed
    for name, value in pushed.items():
        assert margin[name] == value, name
    assert {"margin_utilization", "available_credit", "stale_since"} <= set(pushed)

    assert (leverage_event["channel"], leverage_event["type"]) == ("account", "leverage")
    assert changed["status"] == "APPLIED"
    rest = {k: v for k, v in changed.items() if k not in ("requestId", "accountId", "message")}
    assert _resource(leverage_event) == rest


def _margin_push(account: Account) -> None:
    """Push the account's figures as the margin engine does (a MarginUpdate)."""
    summary = margin_summary_get(account=Account.objects.get(pk=account.pk))
    update = MarginUpdate(
        account_id=account.pk,
        cash=summary.cash,
        used_margin=summary.used_margin,
        adjusted_equity=summary.adjusted_equity,
        available_margin=summary.available_margin,
        health=summary.health,
        utilization=summary.utilization,
        status=summary.status,
        at=summary.at,
        may_borrow=summary.may_borrow,
        stale=summary.stale,
        stale_since=summary.stale_since,
    )
    margin_updates_broadcast(updates=[update])
