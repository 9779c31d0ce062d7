"""Celery tasks of the accounts app: thin, idempotent wrappers over services."""

import logging

from celery import shared_task

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
