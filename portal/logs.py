"""Log lines with a request id, plain for `make run` or JSON for production.

The request id follows one piece of work across processes: the web request
(`portal.middleware.RequestIdMiddleware` takes a valid incoming `X-Request-ID`
or makes one, and returns it in the response's `X-Request-ID`), the Celery
tasks it sends (a `request_id` message header, added by `before_task_publish`
and bound again by `task_prerun` in the worker), the outbox items it writes
(`OutboxItem.request_id`, so a re-send by the dispatcher carries it too), and
the pushes sent after its commit (their log lines). It lives in a context
variable, so threads and asyncio tasks each see their own.

Every log record gets `record.request_id` (the current id, or None) from a
record factory installed by `logging_configure`, Django's LOGGING_CONFIG: so a
formatter, a test's caplog or any handler can read it. settings.LOG_FORMAT
chooses the console format: "plain" (the default: readable lines with the id
in brackets) or "json" (one object per line: ts, level, logger, message,
request_id, task_id/task when in a task, exc when there is one).
"""

import contextvars
import logging
import logging.config
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from celery.signals import before_task_publish, task_postrun, task_prerun

REQUEST_ID_HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
# What an incoming id may be: short, and only characters safe in a log line or header.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "portal_request_id", default=None
)
_task: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "portal_task", default=None
)


def request_id_get() -> str | None:
    """The current request id, or None outside any request or task."""
    return _request_id.get()


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_clean(value: object) -> str | None:
    """`value` if it is a usable request id (1–64 of A–Z a–z 0–9 . _ : -), else None."""
    if isinstance(value, str) and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return None


def request_id_bind(value: str | None) -> contextvars.Token:
    """Make `value` the current request id; pass the token to `request_id_reset`."""
    return _request_id.set(value)


def request_id_reset(token: contextvars.Token) -> None:
    _request_id.reset(token)


# --- Records and formatters ------------------------------------------------------------

_factory_installed = False


def _record_factory_install() -> None:
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = _request_id.get()
        task = _task.get()
        record.task_id, record.task = task if task is not None else (None, None)
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


class PlainFormatter(logging.Formatter):
    """`time LEVEL logger: message [request id]`, as the product always logged."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s: %(message)s")
        super().__init__(*args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        if not request_id:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{request_id}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (orjson): ts, level, logger, message, request_id,
    task_id and task (inside a Celery task), exc (the traceback, when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if getattr(record, "task_id", None):
            entry["task_id"], entry["task"] = record.task_id, record.task
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["exc"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def logging_configure(config: dict) -> None:
    """Django's LOGGING_CONFIG: the request-id record factory, then dictConfig."""
    _record_factory_install()
    if config:
        logging.config.dictConfig(config)


# --- Celery: the id travels in a message header ---------------------------------------


@before_task_publish.connect
def _task_publish(headers: dict | None = None, **kwargs: Any) -> None:
    request_id = _request_id.get()
    if headers is not None and request_id and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


_task_tokens: dict[str, tuple[contextvars.Token, contextvars.Token]] = {}


@task_prerun.connect
def _task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    request = getattr(task, "request", None)
    sent = getattr(request, TASK_HEADER, None) or (getattr(request, "headers", None) or {}).get(
        TASK_HEADER
    )
    # A task run eagerly (tests) runs inside its caller's context: keep its id.
    request_id = request_id_clean(sent) or _request_id.get()
    if task_id:
        _task_tokens[task_id] = (
            _request_id.set(request_id),
            _task.set((task_id, getattr(task, "name", "") or "")),
        )


@task_postrun.connect
def _task_finished(task_id: str | None = None, **kwargs: Any) -> None:
    tokens = _task_tokens.pop(task_id, None) if task_id else None
    if tokens is not None:
        try:
            _task.reset(tokens[1])
            _request_id.reset(tokens[0])
        except ValueError:  # finished in another context than it started: just clear
            _task.set(None)
            _request_id.set(None)
