"""In-app notifications (an outbox) and their email delivery.

A notification is written in the transaction of the event that caused it, so
it exists if and only if the event does. Email is sent afterwards by the
`accounts.notification_email_send` task, which marks `emailed_at` under the
notification's row lock: a notification is emailed at most once however often
the task runs, and `notification_emails_pending` finds any whose task was lost
(a crash between commit and enqueue).
"""

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.models import Notification, User

logger = logging.getLogger(__name__)

# A pending email younger than this is still in the hands of its own task.
EMAIL_PENDING_GRACE = timedelta(minutes=2)


def notification_create(
    *,
    user_id: int,
    kind: Notification.Kind,
    title: str,
    body: str,
    account_id: int | None = None,
    dedupe_key: str | None = None,
    email: bool = False,
) -> tuple[Notification, bool]:
    """Write a notification in the caller's transaction; return it and whether it is new.

    With a `dedupe_key`, a second call returns the first notification
    unchanged (created False), also under concurrency: the insert runs in a
    savepoint and a unique-key conflict re-reads the winner. Sends nothing:
    a caller that wants the email calls `notification_email_send_on_commit`.
    """
    fields = {
        "user_id": user_id,
        "account_id": account_id,
        "kind": kind,
        "title": title[:200],
        "body": body,
        "email": email,
    }
    if dedupe_key is None:
        return Notification.objects.create(**fields), True
    return Notification.objects.get_or_create(dedupe_key=dedupe_key, defaults=fields)


def notification_email_send_on_commit(*, notifications: Sequence[Notification]) -> None:
    """Enqueue the notifications' emails, as one task, once the caller's transaction commits.

    Notifications not meant for email are left out. Safe to call for ones
    already emailed (the task then skips them).
    """
    notification_ids = [notification.pk for notification in notifications if notification.email]
    if not notification_ids:
        return
    from accounts.tasks import notification_emails_send_task

    def enqueue() -> None:
        notification_emails_send_task.delay(notification_ids=notification_ids)

    transaction.on_commit(enqueue, robust=True)


def notification_email_send(*, notification_id: int) -> bool:
    """Email one notification to its user; return whether an email was sent.

    Locks the notification row (select_for_update) and skips it when it is
    not for email or `emailed_at` is already set, so running this twice, or
    twice at once, sends one email. The email goes out before `emailed_at`
    commits: a crash in between can repeat it (at least once, never lost).
    Raises Notification.DoesNotExist for an unknown id and whatever the email
    backend raises (nothing is marked then, so a retry sends it).
    """
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("user")
            .get(pk=notification_id)
        )
        if not notification.email or notification.emailed_at is not None:
            return False
        send_mail(
            subject=notification.title,
            message=notification.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[notification.user.email],
        )
        notification.emailed_at = timezone.now()
        notification.save(update_fields=["emailed_at"])
    logger.info("Emailed notification %s (%s).", notification.pk, notification.kind)
    return True


def notification_emails_pending(*, now: datetime | None = None) -> list[int]:
    """Ids of notifications whose email is due but was not sent within the grace time."""
    now = now or timezone.now()
    return list(
        Notification.objects.filter(
            email=True, emailed_at__isnull=True, created_at__lte=now - EMAIL_PENDING_GRACE
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def notifications_mark_read(*, user: User, notification_id: int | None = None) -> int:
    """Mark the user's unread notifications read (one, or all); return how many changed.

    Only the user's own rows are touched: an id of someone else's matches nothing.
    A notification already read keeps its first `read_at`.
    """
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_id is not None:
        unread = unread.filter(pk=notification_id)
    return unread.update(read_at=timezone.now())
