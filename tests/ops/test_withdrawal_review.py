"""The withdrawal review screen (/ops/withdrawals/<public id>/, `ops_withdrawal_review`):
the account's figures now and after the payout, approval refused when the payout
would breach the withdrawal margin check, a confirmation step, and four-eyes above
`WITHDRAWAL_FOUR_EYES_USDC` (kind "withdrawal_approve", applied once)."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from accounts.models import Account, Approval, AuditLog, Journal, Notification
from accounts.models import WithdrawalRequest as Withdrawal
from accounts.services.approvals import approval_apply, approval_approve, approval_kind_get
from accounts.services.withdrawal_review import (
    FOUR_EYES_KIND,
    withdrawal_effect_get,
    withdrawal_review_approve,
)
from accounts.services.withdrawals import withdrawal_request
from portal.errors import Conflict, Forbidden, InsufficientFunds
from tests.conftest import credit_cash
from tests.factories import StaffFactory, UserFactory
from tests.ops.conftest import ops_signed_in

pytestmark = pytest.mark.django_db

D = Decimal


def withdrawal_for(account: Account, amount: str) -> Withdrawal:
    return withdrawal_request(
        account=account, amount=D(amount), destination="Bank ****1234", requested_by=account.owner
    )


def url(withdrawal: Withdrawal) -> str:
    return reverse("ops_withdrawal_review", args=[withdrawal.public_id])


def decide(client: Client, withdrawal, decision: str, reason: str = "", confirmed: bool = True):
    data = {"decision": decision, "reason": reason}
    if confirmed:
        data["confirmed"] = "1"
    return client.post(url(withdrawal), data, follow=True)


def figures(response) -> dict[str, tuple[str, str]]:
    return {row.label: (row.before, row.after) for row in response.context["rows"]}


@pytest.fixture
def funded(custodial_account) -> Account:
    credit_cash(custodial_account, "1000")
    return custodial_account


@pytest.fixture
def second_staff() -> Client:
    return ops_signed_in(Client(), StaffFactory())


def test_the_url_name():
    assert reverse("ops_withdrawal_review", args=["wd_1"]) == "/ops/withdrawals/wd_1/"


def test_anonymous_customers_and_unverified_staff_are_refused(
    client, unverified_staff_client, funded
):
    withdrawal = withdrawal_for(funded, "100")
    assert client.get(url(withdrawal)).status_code == 302
    client.force_login(UserFactory())
    assert (
        client.post(url(withdrawal), {"decision": "approve", "confirmed": "1"}).status_code == 302
    )
    refused = unverified_staff_client.post(
        url(withdrawal), {"decision": "approve", "confirmed": "1"}
    )
    assert refused.status_code == 403
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING


def test_the_page_shows_the_health_now_and_after_the_payout(ops_client, funded):
    withdrawal = withdrawal_for(funded, "300")
    response = ops_client.get(url(withdrawal))
    assert response.status_code == 200
    shown = figures(response)
    assert shown["Cash"] == ("1,000.00 USDC", "700.00 USDC")
    assert shown["Margin Health"] == ("∞ (no borrowing)", "∞ (no borrowing)")
    assert shown["Status"] == ("No borrowing", "No borrowing")
    assertContains(response, "The payout passes the withdrawal margin check.")
    assertContains(response, "Approve payout")
    assertContains(response, "300.00 USDC")


def test_approve_asks_for_a_confirmation_then_pays_out(ops_client, staff, funded):
    withdrawal = withdrawal_for(funded, "300")
    confirm = decide(ops_client, withdrawal, "approve", confirmed=False)
    assertContains(confirm, "Approve this withdrawal?")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING

    done = decide(ops_client, withdrawal, "approve")
    assertContains(done, "approved: the payout is on its way")
    withdrawal.refresh_from_db()
    funded.refresh_from_db()
    assert (withdrawal.status, withdrawal.reviewed_by) == (Withdrawal.Status.APPROVED, staff)
    assert funded.cash_balance == D("700")
    assert AuditLog.objects.get(action="withdrawal_approved").actor == staff
    assert not Approval.objects.exists()  # below the threshold: one staff member


def test_a_payout_that_would_breach_is_refused_with_a_sentence(ops_client, funded):
    withdrawal = withdrawal_for(funded, "800")
    credit_cash(funded, "-500", memo="chargeback")  # cash 500 now, 800 held
    response = ops_client.get(url(withdrawal))
    shown = figures(response)
    assert shown["Cash"] == ("500.00 USDC", "-300.00 USDC")
    assert shown["Used Margin (borrowed)"] == ("0.00 USDC", "300.00 USDC")
    assert shown["Margin Health"] == ("∞ (no borrowing)", "0.00")
    assert shown["Status"] == ("No borrowing", "Margin call")
    sentence = (
        f"Cannot withdraw 800.00 USDC from {funded.public_id}: "
        "500.00 USDC is available to withdraw."
    )
    assertContains(response, f"it cannot be approved: {sentence}")

    refused = decide(ops_client, withdrawal, "approve")
    assertContains(refused, f"Approval refused: {sentence}")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING
    assert not Journal.objects.filter(kind=Journal.Kind.WITHDRAWAL).exists()
    assert not AuditLog.objects.filter(action="withdrawal_approved").exists()


def test_the_service_refuses_a_breaching_payout_under_the_lock(staff, funded):
    withdrawal = withdrawal_for(funded, "800")
    credit_cash(funded, "-500", memo="chargeback")
    with pytest.raises(InsufficientFunds, match=r"500\.00 USDC is available to withdraw"):
        withdrawal_review_approve(withdrawal=withdrawal, actor=staff)
    assert withdrawal_effect_get(withdrawal=withdrawal).refusal is not None


def test_reject_needs_a_reason_and_tells_the_customer(ops_client, staff, funded):
    withdrawal = withdrawal_for(funded, "300")
    blank = decide(ops_client, withdrawal, "reject", reason=" ")
    assertContains(blank, "Give the customer a reason for the rejection.")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING

    decide(ops_client, withdrawal, "reject", reason="Destination not verified")
    withdrawal.refresh_from_db()
    funded.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REJECTED
    assert withdrawal.rejection_reason == "Destination not verified"
    assert funded.withdrawals_held == 0
    assert AuditLog.objects.get(action="withdrawal_rejected").actor == staff
    assert Notification.objects.filter(title__contains="rejected").exists()


# --- Four-eyes above the threshold ---------------------------------------------------------


@pytest.fixture
def low_threshold(settings):
    settings.WITHDRAWAL_FOUR_EYES_USDC = "500"


def test_the_kind_is_registered_with_a_label():
    assert approval_kind_get(FOUR_EYES_KIND).label == "Large withdrawal"


def test_a_large_withdrawal_needs_a_second_staff_member(
    low_threshold, ops_client, staff, second_staff, funded
):
    withdrawal = withdrawal_for(funded, "600")
    page = ops_client.get(url(withdrawal))
    assertContains(page, "needs two staff members")
    assertContains(page, "Propose payout for approval")

    no_reason = decide(ops_client, withdrawal, "approve")
    assertContains(no_reason, "Give a reason for the second approver")
    assert not Approval.objects.exists()

    proposed = decide(ops_client, withdrawal, "approve", reason="Customer called to confirm")
    approval = Approval.objects.get()
    assert (approval.kind, approval.status) == (FOUR_EYES_KIND, Approval.Status.PENDING)
    assert approval.payload == {"withdrawal": withdrawal.public_id}
    assert approval.proposed_by == staff
    assert approval.account_id == funded.pk
    assertContains(proposed, "another staff member must approve it")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING

    # The proposer cannot approve it: the sentence shows, nothing is applied.
    own = ops_client.post(
        reverse("ops_approval_decide", args=[approval.public_id]),
        {"decision": "approve", "confirmed": "1"},
        follow=True,
    )
    assertContains(own, "You proposed this change, so another staff member must approve it.")
    approval.refresh_from_db()
    withdrawal.refresh_from_db()
    assert approval.status == Approval.Status.PENDING
    assert withdrawal.status == Withdrawal.Status.PENDING
    # Proposing again is refused while it waits.
    again = decide(ops_client, withdrawal, "approve", reason="Again")
    assertContains(again, "is already waiting for a second approval")
    assert Approval.objects.count() == 1

    # The review screen says it is waiting; a second staff member approves it.
    assertContains(ops_client.get(url(withdrawal)), "Waiting for another staff member")
    approved = second_staff.post(
        reverse("ops_approval_decide", args=[approval.public_id]),
        {"decision": "approve", "confirmed": "1"},
        follow=True,
    )
    assertContains(approved, "approved and applied")
    approval.refresh_from_db()
    withdrawal.refresh_from_db()
    funded.refresh_from_db()
    second = approval.decided_by
    assert second != staff
    assert approval.status == Approval.Status.APPLIED
    assert (withdrawal.status, withdrawal.reviewed_by) == (Withdrawal.Status.APPROVED, second)
    assert funded.cash_balance == D("400")
    actions = {entry.action: entry.actor for entry in AuditLog.objects.all()}
    assert actions["approval_proposed"] == staff
    assert actions["approval_approved"] == second
    assert actions["withdrawal_approved"] == second

    # Applying it again (the retry job) pays nothing twice.
    approval.status = Approval.Status.APPROVED
    approval.save(update_fields=["status"])
    again = approval_apply(approval_id=approval.public_id)
    assert again.status == Approval.Status.APPLIED
    assert again.result.endswith("was already approved.")
    assert Journal.objects.filter(kind=Journal.Kind.WITHDRAWAL).count() == 1


def test_a_breaching_large_withdrawal_cannot_be_proposed_or_approved(low_threshold, staff, funded):
    withdrawal = withdrawal_for(funded, "800")
    other = StaffFactory()
    approval = withdrawal_review_approve(withdrawal=withdrawal, actor=staff, reason="Checked")
    credit_cash(funded, "-500", memo="chargeback")
    with pytest.raises(InsufficientFunds):
        approval_approve(approval_id=approval.public_id, approver=other)
    approval.refresh_from_db()
    assert approval.status == Approval.Status.PENDING
    with pytest.raises(Forbidden):
        approval_approve(approval_id=approval.public_id, approver=staff)


def test_rejecting_the_withdrawal_closes_its_waiting_approval(
    low_threshold, ops_client, staff, funded
):
    withdrawal = withdrawal_for(funded, "600")
    approval = withdrawal_review_approve(withdrawal=withdrawal, actor=StaffFactory(), reason="ok")
    decide(ops_client, withdrawal, "reject", reason="Fraud suspected")
    approval.refresh_from_db()
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REJECTED
    assert approval.status == Approval.Status.REJECTED
    assert approval.decision_note == "The withdrawal was rejected: Fraud suspected"
    with pytest.raises(Conflict):
        approval_approve(approval_id=approval.public_id, approver=staff)


def test_at_the_threshold_one_staff_member_approves(low_threshold, ops_client, funded):
    withdrawal = withdrawal_for(funded, "500")
    decide(ops_client, withdrawal, "approve")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.APPROVED
    assert not Approval.objects.exists()


# --- The admin links to the review screen ------------------------------------------------


def test_the_admin_list_links_to_the_review_and_has_no_bulk_approve(ops_client, funded):
    withdrawal = withdrawal_for(funded, "100")
    response = ops_client.get(reverse("admin:accounts_withdrawalrequest_changelist"))
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "approve" not in actions and "reject" in actions
    assertContains(response, f'href="{url(withdrawal)}"')
    page = ops_client.get(reverse("admin:accounts_withdrawalrequest_change", args=[withdrawal.pk]))
    assertContains(page, f'<a href="{url(withdrawal)}">Review and decide</a>')


def test_a_decided_withdrawal_shows_no_decision_form(ops_client, funded):
    withdrawal = withdrawal_for(funded, "100")
    decide(ops_client, withdrawal, "approve")
    response = ops_client.get(url(withdrawal))
    assertNotContains(response, "Approve payout")
    assertContains(response, "Withdrawal approved")  # its audit trail, in words
