"""The Python SDK's stream client against the real server (uvicorn in a subprocess):
subscriptions with the local order book, account events, seed 002 commands and their
typed errors, recovery from a sequence gap, and reconnecting to a restarted server."""

import asyncio
import socket
from decimal import Decimal

import pytest
import websockets
from leviathan import AsyncLeviathan, Stream, errors

from tests.live_server import asgi_server
from tests.sdk.test_python_sdk import funded  # noqa: F401 (a fixture)


def ws(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1"


async def next_event(stream: Stream, kind: str, channel: str | None = None, timeout: float = 15):
    async def wait():
        async for event in stream:
            if event.type == kind and (channel is None or event.channel == channel):
                return event
        return None

    return await asyncio.wait_for(wait(), timeout)


def test_the_stream_follows_books_and_accounts_and_takes_commands(live_api, funded):  # noqa: F811
    account, key = funded

    async def scenario():
        async with (
            AsyncLeviathan(
                api_key=key, base_url=f"{live_api}/v1", stream_url=ws(live_api)
            ) as client,
            client.stream() as stream,
        ):
            await stream.subscribe("orderbook", market_id="TRUMP-WIN")
            snapshot = await next_event(stream, "snapshot", "orderbook")
            book = stream.books["TRUMP-WIN"]
            await stream.subscribe("account")
            await next_event(stream, "snapshot", "account")
            trade = await client.intelligence.execute(
                symbol="TRUMP-WIN", side="buy", notional_usdc="100"
            )
            order_event = await next_event(stream, "order", "account")
            placed = await stream.command(
                "add_order",
                {
                    "symbol": "TRUMP-WIN",
                    "side": "buy",
                    "order_type": "limit",
                    "order_time_in_force": "GTC",
                    "quantity": "5",
                    "price": "0.30",
                },
            )
            with pytest.raises(errors.InvalidParamsError):
                await stream.command("add_order", {"symbol": "TRUMP-WIN", "quantity": "-1"})
            return snapshot, book, trade, order_event, placed

    snapshot, book, trade, order_event, placed = asyncio.run(scenario())
    assert snapshot.seq == 1 and snapshot.data["market_id"] == "TRUMP-WIN"
    assert (book.best_bid(), book.best_ask()) == (Decimal("0.55"), Decimal("0.56"))
    assert order_event.data["account_id"] == account.public_id
    assert order_event.data["id"] == trade.id
    assert order_event.model.id == trade.id and order_event.model.status == "filled"
    assert order_event.model.extra["account_id"] == account.public_id
    assert placed["status"] == "open" and Decimal(placed["price"]) == Decimal("0.30")


def test_a_sequence_gap_brings_a_fresh_snapshot(live_api, funded):  # noqa: F811
    _, key = funded

    async def scenario():
        client = AsyncLeviathan(api_key=key, base_url=f"{live_api}/v1", stream_url=ws(live_api))
        async with client.stream() as stream:
            await stream.subscribe("orderbook", market_id="TRUMP-WIN")
            first = await next_event(stream, "snapshot", "orderbook")
            # The server dropped messages 2–5 for a slow reader: the next one is 6.
            await stream._dispatch(
                {"channel": "orderbook", "type": "update", "seq": 6, "market_id": "TRUMP-WIN"}
            )
            gap = await next_event(stream, "gap", "orderbook")
            again = await next_event(stream, "snapshot", "orderbook")
        await client.aclose()
        return first, gap, again

    first, gap, again = asyncio.run(scenario())
    assert first.seq == 1 and gap.data == {"after": 1}
    assert again.seq == 2 and again.data["books"]  # the server's own next number


def test_the_stream_reconnects_to_a_restarted_server_and_resubscribes(funded, transactional_db):  # noqa: F811
    _, key = funded
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario():
        server = asgi_server(port=port)
        base = server.__enter__()
        client = AsyncLeviathan(api_key=key, base_url=f"{base}/v1", stream_url=ws(base))
        stream = client.stream(reconnect_base=0.2, reconnect_max=1.0)
        await stream.connect()
        await stream.subscribe("orderbook", market_id="TRUMP-WIN")
        await next_event(stream, "snapshot", "orderbook")
        server.__exit__(None, None, None)  # the server goes away mid-stream …
        with asgi_server(port=port):  # … and comes back on the same address
            reconnected = await next_event(stream, "reconnected", timeout=30)
            restored = await next_event(stream, "snapshot", "orderbook", timeout=30)
        await stream.close()
        await client.aclose()
        return stream, reconnected, restored

    stream, reconnected, restored = asyncio.run(scenario())
    assert stream.reconnects == 1 and reconnected.type == "reconnected"
    assert restored.seq == 1 and restored.data["market_id"] == "TRUMP-WIN"


def test_a_refused_key_is_raised_not_retried(live_api, transactional_db):
    async def scenario():
        client = AsyncLeviathan(
            api_key="lev_live_not_a_key", base_url=f"{live_api}/v1", stream_url=ws(live_api)
        )
        with pytest.raises(errors.UnauthorizedError):
            await client.stream().connect()

    asyncio.run(scenario())


def test_a_silent_connection_is_dropped_and_reconnected():
    """The watchdog: a server that authenticates, then never answers (no message, no
    pong), is left after `stale_after` seconds for a new connection."""
    connections = []
    done = None  # set when the scenario is over: the silent handlers return

    async def silent(socket):
        connections.append(socket)
        await socket.recv()  # the auth
        await socket.send('{"type": "authenticated", "accounts": []}')
        await done.wait()  # then nothing at all

    async def scenario():
        nonlocal done
        done = asyncio.Event()
        async with websockets.serve(silent, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = AsyncLeviathan(
                api_key="lev_test_silent",
                base_url="http://127.0.0.1:9/v1",
                stream_url=f"ws://127.0.0.1:{port}/v1",
            )
            stream = client.stream(ping_every=0.2, stale_after=0.6, reconnect_base=0.05)
            await stream.connect()
            event = await next_event(stream, "reconnected", timeout=10)
            await stream.close()
            done.set()
            return event, len(connections)

    event, opened = asyncio.run(scenario())
    assert event.type == "reconnected" and opened >= 2
