"""`manage.py reconcile_ledger`: prove cached balances equal the ledger."""

import sys

from django.core.management.base import BaseCommand

from accounts.services.reconciliation import ledger_reconcile


class Command(BaseCommand):
    help = (
        "Check every cached cash balance against the sum of its ledger postings, and every "
        "withdrawal hold against the pending requests."
    )

    def handle(self, *args, **options):
        report = ledger_reconcile()
        for mismatch in report.mismatches:
            self.stderr.write(
                f"{mismatch.account_public_id}: cached {mismatch.cached} "
                f"!= ledger {mismatch.ledger}"
            )
        for mismatch in report.hold_mismatches:
            self.stderr.write(
                f"{mismatch.account_public_id}: holds {mismatch.cached} for withdrawals "
                f"!= pending requests {mismatch.ledger}"
            )
        for journal_id in report.unbalanced_journal_ids:
            self.stderr.write(f"journal {journal_id} does not sum to zero")
        if report.ok:
            self.stdout.write(report.summary())
            return
        self.stderr.write(report.summary())
        sys.exit(1)
