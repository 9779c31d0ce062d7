"""Proof that the cached balances equal the ledger, the ledger balances, and the cash held
for withdrawals is what the pending requests claim."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from accounts.models import Account, LedgerAccount, Posting, WithdrawalRequest
from portal.money import ZERO


@dataclass(frozen=True)
class BalanceMismatch:
    account_public_id: str
    cached: Decimal
    ledger: Decimal


@dataclass
class ReconciliationReport:
    accounts_checked: int = 0
    mismatches: list[BalanceMismatch] = field(default_factory=list)
    unbalanced_journal_ids: list[int] = field(default_factory=list)
    ledger_total: Decimal = ZERO
    hold_mismatches: list[BalanceMismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.mismatches
            and not self.unbalanced_journal_ids
            and self.ledger_total == 0
            and not self.hold_mismatches
        )

    def summary(self) -> str:
        if self.ok:
            return f"Ledger reconciled: {self.accounts_checked} accounts, all balances match."
        parts = [f"{len(self.mismatches)} cached balance(s) differ from the ledger"]
        if self.hold_mismatches:
            parts.append(
                f"{len(self.hold_mismatches)} withdrawal hold(s) differ from the pending requests"
            )
        if self.unbalanced_journal_ids:
            parts.append(f"{len(self.unbalanced_journal_ids)} journal(s) do not balance")
        if self.ledger_total != 0:
            parts.append(f"postings sum to {self.ledger_total}, not zero")
        return "Ledger reconciliation FAILED: " + "; ".join(parts) + "."


def ledger_reconcile() -> ReconciliationReport:
    """Compare every account's cached cash with the sum of its cash postings, and its
    withdrawal hold with the sum of its pending withdrawal requests.

    Runs in one REPEATABLE READ/serializable-enough snapshot (a single
    transaction) so concurrent postings cannot produce false mismatches on
    PostgreSQL. Also checks that every journal and the whole ledger sum to 0.
    """
    report = ReconciliationReport()
    with transaction.atomic():
        ledger_by_account = dict(
            Posting.objects.filter(ledger_account__purpose=LedgerAccount.Purpose.CASH)
            .values_list("ledger_account__account_id")
            .annotate(total=Sum("amount"))
            .values_list("ledger_account__account_id", "total")
        )
        pending_by_account = dict(
            WithdrawalRequest.objects.filter(status=WithdrawalRequest.Status.PENDING)
            .values_list("account_id")
            .annotate(total=Sum("amount"))
            .values_list("account_id", "total")
        )
        for account_id, public_id, cached, held in Account.objects.values_list(
            "id", "public_id", "cash_balance", "withdrawals_held"
        ).iterator():
            report.accounts_checked += 1
            ledger = ledger_by_account.get(account_id, ZERO)
            if ledger != cached:
                report.mismatches.append(BalanceMismatch(public_id, cached, ledger))
            pending = pending_by_account.get(account_id, ZERO)
            if pending != held:
                report.hold_mismatches.append(BalanceMismatch(public_id, held, pending))
        report.unbalanced_journal_ids = list(
            Posting.objects.values("journal_id")
            .annotate(total=Sum("amount"))
            .exclude(total=0)
            .values_list("journal_id", flat=True)
        )
        report.ledger_total = Posting.objects.aggregate(total=Sum("amount"))["total"] or ZERO
    return report
