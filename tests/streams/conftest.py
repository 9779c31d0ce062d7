"""Real sockets on the partner stream: uvicorn in a subprocess (tests.live_server)
and the `websockets` client, as a partner would connect."""

import asyncio
import json
from collections.abc import Callable, Iterator

import pytest
import websockets

from accounts.models import Account
from tests.api.conftest import key_issue
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.live_server import asgi_server
from tests.trading.conftest import binary_create, perp_create
from tests.trading.quoting import put_quote

TIMEOUT = 10.0


@pytest.fixture
def stream_server(transactional_db) -> Iterator[str]:
    """The server's base URL (http://…); the stream is at ws://…/v1/stream."""
    with asgi_server() as base:
        yield base


@pytest.fixture
def market(transactional_db):
    """A funded custodial account, a binary market and BTC-PERP, quoted; its key."""
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "1000")
    binary_create("CMD-MKT")
    for venue in ("kalshi", "polymarket"):
        put_quote(f"CMD-MKT@{venue}", bid="0.55", ask="0.56")
    perp_create("BTC-PERP", "BTC")
    put_quote("BTC-PERP@leviathan", bid="95000", ask="95001", binary=False, step="1")
    return account, key_issue([account])


def stream_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/stream"


def run(coroutine):
    """Run a test's async body (the test itself is sync: transactional_db)."""
    return asyncio.run(asyncio.wait_for(coroutine, 60))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for a test that runs several async steps with database work
    (sync, between them) on the same sockets: `loop.run_until_complete(...)`."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


async def receive(ws, timeout: float = TIMEOUT) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def receive_until(ws, match: Callable[[dict], bool], timeout: float = TIMEOUT) -> dict:
    """The first message `match` accepts (others are skipped)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError("no matching message")
        message = await receive(ws, remaining)
        if match(message):
            return message


async def silent(ws, seconds: float) -> list[dict]:
    """Every message received within `seconds` (to prove none arrives)."""
    got = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            got.append(await receive(ws, remaining))
        except TimeoutError:
            break
    return got


async def connect(base: str, key: str | None = None):
    """An open socket, authenticated with `key` when given (the reply checked)."""
    ws = await websockets.connect(stream_url(base), open_timeout=TIMEOUT)
    if key is not None:
        await ws.send(json.dumps({"op": "auth", "key": key}))
        reply = await receive(ws)
        assert reply["type"] == "authenticated", reply
    return ws


async def closed_with(ws) -> tuple[int, dict | None]:
    """(close code, the error sent before it) of a socket the server closes."""
    error = None
    try:
        while True:
            error = await receive(ws)
    except websockets.ConnectionClosed:
        pass
    return ws.close_code, error
