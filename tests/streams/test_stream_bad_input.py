"""Bad input on the WebSocket side (issue 14), over real sockets: the stream's commands
refuse loosely written numbers exactly as their REST twins do (the same serializers),
deeply nested messages and NUL bytes in ids are refused without losing the socket, and
a handshake for a path no route serves is a clean 404, with nothing in the server log."""

import json
import tempfile

import httpx
import pytest
import websockets

from tests.live_server import asgi_server
from tests.streams.conftest import connect, receive, run
from tests.streams.test_stream_commands import command, ws_outcome
from trading.models import Order

ORDER = {"symbol": "CMD-MKT", "side": "buy", "order_type": "limit"}


def test_commands_refuse_loose_numbers_exactly_as_rest_does(stream_server, market):
    _, key = market
    bad = [
        {"quantity": 100, "price": "0.4"},  # a JSON number
        {"quantity": "١٠٠", "price": "0.4"},  # Arabic-Indic digits
        {"quantity": "1_00", "price": "0.4"},
        {"quantity": "100", "price": " 0.4 "},
        {"quantity": "100", "price": "4e-1"},
    ]

    async def body():
        ws = await connect(stream_server, key)
        pairs = []
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as rest:
            for numbers in bad:
                got = ws_outcome(await command(ws, "add_order", ORDER | numbers))
                response = await rest.post(
                    f"{stream_server}/v1/intelligence/orders", json=ORDER | numbers
                )
                pairs.append((got, (response.status_code, response.json())))
        await ws.close()
        return pairs

    for got, rest in run(body()):
        assert got == rest
        status, error = got
        assert (status, error["code"]) == (400, "invalid_params")
        assert "must be a decimal string of ASCII digits" in error["message"]
    assert not Order.objects.exists()


def test_a_deeply_nested_message_is_refused_and_the_socket_stays_open(stream_server, market):
    _, key = market

    async def body():
        ws = await connect(stream_server, key)
        await ws.send("[" * 5000 + "]" * 5000)
        deep = await receive(ws)
        nested: object = "x"
        for _ in range(40):
            nested = {"a": nested}
        await ws.send(json.dumps({"type": "add_order", "id": "n", "params": nested}))
        deep_params = await receive(ws)
        await ws.send(json.dumps({"op": "ping"}))
        pong = await receive(ws)
        await ws.close()
        return deep, deep_params, pong

    deep, deep_params, pong = run(body())
    for error in (deep, deep_params):
        assert (error["type"], error["code"]) == ("error", "invalid_params")
        assert "JSON nested too deeply" in error["message"]
    assert pong["type"] == "pong"


def test_a_nul_byte_in_an_order_id_is_refused(stream_server, market):
    _, key = market

    async def body():
        ws = await connect(stream_server, key)
        replies = [
            await command(ws, "cancel_order", {"order_id": "ord_\x00"}),
            await command(
                ws,
                "modify_order",
                {"order_id": "a\x00", "cancel_order_id_type": "client_order_id", "price": "0.5"},
            ),
        ]
        await ws.close()
        return replies

    for reply in run(body()):
        assert (reply["type"], reply["status"], reply["code"]) == ("error", 400, "invalid_params")


def test_an_unknown_websocket_path_is_a_clean_404(transactional_db):
    paths = ["/ws/nope", "/v1/streams", "/ws/dashboard/acct_1/extra/", "/"]

    async def handshakes(base: str) -> list:
        refused = []
        for path in paths:
            url = base.replace("http://", "ws://") + path
            with pytest.raises(websockets.InvalidStatus) as caught:
                await websockets.connect(url, open_timeout=10, origin="http://127.0.0.1")
            refused.append(caught.value.response)
        # The real routes still answer.
        ws = await websockets.connect(base.replace("http://", "ws://") + "/v1/stream")
        await ws.send(json.dumps({"op": "ping"}))
        await ws.close()
        return refused

    with tempfile.TemporaryFile() as log:
        with asgi_server(log=log) as base:
            responses = run(handshakes(base))
        log.seek(0)
        output = log.read().decode()
    for path, response in zip(paths, responses, strict=True):
        assert response.status_code == 404, path
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(response.body) == {
            "code": "not_found",
            "message": f"No WebSocket endpoint {path}.",
        }
    assert "Traceback" not in output and "No route found" not in output, output
