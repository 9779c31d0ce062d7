"""The approvals queue (/ops/approvals/, `ops_approvals`), one approval's page
(`ops_approval`) and the decisions (`ops_approval_decide`): verified staff only;
pending first, oldest first, then recent decisions; approve / reject (a reason
required) after a confirmation; the proposer waits, may withdraw, and is refused
with the Forbidden sentence when approving their own; the admin lists them read-only."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from accounts.models import Account, Approval, AuditLog
from accounts.models import WithdrawalRequest as Withdrawal
from accounts.services.approvals import approval_reject
from accounts.services.withdrawal_review import withdrawal_review_approve
from accounts.services.withdrawals import withdrawal_request
from tests.conftest import credit_cash
from tests.factories import StaffFactory, UserFactory
from tests.ops.conftest import ops_signed_in

pytestmark = pytest.mark.django_db

QUEUE = "/ops/approvals/"


@pytest.fixture(autouse=True)
def low_threshold(settings):
    settings.WITHDRAWAL_FOUR_EYES_USDC = "100"


@pytest.fixture
def funded(custodial_account) -> Account:
    credit_cash(custodial_account, "10000")
    return custodial_account


def proposal(account: Account, proposer, amount: str = "200", reason: str = "Checked") -> Approval:
    withdrawal = withdrawal_request(
        account=account,
        amount=Decimal(amount),
        destination="Bank ****1",
        requested_by=account.owner,
    )
    return withdrawal_review_approve(withdrawal=withdrawal, actor=proposer, reason=reason)


def decide_url(approval: Approval) -> str:
    return reverse("ops_approval_decide", args=[approval.public_id])


def decide(client: Client, approval: Approval, decision: str, note: str = "", confirmed=True):
    data = {"decision": decision, "note": note}
    if confirmed:
        data["confirmed"] = "1"
    return client.post(decide_url(approval), data, follow=True)


def withdrawal_of(approval: Approval) -> Withdrawal:
    return Withdrawal.objects.get(public_id=approval.payload["withdrawal"])


@pytest.fixture
def other_staff():
    return StaffFactory()


@pytest.fixture
def other_client(other_staff) -> Client:
    return ops_signed_in(Client(), other_staff)


def test_the_url_names():
    assert reverse("ops_approvals") == QUEUE
    assert reverse("ops_approval", args=["apr_1"]) == "/ops/approvals/apr_1/"
    assert reverse("ops_approval_decide", args=["apr_1"]) == "/ops/approvals/apr_1/decide/"


def test_anonymous_customers_and_unverified_staff_are_refused(
    client, unverified_staff_client, funded, other_staff
):
    approval = proposal(funded, other_staff)
    assert client.get(QUEUE).status_code == 302
    assert (
        client.post(decide_url(approval), {"decision": "approve", "confirmed": "1"}).status_code
        == 302
    )
    client.force_login(UserFactory())
    assert client.get(QUEUE).status_code == 302
    assert (
        client.post(decide_url(approval), {"decision": "approve", "confirmed": "1"}).status_code
        == 302
    )
    assert unverified_staff_client.get(QUEUE).status_code == 403
    refused = unverified_staff_client.post(
        decide_url(approval), {"decision": "approve", "confirmed": "1"}
    )
    assert refused.status_code == 403
    approval.refresh_from_db()
    assert approval.status == Approval.Status.PENDING


def test_pending_oldest_first_then_recent_decisions(ops_client, staff, funded, other_staff):
    newer = proposal(funded, other_staff, reason="Newer one")
    older = proposal(funded, other_staff, reason="Older one")
    Approval.objects.filter(pk=older.pk).update(proposed_at=timezone.now() - timedelta(hours=3))
    decided = proposal(funded, other_staff, reason="Decided one")
    approval_reject(approval_id=decided.public_id, staff=staff, note="Not now")
    response = ops_client.get(QUEUE)
    assert [a.public_id for a in response.context["pending"]] == [older.public_id, newer.public_id]
    assert [a.public_id for a in response.context["decided"]] == [decided.public_id]
    body = response.content.decode()
    assert body.index(older.public_id) < body.index(newer.public_id) < body.index(decided.public_id)
    assertContains(response, "Large withdrawal")  # the kind's label, not its code
    assertNotContains(response, "withdrawal_approve")
    assertContains(response, "Older one")
    assertContains(response, other_staff.email)
    assertContains(response, "3 h 00 min")  # its age
    assertContains(response, "Rejected")
    assertContains(response, "Not now")


def test_the_proposer_sees_waiting_and_may_withdraw(ops_client, staff, funded):
    approval = proposal(funded, staff)
    response = ops_client.get(QUEUE)
    assertContains(response, "Waiting for another staff member.")
    assertContains(response, 'value="withdraw"')
    assertNotContains(response, 'value="approve"')
    confirm = decide(ops_client, approval, "withdraw", confirmed=False)
    assertContains(confirm, "Withdraw this proposal?")
    decide(ops_client, approval, "withdraw")
    approval.refresh_from_db()
    assert approval.status == Approval.Status.CANCELLED
    assert AuditLog.objects.get(action="approval_withdrawn").actor == staff
    assert withdrawal_of(approval).status == Withdrawal.Status.PENDING


def test_approving_ones_own_proposal_is_refused_with_the_sentence(ops_client, staff, funded):
    approval = proposal(funded, staff)
    response = decide(ops_client, approval, "approve")
    assertContains(response, "You proposed this change, so another staff member must approve it.")
    approval.refresh_from_db()
    assert approval.status == Approval.Status.PENDING
    assert withdrawal_of(approval).status == Withdrawal.Status.PENDING
    assert not AuditLog.objects.filter(action="approval_approved").exists()


def test_a_second_staff_member_approves_after_a_confirmation(
    ops_client, staff, other_client, other_staff, funded
):
    approval = proposal(funded, staff, amount="250")
    page = other_client.get(QUEUE)
    assertContains(page, 'value="approve"')
    confirm = decide(other_client, approval, "approve", note="Called back", confirmed=False)
    assertContains(confirm, "Approve this proposal?")
    assertContains(confirm, approval.summary)
    approval.refresh_from_db()
    assert approval.status == Approval.Status.PENDING

    done = decide(other_client, approval, "approve", note="Called back")
    assertContains(done, "approved and applied")
    approval.refresh_from_db()
    assert approval.status == Approval.Status.APPLIED
    assert approval.decided_by == other_staff
    assert approval.decision_note == "Called back"
    withdrawal = withdrawal_of(approval)
    assert (withdrawal.status, withdrawal.reviewed_by) == (Withdrawal.Status.APPROVED, other_staff)
    # Both staff members are in its audit trail, shown on its page.
    detail = ops_client.get(reverse("ops_approval", args=[approval.public_id]))
    assertContains(detail, "Proposed")
    assertContains(detail, "Applied")
    assertContains(detail, staff.email)
    assertContains(detail, other_staff.email)
    assertContains(detail, "Status: Approved, being applied")
    assertContains(detail, f"<h1>Large withdrawal {approval.public_id}</h1>", html=False)


def test_reject_needs_a_reason(other_client, staff, funded):
    approval = proposal(funded, staff)
    for confirmed in (False, True):
        response = decide(other_client, approval, "reject", note="  ", confirmed=confirmed)
        assertContains(response, "Give the reason for rejecting it")
    approval.refresh_from_db()
    assert approval.status == Approval.Status.PENDING
    decide(other_client, approval, "reject", note="Customer could not be reached")
    approval.refresh_from_db()
    assert approval.status == Approval.Status.REJECTED
    assert approval.decision_note == "Customer could not be reached"
    assert withdrawal_of(approval).status == Withdrawal.Status.PENDING  # still to review


def test_a_decided_approval_cannot_be_decided_again(other_client, staff, funded):
    approval = proposal(funded, staff)
    decide(other_client, approval, "approve")
    again = decide(other_client, approval, "reject", note="Too late")
    assertContains(again, "only a pending proposal can be rejected")


def test_the_detail_page_links_to_the_withdrawal_review(ops_client, other_staff, funded):
    approval = proposal(funded, other_staff)
    response = ops_client.get(reverse("ops_approval", args=[approval.public_id]))
    assertContains(
        response, reverse("ops_withdrawal_review", args=[approval.payload["withdrawal"]])
    )
    assertContains(response, 'value="approve"')
    assert ops_client.get(reverse("ops_approval", args=["apr_nope"])).status_code == 404


def test_the_admin_lists_approvals_read_only_with_labels(ops_client, other_staff, funded):
    approval = proposal(funded, other_staff)
    response = ops_client.get(reverse("admin:accounts_approval_changelist"))
    assertContains(response, approval.public_id)
    assertContains(response, "Large withdrawal")
    assertContains(response, "Waiting for a second approver")
    assertContains(response, f'href="{reverse("ops_approval", args=[approval.public_id])}"')
    change = reverse("admin:accounts_approval_change", args=[approval.pk])
    assert ops_client.post(change, {"status": "applied"}).status_code == 403
    assert ops_client.get(reverse("admin:accounts_approval_add")).status_code == 403
