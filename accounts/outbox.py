"""The transactional outbox (`OutboxItem`): work that must happen is never only a message.

`outbox_enqueue` writes the work as a row in the caller's transaction and
sends it to Celery once that transaction commits (the fast path). Whether or
not that send worked, the row stays until a run of its task succeeds:

- a run that succeeds marks the row done (`task_success`, matched by the
  Celery task id `outbox-<row id>-…` every send uses);
- a run that fails records the error and is due again after a back-off
  (BACKOFF_BASE_SECONDS doubling per attempt, up to BACKOFF_MAX_SECONDS);
- a send that is never heard of (the broker lost it, Redis restarted empty,
  a worker was killed with it) is due again `lease_seconds` after it was
  sent (settings.OUTBOX_LEASE_SECONDS unless the work says otherwise);
- a send that fails (the broker is down) is due again after the back-off.

`outbox_dispatch`, run by Celery beat every few seconds, (re)sends whatever is
due. So a lost message, a killed worker or a Redis restart delays the work
but never strands it, and every task sent through here must be safe to run
twice (they are: each is idempotent by key or by state). Sends happen after
commit, never inside a transaction. Services do not call this directly: each
app's `enqueue` module (`accounts.enqueue`, `trading.enqueue`) names its tasks
and their keys, so services never import tasks.
"""

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from celery.signals import task_failure, task_success
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from accounts.models import OutboxItem
from portal.logs import request_id_bind, request_id_get, request_id_reset

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 5
BACKOFF_MAX_SECONDS = 900
DISPATCH_BATCH = 500
DONE_RETENTION = timedelta(days=7)
STUCK_AFTER = timedelta(minutes=10)
TASK_ID_PREFIX = "outbox-"
ERROR_MAX_LENGTH = OutboxItem._meta.get_field("last_error").max_length

_tasks_imported = False


def _backoff(attempts: int) -> timedelta:
    return timedelta(
        seconds=min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(attempts, 16))
    )


def outbox_enqueue(
    *,
    task: str,
    kwargs: dict[str, Any],
    key: str | None = None,
    delay: float = 0.0,
    lease: int | None = None,
    again: bool = False,
) -> OutboxItem:
    """Record `task(**kwargs)` in the caller's transaction; send it after commit.

    `kwargs` must be JSON (ids, never secrets). `delay` seconds postpone the
    first run (a countdown); `lease` is how long a send may go unanswered
    before the dispatcher sends it again (longer than the task normally
    takes). With a `key`, an unfinished item of that key is joined instead of
    making a second one (also under concurrency: the database allows one
    unfinished item per key); with `again` it is also sent again after commit
    (a repeated "Sync now" acts now; the task is idempotent). Works inside or
    outside a transaction.
    """
    now = timezone.now()
    lease = settings.OUTBOX_LEASE_SECONDS if lease is None else lease
    with transaction.atomic():
        while True:
            item = None
            if key is not None:
                item = OutboxItem.objects.filter(key=key, done_at__isnull=True).first()
            if item is not None:
                if not again:
                    return item
                break
            try:
                with transaction.atomic():
                    item = OutboxItem.objects.create(
                        task=task,
                        kwargs=kwargs,
                        key=key,
                        request_id=request_id_get() or "",
                        lease_seconds=lease,
                        created_at=now,
                        due_at=now + timedelta(seconds=delay + lease),
                    )
                break
            except IntegrityError:
                # A concurrent request made the item of this key first: join it (or,
                # if it finished meanwhile, make a new one).
                continue
        item_id, item_task, item_kwargs = item.pk, item.task, item.kwargs
        request_id = item.request_id or request_id_get()
        transaction.on_commit(lambda: _send_as(request_id, item_id, item_task, item_kwargs, delay))
    return item


def _send(item_id: int, task: str, kwargs: dict[str, Any], countdown: float) -> None:
    """Hand one item to Celery (eager in tests: it runs here and now)."""
    global _tasks_imported
    if not _tasks_imported:
        current_app.loader.import_default_modules()  # every app's tasks.py registered
        _tasks_imported = True
    current_app.tasks[task].apply_async(
        kwargs=kwargs,
        countdown=countdown or None,
        task_id=f"{TASK_ID_PREFIX}{item_id}-{uuid.uuid4().hex[:12]}",
    )


def _send_or_reschedule(item_id: int, task: str, kwargs: dict[str, Any], countdown: float) -> None:
    try:
        _send(item_id, task, kwargs, countdown)
    except Exception as exc:
        # The broker is down (or, eagerly run, the task failed): the row says what to
        # do, so this is recorded rather than raised into the caller's response.
        logger.warning("Outbox item %s (%s) not sent now: %s", item_id, task, exc)
        try:
            outbox_item_failed(item_id=item_id, error=exc)
        except DatabaseError:  # then it is due again at its lease, as it stands
            logger.warning("Outbox item %s: the failed send could not be recorded", item_id)


def _send_as(
    request_id: str | None, item_id: int, task: str, kwargs: dict[str, Any], countdown: float
) -> None:
    """Send under the id of the request that made the item (portal.logs: the task's
    message carries it as a header, its log lines show it)."""
    token = request_id_bind(request_id or None)
    try:
        _send_or_reschedule(item_id, task, kwargs, countdown)
    finally:
        request_id_reset(token)


def _item_id(task_id: str | None) -> int | None:
    if not task_id or not task_id.startswith(TASK_ID_PREFIX):
        return None
    number = task_id[len(TASK_ID_PREFIX) :].partition("-")[0]
    return int(number) if number.isdigit() else None


def outbox_item_done(*, item_id: int, now: datetime | None = None) -> bool:
    """Mark an item done (its task succeeded); False if it already was."""
    return bool(
        OutboxItem.objects.filter(pk=item_id, done_at__isnull=True).update(
            done_at=now or timezone.now(), last_error=""
        )
    )


def outbox_item_failed(*, item_id: int, error: BaseException | str) -> None:
    """Record a failed run (or send) of an unfinished item; due again after a back-off."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    item = OutboxItem.objects.filter(pk=item_id, done_at__isnull=True).only("attempts").first()
    if item is None:
        return
    OutboxItem.objects.filter(pk=item_id, done_at__isnull=True).update(
        last_error=text[:ERROR_MAX_LENGTH], due_at=timezone.now() + _backoff(item.attempts)
    )


def outbox_dispatch(*, now: datetime | None = None, limit: int = DISPATCH_BATCH) -> int:
    """Send every unfinished item that is due; return how many were sent.

    Claims the due rows under row locks (SKIP LOCKED: two dispatchers never
    send the same row in one round), sets each one's next due time to its
    lease, commits, then sends. Also forgets items done DONE_RETENTION ago.
    Safe to run twice or concurrently: at worst a row is sent twice, and
    its task is idempotent.
    """
    now = now or timezone.now()
    with transaction.atomic():
        items = list(
            OutboxItem.objects.select_for_update(skip_locked=True)
            .filter(done_at__isnull=True, due_at__lte=now)
            .order_by("due_at")[:limit]
        )
        for item in items:
            item.attempts += 1
            item.sent_at = now
            item.due_at = now + timedelta(seconds=item.lease_seconds)
        OutboxItem.objects.bulk_update(items, ["attempts", "sent_at", "due_at"])
    for item in items:
        if item.attempts > 1:
            logger.warning(
                "Outbox item %s (%s) sent again (attempt %d; last error: %s).",
                item.pk,
                item.task,
                item.attempts,
                item.last_error or "none: its earlier send went unanswered",
            )
        _send_as(item.request_id, item.pk, item.task, item.kwargs, 0)
    old = OutboxItem.objects.filter(done_at__lt=now - DONE_RETENTION).values_list("pk", flat=True)[
        :limit
    ]
    OutboxItem.objects.filter(pk__in=list(old)).delete()
    return len(items)


def outbox_backlog(*, now: datetime | None = None) -> dict[str, int]:
    """How much work is waiting: unfinished items, those failing (an error on record),
    and those older than STUCK_AFTER (stuck: ops should look at their last error)."""
    now = now or timezone.now()
    unfinished = OutboxItem.objects.filter(done_at__isnull=True)
    return {
        "unfinished": unfinished.count(),
        "failing": unfinished.exclude(last_error="").count(),
        "stuck": unfinished.filter(created_at__lt=now - STUCK_AFTER).count(),
    }


@task_success.connect
def _task_succeeded(sender=None, **kwargs) -> None:
    item_id = _item_id(getattr(sender.request, "id", None) if sender is not None else None)
    if item_id is not None:
        outbox_item_done(item_id=item_id)


@task_failure.connect
def _task_failed(sender=None, task_id=None, exception=None, **kwargs) -> None:
    item_id = _item_id(task_id)
    if item_id is not None:
        outbox_item_failed(item_id=item_id, error=exception or "the task failed")
