"""The database out of reach under the whole product — every connection dropped and new
ones refused for a while, as a PostgreSQL restart does to its clients — and back: the
outage is a 503, prices keep publishing, and everything comes back by itself."""

import time
from contextlib import contextmanager
from decimal import Decimal

import httpx
import psycopg
import pytest
from django.db import connection

from accounts.models import Deposit
from accounts.services.reconciliation import ledger_reconcile
from portal.heartbeats import heartbeat_read
from tests.faults.conftest import PROCESSES, RECOVERY_SECONDS

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_away():
    """Refuse new connections to the test database and drop every open one but this
    test's own, for the block (superuser: `ALTER DATABASE … ALLOW_CONNECTIONS`)."""
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own,) = cursor.fetchone()
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> %s",
                (name, own),
            )
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


def test_the_product_rides_out_a_database_outage(product):
    stack, _redis_server, account, key = product
    api = stack.api(key)
    stack.wait_until(stack.ready, timeout=60, what="the product is ready")
    browser = stack.signed_in(account.owner.email)

    with database_away():
        time.sleep(1)
        reads = [api.get("/positions") for _ in range(3)]
        page = browser.get("/dashboard/")  # its session cannot be read
        readiness = httpx.get(f"{stack.url}/ready/", timeout=10)
        time.sleep(5)
        feed_age = heartbeat_read("marketdata").age()
    back = time.monotonic()

    assert [r.status_code for r in reads] == [503, 503, 503]
    assert reads[0].json()["code"] == "service_unavailable"
    assert reads[0].headers["Retry-After"] == "5"
    assert page.status_code == 503 and "Temporarily unavailable" in page.text
    assert readiness.status_code == 503
    assert readiness.json()["checks"]["database"]["status"] == "unavailable"
    assert feed_age < 3  # prices kept publishing without the database

    stack.wait_until(stack.ready, timeout=RECOVERY_SECONDS, what="ready again")
    assert time.monotonic() - back < RECOVERY_SECONDS
    assert all(stack.alive(name) for name in PROCESSES), stack.logs()
    assert api.get("/positions").status_code == 200
    created = api.post("/deposits", json={"amount": "75", "method": "bank_transfer"})
    assert created.status_code == 201, created.text
    stack.wait_until(
        lambda: (
            Deposit.objects.get(public_id=created.json()["id"]).status == Deposit.Status.CONFIRMED
        ),
        timeout=30,
        what="a deposit made after the outage is confirmed",
    )
    account.refresh_from_db()
    assert account.cash_balance == Decimal("10075")
    assert ledger_reconcile().ok
