"""Celery application: Redis broker, tasks discovered in every app's tasks.py.

Importing portal.logs and portal.metrics connects their Celery signals in every
process (the request id in task headers; task outcomes and times); a worker's
pool processes and beat switch tracing on when settings say so (portal.tracing);
a worker's main process and beat serve their metrics when METRICS_PORT is set
(portal.metrics.metrics_exporter_start: the worker's pool processes' samples
reach it through PROMETHEUS_MULTIPROC_DIR).
"""

import os
from wsgiref.simple_server import WSGIServer

from celery import Celery
from celery.signals import beat_init, worker_init, worker_process_init

from portal import logs, metrics, tracing
from portal.processes import startup_objects_freeze

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Signal receivers live in these modules; keep the names used.
_signal_modules = (logs, metrics)


@worker_process_init.connect
def _worker_process_ready(**kwargs) -> None:
    """A pool process, started: tracing as settings say, then what it built while
    starting kept out of the garbage collector's sight (a full collection of it
    stalls a task ~240 ms, with an account locked if the task books a fill)."""
    tracing.tracing_setup()
    startup_objects_freeze()


@beat_init.connect
def _beat_tracing(**kwargs) -> None:
    tracing.tracing_setup()


@worker_init.connect
@beat_init.connect
def _metrics_exporter(**kwargs) -> WSGIServer | None:
    """In a worker's main process (before its pool starts) and in beat."""
    return metrics.metrics_exporter_start()
