"""Withdrawals: requested by the owner, approved once by ops, never beyond positive cash."""

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from accounts.models import Account, AuditLog, Deposit, HouseAccount, Journal, Notification, User
from accounts.models import WithdrawalRequest as Withdrawal
from accounts.payments.simulated import SimulatedPaymentProvider
from accounts.selectors import account_balances_get
from accounts.services.deposits import deposit_create, payment_webhook_handle
from accounts.services.ledger import cash_balance_from_ledger
from accounts.services.reconciliation import ledger_reconcile
from accounts.services.withdrawals import (
    withdrawal_approve,
    withdrawal_cancel,
    withdrawal_payout_send,
    withdrawal_reject,
    withdrawal_request,
)
from accounts.tasks import withdrawal_payout_task
from portal.errors import (
    AccountNotActive,
    Conflict,
    Forbidden,
    InsufficientFunds,
    InsufficientMargin,
    InvalidParams,
)
from tests.conftest import credit_cash
from tests.factories import StaffFactory, UserFactory, open_account
from trading.services.margin_check import margin_check_cash_debit

pytestmark = pytest.mark.django_db

DESTINATION = "Chase checking ****6789"


def fund(account: Account, amount: str) -> None:
    """Deposit by bank transfer and confirm it through the signed-webhook path, in-process."""
    with transaction.atomic():
        deposit = deposit_create(
            account=account, amount=Decimal(amount), method=Deposit.Method.BANK_TRANSFER
        )
        body, signature = SimulatedPaymentProvider.build_event(deposit)
        payment_webhook_handle(provider="simulated", body=body, signature_header=signature)
    account.refresh_from_db()


def request(account: Account, amount: str) -> Withdrawal:
    return withdrawal_request(
        account=account, amount=Decimal(amount), destination=DESTINATION, requested_by=account.owner
    )


@pytest.fixture
def funded(custodial_account) -> Account:
    fund(custodial_account, "1000")
    return custodial_account


def _cash(account: Account) -> Decimal:
    account.refresh_from_db()
    return account.cash_balance


def test_request_reserves_nothing_until_approved(funded):
    withdrawal = request(funded, "400")
    assert withdrawal.status == Withdrawal.Status.PENDING
    assert withdrawal.public_id.startswith("wd_")
    assert _cash(funded) == Decimal("1000")
    assert not Journal.objects.filter(kind=Journal.Kind.WITHDRAWAL).exists()


def test_request_cannot_exceed_cash_less_other_pending_requests(funded):
    with pytest.raises(InsufficientFunds) as info:
        request(funded, "1000.000001")
    assert info.value.message == (
        f"Cannot withdraw 1,000.000001 USDC from {funded.public_id}: "
        "1,000.00 USDC is available to withdraw."
    )
    request(funded, "600")
    with pytest.raises(InsufficientFunds, match=r"400\.00 USDC is available"):
        request(funded, "400.01")
    request(funded, "400")
    with pytest.raises(InsufficientFunds) as info:
        request(funded, "0.000001")
    assert info.value.as_dict()["code"] == "insufficient_funds"
    assert info.value.status == 422
    assert Withdrawal.objects.count() == 2


def test_cancelled_and_rejected_requests_release_their_reservation(funded, staff):
    first = request(funded, "1000")
    withdrawal_cancel(withdrawal=first, user=funded.owner)
    second = request(funded, "1000")
    withdrawal_reject(withdrawal=second, actor=staff, reason="Destination not verified")
    assert request(funded, "1000").status == Withdrawal.Status.PENDING


def test_margin_account_in_debt_cannot_withdraw():
    account = open_account(margin_enabled=True)
    credit_cash(account, "-50", memo="borrowed")
    with pytest.raises(InsufficientFunds, match=r"0\.00 USDC is available"):
        request(account, "1")


@pytest.mark.parametrize(
    ("amount", "destination", "message"),
    [
        ("0", DESTINATION, "greater than zero"),
        ("-1", DESTINATION, "greater than zero"),
        ("1.0000001", DESTINATION, "6 decimal places"),
        ("1000000.000001", DESTINATION, "between"),
        ("10", "   ", "destination"),
        ("10", "x" * 121, "destination"),
    ],
)
def test_invalid_requests_are_refused(funded, amount, destination, message):
    with pytest.raises(InvalidParams, match=message):
        withdrawal_request(
            account=funded, amount=amount, destination=destination, requested_by=funded.owner
        )
    assert not Withdrawal.objects.exists()


def test_only_the_owner_may_request(funded):
    with pytest.raises(Forbidden, match="owner"):
        withdrawal_request(
            account=funded, amount=Decimal("1"), destination=DESTINATION, requested_by=UserFactory()
        )


def test_non_custodial_account_cannot_request(non_custodial_account):
    with pytest.raises(Forbidden, match="non-custodial") as info:
        request(non_custodial_account, "1")
    assert info.value.code == "custodial_required"


def test_frozen_account_cannot_request(funded):
    Account.objects.filter(pk=funded.pk).update(status=Account.Status.FROZEN)
    with pytest.raises(AccountNotActive, match="frozen") as info:
        request(funded, "1")
    assert info.value.as_dict() == {
        "code": "account_not_active",
        "message": f"Account {funded.public_id} is frozen.",
    }


def test_owner_without_kyb_approval_cannot_request(funded):
    User.objects.filter(pk=funded.owner_id).update(kyb_status=User.KybStatus.REJECTED)
    with pytest.raises(Forbidden, match="KYB") as info:
        request(funded, "1")
    assert info.value.code == "kyb_required"


def test_approval_posts_one_journal_audits_and_pays_out(
    funded, staff, django_capture_on_commit_callbacks
):
    withdrawal = request(funded, "250.75")
    with django_capture_on_commit_callbacks(execute=True):
        approved = withdrawal_approve(withdrawal=withdrawal, actor=staff)
    assert approved.status == Withdrawal.Status.APPROVED
    assert approved.reviewed_by == staff
    assert approved.reviewed_at is not None
    assert _cash(funded) == Decimal("749.25")
    assert cash_balance_from_ledger(funded) == Decimal("749.25")
    journal = Journal.objects.get(kind=Journal.Kind.WITHDRAWAL)
    assert journal == approved.journal
    assert journal.idempotency_key == f"withdrawal:{withdrawal.public_id}"
    assert journal.created_by == staff
    assert {
        p.ledger_account.code: p.amount for p in journal.postings.select_related("ledger_account")
    } == {
        f"cash:{funded.public_id}": Decimal("-250.75"),
        HouseAccount.PAYMENT_CLEARING.value: Decimal("250.75"),
    }
    entry = AuditLog.objects.get(action="withdrawal_approved")
    assert (entry.actor, entry.object_id) == (staff, str(withdrawal.pk))
    assert entry.changes == {"status": ["pending", "approved"]}
    withdrawal.refresh_from_db()
    assert withdrawal.provider_reference.startswith("simpo_")
    assert ledger_reconcile().ok


def test_approving_twice_is_a_clear_conflict_and_posts_nothing_more(funded, staff):
    withdrawal = request(funded, "100")
    withdrawal_approve(withdrawal=withdrawal, actor=staff)
    with pytest.raises(Conflict, match="already approved") as info:
        withdrawal_approve(withdrawal=withdrawal, actor=StaffFactory())
    assert info.value.code == "withdrawal_not_pending"
    assert Journal.objects.filter(kind=Journal.Kind.WITHDRAWAL).count() == 1
    assert _cash(funded) == Decimal("900")


def test_approval_rechecks_cash_and_leaves_the_request_pending(funded, staff):
    withdrawal = request(funded, "800")
    credit_cash(funded, "-300", memo="card chargeback")
    with pytest.raises(InsufficientFunds, match=r"700\.00 USDC is available"):
        withdrawal_approve(withdrawal=withdrawal, actor=staff)
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING
    assert withdrawal.journal is None
    assert _cash(funded) == Decimal("700")
    assert not AuditLog.objects.filter(action="withdrawal_approved").exists()


def test_non_staff_cannot_approve_or_reject(funded):
    withdrawal = request(funded, "100")
    with pytest.raises(Forbidden, match="Only ops staff"):
        withdrawal_approve(withdrawal=withdrawal, actor=UserFactory())
    with pytest.raises(Forbidden, match="Only ops staff"):
        withdrawal_reject(withdrawal=withdrawal, actor=funded.owner, reason="no")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING
    assert _cash(funded) == Decimal("1000")


def test_staff_cannot_approve_their_own_withdrawal():
    staff_member = StaffFactory()
    account = open_account(owner=staff_member)
    fund(account, "100")
    withdrawal = request(account, "50")
    with pytest.raises(Forbidden, match="their own"):
        withdrawal_approve(withdrawal=withdrawal, actor=staff_member)
    assert withdrawal_approve(withdrawal=withdrawal, actor=StaffFactory()).status == "approved"


def test_approval_refused_once_the_account_is_frozen(funded, staff):
    withdrawal = request(funded, "100")
    Account.objects.filter(pk=funded.pk).update(status=Account.Status.FROZEN)
    with pytest.raises(AccountNotActive):
        withdrawal_approve(withdrawal=withdrawal, actor=staff)
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING
    assert _cash(funded) == Decimal("1000")


def test_reject_records_the_reason_and_moves_no_money(funded, staff):
    withdrawal = request(funded, "100")
    with pytest.raises(InvalidParams, match="reason"):
        withdrawal_reject(withdrawal=withdrawal, actor=staff, reason="  ")
    rejected = withdrawal_reject(
        withdrawal=withdrawal, actor=staff, reason="Destination account not verified"
    )
    assert rejected.status == Withdrawal.Status.REJECTED
    assert rejected.rejection_reason == "Destination account not verified"
    assert rejected.reviewed_by == staff
    entry = AuditLog.objects.get(action="withdrawal_rejected")
    assert entry.actor == staff
    assert entry.changes["rejection_reason"] == ["", "Destination account not verified"]
    assert _cash(funded) == Decimal("1000")
    assert not Journal.objects.filter(kind=Journal.Kind.WITHDRAWAL).exists()
    with pytest.raises(Conflict, match="already rejected"):
        withdrawal_approve(withdrawal=withdrawal, actor=staff)
    with pytest.raises(Conflict, match="already rejected"):
        withdrawal_reject(withdrawal=withdrawal, actor=staff, reason="again")


def test_owner_cancels_a_pending_request_only(funded, staff):
    withdrawal = request(funded, "100")
    with pytest.raises(Forbidden, match="owner"):
        withdrawal_cancel(withdrawal=withdrawal, user=UserFactory())
    with pytest.raises(Forbidden, match="owner"):
        withdrawal_cancel(withdrawal=withdrawal, user=staff)
    cancelled = withdrawal_cancel(withdrawal=withdrawal, user=funded.owner)
    assert cancelled.status == Withdrawal.Status.CANCELLED
    with pytest.raises(Conflict, match="already cancelled"):
        withdrawal_approve(withdrawal=withdrawal, actor=staff)
    approved = request(funded, "100")
    withdrawal_approve(withdrawal=approved, actor=staff)
    with pytest.raises(Conflict, match="already approved"):
        withdrawal_cancel(withdrawal=approved, user=funded.owner)
    assert _cash(funded) == Decimal("900")


def test_payout_task_is_safe_to_run_twice(funded, staff, monkeypatch):
    payouts: list[str] = []
    original = SimulatedPaymentProvider.payout_create

    def counting(self, *, withdrawal):
        payouts.append(withdrawal.public_id)
        return original(self, withdrawal=withdrawal)

    monkeypatch.setattr(SimulatedPaymentProvider, "payout_create", counting)
    withdrawal = withdrawal_approve(withdrawal=request(funded, "100"), actor=staff)
    first = withdrawal_payout_task.delay(withdrawal_id=withdrawal.pk).get()
    second = withdrawal_payout_task.delay(withdrawal_id=withdrawal.pk).get()
    assert first == second
    assert first.startswith("simpo_")
    assert payouts == [withdrawal.public_id]


def test_the_payout_call_runs_outside_any_transaction_or_lock(funded, staff, monkeypatch):
    """The provider is a network call: never inside a transaction (the test's own is
    the outermost block here), so no row stays locked while the money goes out."""
    depth: list[int] = []
    original = SimulatedPaymentProvider.payout_create
    outer = len(connection.savepoint_ids)  # the test case's own transaction

    def watching(self, *, withdrawal):
        depth.append(len(connection.savepoint_ids) - outer)
        return original(self, withdrawal=withdrawal)

    monkeypatch.setattr(SimulatedPaymentProvider, "payout_create", watching)
    withdrawal = withdrawal_approve(withdrawal=request(funded, "100"), actor=staff)
    assert withdrawal_payout_task.delay(withdrawal_id=withdrawal.pk).get().startswith("simpo_")
    assert depth == [0]


def test_a_payout_the_provider_refuses_fails_and_returns_the_amount_to_cash(funded, staff):
    """A closed destination: the provider refuses for good. The withdrawal fails, one
    reversing journal puts the amount back in cash, the owner is told; the task is done
    (not re-sent for ever) and a second run changes nothing."""
    refused_to = "Closed account 0000"  # settings.SIMULATED_PAYOUT_REFUSED_DESTINATIONS
    approved = withdrawal_approve(
        withdrawal=withdrawal_request(
            account=funded,
            amount=Decimal("250"),
            destination=refused_to,
            requested_by=funded.owner,
        ),
        actor=staff,
    )
    assert _cash(funded) == Decimal("750")

    assert withdrawal_payout_task.delay(withdrawal_id=approved.pk).get() == ""
    assert withdrawal_payout_task.delay(withdrawal_id=approved.pk).get() == ""

    failed = Withdrawal.objects.get(pk=approved.pk)
    assert (failed.status, failed.failure_reason) == (
        "failed",
        f"The destination {refused_to} is closed.",
    )
    assert _cash(funded) == Decimal("1000")
    reversal = failed.reversal_journal
    assert (reversal.kind, reversal.idempotency_key) == (
        Journal.Kind.WITHDRAWAL,
        f"withdrawal-failed:{approved.public_id}",
    )
    assert Journal.objects.filter(idempotency_key__startswith="withdrawal-failed:").count() == 1
    assert cash_balance_from_ledger(funded) == Decimal("1000")
    assert ledger_reconcile().ok
    note = Notification.objects.get(dedupe_key=f"withdrawal:{approved.public_id}:failed")
    assert note.title == "Withdrawal of 250.00 USDC failed" and note.email
    assert "The amount is back in your cash." in note.body
    assert AuditLog.objects.filter(action="withdrawal_payout_failed").count() == 1


def test_a_transient_payout_error_leaves_it_approved_for_the_next_send(funded, staff, monkeypatch):
    def down(self, *, withdrawal):
        raise ConnectionError("the provider is down")

    monkeypatch.setattr(SimulatedPaymentProvider, "payout_create", down)
    approved = withdrawal_approve(withdrawal=request(funded, "100"), actor=staff)
    with pytest.raises(ConnectionError):
        withdrawal_payout_send(withdrawal_id=approved.pk)
    assert Withdrawal.objects.get(pk=approved.pk).status == "approved"
    assert _cash(funded) == Decimal("900")


def test_payout_task_ignores_requests_that_were_not_approved(funded):
    withdrawal = request(funded, "100")
    assert withdrawal_payout_task.delay(withdrawal_id=withdrawal.pk).get() == ""
    withdrawal.refresh_from_db()
    assert withdrawal.provider_reference == ""


def _run_concurrently(jobs: list, target) -> tuple[list, list, list]:
    """Run target(job) in one thread per job, released together; (results, refusals, errors)."""
    barrier = threading.Barrier(len(jobs))
    results, refusals, errors = [], [], []

    def work(job):
        try:
            barrier.wait()
            results.append(target(job))
        except (InsufficientFunds, Conflict) as exc:
            refusals.append(exc)
        except BaseException as exc:  # reported by the caller's assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, refusals, errors


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_approvals_never_overdraw():
    staff = StaffFactory()
    account = open_account()
    fund(account, "2000")
    pending = [request(account, "100") for _ in range(20)]
    # After all 20 were accepted, a card chargeback takes 1000 back: 10 remain affordable.
    credit_cash(account, "-1000", memo="card chargeback")
    assert _cash(account) == Decimal("1000")

    approved, refused, errors = _run_concurrently(
        pending, lambda withdrawal: withdrawal_approve(withdrawal=withdrawal, actor=staff)
    )

    assert errors == []
    assert len(approved) == 10
    assert len(refused) == 10
    assert all(isinstance(exc, InsufficientFunds) for exc in refused)
    assert _cash(account) == Decimal("0")
    assert cash_balance_from_ledger(account) == Decimal("0")
    assert Journal.objects.filter(kind=Journal.Kind.WITHDRAWAL).count() == 10
    assert Withdrawal.objects.filter(status=Withdrawal.Status.APPROVED).count() == 10
    assert Withdrawal.objects.filter(status=Withdrawal.Status.PENDING).count() == 10
    # Every approval was paid out once, after its commit.
    references = set(
        Withdrawal.objects.filter(status=Withdrawal.Status.APPROVED).values_list(
            "provider_reference", flat=True
        )
    )
    assert len(references) == 10
    assert "" not in references
    assert ledger_reconcile().ok


@pytest.mark.django_db(transaction=True)
def test_one_withdrawal_approved_by_many_staff_at_once_posts_one_journal():
    account = open_account()
    fund(account, "1000")
    withdrawal = request(account, "300")
    reviewers = [StaffFactory() for _ in range(8)]

    approved, refused, errors = _run_concurrently(
        reviewers,
        lambda reviewer: withdrawal_approve(
            withdrawal=Withdrawal.objects.get(pk=withdrawal.pk), actor=reviewer
        ),
    )

    assert errors == []
    assert len(approved) == 1
    assert len(refused) == 7
    assert {exc.code for exc in refused} == {"withdrawal_not_pending"}
    assert _cash(account) == Decimal("700")
    assert Journal.objects.filter(kind=Journal.Kind.WITHDRAWAL).count() == 1
    assert AuditLog.objects.filter(action="withdrawal_approved").count() == 1
    assert ledger_reconcile().ok


def test_a_pending_withdrawal_holds_its_cash_until_reviewed(funded, staff):
    withdrawal = request(funded, "700")
    funded.refresh_from_db()
    assert (funded.cash_balance, funded.withdrawals_held, funded.risk_cash) == (
        Decimal("1000"),
        Decimal("700"),
        Decimal("300"),
    )
    balances = account_balances_get(account=funded)
    assert (balances.cash, balances.pending_withdrawals, balances.withdrawable) == (
        Decimal("1000"),
        Decimal("700"),
        Decimal("300"),
    )
    # Trading sees the hold: the held cash cannot be spent (this account does not borrow).
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=funded.pk)
        with pytest.raises(InsufficientMargin, match=r"has 300\.00 USDC of cash"):
            margin_check_cash_debit(account=locked, amount=Decimal("301"), action="buy")
        margin_check_cash_debit(account=locked, amount=Decimal("300"), action="buy")
    with pytest.raises(InsufficientFunds, match=r"300\.00 USDC is available"):
        request(funded, "300.01")

    withdrawal_reject(withdrawal=withdrawal, actor=staff, reason="Unverified destination")
    funded.refresh_from_db()
    assert (funded.withdrawals_held, funded.risk_cash) == (Decimal("0"), Decimal("1000"))
    cancelled = request(funded, "200")
    withdrawal_cancel(withdrawal=cancelled, user=funded.owner)
    approved = request(funded, "400")
    withdrawal_approve(withdrawal=approved, actor=staff)
    funded.refresh_from_db()
    assert (funded.cash_balance, funded.withdrawals_held) == (Decimal("600"), Decimal("0"))
    assert ledger_reconcile().ok


def test_reconciliation_catches_a_hold_that_is_not_the_pending_requests(funded):
    request(funded, "100")
    Account.objects.filter(pk=funded.pk).update(withdrawals_held=Decimal("90"))
    report = ledger_reconcile()
    assert not report.ok
    (mismatch,) = report.hold_mismatches
    assert (mismatch.cached, mismatch.ledger) == (Decimal("90"), Decimal("100"))
    assert "withdrawal hold(s) differ from the pending requests" in report.summary()
