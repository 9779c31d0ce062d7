"""Notifications: written in the caller's transaction, emailed once (an outbox item)."""

import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Notification, OutboxItem
from accounts.outbox import outbox_dispatch
from accounts.services import notifications
from accounts.services.notifications import (
    notification_create,
    notification_email_send,
    notification_email_send_on_commit,
)
from accounts.tasks import notification_emails_send_task

pytestmark = pytest.mark.django_db


def create(user, *, email: bool = True, dedupe_key: str | None = "test:1") -> Notification:
    notification, _ = notification_create(
        user_id=user.pk,
        kind=Notification.Kind.SYSTEM,
        title="Scheduled maintenance",
        body="The portal is read-only from 02:00 to 02:30 UTC.",
        dedupe_key=dedupe_key,
        email=email,
    )
    return notification


def test_a_dedupe_key_makes_creation_idempotent(user):
    first, created = notification_create(
        user_id=user.pk,
        kind=Notification.Kind.SYSTEM,
        title="First",
        body="first",
        dedupe_key="event:7",
    )
    again, created_again = notification_create(
        user_id=user.pk,
        kind=Notification.Kind.SYSTEM,
        title="Second",
        body="second",
        dedupe_key="event:7",
    )
    assert created and not created_again
    assert again.pk == first.pk and again.title == "First"
    assert Notification.objects.count() == 1


def test_a_deduplicated_notification_is_one_statement_and_a_duplicate_spoils_nothing(user):
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        first = create(user)
        assert len(queries) == 1  # INSERT … ON CONFLICT DO NOTHING: no read, no savepoint
        again = create(user)
        assert len(queries) == 3  # the conflicting insert, then the winner read
        create(user, dedupe_key="test:2")  # the transaction is still usable
    assert again.pk == first.pk and not first._state.adding
    stored = Notification.objects.get(pk=first.pk)
    assert (stored.user_id, stored.kind, stored.email, stored.dedupe_key) == (
        user.pk,
        Notification.Kind.SYSTEM,
        True,
        "test:1",
    )
    assert stored.created_at is not None and stored.emailed_at is None
    assert Notification.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_duplicate_waits_for_the_first_and_returns_it(user):
    inserted, release = threading.Event(), threading.Event()
    results = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = create(user)
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    def second() -> None:
        inserted.wait(10)
        try:
            results["second"] = notification_create(
                user_id=user.pk,
                kind=Notification.Kind.SYSTEM,
                title="Second",
                body="second",
                dedupe_key="test:1",
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    inserted.wait(10)
    time.sleep(0.3)  # the second insert is now waiting on the first's uncommitted row
    assert "second" not in results
    release.set()
    for thread in threads:
        thread.join(10)
    notification, created = results["second"]
    assert not created and notification.pk == results["first"].pk
    assert notification.title == "Scheduled maintenance"
    assert Notification.objects.count() == 1


def test_without_a_dedupe_key_every_call_is_a_notification(user):
    create(user, dedupe_key=None)
    create(user, dedupe_key=None)
    assert Notification.objects.count() == 2


def test_creation_belongs_to_the_callers_transaction(user):
    with pytest.raises(RuntimeError), transaction.atomic():
        create(user)
        raise RuntimeError("the event rolled back")
    assert not Notification.objects.exists()


def test_the_email_is_sent_once_however_often_the_task_runs(user):
    notification = create(user)
    assert notification_emails_send_task.delay(notification_ids=[notification.pk]).get() == 1
    assert notification_emails_send_task.delay(notification_ids=[notification.pk]).get() == 0
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [user.email]
    assert message.subject == "Scheduled maintenance"
    assert "read-only" in message.body
    notification.refresh_from_db()
    assert notification.emailed_at is not None


def test_an_in_app_only_notification_is_never_emailed(user):
    notification = create(user, email=False)
    assert notification_email_send(notification_id=notification.pk) is False
    assert mail.outbox == []


def test_the_email_task_is_enqueued_only_when_the_transaction_commits(
    user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        notification_email_send_on_commit(notifications=[create(user)])
    assert mail.outbox == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert len(mail.outbox) == 1

    with django_capture_on_commit_callbacks() as callbacks:
        notification_email_send_on_commit(notifications=[create(user, email=False, dedupe_key="x")])
    assert callbacks == []


def test_a_failed_send_leaves_the_email_pending_for_a_retry(user, monkeypatch):
    notification = create(user)

    def refuse(**_):
        raise OSError("connection refused")

    monkeypatch.setattr(notifications, "send_mail", refuse)
    with pytest.raises(OSError):
        notification_email_send(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.emailed_at is None

    monkeypatch.undo()
    assert notification_email_send(notification_id=notification.pk) is True
    assert len(mail.outbox) == 1


def test_the_email_goes_out_outside_any_transaction_and_a_dead_runs_claim_expires(
    user, monkeypatch, settings
):
    """SMTP is a network call: it runs in no transaction of ours (the test case's own
    is the outermost block) and holds no lock. A run that dies after claiming the
    email leaves it to the next run once the outbox's lease has passed."""
    notification = create(user)
    outer = len(connection.savepoint_ids)
    depth: list[int] = []
    send = notifications.send_mail
    monkeypatch.setattr(
        notifications,
        "send_mail",
        lambda **kw: depth.append(len(connection.savepoint_ids) - outer) or send(**kw),
    )
    Notification.objects.filter(pk=notification.pk).update(email_claimed_at=timezone.now())
    assert notification_email_send(notification_id=notification.pk) is False  # claimed
    stale = timezone.now() - timedelta(seconds=settings.OUTBOX_LEASE_SECONDS + 1)
    Notification.objects.filter(pk=notification.pk).update(email_claimed_at=stale)
    assert notification_email_send(notification_id=notification.pk) is True  # taken over
    assert notification_email_send(notification_id=notification.pk) is False
    assert (depth, len(mail.outbox)) == ([0], 1)


def test_an_email_whose_task_was_never_sent_goes_out_once_through_the_outbox(
    user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(), transaction.atomic():  # died before sending
        notification_email_send_on_commit(notifications=[create(user)])
    (item,) = OutboxItem.objects.all()
    assert item.task == "accounts.notification_emails_send" and item.done_at is None

    assert outbox_dispatch() == 0  # not due yet: the send may still be on its way
    assert outbox_dispatch(now=item.due_at) == 1
    assert [m.subject for m in mail.outbox] == ["Scheduled maintenance"]
    item.refresh_from_db()
    assert item.done_at is not None and item.attempts == 1
    assert outbox_dispatch(now=item.due_at + timedelta(hours=1)) == 0
    assert len(mail.outbox) == 1
