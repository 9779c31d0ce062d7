"""Prometheus metrics (portal.metrics): who may read /metrics, that each of our
metrics moves when its event happens, at the place the event is decided, and that
the processes without a web server serve their own."""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path
from socket import create_server
from wsgiref.simple_server import WSGIServer

import httpx
import pytest
from celery import current_app, shared_task
from celery.exceptions import AlwaysEagerIgnored
from celery.signals import beat_init
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from prometheus_client import REGISTRY

from accounts.models import Account, OutboxItem
from accounts.outbox import outbox_enqueue
from accounts.services.ledger import accounts_changed_key
from portal import metrics
from portal.asgi import application
from portal.redis import redis_client
from portal.shards import Shard, shard_of
from tests.api.conftest import client_for, key_issue
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.live_server import procfile_commands, python_run
from tests.trading.conftest import binary_create, markets, quote_store  # noqa: F401
from tests.trading.executing import no_commission
from tests.trading.margining import borrower, listen, margin_keys_clear, tick
from tests.trading.quoting import put_quote
from tests.web.test_consumers import TIMEOUT, run_async, session_cookie, socket
from trading.broadcasts import account_group
from trading.engine import MarginEngine
from trading.models import MarginCall
from trading.services.figures_store import watched_key
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
    bystander = borrower(markets.trump, quantity="10", deposit="100")
    listen(account_group(account.pk))  # a socket follows the account, not the bystander
    opened = value("portal_margin_calls_total", event="opened")
    resolved = value("portal_margin_calls_total", event="resolved")
    # One shard (the default): every engine metric is labelled shard "0".
    sweeps = value("portal_engine_evaluation_seconds_count", kind="sweep", shard="0")
    batches = value("portal_engine_evaluation_seconds_count", kind="batch", shard="0")
    evaluated = value("portal_engine_accounts_evaluated_sum", kind="batch", shard="0")
    pushed = value("portal_tick_to_push_seconds_count", shard="0")
    updates = {
        followed: value("portal_engine_updates_total", shard="0", followed=followed)
        for followed in ("yes", "no")
    }

    engine = MarginEngine()
    with django_capture_on_commit_callbacks(execute=True):
        engine.sweep()
    assert value("portal_engine_evaluation_seconds_count", kind="sweep", shard="0") == sweeps + 1

    with django_capture_on_commit_callbacks(execute=True):
        engine.process_batch(tick(bid="0.15"))  # below maintenance: a call opens
    assert MarginCall.objects.get(account=account).status == MarginCall.Status.OPEN
    assert value("portal_margin_calls_total", event="opened") == opened + 1
    assert value("portal_engine_evaluation_seconds_count", kind="batch", shard="0") == batches + 1
    assert value("portal_engine_accounts_evaluated_sum", kind="batch", shard="0") == evaluated + 2
    assert value("portal_tick_to_push_seconds_count", shard="0") == pushed + 1
    assert {
        followed: value("portal_engine_updates_total", shard="0", followed=followed) - was
        for followed, was in updates.items()
    } == {"yes": 1, "no": 1}
    assert bystander.pk != account.pk

    with django_capture_on_commit_callbacks(execute=True):
        engine.process_batch(tick(bid="0.40"))  # back above: resolved
    assert value("portal_margin_calls_total", event="resolved") == resolved + 1


def _engine_figures(shard: str) -> tuple[float, ...]:
    return (
        value("portal_engine_evaluation_seconds_count", kind="sweep", shard=shard),
        value("portal_engine_accounts_evaluated_sum", kind="sweep", shard=shard),
        value("portal_engine_evaluation_seconds_count", kind="batch", shard=shard),
        value("portal_engine_accounts_evaluated_sum", kind="batch", shard=shard),
        value("portal_tick_to_push_seconds_count", shard=shard),
        value("portal_figures_store_seconds_count", shard=shard),
    )


@pytest.mark.django_db
def test_each_shard_counts_under_its_own_label(
    markets,  # noqa: F811
    quote_store,  # noqa: F811
    settings,
    django_capture_on_commit_callbacks,
):
    """Two shards: both sweep, only the shard owning the account evaluates it, pushes
    its tick and stores its figures, and each turn is counted under its engine's shard."""
    settings.ENGINE_SHARDS = 2
    redis_client().delete(*(accounts_changed_key(index) for index in range(2)))
    tick(bid="0.60")
    account = borrower(markets.trump)
    owner = str(shard_of(account.pk, 2))
    other = "1" if owner == "0" else "0"
    redis_client().set(watched_key(account.pk), 1)  # read lately: its figures are stored
    listen(account_group(account.pk))  # and a socket follows it: it is pushed
    before = {shard: _engine_figures(shard) for shard in ("0", "1")}

    engines = [MarginEngine(shard=Shard(index, 2)) for index in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        for engine in engines:
            engine.sweep()
    with django_capture_on_commit_callbacks(execute=True):
        for engine in engines:
            engine.process_batch(tick(bid="0.15"))

    sweeps, swept, batches, evaluated, pushed, stored = (
        after - was for after, was in zip(_engine_figures(owner), before[owner], strict=True)
    )
    assert (sweeps, swept, batches, evaluated, pushed, stored) == (1, 1, 1, 1, 1, 1)
    sweeps, swept, batches, evaluated, pushed, stored = (
        after - was for after, was in zip(_engine_figures(other), before[other], strict=True)
    )
    assert (sweeps, swept, batches, evaluated, pushed, stored) == (1, 0, 0, 0, 0, 0)


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

    python_run(WRITER, env)
    python_run(WRITER, env)
    body = python_run(READER, env)
    assert 'portal_margin_calls_total{event="opened"} 4.0' in body
    # Both writers have exited: their open sockets are not live any more.
    sockets = [
        float(line.rpartition(" ")[2])
        for line in body.splitlines()
        if line.startswith('portal_websocket_connections{kind="dashboard"}')
    ]
    assert sum(sockets) == 0
    assert 'portal_websocket_connects_total{kind="dashboard"} 2.0' in body


# --- Processes without a web server: their own exporter (METRICS_PORT) ----------------------


def _free_port() -> int:
    with create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def _scrape(port: int, **headers: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=5)


def _stopped(server: WSGIServer) -> None:
    server.shutdown()
    server.server_close()


def test_the_exporter_serves_this_process_under_the_metrics_access_rules(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.METRICS_BEARER_TOKEN = "scrape-token-0123456789"
    metrics.engine_turn_observed(shard=5, kind="sweep", seconds=0.01, accounts=7)
    evaluated = value("portal_engine_accounts_evaluated_sum", kind="sweep", shard="5")
    server = metrics.metrics_exporter_serve(address="127.0.0.1", port=0)
    port = server.server_port
    try:
        served = _scrape(port)
        assert served.status_code == 200
        assert served.headers["Content-Type"].startswith("text/plain")
        assert f'portal_engine_accounts_evaluated_sum{{kind="sweep",shard="5"}} {evaluated}' in (
            served.text
        )
        # Samples only: the scrape-time gauges are the web processes' /metrics.
        assert "portal_celery_queue_length" not in served.text

        settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]  # loopback not listed any more
        refused = _scrape(port)
        assert refused.status_code == 404 and "portal_" not in refused.text
        assert _scrape(port, Authorization="Bearer scrape-token-wrong").status_code == 404
        token = _scrape(port, Authorization="Bearer scrape-token-0123456789")
        assert token.status_code == 200 and "portal_engine_accounts_evaluated" in token.text
    finally:
        _stopped(server)


def test_the_exporter_is_off_unless_a_port_is_set_and_a_busy_port_stops_nothing(settings, caplog):
    settings.METRICS_PORT = None
    assert metrics.metrics_exporter_start() is None
    with create_server(("127.0.0.1", 0)) as taken:
        settings.METRICS_PORT = taken.getsockname()[1]
        settings.METRICS_ADDRESS = "127.0.0.1"
        assert metrics.metrics_exporter_start() is None  # logged, not raised
    assert "metrics: could not serve" in caplog.text


def test_celery_beat_serves_its_metrics_from_beat_init(settings):
    """Beat (and a worker's main process: worker_init, the same receiver) start the
    exporter when METRICS_PORT is set."""
    settings.METRICS_PORT = _free_port()
    settings.METRICS_ADDRESS = "127.0.0.1"
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    servers = [
        response for _, response in beat_init.send(sender=None) if isinstance(response, WSGIServer)
    ]
    assert len(servers) == 1
    try:
        metrics.TASKS.labels("tests.portal.beat_sent", "succeeded").inc()
        body = _scrape(settings.METRICS_PORT).text
        assert 'portal_celery_tasks_total{outcome="succeeded",task="tests.portal.beat_sent"}' in (
            body
        )
    finally:
        _stopped(servers[0])


def _process_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    """A Procfile process on the test database, serving its metrics on `port`."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "DATABASE_URL": (
            f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "DB_CONN_MAX_AGE": "0",
        "REDIS_URL": django_settings.REDIS_URL,
        "METRICS_PORT": str(port),
        "METRICS_ADDRESS": "127.0.0.1",
        "METRICS_ALLOWED_NETWORKS": "127.0.0.1/32",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _serves(command: str, env: dict[str, str], port: int, sample: str, *, then=None) -> None:
    """Run a Procfile command until its exporter on `port` shows `sample` (at most 45 s;
    `then()` once it answers at all), then stop it with SIGTERM."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(  # noqa: S603 - the Procfile's command
            ["/bin/sh", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        body, answered = "", False
        try:
            deadline = time.monotonic() + 45
            while sample not in body and time.monotonic() < deadline:
                assert process.poll() is None, "the process exited"
                try:
                    body = _scrape(port).text
                except httpx.HTTPError:
                    time.sleep(0.2)
                    continue
                if not answered and then is not None:
                    then()
                answered = True
                time.sleep(0.2)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.seek(0)
            output = log.read().decode(errors="replace")[-3000:]
        assert sample in body, f"{sample} not served\n{body[-2000:]}\n--- log ---\n{output}"


@pytest.mark.django_db(transaction=True)  # the engine commits (its default policy): flushed
def test_an_engine_shard_serves_its_labelled_metrics_on_metrics_port(tmp_path):
    """run_margin_engine as shard 1 of 2, alone in its pod: its exporter shows its first
    sweep under shard "1" (multiprocess mode, as deployed)."""
    port = _free_port()
    env = _process_env(tmp_path, port, ENGINE_SHARDS="2", ENGINE_SHARD_INDEX="1")
    sample = 'portal_engine_evaluation_seconds_count{kind="sweep",shard="1"} 1.0'
    _serves(procfile_commands()["risk"], env, port, sample)


@pytest.mark.django_db(transaction=True)  # the worker's process commits: flushed
def test_a_celery_worker_serves_its_pool_processes_task_metrics(tmp_path):
    """The Procfile's worker (prefork pool): its main process serves the task outcomes its
    pool process recorded, summed through PROMETHEUS_MULTIPROC_DIR."""
    port = _free_port()
    prefix = f"{django_settings.KEY_PREFIX}-worker"  # a broker queue of its own
    env = _process_env(
        tmp_path,
        port,
        REDIS_KEY_PREFIX=prefix,
        CELERY_TASK_ALWAYS_EAGER="false",
        WORKER_CONCURRENCY="1",
    )
    options = {**current_app.conf.broker_transport_options, "global_keyprefix": f"{prefix}:celery:"}

    def send() -> None:  # to that queue (tasks sent from this process run eagerly)
        with (
            current_app.connection_for_write(transport_options=options) as broker,
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", AlwaysEagerIgnored)
            current_app.send_task("trading.margin_sweep_full", connection=broker)

    sample = 'portal_celery_tasks_total{outcome="succeeded",task="trading.margin_sweep_full"} 1.0'
    try:
        _serves(procfile_commands()["worker"], env, port, sample, then=send)
    finally:
        client = redis_client()
        client.delete(*client.scan_iter(f"{prefix}:*"), f"{prefix}:none")
