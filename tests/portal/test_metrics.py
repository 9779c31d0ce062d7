"""Prometheus metrics (portal.metrics): who may read /metrics, and that each of our
metrics moves when its event happens, at the place the event is decided."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from celery import shared_task
from channels.testing import WebsocketCommunicator
from django.test import Client
from prometheus_client import REGISTRY

from accounts.models import Account, OutboxItem
from accounts.outbox import outbox_enqueue
from portal.asgi import application
from tests.api.conftest import client_for, key_issue
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.conftest import binary_create, markets, quote_store  # noqa: F401
from tests.trading.executing import no_commission
from tests.trading.margining import borrower, margin_keys_clear, tick
from tests.trading.quoting import put_quote
from tests.web.test_consumers import TIMEOUT, run_async, session_cookie, socket
from trading.engine import MarginEngine
from trading.models import MarginCall
from trading.venues.base import VenueTimeout
from trading.venues.simulated import SimulatedVenue

ROOT = Path(__file__).resolve().parents[2]


def value(name: str, **labels: str) -> float:
    """A sample of this process's registry (0 when not yet observed)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- Who may read /metrics --------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_are_refused_outside_the_allowed_networks_and_served_inside(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32", "10.0.0.0/8"]
    settings.METRICS_BEARER_TOKEN = ""
    client = Client()
    refused = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 404
    assert b"portal_orders" not in refused.content
    for address in ("127.0.0.1", "10.1.2.3"):
        served = client.get("/metrics", REMOTE_ADDR=address)
        assert served.status_code == 200
        assert served["Content-Type"].startswith("text/plain")
        body = served.content.decode()
        assert "# TYPE portal_orders_total counter" in body
        assert "django_http_requests_total_by_method_total" in body  # django-prometheus


@pytest.mark.django_db
def test_with_no_network_listed_only_the_bearer_token_opens_metrics(settings):
    settings.METRICS_ALLOWED_NETWORKS = []  # production's default
    settings.METRICS_BEARER_TOKEN = "scrape-token-0123456789"
    client = Client()
    assert client.get("/metrics").status_code == 404  # not even from loopback
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-wrong")
    assert wrong.status_code == 404
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")
    assert right.status_code == 200 and b"portal_engine_evaluation_seconds" in right.content


@pytest.mark.django_db
def test_an_empty_token_setting_never_matches_an_empty_bearer(settings):
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.METRICS_BEARER_TOKEN = ""
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_scrape_shows_the_outbox_backlog_and_the_celery_queue(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    before = OutboxItem.objects.filter(done_at__isnull=True).count()
    outbox_enqueue(task="tests.portal.metrics_noop", kwargs={})  # not committed: unfinished
    body = Client().get("/metrics").content.decode()
    assert f'portal_outbox_items{{state="unfinished"}} {float(before + 1)}' in body
    assert 'portal_celery_queue_length{queue="celery"}' in body


# --- Orders, venues, limits ----------------------------------------------------------------


@pytest.fixture
def trader(db, quote_store):  # noqa: F811
    no_commission()
    binary_create("TRUMP-WIN")
    put_quote("TRUMP-WIN@kalshi", bid="0.59", ask="0.60")
    put_quote("TRUMP-WIN@polymarket", bid="0.61", ask="0.62")
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "1000")
    return client_for(key_issue([account]))


def _execute(api, notional: str):
    body = {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": notional}
    return api.post("/v1/intelligence/execute", body, format="json")


def test_an_executed_order_counts_its_outcome_latency_and_venue_call(trader):
    filled = value("portal_orders_total", outcome="filled")
    executes = value("portal_order_execute_seconds_count")
    venue_calls = value("portal_venue_call_seconds_count", venue="kalshi", operation="order_place")
    refused = value("portal_orders_total", outcome="insufficient_margin")

    assert _execute(trader, "60").status_code == 201
    assert value("portal_orders_total", outcome="filled") == filled + 1
    assert value("portal_order_execute_seconds_count") == executes + 1
    assert (
        value("portal_venue_call_seconds_count", venue="kalshi", operation="order_place")
        == venue_calls + 1
    )

    response = _execute(trader, "5000")  # more than the account holds
    assert response.status_code == 422 and response.json()["code"] == "insufficient_margin"
    assert value("portal_orders_total", outcome="insufficient_margin") == refused + 1
    assert value("portal_orders_total", outcome="filled") == filled + 1
    assert value("portal_order_execute_seconds_count") == executes + 2


def test_a_venue_call_that_times_out_counts_an_error(trader, monkeypatch):
    def silent(self, *args, **kwargs):
        raise VenueTimeout("no answer in time")

    monkeypatch.setattr(SimulatedVenue, "market_order_place", silent)
    labels = {"venue": "kalshi", "operation": "order_place", "error": "VenueTimeout"}
    errors = value("portal_venue_call_errors_total", **labels)
    pending = value("portal_orders_total", outcome="pending")
    assert _execute(trader, "6").status_code == 202  # left pending for the reconciler
    assert value("portal_venue_call_errors_total", **labels) == errors + 1
    assert value("portal_orders_total", outcome="pending") == pending + 1


def test_a_rate_limited_request_is_counted(trader, settings):
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "market_data": 1}
    refusals = value("portal_rate_limit_refusals_total", limit="market_data", transport="rest")
    assert trader.get("/v1/intelligence/positions").status_code == 200
    assert trader.get("/v1/intelligence/positions").status_code == 429
    assert (
        value("portal_rate_limit_refusals_total", limit="market_data", transport="rest")
        == refusals + 1
    )


# --- The margin engine --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_engine_counts_sweeps_batches_pushes_and_margin_calls(
    markets,  # noqa: F811
    quote_store,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    margin_keys_clear()
    tick(bid="0.60")
    account = borrower(markets.trump)
    opened = value("portal_margin_calls_total", event="opened")
    resolved = value("portal_margin_calls_total", event="resolved")
    sweeps = value("portal_engine_evaluation_seconds_count", kind="sweep")
    batches = value("portal_engine_evaluation_seconds_count", kind="batch")
    evaluated = value("portal_engine_accounts_evaluated_sum", kind="batch")
    pushed = value("portal_tick_to_push_seconds_count")

    engine = MarginEngine()
    with django_capture_on_commit_callbacks(execute=True):
        engine.sweep()
    assert value("portal_engine_evaluation_seconds_count", kind="sweep") == sweeps + 1

    with django_capture_on_commit_callbacks(execute=True):
        engine.process_batch(tick(bid="0.15"))  # below maintenance: a call opens
    assert MarginCall.objects.get(account=account).status == MarginCall.Status.OPEN
    assert value("portal_margin_calls_total", event="opened") == opened + 1
    assert value("portal_engine_evaluation_seconds_count", kind="batch") == batches + 1
    assert value("portal_engine_accounts_evaluated_sum", kind="batch") == evaluated + 1
    assert value("portal_tick_to_push_seconds_count") == pushed + 1

    with django_capture_on_commit_callbacks(execute=True):
        engine.process_batch(tick(bid="0.40"))  # back above: resolved
    assert value("portal_margin_calls_total", event="resolved") == resolved + 1


@pytest.mark.django_db
def test_a_call_rolled_back_is_not_counted(markets, quote_store):  # noqa: F811
    margin_keys_clear()
    tick(bid="0.60")
    borrower(markets.trump)
    opened = value("portal_margin_calls_total", event="opened")
    engine = MarginEngine(publish=False)
    engine.sweep()
    engine.process_batch(tick(bid="0.15"))  # inside the test's transaction: never committed
    assert MarginCall.objects.filter(status=MarginCall.Status.OPEN).count() == 1
    assert value("portal_margin_calls_total", event="opened") == opened


# --- Celery tasks ---------------------------------------------------------------------------------


@shared_task(name="tests.portal.metrics_noop")
def metrics_noop_task() -> int:
    return 1


@shared_task(name="tests.portal.metrics_fails")
def metrics_failing_task() -> int:
    raise RuntimeError("broken on purpose")


def test_task_runs_are_counted_by_outcome_and_timed():
    ok = value("portal_celery_tasks_total", task="tests.portal.metrics_noop", outcome="succeeded")
    timed = value("portal_celery_task_seconds_count", task="tests.portal.metrics_noop")
    failed = value("portal_celery_tasks_total", task="tests.portal.metrics_fails", outcome="failed")
    # apply() runs it here as a worker would; its result is read without get(), which
    # refuses once another test has run a worker in this process (task_join_will_block).
    result = metrics_noop_task.apply()
    assert result.successful() and result.result == 1
    # As a worker runs it: the failure recorded, not raised into the caller.
    assert metrics_failing_task.apply(throw=False).failed()
    assert (
        value("portal_celery_tasks_total", task="tests.portal.metrics_noop", outcome="succeeded")
        == ok + 1
    )
    assert value("portal_celery_task_seconds_count", task="tests.portal.metrics_noop") == timed + 1
    assert (
        value("portal_celery_tasks_total", task="tests.portal.metrics_fails", outcome="failed")
        == failed + 1
    )


# --- WebSockets ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_open_dashboard_socket_is_counted_until_it_closes():
    account = open_account()
    cookie = session_cookie(account.owner)
    before = value("portal_websocket_connections", kind="dashboard")
    connects = value("portal_websocket_connects_total", kind="dashboard")

    async def run():
        communicator = socket(account.public_id, cookie=cookie)
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        during = value("portal_websocket_connections", kind="dashboard")
        await communicator.disconnect()
        return during

    assert run_async(run) == before + 1
    assert value("portal_websocket_connections", kind="dashboard") == before
    assert value("portal_websocket_connects_total", kind="dashboard") == connects + 1


@pytest.mark.django_db(transaction=True)
def test_a_refused_dashboard_socket_is_not_counted():
    before = value("portal_websocket_connects_total", kind="dashboard")

    async def run():
        communicator = socket("acc_nobody")  # not signed in: closed 4401
        await communicator.connect(timeout=TIMEOUT)
        await communicator.disconnect()

    run_async(run)
    assert value("portal_websocket_connects_total", kind="dashboard") == before
    assert value("portal_websocket_connections", kind="dashboard") >= 0


@pytest.mark.django_db(transaction=True)
def test_an_open_partner_stream_is_counted_until_it_closes():
    before = value("portal_websocket_connections", kind="partner_stream")

    async def run():
        communicator = WebsocketCommunicator(
            application, "/v1/stream", headers=[(b"host", b"127.0.0.1:8000")]
        )
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        during = value("portal_websocket_connections", kind="partner_stream")
        await communicator.disconnect()
        return during

    assert run_async(run) == before + 1
    assert value("portal_websocket_connections", kind="partner_stream") == before


# --- Several processes, one /metrics --------------------------------------------------

WRITER = textwrap.dedent(
    """
    from portal import metrics
    metrics.MARGIN_CALLS.labels("opened").inc(2)
    metrics.websocket_opened("dashboard")
    """
)
READER = textwrap.dedent(
    """
    from portal import metrics
    print(metrics.metrics_render().decode())
    """
)


def test_processes_sharing_the_multiprocess_directory_are_summed(tmp_path):
    """The engine, feed and workers are separate processes: with PROMETHEUS_MULTIPROC_DIR
    each writes its samples there, and the web process's /metrics sums them. A gauge of
    live connections counts only processes still alive (livesum)."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
    }

    def run(code: str) -> str:
        done = subprocess.run(  # noqa: S603 - our interpreter, our code
            [sys.executable, "-c", code],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    run(WRITER)
    run(WRITER)
    body = run(READER)
    assert 'portal_margin_calls_total{event="opened"} 4.0' in body
    # Both writers have exited: their open sockets are not live any more.
    sockets = [
        float(line.rpartition(" ")[2])
        for line in body.splitlines()
        if line.startswith('portal_websocket_connections{kind="dashboard"}')
    ]
    assert sum(sockets) == 0
    assert 'portal_websocket_connects_total{kind="dashboard"} 2.0' in body
