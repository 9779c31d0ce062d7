"""The product's own Prometheus metrics, and the `/metrics` endpoint that serves them.

Every metric is defined here, once; the code that decides an event counts it
with a line at that place (an order's outcome in `trading.services.execute`, a
margin call in `trading.services.margin_calls`, a socket in its consumer, …).
This module imports no app: what only an app can measure at scrape time (the
outbox backlog) is handed in through `scrape_source_register` from the app's
`ready()`. django-prometheus measures HTTP (its two middlewares) and the
database (its backend wrapper, `portal.settings.base.database_from_env`).

Several processes, one view: the web workers, the Celery workers, beat, the
market-data feed and the margin engine are separate processes. With
PROMETHEUS_MULTIPROC_DIR set in their environment (`make run` sets it to
var/prometheus and empties it at start; a deployment gives every process of a
host or pod the same empty directory), prometheus_client writes each process's
samples to files there and `/metrics` on any web process sums them all
(gauges: `livesum`, so a dead process's sockets do not count). Without it,
`/metrics` shows the answering process's own samples (tests, a single process).

Processes without a web server in their pod or container (the margin engine,
the feed, Celery workers and beat, deployed apart) serve their samples
themselves (`metrics_exporter_start`, from their command or a Celery signal)
when settings.METRICS_PORT is set, on METRICS_ADDRESS (loopback by default; the
pod's address in Kubernetes); off by default. In multiprocess mode that is
every process sharing the directory (a worker and its pool processes). The
scrape-time gauges (outbox backlog, queue depth) are not among them: the web
processes' `/metrics` reads those, so each is counted once.

The margin engine's metrics carry a `shard` label (the shard's index, "0" with
one shard: `portal.shards`), so a dashboard tells the shards apart.

Access (`metrics_access_allowed`): `/metrics` is never public, on a web
process or an exporter. It answers a client whose address lies in
settings.METRICS_ALLOWED_NETWORKS (loopback by default; nothing by default in
production), or a request with `Authorization: Bearer
<settings.METRICS_BEARER_TOKEN>` when that is set; everyone else gets 404, as
for a page that does not exist.
"""

import atexit
import hmac
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import wraps
from socketserver import ThreadingMixIn
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_rejected,
    task_retry,
    task_success,
)
from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_wsgi_app,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from portal.net import client_ip
from portal.redis import redis_client

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Latency buckets (seconds): a few ms to a venue's 10 s timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# The engine's work per batch: sub-millisecond to a slow full sweep.
ENGINE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
ACCOUNT_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)

# --- Orders ----------------------------------------------------------------------
ORDERS = Counter(
    "portal_orders",
    "Execute requests by outcome: the order's status (filled, pending, rejected, "
    "cancelled), replayed (same client_order_id), or the refusal's error code.",
    ["outcome"],
)
EXECUTE_SECONDS = Histogram(
    "portal_order_execute_seconds",
    "Wall time of one execute (route, checks, venue call, booking).",
    buckets=LATENCY_BUCKETS,
)
VENUE_CALL_SECONDS = Histogram(
    "portal_venue_call_seconds",
    "Wall time of one call to a venue, by venue code and operation.",
    ["venue", "operation"],
    buckets=LATENCY_BUCKETS,
)
VENUE_CALL_ERRORS = Counter(
    "portal_venue_call_errors",
    "Venue calls that raised (timeout, HTTP or protocol error), by venue, operation "
    "and exception class.",
    ["venue", "operation", "error"],
)

# --- Margin engine ----------------------------------------------------------------
# The engine's metrics are labelled with its shard (portal.shards: "0" with one shard).
ENGINE_SECONDS = Histogram(
    "portal_engine_evaluation_seconds",
    "Margin engine work per turn: kind=batch (one tick batch) or sweep (every account "
    "of the shard), by shard.",
    ["kind", "shard"],
    buckets=ENGINE_BUCKETS,
)
ENGINE_ACCOUNTS = Histogram(
    "portal_engine_accounts_evaluated",
    "Accounts the margin engine evaluated in one turn (batch or sweep), by shard.",
    ["kind", "shard"],
    buckets=ACCOUNT_BUCKETS,
)
TICK_PUSH_SECONDS = Histogram(
    "portal_tick_to_push_seconds",
    "From a tick's timestamp (the feed) to the engine having handed its margin "
    "updates to the channel layer, by shard.",
    ["shard"],
    buckets=LATENCY_BUCKETS,
)
PUSH_BATCH_SECONDS = Histogram(
    "portal_push_batch_seconds",
    "Time to publish one batch of channel-layer pushes (trading.broadcasts): "
    "mode=pipelined (one pipeline per batch) or per_message (one round trip each).",
    ["mode"],
    buckets=ENGINE_BUCKETS,
)
ENGINE_UPDATES = Counter(
    "portal_engine_updates",
    "Accounts whose margin figures changed in an engine batch, by shard and whether a "
    "socket followed them (`yes`: an update was built and published; `no`: skipped).",
    ["shard", "followed"],
)
PUSH_MESSAGES = Counter(
    "portal_push_messages",
    "Channel-layer messages published by trading.broadcasts, by mode (see above).",
    ["mode"],
)
MARGIN_CALLS = Counter(
    "portal_margin_calls",
    "Margin calls by event: opened, resolved (health back above maintenance), "
    "liquidated (closed by a liquidation).",
    ["event"],
)
LIQUIDATIONS = Counter(
    "portal_liquidations",
    "Liquidations carried out: kind=account (margin call / threshold; status "
    "completed, shortfall or unfilled, as it finishes) or perp_isolated (one "
    "isolated perp position).",
    ["kind", "status"],
)

# --- Figures served from the engine (trading.services.figures_store) ---------------
FIGURES_READS = Counter(
    "portal_figures_reads",
    "Reads of an account's priced figures (GET positions, GET margin, the dashboard) by "
    "outcome: hit (stored figures served), or why they were computed: missing, "
    "account_changed, quotes_moved, refdata_changed, expired, off, redis_error.",
    ["part", "outcome"],
)
FIGURES_STORED = Counter(
    "portal_figures_stored",
    "Accounts' priced figures written to the store, by writer: engine (after an "
    "evaluation) or reader (computed on a miss and written back).",
    ["writer"],
)
FIGURES_STORE_SECONDS = Histogram(
    "portal_figures_store_seconds",
    "The margin engine's figures step per batch: pricing and presenting the evaluated "
    "accounts' figures and writing them in one pipeline, by shard.",
    ["shard"],
    buckets=ENGINE_BUCKETS,
)

# --- Celery ---------------------------------------------------------------------
TASKS = Counter(
    "portal_celery_tasks",
    "Celery task runs by task name and outcome (succeeded, failed, retried, rejected).",
    ["task", "outcome"],
)
TASK_SECONDS = Histogram(
    "portal_celery_task_seconds",
    "Wall time of one Celery task run, by task name.",
    ["task"],
    buckets=LATENCY_BUCKETS,
)

# --- WebSockets and limits ---------------------------------------------------------
WEBSOCKETS = Gauge(
    "portal_websocket_connections",
    "Open WebSocket connections by kind (dashboard, partner_stream, ops_desk).",
    ["kind"],
    multiprocess_mode="livesum",
)
WEBSOCKET_CONNECTS = Counter(
    "portal_websocket_connects",
    "WebSocket connections accepted, by kind.",
    ["kind"],
)
RATE_LIMIT_REFUSALS = Counter(
    "portal_rate_limit_refusals",
    "Requests refused by a limit: limit=market_data / order_management / execute "
    "(API key per minute), key_failures (failed key authentications per address), "
    "stream_connections (open streams per key); transport=rest or stream.",
    ["limit", "transport"],
)

WEBSOCKET_KINDS = ("dashboard", "partner_stream", "ops_desk")


def _process_exited() -> None:
    """A process that ends leaves the live gauges (its open sockets count no more)."""
    if os.environ.get(MULTIPROC_DIR_ENV):
        multiprocess.mark_process_dead(os.getpid())


# os.getpid() at exit, not now: a forked child (a Celery pool process) marks itself.
atexit.register(_process_exited)


# --- Helpers for the places that decide ------------------------------------------


def count_on_commit(counter: Counter, amount: float = 1, **labels: str) -> None:
    """Count after the current transaction commits (at once outside one): an event
    that rolls back was never decided."""
    if amount:
        transaction.on_commit(lambda: counter.labels(**labels).inc(amount))


def order_outcome_observed(function: F) -> F:
    """Decorates the execute service: its wall time, and its outcome (the returned
    order's status, or the refusal's error code)."""

    @wraps(function)
    def observed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            order = function(*args, **kwargs)
        except Exception as exc:
            ORDERS.labels(getattr(exc, "code", None) or "error").inc()
            raise
        finally:
            EXECUTE_SECONDS.observe(time.perf_counter() - started)
        replayed = getattr(order, "replayed", False)
        ORDERS.labels("replayed" if replayed else str(getattr(order, "status", "unknown"))).inc()
        return order

    return observed  # type: ignore[return-value]


@contextmanager
def venue_call_observed(venue: str, operation: str) -> Iterator[None]:
    """Time one venue call; count it as an error when it raises."""
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        VENUE_CALL_ERRORS.labels(venue, operation, type(exc).__name__).inc()
        raise
    finally:
        VENUE_CALL_SECONDS.labels(venue, operation).observe(time.perf_counter() - started)


def engine_turn_observed(*, shard: int, kind: str, seconds: float, accounts: int) -> None:
    """Engine shard `shard` evaluated `accounts` accounts in `seconds` (a batch or a sweep)."""
    ENGINE_SECONDS.labels(kind, str(shard)).observe(seconds)
    ENGINE_ACCOUNTS.labels(kind, str(shard)).observe(accounts)


def engine_updates_counted(*, shard: int, followed: int, skipped: int) -> None:
    ENGINE_UPDATES.labels(str(shard), "yes").inc(followed)
    ENGINE_UPDATES.labels(str(shard), "no").inc(skipped)


def tick_pushed(tick_ts: float, *, shard: int) -> None:
    """Engine shard `shard` handed a tick's updates to the layer; `tick_ts` is the
    tick's epoch time."""
    TICK_PUSH_SECONDS.labels(str(shard)).observe(max(0.0, time.time() - tick_ts))


def figures_read(part: str, outcome: str) -> None:
    FIGURES_READS.labels(part, outcome).inc()


def figures_stored(writer: str, accounts: int) -> None:
    FIGURES_STORED.labels(writer).inc(accounts)


def figures_store_observed(*, shard: int, accounts: int, seconds: float) -> None:
    """Engine shard `shard`'s figures step stored `accounts` accounts in `seconds`."""
    figures_stored("engine", accounts)
    FIGURES_STORE_SECONDS.labels(str(shard)).observe(seconds)


def push_batch_observed(*, mode: str, messages: int, seconds: float) -> None:
    """trading.broadcasts published `messages` channel-layer messages in `seconds`."""
    PUSH_BATCH_SECONDS.labels(mode).observe(seconds)
    PUSH_MESSAGES.labels(mode).inc(messages)


def websocket_opened(kind: str) -> None:
    WEBSOCKETS.labels(kind).inc()
    WEBSOCKET_CONNECTS.labels(kind).inc()


def websocket_closed(kind: str) -> None:
    WEBSOCKETS.labels(kind).dec()


def rate_limit_refused(limit: str, *, transport: str) -> None:
    RATE_LIMIT_REFUSALS.labels(limit, transport).inc()


# --- Celery signals: task outcomes and time (every worker) --------------------------

_task_started: dict[str, float] = {}


def _task_name(sender: Any) -> str:
    return getattr(sender, "name", None) or "unknown"


@task_prerun.connect
def _task_prerun(sender=None, task_id=None, **kwargs) -> None:
    if task_id:
        _task_started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_postrun(sender=None, task_id=None, **kwargs) -> None:
    started = _task_started.pop(task_id, None) if task_id else None
    if started is not None:
        TASK_SECONDS.labels(_task_name(sender)).observe(time.perf_counter() - started)


@task_success.connect
def _task_success(sender=None, **kwargs) -> None:
    TASKS.labels(_task_name(sender), "succeeded").inc()


@task_failure.connect
def _task_failure(sender=None, **kwargs) -> None:
    TASKS.labels(_task_name(sender), "failed").inc()


@task_retry.connect
def _task_retry(sender=None, **kwargs) -> None:
    TASKS.labels(_task_name(sender), "retried").inc()


@task_rejected.connect
def _task_rejected(sender=None, message=None, **kwargs) -> None:
    name = (getattr(message, "headers", None) or {}).get("task") or "unknown"
    TASKS.labels(name, "rejected").inc()


# --- Scrape-time figures -------------------------------------------------------------

_scrape_sources: dict[str, tuple[str, Callable[[], dict[str, int]]]] = {}


def scrape_source_register(name: str, help_text: str, read: Callable[[], dict[str, int]]) -> None:
    """A gauge read when `/metrics` is scraped: `read()` returns {state: value}
    (label `state`). Registered by an app's ready() (the outbox backlog)."""
    _scrape_sources[name] = (help_text, read)


def celery_queue_lengths() -> dict[str, int]:
    """Messages waiting in each Celery queue on the Redis broker (one LLEN each)."""
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    queues = {getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")}
    client = redis_client()
    return {queue: int(client.llen(f"{prefix}{queue}")) for queue in sorted(queues)}


class _ScrapeCollector:
    """Gauges computed per scrape: registered sources and the Celery queue depth.
    A source that fails is left out of that scrape (logged), never a 500."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        sources = dict(_scrape_sources)
        sources["portal_celery_queue_length"] = (
            "Messages waiting in each Celery queue on the broker (label queue).",
            celery_queue_lengths,
        )
        for name, (help_text, read) in sources.items():
            label = "queue" if name == "portal_celery_queue_length" else "state"
            try:
                values = read()
            except Exception:  # Redis or the database away: this gauge skips a scrape
                logger.warning("metrics: %s could not be read for this scrape", name, exc_info=True)
                continue
            family = GaugeMetricFamily(name, help_text, labels=[label])
            for key, value in values.items():
                family.add_metric([key], value)
            yield family


def process_samples() -> CollectorRegistry:
    """The samples of every process sharing PROMETHEUS_MULTIPROC_DIR (multiprocess
    mode), else this process's own."""
    if not os.environ.get(MULTIPROC_DIR_ENV):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_render() -> bytes:
    """The exposition text: the processes' samples, then the scrape-time gauges."""
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_ScrapeCollector())
    return generate_latest(process_samples()) + generate_latest(scraped)


def _networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(net, strict=False) for net in settings.METRICS_ALLOWED_NETWORKS]


def metrics_access_allowed(*, address: str, authorization: str) -> bool:
    """Whether a client at `address`, sending this Authorization header, may read the
    metrics: the bearer token (when one is set), or an address inside
    METRICS_ALLOWED_NETWORKS."""
    token = settings.METRICS_BEARER_TOKEN
    if token:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
            return True
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(client in network for network in _networks())


def metrics_allowed(request: HttpRequest) -> bool:
    """Whether `request` may read /metrics (`metrics_access_allowed`; the client's
    address as portal.net.client_ip finds it)."""
    return metrics_access_allowed(
        address=client_ip(request), authorization=request.headers.get("Authorization", "")
    )


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics in Prometheus' text format, for allowed clients only (404 otherwise)."""
    if not metrics_allowed(request):
        raise Http404("Not found.")
    return HttpResponse(metrics_render(), content_type=CONTENT_TYPE_LATEST)


# --- The exporter of processes without a web server ----------------------------------


class _ExporterServer(ThreadingMixIn, WSGIServer):
    """The server of prometheus_client's `start_http_server`: a thread per scrape."""

    daemon_threads = True


class _ExporterServerIPv6(_ExporterServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """A scrape every few seconds is not worth a log line."""


def _exporter_app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    """prometheus_client's WSGI exposition of `process_samples()` (content negotiation,
    gzip, `name[]` filters) behind /metrics' access rules, seen from the connecting peer."""
    if not metrics_access_allowed(
        address=environ.get("REMOTE_ADDR", ""),
        authorization=environ.get("HTTP_AUTHORIZATION", ""),
    ):
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Not found.\n"]
    return make_wsgi_app(process_samples())(environ, start_response)


def metrics_exporter_serve(*, address: str, port: int) -> WSGIServer:
    """Serve this process's samples (`process_samples`) over HTTP on address:port from a
    daemon thread, as prometheus_client's `start_http_server` does, but with /metrics'
    access rules (that function has no place for a check); return the server
    (`shutdown()` and `server_close()` stop it). OSError when the address cannot be
    bound, ValueError when it is not an IP address."""
    ipv6 = ipaddress.ip_address(address).version == 6
    server_class = _ExporterServerIPv6 if ipv6 else _ExporterServer
    server = make_server(address, port, _exporter_app, server_class, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-exporter", daemon=True).start()
    return server


def metrics_exporter_start() -> WSGIServer | None:
    """For the processes without a web server (engine, feed, Celery worker and beat):
    serve their metrics on settings.METRICS_ADDRESS:METRICS_PORT when METRICS_PORT is
    set; None when it is not (the default) or the address cannot be bound (logged: a
    process does not stop for its metrics)."""
    port = settings.METRICS_PORT
    if not port:
        return None
    address = settings.METRICS_ADDRESS
    try:
        server = metrics_exporter_serve(address=address, port=port)
    except (OSError, ValueError):
        logger.exception("metrics: could not serve on %s port %s", address, port)
        return None
    logger.info("metrics: serving /metrics on %s port %s", address, port)
    return server
