"""Celery work the accounts app's services ask for, sent after commit: the twin of
trading/broadcasts.py for tasks.

Services never import tasks (ARCHITECTURE 6b). They call these helpers, which name
the task (`accounts/tasks.py` registers each under the name given here) and record it
as an outbox item in the caller's transaction (`accounts.outbox`): it is sent once
that transaction commits and sent again until a run succeeds, so a lost message, a
killed worker or a Redis restart delays the work but never strands it. Every task
named here is safe to run twice.
"""

from accounts.models import OutboxItem
from accounts.outbox import outbox_enqueue

WITHDRAWAL_PAYOUT = "accounts.withdrawal_payout"
NOTIFICATION_EMAILS_SEND = "accounts.notification_emails_send"
SIMULATED_PAYMENT_DELIVER = "accounts.simulated_payment_deliver"


def withdrawal_payout_enqueue(*, withdrawal_id: int) -> OutboxItem:
    """Pay out an approved withdrawal (one item per withdrawal)."""
    return outbox_enqueue(
        task=WITHDRAWAL_PAYOUT,
        kwargs={"withdrawal_id": withdrawal_id},
        key=f"withdrawal_payout:{withdrawal_id}",
    )


def notification_emails_enqueue(*, notification_ids: list[int]) -> OutboxItem:
    """Email these notifications (the task skips any already emailed)."""
    return outbox_enqueue(
        task=NOTIFICATION_EMAILS_SEND, kwargs={"notification_ids": notification_ids}
    )


def simulated_payment_deliver_enqueue(*, reference: str, succeed: bool, delay: float) -> OutboxItem:
    """The simulated provider's webhook for payment `reference`, `delay` seconds from now
    (one item per payment: re-delivered until our endpoint has taken it)."""
    return outbox_enqueue(
        task=SIMULATED_PAYMENT_DELIVER,
        kwargs={"reference": reference, "succeed": succeed},
        key=f"simpay:{reference}",
        delay=delay,
    )
