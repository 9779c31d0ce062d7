"""A Celery worker killed (-9) in the middle of a report and of a deposit's confirmation:
a new worker finishes both within a bounded time, the deposit credited exactly once."""

import time
from decimal import Decimal

import httpx
import psycopg
import pytest
from django.db import connection

from accounts.models import Account, Deposit, Journal
from accounts.services.reconciliation import ledger_reconcile
from portal.schedules import schedules_install
from tests.api.conftest import key_issue
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.fault_harness import FAST, PrivateRedis, Stack
from trading.models import Report

pytestmark = pytest.mark.django_db(transaction=True)

# The outbox re-sends within its lease after the dispatcher's next run; a report is
# taken over once its dead run's heartbeat is this old.
BOUND_SECONDS = int(FAST["OUTBOX_LEASE_SECONDS"]) + int(FAST["REPORT_STALE_SECONDS"]) + 20


@pytest.fixture
def product(settings):
    """(stack, account, key): the web server, a worker and beat only."""
    schedules_install()
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "1000")
    key = key_issue([account])
    with PrivateRedis() as redis_server:
        settings.REDIS_URL = redis_server.url
        with Stack(redis_url=redis_server.url) as stack:
            stack.start("web", "worker", "beat")
            yield stack, account, key


def blocked_on(database: psycopg.Connection, tables: tuple[str, ...]) -> int:
    """How many sessions wait for a lock on one of `tables`."""
    row = database.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
        " WHERE NOT l.granted AND c.relname = ANY(%s)",
        (list(tables),),
    ).fetchone()
    return row[0]


def test_a_killed_worker_strands_neither_a_report_nor_a_deposit(product):
    stack, account, key = product
    api = stack.api(key)
    settings_dict = connection.settings_dict
    with (
        psycopg.connect(
            host=settings_dict["HOST"] or "127.0.0.1",
            port=settings_dict["PORT"] or 5432,
            user=settings_dict["USER"],
            dbname=settings_dict["NAME"],
            autocommit=True,
        ) as observer,
        psycopg.connect(
            host=settings_dict["HOST"] or "127.0.0.1",
            port=settings_dict["PORT"] or 5432,
            user=settings_dict["USER"],
            dbname=settings_dict["NAME"],
        ) as blocker,
    ):
        deposit_id = api.post("/deposits", json={"amount": "250", "method": "bank_transfer"})
        assert deposit_id.status_code == 201, deposit_id.text
        # Hold the worker inside both tasks: the delivery reads the deposit, the report
        # the ledger; both wait on these locks until the worker is killed.
        blocker.execute("LOCK TABLE accounts_deposit, accounts_posting IN ACCESS EXCLUSIVE MODE")
        report_id = api.post(
            "/reports", json={"type": "transactions", "from": "2026-01-01", "to": "2026-12-31"}
        )
        assert report_id.status_code == 202, report_id.text
        stack.wait_until(
            lambda: blocked_on(observer, ("accounts_deposit", "accounts_posting")) >= 2,
            timeout=30,
            what="the worker is inside both tasks",
        )
        report = Report.objects.get(public_id=report_id.json()["id"])
        assert report.status == Report.Status.RUNNING
        dead_claim = report.started_at
        stack.kill("worker")
        killed_at = time.monotonic()
        blocker.rollback()

    stack.start("worker")
    deposit = Deposit.objects.get(public_id=deposit_id.json()["id"])
    stack.wait_until(
        lambda: (
            Report.objects.get(pk=report.pk).status == Report.Status.READY
            and Deposit.objects.get(pk=deposit.pk).status == Deposit.Status.CONFIRMED
        ),
        timeout=BOUND_SECONDS,
        what="the report ready and the deposit confirmed by a new worker",
    )
    assert time.monotonic() - killed_at < BOUND_SECONDS
    report.refresh_from_db()
    assert report.started_at > dead_claim  # taken over by a second run
    assert Journal.objects.filter(kind=Journal.Kind.DEPOSIT, account=account).count() == 2
    account.refresh_from_db()
    assert account.cash_balance == Decimal("1250")
    download = httpx.get(api.get(f"/reports/{report.public_id}").json()["download_url"])
    assert download.status_code == 200
    assert "test funding,1000.000000,1000.000000" in download.text  # the ledger, in full
    assert ledger_reconcile().ok
