"""Redis killed (-9) and restarted empty under the whole product (the Procfile's web,
worker, beat, feed and margin engine): the outage is a 503 and shows in /ready/; then
everything comes back by itself within 30 s, money submitted around the outage is
credited exactly once, live sockets get their pushes again, and the ledger reconciles."""

import json
import re
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from websockets.sync.client import connect

from accounts.models import Deposit, Journal
from accounts.services.reconciliation import ledger_reconcile
from tests.faults.conftest import PROCESSES, RECOVERY_SECONDS

pytestmark = pytest.mark.django_db(transaction=True)


def deposit_by_page(browser: httpx.Client, amount: str) -> httpx.Response:
    return browser.post(
        "/deposits/",
        data={
            "amount": amount,
            "method": "bank_transfer",
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
    )


def next_message(socket, *, kind: str, timeout: float, where=lambda message: True) -> dict:
    """The next message of type `kind` (for which `where` holds) on a socket."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        message = json.loads(socket.recv(timeout=left))
        if message.get("type") == kind and where(message):
            return message
    raise TimeoutError(kind)


@pytest.fixture
def sockets():
    with ExitStack() as stack:
        yield stack


def test_the_product_recovers_from_a_redis_restart(product, sockets):
    stack, redis_server, account, key = product
    api = stack.api(key)
    stack.wait_until(stack.ready, timeout=60, what="the product is ready")
    browser = stack.signed_in(account.owner.email)
    ws_origin = {"Origin": stack.url, "Cookie": f"sessionid={browser.cookies['sessionid']}"}
    dashboard = sockets.enter_context(
        connect(
            f"ws://127.0.0.1:{stack.web_port}/ws/dashboard/{account.public_id}/",
            additional_headers=ws_origin,
        )
    )
    stream = sockets.enter_context(connect(f"ws://127.0.0.1:{stack.web_port}/v1/stream"))
    stream.send(json.dumps({"op": "auth", "key": key}))
    assert next_message(stream, kind="authenticated", timeout=10)
    stream.send(json.dumps({"op": "subscribe", "channel": "orderbook", "market_id": "BTC-PERP"}))
    assert next_message(stream, kind="snapshot", timeout=10)
    # A bank transfer started just before the outage: its webhook is due in 1 s.
    before = deposit_by_page(browser, "100")
    assert before.status_code == 302, before.text

    redis_server.kill()
    down_at = time.monotonic()
    reads = [api.get("/positions").status_code for _ in range(3)]
    write = api.post("/deposits", json={"amount": "250", "method": "bank_transfer"})
    readiness = httpx.get(f"{stack.url}/ready/", timeout=10)
    # The portal takes a deposit while Redis is down: it is recorded, not lost.
    during = deposit_by_page(browser, "40")
    time.sleep(max(0.0, 5 - (time.monotonic() - down_at)))
    redis_server.start()  # empty: quotes, locks, queues and subscriptions are gone
    restarted = time.monotonic()
    restarted_at = datetime.now(UTC)

    assert reads == [503, 503, 503]
    assert write.status_code == 503 and write.json()["code"] == "service_unavailable"
    assert write.headers["Retry-After"] == "5"
    assert readiness.status_code == 503
    assert readiness.json()["checks"]["redis"]["status"] == "unavailable"
    assert during.status_code == 302, during.text  # accepted: pending, recorded

    stack.wait_until(stack.ready, timeout=RECOVERY_SECONDS, what="feed, engine and workers back")
    assert time.monotonic() - restarted < RECOVERY_SECONDS
    assert all(stack.alive(name) for name in PROCESSES), stack.logs()
    assert api.get("/positions").status_code == 200

    # Every deposit around the outage is credited, each exactly once.
    statuses = Deposit.objects.filter(account=account).values_list("status", flat=True)
    stack.wait_until(
        lambda: sorted(statuses.all()) == [Deposit.Status.CONFIRMED] * 2,  # a fresh query
        timeout=45,
        what="both deposits confirmed",
    )
    account.refresh_from_db()
    assert account.cash_balance == Decimal("10140")
    assert Journal.objects.filter(kind=Journal.Kind.DEPOSIT, account=account).count() == 3
    assert ledger_reconcile().ok

    # The dashboard socket opened before the outage gets its pushes again (the channel
    # layer re-subscribed): a new deposit's cash reaches it.
    assert deposit_by_page(browser, "60").status_code == 302
    assert next_message(
        dashboard, kind="margin", timeout=30, where=lambda m: Decimal(m["cash"]) == 10200
    )

    # The partner stream's socket, open through it all, gets the books again: its hub
    # re-subscribed to the feed's ticks.
    assert next_message(
        stream,
        kind="update",
        timeout=15,
        where=lambda m: datetime.fromisoformat(m["ts"]) > restarted_at,
    )
    assert not re.search(r"Traceback|CRITICAL", stack.log("worker")), stack.log("worker")
