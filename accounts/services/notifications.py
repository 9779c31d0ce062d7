"""In-app notifications and their email delivery.

A notification is written in the transaction of the event that caused it, so
it exists if and only if the event does. Its email is an outbox item written
in that same transaction (`notification_email_send_on_commit`), sent by the
`accounts.notification_emails_send` task, which marks `emailed_at` under the
notification's row lock: a notification is emailed at most once however often
the task runs, and the outbox re-sends the task until it has run (a lost
message, a killed worker or a Redis restart delays an email, never loses it).
"""

import logging
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.enqueue import notification_emails_enqueue
from accounts.models import Notification, User

logger = logging.getLogger(__name__)


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
    """Record the notifications' emails as one outbox item in the caller's transaction;
    it is sent once the transaction commits (and re-sent until it has run).

    Notifications not meant for email are left out. Safe to call for ones
    already emailed (the task then skips them).
    """
    notification_ids = [notification.pk for notification in notifications if notification.email]
    if notification_ids:
        notification_emails_enqueue(notification_ids=notification_ids)


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


def notifications_mark_read(*, user: User, notification_id: int | None = None) -> int:
    """Mark the user's unread notifications read (one, or all); return how many changed.

    Only the user's own rows are touched: an id of someone else's matches nothing.
    A notification already read keeps its first `read_at`.
    """
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_id is not None:
        unread = unread.filter(pk=notification_id)
    return unread.update(read_at=timezone.now())
