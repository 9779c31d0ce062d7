"""Scale-out on one box: two web servers, two Celery workers and two margin engine shards,
with one feed and one beat, on one PostgreSQL and one Redis (`tests/fault_harness.py`).

A customer's flow crosses the processes (a deposit through the portal of one web server,
confirmed by a worker; a trade on one web server read back at once from the other; margin
calls opened by the shard that owns each account; a report made by a worker and downloaded
from the other web server; signing out on one web server closes the dashboard socket held
by the other); the API rate limit and the partner stream's connection limit
are one limit across the web servers; and killing (-9) a worker, a web server, a shard,
then the feed and beat (together: each waits out its leadership lock), with work in flight,
loses nothing.

The stack starts once for the module, on data committed before it starts (accounts,
keys, markets: the tests only read the database), and the database is emptied after it
(as `transaction=True` tests are): a flush after each test would empty it under the
running processes.
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal

import httpx
import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from accounts.enqueue import SIMULATED_PAYMENT_DELIVER
from accounts.models import Account, Deposit, Journal, OutboxItem
from accounts.services.reconciliation import ledger_reconcile
from portal.heartbeats import heartbeat_read
from portal.redis import redis_client
from portal.schedules import schedules_install
from portal.shards import shard_of
from tests.api.conftest import key_issue
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.fault_harness import FAST, PrivateRedis, Stack
from tests.faults.test_redis_restart import deposit_by_page, next_message
from tests.trading.conftest import binary_create
from tests.trading.margining import borrower, tick
from trading.models import Instrument, MarginCall, Order, Report
from trading.services.figures_store import figures_key

SHARDS = 2
STREAM_LIMIT = 3  # open partner-stream connections per key
SLOT_TTL_SECONDS = 3  # a dead server's stream slots are free again after this
ENV = {
    "ENGINE_SHARDS": str(SHARDS),
    "ENGINE_LOCK_TTL_SECONDS": "3",
    "STREAM_MAX_CONNECTIONS_PER_KEY": str(STREAM_LIMIT),
    "STREAM_SLOT_TTL_SECONDS": str(SLOT_TTL_SECONDS),
    "SIMULATED_BANK_TRANSFER_DELAY": "2",  # a deposit's webhook waits in a worker meanwhile
}
COPIES = {  # name: (Procfile process, arguments)
    "web-2": ("web", ""),
    "worker-2": ("worker", "-n worker-2@%h"),
    "shard-0": ("risk", "--shard-index 0"),
    "shard-1": ("risk", "--shard-index 1"),
}
PROCESSES = ("web", "web-2", "worker", "worker-2", "shard-0", "shard-1", "marketdata", "beat")
# The feed moves every open market. QUIET is halted (no trading; its holders are still
# margined at its quotes, which never go stale), so the tests' ticks alone set its price.
QUIET = "QUIET@kalshi"
# A lost task is sent again once its lease is over, by the dispatcher's next run.
OUTBOX_BOUND_SECONDS = int(FAST["OUTBOX_LEASE_SECONDS"]) + 5 + 10
TAKEOVER_SECONDS = 15  # an engine lock's TTL, the next try, the first full sweep
LEADER_SECONDS = 15  # the feed's and beat's 3 s locks (FAST), the next try, the first beat
TRANSACTIONS = {"type": "transactions", "from": "2026-01-01", "to": "2026-12-31"}

pytestmark = pytest.mark.django_db


@dataclass
class Box:
    stack: Stack
    trader: Account  # 10,000 USDC, trades TRUMP-WIN through the API
    key: str
    rate_key: str  # keys of the trader's with windows and slots of their own
    stream_key: str
    borrowers: dict[int, list[Account]]  # by shard: 2,000 QUIET each, bought on a loan


def quiet_tick(bid: str) -> None:
    """Publish QUIET's price as the feed would."""
    tick(QUIET, bid=bid)


@pytest.fixture(scope="module")
def box(django_db_setup, django_db_blocker) -> Iterator[Box]:
    with (
        django_db_blocker.unblock(),
        PrivateRedis() as redis_server,
        override_settings(REDIS_URL=redis_server.url, ENGINE_SHARDS=SHARDS),
    ):
        try:
            yield from _box(redis_server.url)
        finally:
            call_command("flush", verbosity=0, interactive=False)


def _box(redis_url: str) -> Iterator[Box]:
    binary_create("TRUMP-WIN")
    quiet = binary_create("QUIET")
    schedules_install()
    trader = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(trader, "10000")
    keys = [key_issue([trader]) for _ in range(3)]
    quiet_tick("0.60")
    borrowers: dict[int, list[Account]] = {index: [] for index in range(SHARDS)}
    while min(len(owned) for owned in borrowers.values()) < 2:
        account = borrower(quiet)
        borrowers[shard_of(account.pk, SHARDS)].append(account)
    Instrument.objects.filter(pk=quiet.pk).update(status=Instrument.Status.HALTED)
    with Stack(redis_url=redis_url, **ENV) as stack:
        for name, (of, args) in COPIES.items():
            stack.copy(name, of=of, args=args)
        stack.start(*PROCESSES)
        for web in ("web", "web-2"):
            stack.wait_until(lambda web=web: stack.ready(web), timeout=60, what=f"{web} ready")
        key, rate_key, stream_key = keys
        yield Box(stack, trader, key, rate_key, stream_key, borrowers)


# --- helpers --------------------------------------------------------------------------


def database(**options) -> psycopg.Connection:
    """A connection of the test's own to the test database (psycopg, not Django's)."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname=db["NAME"],
        **options,
    )


def blocked_by(observer: psycopg.Connection, blocker: psycopg.Connection) -> int:
    """How many sessions wait, directly or behind another waiter, for a lock `blocker`
    holds (the second waiter for a row waits for the first)."""
    (pid,) = blocker.execute("SELECT pg_backend_pid()").fetchone()
    return observer.execute(
        "WITH RECURSIVE waiting(pid) AS ("
        " SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
        " UNION SELECT a.pid FROM pg_stat_activity a JOIN waiting w"
        " ON w.pid = ANY(pg_blocking_pids(a.pid))"
        ") SELECT count(*) FROM waiting",
        (pid,),
    ).fetchone()[0]


def stream_open(
    sockets: ExitStack, stack: Stack, web: str, key: str
) -> tuple[ClientConnection, dict]:
    """A partner stream socket on web server `web` (closed with `sockets`), after its
    auth: (socket, reply)."""
    socket = sockets.enter_context(
        connect(f"ws://127.0.0.1:{stack.ports[web]}/v1/stream", open_timeout=10)
    )
    socket.send(json.dumps({"op": "auth", "key": key}))
    return socket, json.loads(socket.recv(timeout=10))


def refused_code(socket: ClientConnection) -> int:
    """The close code of a socket its server is closing."""
    with pytest.raises(ConnectionClosed) as closed:
        socket.recv(timeout=10)
    return closed.value.rcvd.code


def closed_code(socket: ClientConnection, *, timeout: float) -> int:
    """The close code of a socket its server closes within `timeout` (pushes meanwhile
    are skipped)."""
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as closed:
        while (left := deadline - time.monotonic()) > 0:
            socket.recv(timeout=left)
    return closed.value.rcvd.code


def open_calls(accounts: list[Account]) -> set[int]:
    return set(
        MarginCall.objects.filter(account__in=accounts, status=MarginCall.Status.OPEN).values_list(
            "account_id", flat=True
        )
    )


def opened_in(log: str, account: Account) -> bool:
    return f"opened on {account.public_id} at health" in log


def cash(client: httpx.Client) -> Decimal:
    response = client.get("/margin")
    assert response.status_code == 200, response.text
    return Decimal(response.json()["cash"])


def delivery(deposit_id: str) -> OutboxItem:
    """The outbox item of the simulated provider's webhook for this deposit."""
    reference = Deposit.objects.get(public_id=deposit_id).provider_reference
    return OutboxItem.objects.get(task=SIMULATED_PAYMENT_DELIVER, kwargs__reference=reference)


def figures_current(account: Account) -> bool:
    """Whether Redis holds figures of `account` computed from its current state."""
    meta = redis_client().hget(figures_key(account.pk), "meta")
    version = Account.objects.values_list("figures_version", flat=True).get(pk=account.pk)
    return meta is not None and json.loads(meta)["v"] == version


def deposits_credited(account: Account) -> int:
    return Journal.objects.filter(kind=Journal.Kind.DEPOSIT, account=account).count()


# --- tests ----------------------------------------------------------------------------


def test_a_customer_flow_crosses_the_processes(box):
    stack, trader = box.stack, box.trader
    trader.refresh_from_db()
    web, web_2 = stack.api(box.key), stack.api(box.key, "web-2")
    # Signed in on web; the same browser session on web-2 (sessions are the database's).
    browser = stack.signed_in(trader.owner.email)
    browser_2 = httpx.Client(base_url=stack.url_of("web-2"), cookies=browser.cookies, timeout=10)
    assert browser_2.get("/dashboard/").status_code == 200
    cookie = f"sessionid={browser.cookies['sessionid']}"
    with connect(
        f"ws://127.0.0.1:{stack.ports['web-2']}/ws/dashboard/{trader.public_id}/",
        additional_headers={"Origin": stack.url_of("web-2"), "Cookie": cookie},
    ) as dashboard:
        # A deposit through web-2's portal; a worker's webhook (to SITE_URL: web)
        # confirms it; web-2's socket gets the push and its API the cash.
        funded = trader.cash_balance + 250
        assert deposit_by_page(browser_2, "250").status_code == 302
        assert next_message(
            dashboard, kind="margin", timeout=30, where=lambda m: Decimal(m["cash"]) == funded
        )
        assert cash(web_2) == funded
        assert figures_current(trader)  # the read stored them: the next may serve them

        # A trade through web, read back at once through web-2: never the stored figures.
        order = web.post(
            "/execute",
            json={"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "100"},
        )
        assert order.status_code == 201, order.text
        assert order.json()["status"] == Order.Status.FILLED
        positions = web_2.get("/positions").json()["positions"]
        held = [p for p in positions if p["symbol"] == "TRUMP-WIN"]
        assert sum(Decimal(p["quantity"]) for p in held) == Decimal(order.json()["filled_quantity"])
        trader.refresh_from_db()
        assert trader.cash_balance < funded
        assert cash(web_2) == trader.cash_balance
        assert next_message(
            dashboard,
            kind="margin",
            timeout=10,
            where=lambda m: Decimal(m["cash"]) == trader.cash_balance,
        )
        # Signed out on web: web-2's session watch closes its socket within a check.
        signed_out = browser.post(
            "/logout/", data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]}
        )
        assert signed_out.status_code == 302
        assert closed_code(dashboard, timeout=settings.DASHBOARD_SESSION_CHECK_SECONDS + 5) == 4401

    # QUIET falls: each shard opens the calls of its own accounts, and only those.
    everyone = [account for owned in box.borrowers.values() for account in owned]
    quiet_tick("0.15")
    stack.wait_until(
        lambda: open_calls(everyone) == {account.pk for account in everyone},
        timeout=30,
        what="margin calls open in both shards",
    )
    for index, owned in box.borrowers.items():
        other = stack.log(f"shard-{1 - index}")
        for account in owned:
            assert opened_in(stack.log(f"shard-{index}"), account)
            assert not opened_in(other, account)
    quiet_tick("0.60")
    stack.wait_until(lambda: not open_calls(everyone), timeout=30, what="the calls resolved")

    # A report made by a worker, its link taken from web-2 and downloaded from it.
    requested = web.post("/reports", json=TRANSACTIONS)
    assert requested.status_code == 202, requested.text
    report_id = requested.json()["id"]
    ready = stack.wait_until(
        lambda: web_2.get(f"/reports/{report_id}").json()["download_url"],
        timeout=30,
        what="the report is ready",
    )
    assert ready.startswith(stack.url_of("web-2"))
    download = httpx.get(ready, timeout=10)
    assert download.status_code == 200
    assert "test funding,10000.000000" in download.text
    assert ",250.000000," in download.text  # the portal's deposit


def test_the_api_rate_limit_is_one_limit_across_web_servers(box):
    stack = box.stack
    clients = [stack.api(box.rate_key), stack.api(box.rate_key, "web-2")]
    limit = settings.API_RATE_LIMITS["order_management"]
    remaining = []
    for sent in range(limit):  # order management calls, alternately on each server
        response = clients[sent % 2].delete("/orders/ord_nonexistent")
        assert response.status_code == 404, response.text
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == list(range(limit - 1, -1, -1))  # one count across both
    for client in clients:
        refused = client.delete("/orders/ord_nonexistent")
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) > 0


def test_stream_connections_per_key_are_counted_across_web_servers(box):
    stack, key = box.stack, box.stream_key
    with ExitStack() as sockets:
        opened = []
        for web in ("web", "web-2", "web"):  # up to the limit, spread over both
            socket, reply = stream_open(sockets, stack, web, key)
            assert reply["type"] == "authenticated", reply
            opened.append(socket)
        assert len(opened) == STREAM_LIMIT
        for web in ("web-2", "web"):  # one more is refused on either
            socket, reply = stream_open(sockets, stack, web, key)
            assert (reply["type"], reply["code"]) == ("error", "rate_limited"), reply
            assert refused_code(socket) == 4429
        opened[0].close()  # one closed on web: its slot is free for web-2 at once
        _, reply = stream_open(sockets, stack, "web-2", key)
        assert reply["type"] == "authenticated", reply


def test_killing_any_one_process_loses_nothing(box):
    stack, trader = box.stack, box.trader
    web, web_2 = stack.api(box.key), stack.api(box.key, "web-2")

    # A worker dies with a deposit's webhook waiting in it and a report half made; the
    # other worker finishes both. (worker-2 is frozen first, so both go to `worker`.)
    credited = deposits_credited(trader)
    stack.pause("worker-2")
    time.sleep(1.5)  # its last poll of the queue lapses
    with database() as blocker:
        blocker.execute("LOCK TABLE accounts_posting IN ACCESS EXCLUSIVE MODE")  # the ledger
        requested = web.post("/reports", json=TRANSACTIONS)
        assert requested.status_code == 202, requested.text
        report = Report.objects.get(public_id=requested.json()["id"])
        stack.wait_until(
            lambda: Report.objects.get(pk=report.pk).status == Report.Status.RUNNING,
            timeout=15,
            what="the report is being made",
        )
        deposit = web_2.post("/deposits", json={"amount": "70", "method": "bank_transfer"})
        assert deposit.status_code == 201, deposit.text
        stack.wait_until(
            lambda: f"[outbox-{delivery(deposit.json()['id']).pk}-" in stack.log("worker"),
            timeout=5,
            what="the deposit's webhook waits in the worker",
        )
        dead_claim = Report.objects.get(pk=report.pk).started_at
        stack.kill("worker")
        killed_at = time.monotonic()
        blocker.rollback()
    stack.resume("worker-2")
    stack.wait_until(
        lambda: (
            Report.objects.get(pk=report.pk).status == Report.Status.READY
            and Deposit.objects.get(public_id=deposit.json()["id"]).status
            == Deposit.Status.CONFIRMED
        ),
        timeout=OUTBOX_BOUND_SECONDS,
        what="the report made and the deposit confirmed without the dead worker",
    )
    assert time.monotonic() - killed_at < OUTBOX_BOUND_SECONDS
    assert Report.objects.get(pk=report.pk).started_at > dead_claim  # taken over
    assert deposits_credited(trader) == credited + 1
    stack.start("worker")

    # A web server dies with a trade and a deposit's webhook inside; web-2 serves on, the
    # trade retried there fills once, the webhook is delivered again once web is back.
    credited = deposits_credited(trader)
    with ExitStack() as sockets:
        streams = []
        for where in ("web", "web", "web-2"):
            socket, reply = stream_open(sockets, stack, where, box.key)
            assert reply["type"] == "authenticated", reply
            streams.append(socket)
        deposit = web_2.post("/deposits", json={"amount": "30", "method": "bank_transfer"})
        assert deposit.status_code == 201, deposit.text
        trade = {
            "symbol": "TRUMP-WIN",
            "side": "buy",
            "notional_usdc": "20",
            "client_order_id": "scale-out-1",
        }
        answers: list[object] = []
        with database() as blocker, database(autocommit=True) as observer:
            blocker.execute(
                "SELECT id FROM accounts_account WHERE id = %s FOR UPDATE", (trader.pk,)
            )
            inside = threading.Thread(
                target=lambda: answers.append(_post_or_error(web, "/execute", trade))
            )
            inside.start()
            stack.wait_until(
                lambda: blocked_by(observer, blocker) >= 2,
                timeout=15,
                what="the trade and the webhook wait inside web",
            )
            stack.kill("web")
            blocker.rollback()
        inside.join(timeout=15)
        assert isinstance(answers[0], httpx.TransportError), answers
        pending = Deposit.objects.get(public_id=deposit.json()["id"])
        assert pending.status == Deposit.Status.PENDING  # its webhook died with web
        assert web_2.get("/positions").status_code == 200  # web-2 serves on
        retried = web_2.post("/execute", json=trade)
        assert retried.status_code == 201, retried.text
        again = web_2.post("/execute", json=trade)
        assert (again.status_code, again.json()["id"]) == (200, retried.json()["id"])
        assert Order.objects.filter(client_order_id="scale-out-1").count() == 1
        # The dead server's stream slots free up after their TTL: web-2 takes two more.
        for socket in streams[:2]:
            with pytest.raises(ConnectionClosed):
                socket.recv(timeout=10)
        for _ in range(2):
            stack.wait_until(
                lambda: stream_open(sockets, stack, "web-2", box.key)[1]["type"] == "authenticated",
                timeout=SLOT_TTL_SECONDS + 10,
                what="a dead server's stream slot is free again",
            )
    stack.start("web")

    # A shard dies; a new process for it takes its lock and opens its accounts' calls,
    # while the other shard opens its own meanwhile (the webhook waits out its back-off).
    stack.kill("shard-1")
    offset = len(stack.log("shard-1"))
    stack.start("shard-1")
    killed_at = time.monotonic()
    quiet_tick("0.15")
    stack.wait_until(
        lambda: open_calls(box.borrowers[0]) == {a.pk for a in box.borrowers[0]},
        timeout=30,
        what="shard 0 opens its calls",
    )
    stack.wait_until(
        lambda: open_calls(box.borrowers[1]) == {a.pk for a in box.borrowers[1]},
        timeout=TAKEOVER_SECONDS,
        what="the new shard-1 opens its accounts' calls",
    )
    assert time.monotonic() - killed_at < TAKEOVER_SECONDS
    restarted_log = stack.log("shard-1")[offset:]
    assert "holds its lock; running" in restarted_log
    assert all(opened_in(restarted_log, account) for account in box.borrowers[1])
    quiet_tick("0.60")
    everyone = box.borrowers[0] + box.borrowers[1]
    stack.wait_until(lambda: not open_calls(everyone), timeout=30, what="the calls resolved")

    stack.wait_until(
        lambda: Deposit.objects.get(pk=pending.pk).status == Deposit.Status.CONFIRMED,
        timeout=OUTBOX_BOUND_SECONDS,
        what="the webhook delivered again to the restarted web",
    )
    assert deposits_credited(trader) == credited + 1

    # The feed and beat die together; new ones take their locks when the dead ones'
    # lapse, the prices move again and the dispatcher runs again. Meanwhile the web
    # servers serve, and a report is made (no beat needed for work sent at once).
    offsets = {name: len(stack.log(name)) for name in ("marketdata", "beat")}
    stack.kill("marketdata")
    stack.kill("beat")
    stack.start("marketdata", "beat")
    killed_at = time.monotonic()
    requested = web.post("/reports", json=TRANSACTIONS)
    assert requested.status_code == 202, requested.text
    stack.wait_until(
        lambda: Report.objects.get(public_id=requested.json()["id"]).status == Report.Status.READY,
        timeout=30,
        what="a report is made while beat is away",
    )
    stack.wait_until(
        lambda: all("holds its lock; running" in stack.log(n)[at:] for n, at in offsets.items()),
        timeout=LEADER_SECONDS,
        what="the new feed and beat take over",
    )
    assert time.monotonic() - killed_at < LEADER_SECONDS
    took_over = time.time()
    stack.wait_until(
        lambda: (
            heartbeat_read("marketdata").at > took_over
            and heartbeat_read("worker").at > took_over  # the dispatcher, sent by beat
        ),
        timeout=15,
        what="prices publish and the dispatcher runs again",
    )
    for where in ("web", "web-2"):
        stack.wait_until(lambda where=where: stack.ready(where), timeout=30, what="ready")
    assert all(stack.alive(name) for name in PROCESSES), stack.logs()
    assert ledger_reconcile().ok


def _post_or_error(client: httpx.Client, path: str, body: dict) -> object:
    try:
        return client.post(path, json=body)
    except httpx.TransportError as error:
        return error
