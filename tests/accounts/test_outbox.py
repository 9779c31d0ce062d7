"""The transactional outbox: work recorded with the state it finishes, sent until done."""

from datetime import timedelta

import pytest
from celery import shared_task
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from accounts import outbox
from accounts.models import OutboxItem
from accounts.outbox import (
    BACKOFF_BASE_SECONDS,
    DONE_RETENTION,
    outbox_dispatch,
    outbox_enqueue,
)
from tests.threads import together

RUNS: list[dict] = []


@shared_task(name="tests.outbox_probe")
def probe_task(**kwargs) -> None:
    RUNS.append(kwargs)
    if kwargs.get("fail"):
        raise RuntimeError("the probe failed")


@pytest.fixture(autouse=True)
def _runs():
    RUNS.clear()


def test_an_item_belongs_to_the_callers_transaction(db):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_enqueue(task="tests.outbox_probe", kwargs={"n": 1})
        raise RuntimeError("the deposit rolled back")
    assert not OutboxItem.objects.exists()


def test_sent_after_commit_and_marked_done_when_its_task_succeeds(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        item = outbox_enqueue(task="tests.outbox_probe", kwargs={"n": 1}, lease=30)
        assert RUNS == []  # nothing leaves before the commit
    assert len(callbacks) == 1
    callbacks[0]()
    assert RUNS == [{"n": 1}]
    item.refresh_from_db()
    assert item.done_at is not None and item.last_error == ""
    assert outbox_dispatch(now=timezone.now() + timedelta(hours=1)) == 0


def test_a_broker_outage_leaves_the_item_due_soon_not_lost(
    db, django_capture_on_commit_callbacks, monkeypatch
):
    def broker_down(*args, **kwargs):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(outbox, "_send", broker_down)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        item = outbox_enqueue(task="tests.outbox_probe", kwargs={"n": 2}, lease=600)
    item.refresh_from_db()
    assert "Connection refused" in item.last_error
    assert item.due_at <= before + timedelta(seconds=2 * BACKOFF_BASE_SECONDS)  # not the lease

    monkeypatch.undo()  # Redis is back
    assert outbox_dispatch(now=item.due_at) == 1
    assert RUNS == [{"n": 2}]
    item.refresh_from_db()
    assert item.done_at is not None


def test_an_unanswered_send_is_sent_again_after_its_lease_only(db):
    item = outbox_enqueue(task="tests.outbox_probe", kwargs={"n": 3}, lease=60)
    # The first send was lost with the worker (it never ran): nothing is due before the lease.
    assert outbox_dispatch(now=item.created_at + timedelta(seconds=59)) == 0
    assert outbox_dispatch(now=item.created_at + timedelta(seconds=60)) == 1
    assert RUNS == [{"n": 3}]


def test_a_failing_task_backs_off_and_keeps_its_error(db):
    item = outbox_enqueue(task="tests.outbox_probe", kwargs={"fail": True}, lease=60)
    for attempt in (1, 2, 3):
        assert outbox_dispatch(now=item.due_at) == 1
        item.refresh_from_db()
        assert item.attempts == attempt and item.done_at is None
        assert item.last_error == "RuntimeError: the probe failed"
        wait = item.due_at - timezone.now()
        assert timedelta(seconds=BACKOFF_BASE_SECONDS * 2**attempt - 1) < wait
    assert len(RUNS) == 3


def test_a_key_allows_one_unfinished_item_and_a_new_one_once_done(db):
    first = outbox_enqueue(task="tests.outbox_probe", kwargs={"n": 1}, key="probe:1")
    again = outbox_enqueue(task="tests.outbox_probe", kwargs={"n": 2}, key="probe:1")
    assert again.pk == first.pk and OutboxItem.objects.count() == 1
    outbox_dispatch(now=first.due_at)
    later = outbox_enqueue(task="tests.outbox_probe", kwargs={"n": 3}, key="probe:1")
    assert later.pk != first.pk and OutboxItem.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_make_one_item(monkeypatch):
    monkeypatch.setattr(outbox, "_send", lambda *args: None)  # still in the queue

    def request() -> int:
        with transaction.atomic():
            return outbox_enqueue(task="tests.outbox_probe", kwargs={}, key="race").pk

    made, errors = together(request, 4)
    assert errors == []
    assert OutboxItem.objects.filter(key="race").count() == 1
    assert len(made) == 4 and len(set(made)) == 1


def test_done_items_are_forgotten_after_the_retention(db):
    item = outbox_enqueue(task="tests.outbox_probe", kwargs={"n": 1})
    outbox_dispatch(now=item.due_at)
    item.refresh_from_db()
    outbox_dispatch(now=item.done_at + DONE_RETENTION - timedelta(seconds=1))
    assert OutboxItem.objects.filter(pk=item.pk).exists()
    outbox_dispatch(now=item.done_at + DONE_RETENTION + timedelta(seconds=1))
    assert not OutboxItem.objects.filter(pk=item.pk).exists()
