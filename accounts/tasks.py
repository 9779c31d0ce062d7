"""Celery tasks of the accounts app: thin, idempotent wrappers over services."""

import logging
import smtplib

import httpx
from celery import shared_task

from accounts.services.notifications import notification_email_send, notification_emails_pending
from accounts.services.reconciliation import ledger_reconcile

logger = logging.getLogger(__name__)


@shared_task(name="accounts.ledger_reconcile")
def ledger_reconcile_task() -> dict:
    """Check cached balances against the ledger; log loudly on any mismatch."""
    report = ledger_reconcile()
    if report.ok:
        logger.info(report.summary())
    else:
        logger.error(
            "%s mismatches=%s unbalanced_journals=%s",
            report.summary(),
            [m.account_public_id for m in report.mismatches],
            report.unbalanced_journal_ids,
        )
    return {
        "ok": report.ok,
        "accounts_checked": report.accounts_checked,
        "mismatches": [m.account_public_id for m in report.mismatches],
        "unbalanced_journals": report.unbalanced_journal_ids,
    }


@shared_task(
    name="accounts.simulated_payment_deliver",
    autoretry_for=(httpx.HTTPError,),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
)
def simulated_payment_deliver_task(*, reference: str, succeed: bool) -> bool:
    """The simulated provider's webhook delivery; retried with backoff until 2xx.

    Safe to run twice: the provider sends nothing for a deposit that is
    already final, and the endpoint dedupes a repeated event by its id.
    """
    from accounts.payments.simulated import SimulatedPaymentProvider

    return SimulatedPaymentProvider().webhook_deliver(reference=reference, succeed=succeed)


@shared_task(
    name="accounts.withdrawal_payout",
    autoretry_for=(httpx.HTTPError,),
    retry_backoff=5,
    retry_backoff_max=900,
    retry_jitter=True,
    max_retries=10,
)
def withdrawal_payout_task(*, withdrawal_id: int) -> str:
    """Send an approved withdrawal to the payment provider; safe to run twice."""
    from accounts.services.withdrawals import withdrawal_payout_send

    return withdrawal_payout_send(withdrawal_id=withdrawal_id).provider_reference


@shared_task(
    name="accounts.notification_emails_send",
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
)
def notification_emails_send_task(*, notification_ids: list[int]) -> int:
    """Email these notifications; return how many were sent now. Retried with
    backoff; safe to run twice: each notification is emailed once."""
    return sum(
        notification_email_send(notification_id=notification_id)
        for notification_id in notification_ids
    )


@shared_task(name="accounts.notification_emails_flush")
def notification_emails_flush_task() -> int:
    """Re-enqueue emails of notifications whose own task was lost (the outbox's safety net).

    Safe to run twice: each email task skips a notification already emailed.
    """
    pending = notification_emails_pending()
    if pending:
        notification_emails_send_task.delay(notification_ids=pending)
    if pending:
        logger.warning("Re-enqueued %d notification emails left pending.", len(pending))
    return len(pending)
