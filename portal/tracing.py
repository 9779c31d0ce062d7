"""Optional OpenTelemetry tracing: Django requests, Celery tasks and psycopg queries.

Off unless settings.OTEL_ENABLED. Then `tracing_setup()` (called once per process:
portal.asgi for the web, the worker's `worker_process_init` and `beat_init` in
portal.celery, and the feed's and the engine's commands through
portal.celery's import) sends spans over OTLP/HTTP to
settings.OTEL_EXPORTER_OTLP_ENDPOINT, named settings.OTEL_SERVICE_NAME, and the
request id (portal.logs) rides on each request's span as `portal.request_id`.

The OpenTelemetry packages are an optional extra (requirements-otel.txt, part of
the dev requirements): this module imports them only inside `tracing_setup` when
tracing is on, so with it off nothing of OpenTelemetry is imported at all
(tests/portal/test_request_id.py checks it), and a deployment without the extra
runs unchanged.
"""

import logging
import threading
from importlib import import_module

from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_done = False

INSTRUMENTORS = (
    ("opentelemetry.instrumentation.django", "DjangoInstrumentor"),
    ("opentelemetry.instrumentation.celery", "CeleryInstrumentor"),
    ("opentelemetry.instrumentation.psycopg", "PsycopgInstrumentor"),
)


def tracing_setup() -> bool:
    """Switch tracing on in this process when settings say so; True if it is on.
    Safe to call more than once; a missing package is logged, never raised."""
    global _done
    if not settings.OTEL_ENABLED:
        return False
    with _lock:
        if _done:
            return True
        try:
            _install()
        except ImportError:
            logger.error(
                "OTEL_ENABLED is set but the OpenTelemetry packages are not installed "
                "(pip install -r requirements-otel.txt): tracing stays off",
                exc_info=True,
            )
            return False
        _done = True
        return True


def _install() -> None:
    # Imported here, and only here: with tracing off the extra need not be installed.
    trace = import_module("opentelemetry.trace")
    sdk_trace = import_module("opentelemetry.sdk.trace")
    export = import_module("opentelemetry.sdk.trace.export")
    resources = import_module("opentelemetry.sdk.resources")
    otlp = import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")

    provider = sdk_trace.TracerProvider(
        resource=resources.Resource.create({"service.name": settings.OTEL_SERVICE_NAME})
    )
    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT
    exporter = (
        otlp.OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
        if endpoint
        else otlp.OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_* environment variables
    )
    provider.add_span_processor(export.BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    for module, name in INSTRUMENTORS:
        instrumentor = getattr(import_module(module), name)()
        if name == "DjangoInstrumentor":
            instrumentor.instrument(response_hook=_response_hook)
        elif name == "PsycopgInstrumentor":
            instrumentor.instrument(enable_commenter=False)
        else:
            instrumentor.instrument()
    logger.info("tracing: spans go to %s", endpoint or "the OTEL_EXPORTER_OTLP_* endpoint")


def _response_hook(span, request, response) -> None:
    request_id = getattr(request, "request_id", None)
    if span is not None and span.is_recording() and request_id:
        span.set_attribute("portal.request_id", str(request_id)[:64])
