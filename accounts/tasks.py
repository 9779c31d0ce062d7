"""Celery tasks of the accounts app: thin, idempotent wrappers over services."""

import logging

from celery import shared_task

from accounts import enqueue
from accounts.outbox import outbox_backlog, outbox_dispatch
from accounts.payments.simulated import SimulatedPaymentProvider
from accounts.services.approvals import approvals_apply_due
from accounts.services.notifications import notification_email_send
from accounts.services.reconciliation import ledger_reconcile
from accounts.services.withdrawals import withdrawal_payout_send
from portal.heartbeats import heartbeat_beat

logger = logging.getLogger(__name__)


@shared_task(name="accounts.ledger_reconcile")
def ledger_reconcile_task() -> dict:
    """Check cached balances against the ledger; log loudly on any mismatch."""
    report = ledger_reconcile()
    if report.ok:
        logger.info(report.summary())
    else:
        logger.error(
            "%s mismatches=%s hold_mismatches=%s unbalanced_journals=%s",
            report.summary(),
            [m.account_public_id for m in report.mismatches],
            [m.account_public_id for m in report.hold_mismatches],
            report.unbalanced_journal_ids,
        )
    return {
        "ok": report.ok,
        "accounts_checked": report.accounts_checked,
        "mismatches": [m.account_public_id for m in report.mismatches],
        "hold_mismatches": [m.account_public_id for m in report.hold_mismatches],
        "unbalanced_journals": report.unbalanced_journal_ids,
    }


@shared_task(name="accounts.approvals_apply_due")
def approvals_apply_due_task() -> int:
    """Apply approved four-eyes changes a crash or an outage left unapplied."""
    return approvals_apply_due()


# The tasks below are sent through the outbox (accounts.outbox): a failed run is
# re-sent with back-off until one succeeds, so they do not retry on their own.


@shared_task(name=enqueue.SIMULATED_PAYMENT_DELIVER)
def simulated_payment_deliver_task(*, reference: str, succeed: bool) -> bool:
    """The simulated provider's webhook delivery (raises until our endpoint answers 2xx).

    Safe to run twice: the provider sends nothing for a deposit that is
    already final, and the endpoint dedupes a repeated event by its id.
    """
    return SimulatedPaymentProvider().webhook_deliver(reference=reference, succeed=succeed)


@shared_task(name=enqueue.WITHDRAWAL_PAYOUT)
def withdrawal_payout_task(*, withdrawal_id: int) -> str:
    """Send an approved withdrawal to the payment provider; safe to run twice."""
    return withdrawal_payout_send(withdrawal_id=withdrawal_id).provider_reference


@shared_task(name=enqueue.NOTIFICATION_EMAILS_SEND)
def notification_emails_send_task(*, notification_ids: list[int]) -> int:
    """Email these notifications; return how many were sent now. Safe to run twice:
    each notification is emailed once."""
    return sum(
        notification_email_send(notification_id=notification_id)
        for notification_id in notification_ids
    )


@shared_task(name="accounts.outbox_dispatch")
def outbox_dispatch_task() -> int:
    """Send the outbox items that are due (new, failed or unanswered); return how many.

    The periodic owner of every pending piece of background work (see
    accounts.outbox). Safe to run twice or concurrently. Its runs
    are the workers' heartbeat (readiness: beat, broker and a worker all work).
    """
    sent = outbox_dispatch()
    heartbeat_beat("worker", outbox=outbox_backlog())
    return sent
