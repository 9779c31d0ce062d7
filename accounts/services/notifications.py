"""In-app notifications and their email delivery.

A notification is written in the transaction of the event that caused it, so
it exists if and only if the event does. Its email is an outbox item written
in that same transaction (`notification_email_send_on_commit`), sent by the
`accounts.notification_emails_send` task, which claims each email in one UPDATE,
sends it outside any transaction and marks `emailed_at`: a notification is
emailed once however often the task runs, and the outbox re-sends the task
until it has run (a lost message, a killed worker or a Redis restart delays an
email, never loses it).
"""

import logging
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import connections, router
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.enqueue import notification_emails_enqueue
from accounts.models import Account, Deposit, Notification, User, WithdrawalRequest
from portal.format import sentence, usdc, when

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
    unchanged (created False), also under concurrency: one
    INSERT … ON CONFLICT DO NOTHING (a concurrent insert of the same key
    waits for the other transaction, raises nothing and needs no savepoint),
    and only a conflict reads the winner. Sends nothing: a caller that wants
    the email calls `notification_email_send_on_commit`.
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
    notification = Notification(dedupe_key=dedupe_key, **fields)
    if _insert_unless_duplicate(notification):
        return notification, True
    return Notification.objects.get(dedupe_key=dedupe_key), False


def _insert_unless_duplicate(notification: Notification) -> bool:
    """Insert `notification` unless its dedupe_key exists; return whether it was.

    One statement, so a fill's booking (which tells its owner under the
    account lock) spends one round trip on it rather than a read, a
    savepoint, the insert and its release.
    """
    meta = Notification._meta
    connection = connections[router.db_for_write(Notification)]
    quote = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    values = [
        field.get_db_prep_save(field.pre_save(notification, add=True), connection)
        for field in fields
    ]
    columns = ", ".join(quote(field.column) for field in fields)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608 - names from the model
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote(meta.get_field('dedupe_key').column)}) DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    notification.pk = row[0]
    notification._state.adding, notification._state.db = False, connection.alias
    return True


def notification_email_send_on_commit(*, notifications: Sequence[Notification]) -> None:
    """Record the notifications' emails as one outbox item in the caller's transaction;
    it is sent once the transaction commits (and re-sent until it has run).

    Notifications not meant for email are left out. Safe to call for ones
    already emailed (the task then skips them).
    """
    notification_ids = [notification.pk for notification in notifications if notification.email]
    if notification_ids:
        notification_emails_enqueue(notification_ids=notification_ids)


def account_notify(
    *,
    account: Account,
    kind: Notification.Kind,
    title: str,
    body: str,
    dedupe_key: str | None,
    email: bool,
) -> Notification:
    """The account owner's notification about the account (`notification_create`, once
    per `dedupe_key` when given), in the caller's transaction; with `email`, also emailed once
    that transaction commits (`notification_email_send_on_commit`)."""
    notification, _ = notification_create(
        user_id=account.owner_id,
        account_id=account.pk,
        kind=kind,
        title=title,
        body=body,
        dedupe_key=dedupe_key,
        email=email,
    )
    notification_email_send_on_commit(notifications=[notification])
    return notification


def notification_email_send(*, notification_id: int) -> bool:
    """Email one notification to its user; return whether an email was sent.

    The email is claimed in one UPDATE (for email, not emailed, not claimed by a
    run within the outbox's lease), sent outside any transaction or lock, then
    marked `emailed_at`: running this twice, or twice at once, sends one email.
    A run that dies between the send and the mark leaves the claim to expire,
    and the outbox's next send emails it again (at least once, never lost).
    Raises Notification.DoesNotExist for an unknown id and whatever the email
    backend raises (the claim is released then, so a retry sends it).
    """
    now = timezone.now()
    lease = timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    claimed = (
        Notification.objects.filter(pk=notification_id, email=True, emailed_at__isnull=True)
        .filter(Q(email_claimed_at__isnull=True) | Q(email_claimed_at__lt=now - lease))
        .update(email_claimed_at=now)
    )
    notification = Notification.objects.select_related("user", "account").get(pk=notification_id)
    if not claimed:
        return False
    mine = Notification.objects.filter(pk=notification_id, email_claimed_at=now)
    try:
        send_mail(
            subject=notification.title,
            message=notification_email_text(notification),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[notification.user.email],
        )
    except Exception:
        mine.update(email_claimed_at=None)
        raise
    mine.update(emailed_at=timezone.now())
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


def notification_email_text(notification: Notification) -> str:
    """A notification's email: its text, then what it is, when, and where to see them all."""
    about = f"{notification.get_kind_display()} · {when(notification.created_at)}"
    if notification.account_id is not None:
        about += f" · account {notification.account.public_id}"
    link = settings.SITE_URL.rstrip("/") + reverse("notification_list")
    return f"{notification.body}\n\n{about}\nAll your notifications: {link}\n"


# --- Money movements (deposits, withdrawals) -----------------------------------------------


def _reason(text: str, default: str) -> str:
    """A stored reason as a sentence with no machine code (`portal.format.sentence`)."""
    return sentence(text) or default


def deposit_notify(*, deposit: Deposit) -> Notification | None:
    """The owner's notification that a deposit was credited or failed (in-app and email),
    in the caller's transaction; once per deposit and outcome. None while it is pending."""
    account = deposit.account
    amount = usdc(deposit.amount)
    method = deposit.get_method_display().lower()
    if deposit.status == Deposit.Status.CONFIRMED:
        title = f"Deposit of {amount} received"
        body = (
            f"Your {method} deposit of {amount} to account {account.public_id} has arrived "
            "and is credited to your cash."
        )
    elif deposit.status == Deposit.Status.FAILED:
        title = f"Deposit of {amount} failed"
        reason = _reason(deposit.failure_reason, "The payment provider declined it.")
        body = (
            f"Your {method} deposit of {amount} to account {account.public_id} did not go "
            f"through: {reason} Nothing was credited. You can try again from the Deposits page."
        )
    else:
        return None
    return account_notify(
        account=account,
        kind=Notification.Kind.DEPOSIT,
        title=title,
        body=body,
        dedupe_key=f"deposit:{deposit.public_id}:{deposit.status}",
        email=True,
    )


WITHDRAWAL_EVENTS = ("requested", "approved", "paid", "rejected", "failed")


def withdrawal_notify(*, withdrawal: WithdrawalRequest, event: str) -> Notification:
    """The owner's notification of a step of their withdrawal, in the caller's transaction;
    once per withdrawal and step. `event`: requested, approved, paid (the payout sent:
    in-app only, the approval was emailed), rejected (with the reason ops gave) or
    failed (the provider refused the payout: the amount is back in cash)."""
    if event not in WITHDRAWAL_EVENTS:
        raise ValueError(f"Unknown withdrawal event {event!r}.")
    account = withdrawal.account
    amount = usdc(withdrawal.amount)
    what = (
        f"Your withdrawal of {amount} from account {account.public_id} to {withdrawal.destination}"
    )
    if event == "requested":
        title = f"Withdrawal of {amount} requested"
        body = (
            f"{what} is waiting for review. The amount is set aside until then, so it cannot "
            "be spent on trades. We will tell you when it is approved or rejected. If you did "
            "not ask for this, contact support at once."
        )
    elif event == "approved":
        title = f"Withdrawal of {amount} approved"
        body = f"{what} is approved: the amount has left your cash and the payout is on its way."
    elif event == "paid":
        title = f"Withdrawal of {amount} paid out"
        body = f"{what} has been sent."
        if withdrawal.provider_reference:
            body += f" Payout reference: {withdrawal.provider_reference}."
    elif event == "failed":
        title = f"Withdrawal of {amount} failed"
        reason = _reason(withdrawal.failure_reason, "The payment provider gave no reason.")
        body = (
            f"{what} could not be paid out: the payment provider refused it. Reason: {reason} "
            "The amount is back in your cash. Check the destination, then request the "
            "withdrawal again."
        )
    else:
        title = f"Withdrawal of {amount} rejected"
        reason = _reason(withdrawal.rejection_reason, "No reason was given.")
        body = (
            f"{what} was rejected. Reason: {reason} The amount is available in your cash "
            "again; nothing left your account."
        )
    return account_notify(
        account=account,
        kind=Notification.Kind.WITHDRAWAL,
        title=title,
        body=body,
        dedupe_key=f"withdrawal:{withdrawal.public_id}:{event}",
        email=event != "paid",
    )
