"""The dashboard's WebSocket (trading.consumers.DashboardConsumer) through the whole
ASGI stack of portal.asgi (origin check, session auth, routing) on the real Redis
channel layer; and that ticks, fills and deposits really reach it."""

import asyncio
import functools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.sessions import InstanceSessionWrapper
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connections
from django.test import Client
from django.utils import timezone

import portal.sessions
from accounts.enqueue import SIMULATED_PAYMENT_DELIVER
from accounts.models import Account, Deposit
from accounts.payments.simulated import SimulatedPaymentProvider
from accounts.services.deposits import deposit_create, payment_webhook_handle
from portal.asgi import application
from portal.redis import redis_client
from portal.sessions import SESSION_STARTED_KEY, sessions_signed_in
from tests.factories import DEFAULT_PASSWORD, UserFactory, open_account
from tests.trading.margining import capture_outbox_sends
from tests.trading.quoting import put_quote
from tests.web.dashboard_fixtures import FED, TRUMP, borrower, buy, trader
from trading.broadcasts import MarginUpdate, account_group
from trading.consumers import DashboardConsumer
from trading.engine import MarginEngine
from trading.enqueue import ACCOUNT_LIQUIDATE
from trading.marketdata.store import TickBatch
from trading.models import MarginCall

pytestmark = pytest.mark.django_db(transaction=True)


ORIGIN = b"http://127.0.0.1:8000"
TIMEOUT = 3


def run_async(function, *args):
    """Run the coroutine function to completion on an event loop of its own thread
    (this thread may already run one: Playwright's, in a whole-suite run)."""

    async def main():
        try:
            return await function(*args)
        finally:
            # The consumers' database calls ran on asgiref's shared sync thread: close
            # its connection, or the test database cannot be dropped at the end.
            await sync_to_async(connections.close_all)()

    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, main()).result()


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def socket(
    account_id: str,
    *,
    cookie: bytes | None = None,
    origin: bytes | None = ORIGIN,
    host: bytes = b"127.0.0.1:8000",
) -> WebsocketCommunicator:
    """A browser's socket to the dashboard of `account_id` (`cookie`: its session)."""
    headers = [(b"host", host)]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, f"/ws/dashboard/{account_id}/", headers=headers)


PROBE = '{"type":"probe"}'


async def joined(communicator: WebsocketCommunicator, account_id: int) -> None:
    """Return once the connected socket's group subscription is live.

    Redis pub/sub delivers a message only to subscriptions it already holds, so
    probe the group (as an order update: forwarded, never coalesced) until one
    comes through; then drain the probes.
    """
    layer = get_channel_layer()
    while True:
        await layer.group_send(account_group(account_id), {"type": "order.update", "text": PROBE})
        if not await communicator.receive_nothing(timeout=0.2):
            break
    while not await communicator.receive_nothing(timeout=0.1):
        assert await communicator.receive_from() == PROBE


async def close_code(communicator: WebsocketCommunicator) -> int | None:
    """The code a socket was closed with right after its handshake (None: stayed open)."""
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    if await communicator.receive_nothing(timeout=0.5):
        await communicator.disconnect()
        return None
    output = await communicator.receive_output(timeout=TIMEOUT)
    assert output["type"] == "websocket.close"
    return output.get("code")


def update(account_id: int, health: str = "2.500000") -> MarginUpdate:
    from datetime import UTC, datetime

    return MarginUpdate(
        account_id=account_id,
        cash=Decimal("-100.000000"),
        used_margin=Decimal("100.000000"),
        adjusted_equity=Decimal("250.000000"),
        available_margin=Decimal("150.000000"),
        health=Decimal(health),
        utilization=Decimal("0.400000"),
        status="healthy",
        at=datetime.now(UTC),
    )


async def receive_json(communicator: WebsocketCommunicator, timeout: float = TIMEOUT) -> dict:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def connects(account_id, cookie, origin, host=b"127.0.0.1:8000") -> bool:
    """Whether the dashboard socket accepts this signed-in handshake."""
    communicator = socket(account_id, cookie=cookie, origin=origin, host=host)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    await communicator.disconnect()
    return connected


# --- Who may connect ----------------------------------------------------------------------


def test_an_unauthenticated_socket_is_closed_with_4401():
    account = open_account()

    async def run():
        return await close_code(socket(account.public_id))

    assert run_async(run) == 4401


def test_a_foreign_origin_is_refused_at_the_handshake():
    account = open_account()
    cookie = session_cookie(account.owner)

    run = functools.partial(connects, account.public_id, cookie)

    assert run_async(run, b"https://evil.example") is False
    assert run_async(run, None) is False  # no Origin at all
    assert run_async(run, ORIGIN) is True


def test_the_origin_must_match_scheme_host_and_port(settings):
    """Another program's page on the same machine (another port) cannot open the
    dashboard socket with the user's cookie; nor can http://localhost for a socket made
    to 127.0.0.1, nor an https page for an http site."""
    settings.SITE_URL = "http://127.0.0.1:8000"
    account = open_account()
    cookie = session_cookie(account.owner)

    run = functools.partial(connects, account.public_id, cookie)

    assert run_async(run, b"http://127.0.0.1:9999") is False  # same host, another port
    assert run_async(run, b"https://127.0.0.1:8000") is False  # another scheme
    assert run_async(run, b"http://localhost:8000") is False
    assert run_async(run, b"http://127.0.0.1") is False  # port 80
    assert run_async(run, b"http://127.0.0.1:8000") is True
    # The socket's own origin: a server on another port, reached there.
    assert run_async(run, b"http://127.0.0.1:9999", b"127.0.0.1:9999") is True
    assert run_async(run, b"http://localhost:8000", b"localhost:8000") is True
    # ... but only for a host the site serves (ALLOWED_HOSTS).
    assert run_async(run, b"http://evil.example:8000", b"evil.example:8000") is False


def test_site_url_and_csrf_trusted_origins_are_the_sites_own(settings):
    """Behind a proxy the socket arrives for an internal host; the public origins are
    SITE_URL and CSRF_TRUSTED_ORIGINS, port and scheme included."""
    settings.SITE_URL = "https://portal.example.com"
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.prime.example", "https://ops.example:8443"]
    account = open_account()
    cookie = session_cookie(account.owner)

    run = functools.partial(connects, account.public_id, cookie)

    assert run_async(run, b"https://portal.example.com") is True
    assert run_async(run, b"https://portal.example.com:443") is True
    assert run_async(run, b"http://portal.example.com") is False
    assert run_async(run, b"https://portal.example.com:8443") is False
    assert run_async(run, b"https://eu.prime.example") is True
    assert run_async(run, b"https://prime.example.evil.example") is False
    assert run_async(run, b"https://ops.example:8443") is True
    assert run_async(run, b"https://ops.example") is False


def test_another_users_account_is_closed_with_4403():
    mine, theirs = open_account(), open_account()
    cookie = session_cookie(mine.owner)

    async def run(account_id):
        return await close_code(socket(account_id, cookie=cookie))

    assert run_async(run, theirs.public_id) == 4403
    assert run_async(run, "acct_does_not_exist") == 4403
    assert run_async(run, mine.public_id) is None


def test_a_user_whose_kyb_is_pending_is_closed_with_4403():
    owner = UserFactory(kyb_status="pending")
    account = open_account(owner=owner)
    cookie = session_cookie(owner)

    async def run():
        return await close_code(socket(account.public_id, cookie=cookie))

    assert run_async(run) == 4403


# --- When the session ends -----------------------------------------------------------------


def signed_in_client(user) -> Client:
    """A browser signed in through the real sign-in page."""
    client = Client()
    response = client.post("/login/", {"email": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    return client


def closed_within(account, client: Client, end_session, bound: float) -> tuple[int, float]:
    """Open the dashboard socket with `client`'s session, run `end_session()` (sync, in a
    thread of its own), and return (close code, seconds until the close)."""
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    def in_thread():
        from django.db import connection

        try:
            end_session()
        finally:
            connection.close()

    async def run():
        communicator = socket(account.public_id, cookie=cookie)
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        await joined(communicator, account.pk)
        await asyncio.get_running_loop().run_in_executor(None, in_thread)
        started = time.monotonic()
        while True:  # pushes may still arrive until the close
            output = await communicator.receive_output(timeout=bound)
            if output["type"] == "websocket.close":
                return output.get("code"), time.monotonic() - started

    return run_async(run)


def test_logging_out_closes_the_open_dashboard_socket_within_the_check_interval():
    account = open_account()
    client = signed_in_client(account.owner)
    interval = settings.DASHBOARD_SESSION_CHECK_SECONDS
    code, seconds = closed_within(account, client, lambda: client.post("/logout/"), interval + 2)
    assert code == 4401
    assert seconds <= interval + 1


def test_an_expired_or_too_old_session_closes_the_socket(settings):
    settings.DASHBOARD_SESSION_CHECK_SECONDS = 0.3
    account = open_account()

    def idle_expiry(client):
        key = client.cookies["sessionid"].value
        return lambda: Session.objects.filter(session_key=key).update(
            expire_date=timezone.now() - timedelta(seconds=1)
        )

    def too_old(client):
        def age():
            session = client.session
            session[SESSION_STARTED_KEY] = time.time() - settings.SESSION_ABSOLUTE_MAX_AGE - 1
            session.save()

        return age

    for make_end in (idle_expiry, too_old):
        client = signed_in_client(account.owner)
        client.get("/dashboard/")  # the first signed-in request marks the session's start
        code, seconds = closed_within(account, client, make_end(client), 3)
        assert (code, make_end.__name__) == (4401, make_end.__name__)
        assert seconds <= 1.5


def test_a_live_session_keeps_its_socket(settings):
    settings.DASHBOARD_SESSION_CHECK_SECONDS = 0.2
    account = open_account()
    client = signed_in_client(account.owner)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def run():
        communicator = socket(account.public_id, cookie=cookie)
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        await joined(communicator, account.pk)
        quiet = await communicator.receive_nothing(timeout=1.0)  # five checks pass
        await communicator.disconnect()
        return quiet

    assert run_async(run) is True


def test_one_check_re_reads_every_open_sockets_session_and_closes_only_the_ended(
    settings, monkeypatch
):
    """A process's sockets share one session re-check (portal.sessions.session_watch): one
    call (two queries) an interval for all of them, not one per socket."""
    settings.DASHBOARD_SESSION_CHECK_SECONDS = 0.2
    accounts = [open_account() for _ in range(3)]
    clients = [signed_in_client(account.owner) for account in accounts]
    checked: list[int] = []

    def counted(pairs):
        checked.append(len(pairs))
        return sessions_signed_in(pairs)

    monkeypatch.setattr(portal.sessions, "sessions_signed_in", counted)

    def log_out():
        from django.db import connection

        try:
            clients[0].post("/logout/")
        finally:
            connection.close()

    async def run():
        sockets = []
        for account, client in zip(accounts, clients, strict=True):
            cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
            sockets.append(socket(account.public_id, cookie=cookie))
            assert (await sockets[-1].connect(timeout=TIMEOUT))[0]
            await joined(sockets[-1], account.pk)
        checked.clear()
        assert await sockets[1].receive_nothing(timeout=1.0)  # about five checks pass
        calls = list(checked)
        await asyncio.get_running_loop().run_in_executor(None, log_out)
        while True:
            output = await sockets[0].receive_output(timeout=2)
            if output["type"] == "websocket.close":
                break
        still_open = [await other.receive_nothing(timeout=0.5) for other in sockets[1:]]
        for other in sockets[1:]:
            await other.disconnect()
        return calls, output.get("code"), still_open

    calls, code, still_open = run_async(run)
    assert 3 <= len(calls) <= 6 and set(calls) == {3}  # every socket in each one call
    assert code == 4401
    assert still_open == [True, True]


# --- What it forwards ---------------------------------------------------------------------


def test_a_user_receives_only_their_own_accounts_updates_as_sent():
    mine = open_account()
    second = open_account(owner=mine.owner)
    theirs = open_account()
    updates = {account.pk: update(account.pk) for account in (mine, second, theirs)}
    cookie = session_cookie(mine.owner)

    async def run():
        first = socket(mine.public_id, cookie=cookie)
        other = socket(second.public_id, cookie=cookie)
        assert (await first.connect(timeout=TIMEOUT))[0]
        assert (await other.connect(timeout=TIMEOUT))[0]
        await joined(first, mine.pk)
        await joined(other, second.pk)
        layer = get_channel_layer()
        for account_id, margin_update in updates.items():
            await layer.group_send(
                account_group(account_id),
                {"type": "margin.update", "text": margin_update.to_text()},
            )
        got_first = await first.receive_from(timeout=TIMEOUT)
        got_other = await other.receive_from(timeout=TIMEOUT)
        assert await first.receive_nothing(timeout=0.3)
        assert await other.receive_nothing(timeout=0.1)
        await first.disconnect()
        await other.disconnect()
        return got_first, got_other

    got_first, got_other = run_async(run)
    # Forwarded as is: the very text the sender serialized, once.
    assert got_first == updates[mine.pk].to_text()
    assert got_other == updates[second.pk].to_text()


def test_a_forwarded_update_goes_straight_to_the_socket_without_the_session(monkeypatch):
    """portal.sessions.SocketSessionMiddleware: channels' session wrapper is not on a
    socket's send path (it read the session on every message, for nothing)."""
    account = open_account()
    cookie = session_cookie(account.owner)
    text = update(account.pk).to_text()
    wrapped_sends: list[str] = []
    wrapper_send = InstanceSessionWrapper.send

    async def counted(self, message):
        wrapped_sends.append(message["type"])
        return await wrapper_send(self, message)

    monkeypatch.setattr(InstanceSessionWrapper, "send", counted)

    async def run():
        communicator = socket(account.public_id, cookie=cookie)
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        await joined(communicator, account.pk)
        await get_channel_layer().group_send(
            account_group(account.pk), {"type": "margin.update", "text": text}
        )
        got = await communicator.receive_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return got

    assert run_async(run) == text
    assert wrapped_sends == []


def test_order_updates_and_margin_calls_are_forwarded_and_unknown_types_ignored():
    account = open_account()
    order_text = orjson.dumps({"type": "order", "id": "ord_1", "status": "filled"}).decode()
    call_text = orjson.dumps({"type": "margin_call", "status": "open", "health": "0.9"}).decode()
    cookie = session_cookie(account.owner)

    async def run():
        communicator = socket(account.public_id, cookie=cookie)
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        await joined(communicator, account.pk)
        layer, group = get_channel_layer(), account_group(account.pk)
        await layer.group_send(group, {"type": "positions.pulse", "text": "{}"})
        await layer.group_send(group, {"type": "order.update", "text": order_text})
        await layer.group_send(group, {"type": "margin.call", "text": call_text})
        received = [
            await communicator.receive_from(timeout=TIMEOUT),
            await communicator.receive_from(timeout=TIMEOUT),
        ]
        await communicator.send_to(text_data='{"op": "anything"}')  # ignored, not fatal
        await layer.group_send(group, {"type": "order.update", "text": order_text})
        received.append(await communicator.receive_from(timeout=TIMEOUT))
        await communicator.disconnect()
        return received

    assert run_async(run) == [order_text, call_text, order_text]


def test_a_closed_socket_leaves_its_group():
    account = open_account()
    cookie = session_cookie(account.owner)
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    group_channel = f"{prefix}__group__{account_group(account.pk)}"  # the layer's Redis name

    def subscribers() -> int:
        redis = redis_client()
        return dict(redis.pubsub_numsub(group_channel))[group_channel.encode()]

    async def run():
        communicator = socket(account.public_id, cookie=cookie)
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        await joined(communicator, account.pk)
        during = subscribers()
        await communicator.disconnect()
        # The layer unsubscribes as the consumer finishes: wait for it, briefly.
        for _ in range(50):
            if subscribers() == 0:
                break
            await asyncio.sleep(0.02)
        return during, subscribers()

    assert run_async(run) == (1, 0)


def test_margin_updates_are_coalesced_while_a_write_is_slow():
    """Behind a slow client the latest figures win; order updates all go, in order."""
    sent: list[str] = []

    async def run():
        consumer = DashboardConsumer()
        consumer.group = "account.1"
        consumer._queue = __import__("collections").deque()
        consumer._margin_waiting = False
        release = asyncio.Event()

        async def slow_send(text_data=None, **_):
            await release.wait()
            sent.append(text_data)

        consumer.send = slow_send
        consumer._forward('{"type":"margin","n":0}', coalesce=True)
        await asyncio.sleep(0)  # the writer takes it and blocks on the slow client
        for i in range(1, 3):
            consumer._forward(f'{{"type":"margin","n":{i}}}', coalesce=True)
        consumer._forward('{"type":"order","n":1}', coalesce=False)
        for i in range(3, 6):
            consumer._forward(f'{{"type":"margin","n":{i}}}', coalesce=True)
        await asyncio.sleep(0)
        release.set()
        await consumer._writer

    run_async(run)
    # The first was already being written; 1 and 2 gave way to 5, which kept their turn.
    assert sent == ['{"type":"margin","n":0}', '{"type":"margin","n":5}', '{"type":"order","n":1}']


# --- What reaches the page: ticks, fills, deposits ----------------------------------------


@pytest.fixture
def engine(markets, monkeypatch):
    """A margin engine (the class `manage.py run_margin_engine` runs), swept once the
    test has built its accounts (`swept`); Celery tasks are captured, not run."""
    capture_outbox_sends(monkeypatch, ACCOUNT_LIQUIDATE, SIMULATED_PAYMENT_DELIVER)
    return MarginEngine()


def swept(engine: MarginEngine) -> MarginEngine:
    engine.sweep()
    return engine


def sockets_while(accounts: list[Account], action, *, expect: list[int]) -> list[list[dict]]:
    """Open each account's dashboard socket (as its owner), run `action` (sync, in a
    thread, its own database connection), and collect `expect[i]` JSON messages on the
    i-th socket; then check that nothing more arrives on any of them."""

    def in_thread():
        from django.db import connection

        try:
            action()
        finally:
            connection.close()

    cookies = [session_cookie(account.owner) for account in accounts]

    async def run():
        communicators = [
            socket(account.public_id, cookie=cookie)
            for account, cookie in zip(accounts, cookies, strict=True)
        ]
        for communicator, account in zip(communicators, accounts, strict=True):
            assert (await communicator.connect(timeout=TIMEOUT))[0]
            await joined(communicator, account.pk)
        await asyncio.get_running_loop().run_in_executor(None, in_thread)
        received = []
        for communicator, count in zip(communicators, expect, strict=True):
            received.append([await receive_json(communicator, 5) for _ in range(count)])
        for communicator in communicators:
            assert await communicator.receive_nothing(timeout=0.3)
            await communicator.disconnect()
        return received

    return run_async(run)


def snapshot_summary(account: Account) -> dict:
    client = Client()
    client.force_login(account.owner)
    return client.get(f"/dashboard/{account.public_id}/snapshot.json").json()["summary"]


def test_a_price_tick_pushes_new_figures_to_the_holders_dashboard_only(engine):
    holder = borrower()
    bystander = trader("100")
    swept(engine)
    before = snapshot_summary(holder)

    def tick():
        quote = put_quote(f"{TRUMP}@kalshi", bid="0.45", ask="0.46", twap="0.45")
        put_quote(f"{TRUMP}@polymarket", bid="0.45", ask="0.47", twap="0.45")
        engine.process_batch(TickBatch(ts=quote.ts, quotes=(quote,)))

    [(message,), ()] = sockets_while([holder, bystander], tick, expect=[1, 0])
    assert message["type"] == "margin"  # on the holder's socket only (the bystander: none)
    after = snapshot_summary(holder)
    # The push names and writes the figures as the snapshot's summary (and GET margin) do.
    for name in (
        "cash",
        "used_margin",
        "adjusted_equity",
        "available_margin",
        "available_credit",
        "health",
        "margin_utilization",
        "status",
        "stale",
    ):
        assert message[name] == after[name]
    assert Decimal(message["adjusted_equity"]) < Decimal(before["adjusted_equity"])


def test_a_fill_pushes_the_order_and_then_the_new_margin(engine):
    account = trader("1000")
    swept(engine)

    def trade():
        buy(account, TRUMP, "120")
        engine.process_batch(None)  # between ticks the engine picks up changed accounts

    [(order, margin)] = sockets_while([account], trade, expect=[2])
    assert order["type"] == "order" and order["status"] == "filled"
    assert order["symbol"] == TRUMP and order["side"] == "buy"
    assert margin["type"] == "margin"
    assert margin["cash"] == "880.000000" == snapshot_summary(account)["cash"]


def test_a_confirmed_deposit_pushes_the_new_cash(engine):
    account = trader("100")
    swept(engine)
    deposit = deposit_create(
        account=account, amount=Decimal("250"), method=Deposit.Method.BANK_TRANSFER
    )

    def confirm():
        body, signature = SimulatedPaymentProvider.build_event(deposit)
        payment_webhook_handle(provider="simulated", body=body, signature_header=signature)
        engine.process_batch(None)

    [(message,)] = sockets_while([account], confirm, expect=[1])
    assert message["type"] == "margin"
    assert message["cash"] == "350.000000"
    summary = snapshot_summary(account)
    assert summary["cash"] == "350.000000" and summary["deposit"] == "350.000000"


def test_a_margin_call_is_pushed_with_the_figures_that_opened_it(engine):
    account = borrower()
    swept(engine)

    def crash():
        quote = put_quote(f"{TRUMP}@kalshi", bid="0.02", ask="0.03", twap="0.02")
        put_quote(f"{TRUMP}@polymarket", bid="0.02", ask="0.04", twap="0.02")
        fed = put_quote(f"{FED}@kalshi", bid="0.97", ask="0.98", twap="0.97")  # NO ≈ 0.02
        engine.process_batch(TickBatch(ts=quote.ts, quotes=(quote, fed)))

    [messages] = sockets_while([account], crash, expect=[2])
    kinds = {message["type"]: message for message in messages}
    assert set(kinds) == {"margin_call", "margin"}
    assert kinds["margin_call"]["status"] == "open"
    assert kinds["margin"]["status"] == "margin_call"
    assert MarginCall.objects.get(account=account).status == MarginCall.Status.OPEN
