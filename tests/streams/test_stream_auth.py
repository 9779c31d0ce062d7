"""Authentication and limits of /v1/stream: the key in the first message, scopes, the
IP allowlist, revocation while connected, five connections per key."""

import json

import httpx

from accounts.models import Account, ApiKey
from accounts.services.api_keys import api_key_revoke
from tests.api.conftest import key_issue
from tests.factories import StaffFactory, open_account
from tests.streams.conftest import closed_with, connect, receive, run


def test_anything_before_auth_is_refused_and_the_socket_closed(stream_server):
    async def body():
        ws = await connect(stream_server)
        await ws.send(json.dumps({"op": "subscribe", "channel": "orderbook", "market_id": "X"}))
        return await closed_with(ws)

    code, error = run(body())
    assert code == 4401
    assert error["code"] == "unauthorized" and '"op":"auth"' in error["message"]


def test_a_bad_key_is_refused(stream_server):
    async def body():
        ws = await connect(stream_server)
        await ws.send(json.dumps({"op": "auth", "key": "lev_live_nottherightkeyatall"}))
        return await closed_with(ws)

    code, error = run(body())
    assert code == 4401 and error == {
        "type": "error",
        "code": "unauthorized",
        "message": "API key missing or invalid.",
    }


def test_a_revoked_key_is_refused_and_an_open_socket_is_closed_when_revoked(stream_server, loop):
    account = open_account(kind=Account.Kind.CUSTODIAL)
    key = key_issue([account])
    ws = loop.run_until_complete(connect(stream_server, key))
    api_key_revoke(api_key=ApiKey.objects.get(), actor=StaffFactory())

    async def after():
        live = await closed_with(ws)
        again = await connect(stream_server)
        await again.send(json.dumps({"op": "auth", "key": key}))
        return live, await closed_with(again)

    (live_code, live_error), (code, error) = loop.run_until_complete(after())
    assert live_code == 4401 and live_error["message"] == "This API key was revoked."
    assert code == 4401 and error["code"] == "unauthorized"


def test_a_key_without_the_intelligence_scope_is_refused(stream_server):
    account = open_account(kind=Account.Kind.CUSTODIAL)
    key = key_issue([account], scopes=["reports"])

    async def body():
        ws = await connect(stream_server)
        await ws.send(json.dumps({"op": "auth", "key": key}))
        return await closed_with(ws)

    code, error = run(body())
    assert code == 4403 and error["code"] == "forbidden"
    assert "intelligence" in error["message"]


def test_a_key_without_read_may_connect_but_not_subscribe(stream_server):
    account = open_account(kind=Account.Kind.CUSTODIAL)
    key = key_issue([account], scopes=["intelligence", "trade"])

    async def body():
        ws = await connect(stream_server, key)
        await ws.send(json.dumps({"op": "subscribe", "channel": "positions"}))
        return await receive(ws)

    error = run(body())
    assert error["type"] == "error" and error["code"] == "forbidden"
    assert error["channel"] == "positions" and "read" in error["message"]


def test_the_key_ip_allowlist_applies(stream_server):
    account = open_account(kind=Account.Kind.CUSTODIAL)
    key = key_issue([account], ip_allowlist=["10.0.0.0/8"])
    allowed = key_issue([account], ip_allowlist=["127.0.0.0/8"])

    async def body():
        ws = await connect(stream_server)
        await ws.send(json.dumps({"op": "auth", "key": key}))
        refused = await closed_with(ws)
        ok = await connect(stream_server, allowed)
        await ok.close()
        return refused

    code, error = run(body())
    assert code == 4403 and error["message"] == "This key may not be used from 127.0.0.1."


def test_the_sixth_connection_of_a_key_is_refused(stream_server):
    account = open_account(kind=Account.Kind.CUSTODIAL)
    key = key_issue([account])
    other = key_issue([account])

    async def body():
        sockets = [await connect(stream_server, key) for _ in range(5)]
        sixth = await connect(stream_server)
        await sixth.send(json.dumps({"op": "auth", "key": key}))
        refused = await closed_with(sixth)
        another_key = await connect(stream_server, other)  # the limit is per key
        await sockets[0].close()
        again = await connect(stream_server, key)  # a freed slot is free at once
        for ws in [*sockets[1:], again, another_key]:
            await ws.close()
        return refused

    code, error = run(body())
    assert code == 4429 and error["code"] == "rate_limited"
    assert "5 open stream connections" in error["message"]


def test_ping_is_answered(stream_server):
    account = open_account(kind=Account.Kind.CUSTODIAL)
    key = key_issue([account])

    async def body():
        ws = await connect(stream_server, key)
        await ws.send(json.dumps({"op": "ping", "id": 7}))
        pong = await receive(ws)
        latency = await ws.ping()  # the protocol's own ping/pong (idle keep-alive)
        await latency
        await ws.close()
        return pong

    pong = run(body())
    assert pong["type"] == "pong" and pong["id"] == 7


def test_failed_keys_from_one_address_are_limited_across_stream_and_rest(stream_server, settings):
    """After API_KEY_FAILURE_LIMIT failed key authentications from an address (stream and
    REST count together), its next auth is refused with 4429 rate_limited, valid key or
    not, and so is its REST key authentication."""
    limit = settings.API_KEY_FAILURE_LIMIT
    account = open_account(kind=Account.Kind.CUSTODIAL)
    key = key_issue([account])
    unknown = "lev_live_" + "x" * 40
    for _ in range(limit - 1):
        response = httpx.get(
            f"{stream_server}/v1/intelligence/account",
            headers={"Authorization": f"Bearer {unknown}"},
        )
        assert response.status_code == 401

    async def body():
        codes = []
        for candidate in (unknown, key):  # the limit-th failure, then the right key
            ws = await connect(stream_server)
            await ws.send(json.dumps({"op": "auth", "key": candidate}))
            codes.append(await closed_with(ws))
        return codes

    (failed, _), (code, error) = run(body())
    rest = httpx.get(
        f"{stream_server}/v1/intelligence/account", headers={"Authorization": f"Bearer {key}"}
    )
    assert failed == 4401
    assert code == 4429
    assert error["code"] == "rate_limited" and 1 <= error["retry_after"] <= 60
    assert rest.status_code == 429 and rest.json()["code"] == "rate_limited"
    assert 1 <= int(rest.headers["Retry-After"]) <= 60
