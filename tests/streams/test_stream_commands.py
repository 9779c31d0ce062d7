"""Seed 002's commands on the stream return what their REST twins return: the same
status, body and error codes, through the same views, scopes, signatures and rate
limits; and the pulsed positions / balances and live orders subscriptions."""

import json
import time
from decimal import Decimal

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from accounts.api_auth import canonical_json
from tests.api.conftest import key_issue
from tests.streams.conftest import connect, receive, receive_until, run

IGNORED = {"id", "client_order_id", "created_at", "updated_at", "requestId"}


async def command(ws, kind: str, params: dict, **extra) -> dict:
    """Send a command; its result or error (matched by our id)."""
    request_id = f"r{time.monotonic_ns()}"
    await ws.send(json.dumps({"type": kind, "params": params, "id": request_id, **extra}))
    reply = await receive_until(ws, lambda m: m.get("id") == request_id)
    assert reply["command"] == kind
    return reply


def ws_outcome(reply: dict) -> tuple[int, dict]:
    """A command's reply as (status, REST-shaped body)."""
    if reply["type"] == "error":
        return reply["status"], {"code": reply["code"], "message": reply["message"]}
    return reply["status"], reply["data"]


def same(a: dict) -> dict:
    """`a` without the fields that differ between two equal requests (ids, times)."""
    return {k: v for k, v in a.items() if k not in IGNORED and k != "cancelledOrderIds"}


def test_leverage_commands_equal_their_rest_twins(stream_server, market):
    _, key = market
    headers = {"Authorization": f"Bearer {key}"}
    api = f"{stream_server}/v1/intelligence"

    async def body():
        ws = await connect(stream_server, key)
        pairs = []
        async with httpx.AsyncClient(headers=headers) as rest:
            for kind, params, method, path in [
                ("get_leverage", {"symbol": "BTC-PERP"}, "GET", "leverage?symbol=BTC-PERP"),
                ("get_leverage", {"symbol": "NOPE"}, "GET", "leverage?symbol=NOPE"),
                ("get_leverage", {}, "GET", "leverage"),
                ("get_leverage_levels", {}, "GET", "leverage/levels"),
                ("get_leverage_levels", {"symbol": "X"}, "GET", "leverage/levels?symbol=X"),
                ("set_leverage", {"symbol": "BTC-PERP", "leverage": 7}, "POST", "leverage"),
                ("set_leverage", {"symbol": "BTC-PERP", "leverage": 99}, "POST", "leverage"),
                ("set_leverage", {"symbol": "NOPE", "leverage": 2}, "POST", "leverage"),
                ("set_leverage", {"symbol": "BTC-PERP", "leverage": "x"}, "POST", "leverage"),
            ]:
                got = ws_outcome(await command(ws, kind, params))
                if method == "GET":
                    response = await rest.get(f"{api}/{path}")
                else:
                    response = await rest.post(f"{api}/{path}", json=params)
                pairs.append((kind, got, (response.status_code, response.json())))
        await ws.close()
        return pairs

    pairs = run(body())
    for kind, (ws_status, ws_body), (rest_status, rest_body) in pairs:
        assert ws_status == rest_status, (kind, ws_body, rest_body)
        if kind == "set_leverage" and ws_status == 200:  # the stream's change came first
            assert (ws_body["oldLeverage"], rest_body["oldLeverage"]) == (5, 7)
            ws_body, rest_body = same(ws_body), same(rest_body)
            ws_body.pop("oldLeverage"), rest_body.pop("oldLeverage")
        assert same(ws_body) == same(rest_body), kind
    statuses = [ws_status for _, (ws_status, _), _ in pairs]
    assert statuses == [200, 404, 400, 200, 404, 200, 422, 422, 400]
    assert pairs[6][1][1]["rejectReason"] == "INVALID_LEVERAGE"


def test_order_commands_equal_their_rest_twins(stream_server, market):
    _, key = market
    headers = {"Authorization": f"Bearer {key}"}
    api = f"{stream_server}/v1/intelligence"
    resting = {
        "symbol": "CMD-MKT",
        "side": "buy",
        "order_type": "limit",
        "quantity": "100",
        "price": "0.4",
    }

    async def body():
        ws = await connect(stream_server, key)
        out = {}
        async with httpx.AsyncClient(headers=headers) as rest:

            async def both(name, ws_kind, ws_params, method, path, rest_body=None):
                got = ws_outcome(await command(ws, ws_kind, ws_params))
                response = await rest.request(method, f"{api}/{path}", json=rest_body)
                out[name] = (got, (response.status_code, response.json()))
                return got[1], response.json()

            ws_order, rest_order = await both(
                "add",
                "add_order",
                {**resting, "order_time_in_force": "GTC", "client_order_id": "ws-1"},
                "POST",
                "orders",
                {**resting, "time_in_force": "GTC", "client_order_id": "rest-1"},
            )
            await both(
                "retry",
                "add_order",
                {**resting, "client_order_id": "ws-1"},
                "POST",
                "orders",
                {**resting, "client_order_id": "rest-1"},
            )
            await both(
                "duplicate",
                "add_order",
                {**resting, "quantity": "101", "client_order_id": "ws-1"},
                "POST",
                "orders",
                {**resting, "quantity": "101", "client_order_id": "rest-1"},
            )
            await both(
                "bad side",
                "add_order",
                {**resting, "side": "up"},
                "POST",
                "orders",
                {**resting, "side": "up"},
            )
            await both(
                "unknown market",
                "add_order",
                {**resting, "symbol": "NOPE"},
                "POST",
                "orders",
                {**resting, "symbol": "NOPE"},
            )
            await both(
                "no margin",
                "add_order",
                {**resting, "quantity": "1000000"},
                "POST",
                "orders",
                {**resting, "quantity": "1000000"},
            )
            await both(
                "modify",
                "modify_order",
                {"order_id": ws_order["id"], "price": "0.41"},
                "PATCH",
                f"orders/{rest_order['id']}",
                {"price": "0.41"},
            )
            await both(
                "cancel by client id",
                "cancel_order",
                {
                    "symbol": "CMD-MKT",
                    "order_id": "ws-1",
                    "cancel_order_id_type": "client_order_id",
                },
                "DELETE",
                "orders/by-client-id/rest-1",
            )
            await both(
                "cancel again",
                "cancel_order",
                {"order_id": ws_order["id"]},
                "DELETE",
                f"orders/{rest_order['id']}",
            )
            await both(
                "cancel unknown",
                "cancel_order",
                {"order_id": "ord_nope"},
                "DELETE",
                "orders/ord_nope",
            )
        await ws.close()
        return out

    out = run(body())
    expected = {
        "add": 201,
        "retry": 200,
        "duplicate": 409,
        "bad side": 400,
        "unknown market": 404,
        "no margin": 422,
        "modify": 200,
        "cancel by client id": 200,
        "cancel again": 409,
        "cancel unknown": 404,
    }
    for name, ((ws_status, ws_body), (rest_status, rest_body)) in out.items():
        assert ws_status == rest_status == expected[name], (name, ws_body, rest_body)
        if "code" in rest_body:
            assert ws_body["code"] == rest_body["code"], name
            if name != "duplicate" and name != "cancel again":  # these name the ids
                assert ws_body["message"] == rest_body["message"], name
        else:
            assert same(ws_body) == same(rest_body), name
    assert out["add"][0][1]["time_in_force"] == "GTC" and out["add"][0][1]["status"] == "open"
    assert out["modify"][0][1]["price"] == "0.41000000"
    assert out["cancel by client id"][0][1]["status"] == "cancelled"
    assert out["no margin"][0][1]["code"] == "insufficient_margin"


def test_commands_share_the_keys_rate_limit_and_scopes_with_rest(stream_server, market):
    account, key = market
    read_only = key_issue([account], scopes=["intelligence", "read"])
    api = f"{stream_server}/v1/intelligence"
    change = {"symbol": "BTC-PERP", "leverage": 3}

    async def body():
        ws = await connect(stream_server, key)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as rest:
            for _ in range(30):  # order management: 60 a minute, REST and stream together
                assert (await rest.post(f"{api}/leverage", json=change)).status_code == 200
                assert (await command(ws, "set_leverage", change))["status"] == 200
            limited = await command(ws, "set_leverage", change)
            rest_limited = await rest.post(f"{api}/leverage", json=change)
            still_reading = await command(ws, "get_leverage", {"symbol": "BTC-PERP"})
        reader = await connect(stream_server, read_only)
        forbidden = await command(reader, "add_order", {"symbol": "CMD-MKT"})
        await ws.close()
        await reader.close()
        return limited, rest_limited.status_code, still_reading, forbidden

    limited, rest_status, still_reading, forbidden = run(body())
    assert limited["type"] == "error" and limited["code"] == "rate_limited"
    assert limited["status"] == rest_status == 429 and limited["retry_after"] >= 1
    assert still_reading["status"] == 200  # another group's window
    assert forbidden["status"] == 403 and forbidden["code"] == "forbidden"


def test_a_signing_key_signs_its_write_commands(stream_server, market):
    account, _ = market
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    key = key_issue([account], signing_public_key=public)
    params = {"symbol": "BTC-PERP", "leverage": 4}

    def signed(timestamp: str) -> dict:
        message = f"{timestamp}set_leverage{canonical_json(json.dumps(params).encode())}"
        return {"timestamp": timestamp, "signature": private.sign(message.encode()).hex()}

    async def body():
        ws = await connect(stream_server, key)
        unsigned = await command(ws, "set_leverage", params)
        signature = signed(str(time.time_ns()))
        ok = await command(ws, "set_leverage", params, **signature)
        replay = await command(ws, "set_leverage", params, **signature)
        read = await command(ws, "get_leverage", {"symbol": "BTC-PERP"})  # reads: unsigned
        await ws.close()
        return unsigned, ok, replay, read

    unsigned, ok, replay, read = run(body())
    assert (unsigned["status"], unsigned["code"]) == (401, "unauthorized")
    assert ok["status"] == 200 and ok["data"]["newLeverage"] == 4
    assert (replay["status"], replay["code"]) == (401, "unauthorized")
    assert read["status"] == 200 and read["data"]["leverage"] == 4


def test_pulsed_positions_and_balances_and_live_orders(stream_server, market):
    account, key = market
    headers = {"Authorization": f"Bearer {key}"}
    api = f"{stream_server}/v1/intelligence"

    async def body():
        async with httpx.AsyncClient(headers=headers) as rest:
            await rest.post(
                f"{api}/execute", json={"symbol": "CMD-MKT", "side": "buy", "notional_usdc": "56"}
            )
            rest_positions = (await rest.get(f"{api}/positions")).json()["positions"]
            rest_balances = (await rest.get(f"{api}/balances")).json()
        ws = await connect(stream_server, key)
        await ws.send(json.dumps({"type": "subscribe", "params": {"channel": "v4_positions"}}))
        await ws.send(json.dumps({"type": "subscribe", "channel": "v4_balances"}))
        await ws.send(json.dumps({"type": "subscribe", "channel": "v4_orders"}))
        started = time.monotonic()
        got = {"v4_positions": [], "v4_balances": [], "v4_orders": []}
        while len(got["v4_positions"]) < 3 or len(got["v4_balances"]) < 3:
            message = await receive(ws)
            got[message["channel"]].append((time.monotonic() - started, message))
        order = await command(
            ws,
            "add_order",
            {"symbol": "CMD-MKT", "side": "buy", "quantity": "10", "price": "0.3"},
        )
        live = await receive_until(
            ws, lambda m: m.get("channel") == "v4_orders" and m["type"] == "channel_data"
        )
        await ws.close()
        return rest_positions, rest_balances, got, order, live

    rest_positions, rest_balances, got, order, live = run(body())
    positions = got["v4_positions"]
    assert [m["message_id"] for _, m in positions[:3]] == [1, 2, 3]
    assert [m["type"] for _, m in positions[:3]] == ["subscribed", "channel_data", "channel_data"]
    assert positions[0][1]["id"] == account.public_id
    assert positions[0][1]["connection_id"]
    # Pulsed every second.
    assert 0.7 < positions[2][0] - positions[1][0] < 1.6
    for _, message in positions:
        assert [p["symbol"] for p in message["contents"]] == [p["symbol"] for p in rest_positions]
        assert message["contents"][0]["quantity"] == rest_positions[0]["quantity"]
    balances = got["v4_balances"]
    assert [m["message_id"] for _, m in balances[:3]] == [1, 2, 3]
    assert balances[0][1]["contents"][0]["cash"] == rest_balances["cash"]
    (orders_subscribed,) = [m for _, m in got["v4_orders"]]
    assert orders_subscribed["type"] == "subscribed" and orders_subscribed["contents"] == []
    assert live["message_id"] == 2
    # v4_orders' contents are order objects, as the command's REST twin answered it.
    assert live["contents"] == [order["data"]]
    assert Decimal(live["contents"][0]["filled_quantity"]) == 0
