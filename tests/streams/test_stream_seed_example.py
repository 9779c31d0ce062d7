"""Seed 000's "WebSocket Streams" Python example works as written against our server
(the URL and the placeholder key aside)."""

import ast
import subprocess
import sys
import time

from accounts.models import Account
from tests.api.conftest import key_issue
from tests.factories import open_account
from tests.streams.conftest import stream_url
from tests.trading.conftest import perp_create
from tests.trading.quoting import put_quote

SEED_URI = "wss://stream.leviathan.global/v1"
SEED_KEY = "lev_live_xxxxxxxxxxxxxxxx"

# As written in the seed (one statement a line).
SEED_EXAMPLE = """
import asyncio, json, websockets
async def stream():
    uri = "wss://stream.leviathan.global/v1"
    async with websockets.connect(uri) as ws:
        # Authenticate
        await ws.send(json.dumps({
            "op": "auth",
            "key": "lev_live_xxxxxxxxxxxxxxxx"
        }))
        # Subscribe to BTC-PERP order book
        await ws.send(json.dumps({
            "op": "subscribe",
            "channel": "orderbook",
            "market_id": "BTC-PERP"
        }))
        async for message in ws:
            print(json.loads(message))
asyncio.run(stream())
"""


def test_the_seed_websocket_example_works_as_written(stream_server):
    account = open_account(kind=Account.Kind.CUSTODIAL)
    key = key_issue([account])
    perp_create("BTC-PERP", "BTC")
    put_quote("BTC-PERP@leviathan", bid="95000", ask="95001", binary=False, step="1")
    code = SEED_EXAMPLE.replace(SEED_URI, stream_url(stream_server)).replace(SEED_KEY, key)
    example = subprocess.Popen(  # noqa: S603 (our interpreter, the seed's code)
        [sys.executable, "-u", "-c", code], stdout=subprocess.PIPE, text=True
    )
    printed = []
    try:
        while len(printed) < 4:
            line = example.stdout.readline()
            assert line, "the example stopped"
            printed.append(ast.literal_eval(line))
            if len(printed) == 3:  # snapshot in hand: the book moves
                time.sleep(0.2)
                put_quote("BTC-PERP@leviathan", bid="95010", ask="95012", binary=False, step="1")
    finally:
        example.kill()
        example.wait()
    authenticated, subscribed, snapshot, update = printed
    assert authenticated["type"] == "authenticated"
    assert subscribed == {"type": "subscribed", "channel": "orderbook", "market_id": "BTC-PERP"}
    assert snapshot["type"] == "snapshot" and snapshot["seq"] == 1
    (book,) = snapshot["books"]
    assert book["venue"] == "leviathan" and book["bids"][0]["price"] == "95000.00000000"
    assert update["type"] == "update" and update["seq"] == 2
    assert update["books"][0]["bids"][0] == {"price": "95010.00000000", "size": "1000000"}
