"""The request id (portal.logs, portal.middleware.RequestIdMiddleware): taken from a valid
X-Request-ID or made, returned in the response, on every log record of the request, of
the tasks it sends (directly, through the outbox, and re-sent by the dispatcher) and of
the pushes after its commit; JSON logs; tracing off imports nothing of OpenTelemetry."""

import json
import logging
import os
import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from celery import current_app, shared_task
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts import outbox
from accounts.models import Account, OutboxItem
from accounts.outbox import outbox_dispatch, outbox_enqueue
from portal.logs import JsonFormatter, PlainFormatter, request_id_bind, request_id_reset
from portal.redis import redis_client
from tests.api.conftest import client_for, key_issue
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.live_server import python_run
from tests.trading.conftest import binary_create, quote_store  # noqa: F401
from tests.trading.executing import no_commission
from tests.trading.quoting import put_quote

ROOT = Path(__file__).resolve().parents[2]
HEX_ID = re.compile(r"[0-9a-f]{32}")
TASK_LOGGER = "tests.portal.task"


@shared_task(name="tests.portal.log_request_id")
def log_request_id_task(*, note: str = "") -> str:
    logging.getLogger(TASK_LOGGER).info("task ran %s", note)
    return note


@pytest.fixture(autouse=True)
def _tasks_imported(monkeypatch):
    """Import every task module now: the outbox's first send does it otherwise, and
    Celery's Django fix-up then re-runs django.setup(), whose logging configuration
    drops caplog's handler mid-test."""
    current_app.loader.import_default_modules()
    monkeypatch.setattr(outbox, "_tasks_imported", True)


def ids_of(caplog, *, logger: str | None = None, containing: str = "") -> set:
    return {
        getattr(record, "request_id", None)
        for record in caplog.records
        if (logger is None or record.name == logger) and containing in record.getMessage()
    }


# --- The header ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_valid_incoming_id_is_returned_and_logged(caplog):
    caplog.set_level(logging.INFO, logger="portal.access")
    response = Client().get("/health/", HTTP_X_REQUEST_ID="lb-7f3a.01:retry-2")
    assert response["X-Request-ID"] == "lb-7f3a.01:retry-2"
    assert ids_of(caplog, logger="portal.access", containing="GET /health/ ") == {
        "lb-7f3a.01:retry-2"
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sent",
    ["has spaces", "x" * 65, "<script>alert(1)</script>", "line\nbreak", "ünïcode", ""],
)
def test_a_bad_incoming_id_is_replaced_by_a_new_one(sent, caplog):
    caplog.set_level(logging.INFO, logger="portal.access")
    response = Client().get("/health/", HTTP_X_REQUEST_ID=sent)
    returned = response["X-Request-ID"]
    assert returned != sent and HEX_ID.fullmatch(returned)
    assert ids_of(caplog, logger="portal.access") == {returned}


@pytest.mark.django_db
def test_without_an_id_each_request_gets_its_own():
    client = Client()
    first, second = (client.get("/health/")["X-Request-ID"] for _ in range(2))
    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second) and first != second


@pytest.mark.django_db
def test_error_answers_carry_the_id_too():
    response = Client().get("/no-such-page/", HTTP_X_REQUEST_ID="req-404")
    assert response.status_code == 404 and response["X-Request-ID"] == "req-404"


# --- An order from the API to the push; a report from the API to its task -----------------


@pytest.mark.django_db(transaction=True)
def test_an_orders_request_id_reaches_its_push_log_line(quote_store, caplog):  # noqa: F811
    """Committed for real (no test transaction): the push goes after the order's
    commit, inside the request, and logs under its id."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="portal.access")
    no_commission()
    binary_create("TRUMP-WIN")
    put_quote("TRUMP-WIN@kalshi", bid="0.59", ask="0.60")
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "1000")
    api = client_for(key_issue([account]))
    response = api.post(
        "/v1/intelligence/execute",
        {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "6"},
        format="json",
        HTTP_X_REQUEST_ID="order-trace-1",
    )
    assert response.status_code == 201 and response["X-Request-ID"] == "order-trace-1"
    order_id = response.json()["id"]
    assert ids_of(caplog, logger="trading.broadcasts", containing=f"push: order {order_id}") == {
        "order-trace-1"
    }
    assert ids_of(caplog, logger="portal.access", containing="/v1/intelligence/execute") == {
        "order-trace-1"
    }


@pytest.mark.django_db
def test_a_reports_request_id_reaches_its_outbox_item_and_task(
    django_capture_on_commit_callbacks, caplog
):
    """The task is sent after commit, here after the request has ended: the outbox
    item keeps the id and the send binds it again."""
    caplog.set_level(logging.INFO)
    account = open_account(kind=Account.Kind.CUSTODIAL)
    api = client_for(key_issue([account]))
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            "/v1/intelligence/reports",
            {"type": "transactions", "from": "2020-01-01", "to": "2020-01-31"},
            format="json",
            HTTP_X_REQUEST_ID="report-trace-9",
        )
    assert created.status_code == 202 and created["X-Request-ID"] == "report-trace-9"
    item = OutboxItem.objects.get(task="trading.report_generate")
    assert item.request_id == "report-trace-9" and item.done_at is not None
    report_id = created.json()["id"]
    assert ids_of(caplog, logger="trading.services.reports", containing=report_id) == {
        "report-trace-9"
    }
    assert ids_of(caplog, logger="celery.app.trace", containing="trading.report_generate") == {
        "report-trace-9"
    }


@pytest.mark.django_db
def test_the_dispatcher_resends_an_item_under_the_id_that_made_it(caplog):
    caplog.set_level(logging.INFO)
    token = request_id_bind("made-by-req-5")
    try:
        item = outbox_enqueue(task="tests.portal.log_request_id", kwargs={"note": "resent"})
    finally:
        request_id_reset(token)
    assert item.request_id == "made-by-req-5"  # never sent: the test transaction is open
    assert outbox_dispatch(now=timezone.now() + timedelta(hours=1)) == 1
    assert ids_of(caplog, logger=TASK_LOGGER, containing="resent") == {"made-by-req-5"}


# --- Celery message headers ------------------------------------------------------------------


def test_a_published_task_carries_the_id_in_its_headers():
    queue = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] + "celery"
    client = redis_client()
    client.delete(queue)
    current_app.conf.task_always_eager = False
    token = request_id_bind("publish-42")
    try:
        log_request_id_task.apply_async(kwargs={"note": "published"})
    finally:
        request_id_reset(token)
        current_app.conf.task_always_eager = True
    try:
        message = json.loads(client.rpop(queue))
    finally:
        client.delete(queue)
    assert message["headers"]["task"] == "tests.portal.log_request_id"
    assert message["headers"]["request_id"] == "publish-42"


def test_a_worker_binds_the_header_and_ignores_a_bad_one(caplog):
    caplog.set_level(logging.INFO, logger=TASK_LOGGER)
    log_request_id_task.apply(kwargs={"note": "good"}, headers={"request_id": "hdr-1"})
    log_request_id_task.apply(kwargs={"note": "bad"}, headers={"request_id": "bad id!"})
    assert ids_of(caplog, logger=TASK_LOGGER, containing="good") == {"hdr-1"}
    assert ids_of(caplog, logger=TASK_LOGGER, containing="bad") == {None}


# --- Formats ---------------------------------------------------------------------------------


def _record(message: str) -> logging.LogRecord:
    token = request_id_bind("fmt-1")
    try:
        return logging.getLogger("portal.test").makeRecord(
            "portal.test", logging.WARNING, __file__, 1, message, (), None
        )
    finally:
        request_id_reset(token)


def test_json_lines_carry_the_id_and_plain_lines_show_it():
    entry = json.loads(JsonFormatter().format(_record("hello")))
    assert entry["request_id"] == "fmt-1" and entry["message"] == "hello"
    assert entry["level"] == "WARNING" and entry["logger"] == "portal.test"
    assert PlainFormatter().format(_record("hello")).endswith("portal.test: hello [fmt-1]")


def test_production_logs_json_and_trusts_no_network_for_metrics():
    code = textwrap.dedent(
        """
        from django.conf import settings
        print(settings.LOGGING["handlers"]["console"]["formatter"])
        print(settings.METRICS_ALLOWED_NETWORKS)
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.production",
        "DJANGO_SECRET_KEY": "x" * 50,
        "PAYMENT_WEBHOOK_SECRET": "x",
        "LINKED_CREDENTIAL_KEYS": "yujalpDL2RbTJ7SInjFYmiBZKIMnaXDJ95jxwgYt6X0=",
        "DATABASE_URL": "postgres://check@127.0.0.1/check",
    }
    env.pop("LOG_FORMAT", None)
    env.pop("METRICS_ALLOWED_NETWORKS", None)
    out = python_run(code, env)
    assert out.split() == ["json", "[]"]


# --- Tracing ---------------------------------------------------------------------------------


TRACING_PROBE = textwrap.dedent(
    """
    import sys
    import portal.asgi  # django.setup(), the middleware, every app
    from portal import tracing
    print(tracing.tracing_setup())
    print(sorted({name.split(".")[1] for name in sys.modules if name.startswith("opentelemetry.")}))
    """
)


def test_tracing_off_imports_nothing_of_opentelemetry():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.test", "OTEL_ENABLED": "0"}
    assert python_run(TRACING_PROBE, env).split("\n")[:2] == ["False", "[]"]


def test_tracing_on_instruments_django_celery_and_psycopg():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "OTEL_ENABLED": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",  # nothing listens: no span sent
    }
    on, modules = python_run(TRACING_PROBE, env).split("\n")[:2]
    assert on == "True"
    assert "instrumentation" in modules and "sdk" in modules
