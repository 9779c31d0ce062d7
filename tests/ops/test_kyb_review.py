"""The KYB review screen (/ops/kyb/<user id>/, `ops_kyb_review`): verified staff only,
the customer's details, approve / reject (a reason required to reject) after a
confirmation, audited, the customer notified in the portal and by e-mail; the admin
links to it instead of bulk actions."""

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from accounts.models import AuditLog, Notification, User
from accounts.services.kyb import kyb_decide
from portal.errors import Conflict, Forbidden
from tests.factories import StaffFactory, UserFactory, open_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def applicant(db) -> User:
    user = UserFactory(kyb_status=User.KybStatus.PENDING, full_name="Ada Lovelace")
    open_account(owner=user)
    return user


def url(user: User) -> str:
    return reverse("ops_kyb_review", args=[user.pk])


def decide(client: Client, user: User, decision: str, reason: str = "", confirmed: bool = True):
    data = {"decision": decision, "reason": reason}
    if confirmed:
        data["confirmed"] = "1"
    return client.post(url(user), data, follow=True)


def test_the_url_name():
    assert reverse("ops_kyb_review", args=[7]) == "/ops/kyb/7/"


def test_anonymous_and_customers_are_sent_to_the_admin_login(client, applicant):
    response = client.get(url(applicant))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    client.force_login(UserFactory())
    assert client.post(url(applicant), {"decision": "approve", "confirmed": "1"}).status_code == 302
    applicant.refresh_from_db()
    assert applicant.kyb_status == User.KybStatus.PENDING


def test_staff_without_the_one_time_code_are_refused(unverified_staff_client, applicant):
    response = unverified_staff_client.post(
        url(applicant), {"decision": "approve", "confirmed": "1"}
    )
    assert response.status_code == 403
    assertContains(response, "two-factor sign-in", status_code=403)
    applicant.refresh_from_db()
    assert applicant.kyb_status == User.KybStatus.PENDING
    assert not AuditLog.objects.filter(action__startswith="kyb_").exists()


def test_the_page_shows_the_submitted_details(ops_client, applicant):
    response = ops_client.get(url(applicant))
    assert response.status_code == 200
    assertContains(response, applicant.email)
    assertContains(response, "Ada Lovelace")
    assertContains(response, "No documents on file")
    assertContains(response, "Pending review")
    assertContains(response, applicant.accounts.get().public_id)
    assertContains(response, "Approve KYB")
    assertContains(response, "Reject KYB")


def test_approve_asks_for_a_confirmation_first(ops_client, applicant):
    response = decide(ops_client, applicant, "approve", confirmed=False)
    assertContains(response, "Approve KYB?")
    assertContains(response, 'name="confirmed" value="1"')
    applicant.refresh_from_db()
    assert applicant.kyb_status == User.KybStatus.PENDING
    assert not Notification.objects.filter(user=applicant).exists()


def test_approve_is_audited_and_the_customer_is_notified(
    ops_client, staff, applicant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = decide(ops_client, applicant, "approve", reason="Registry extract checked")
    assertContains(response, "the customer has been notified")
    applicant.refresh_from_db()
    assert applicant.kyb_status == User.KybStatus.APPROVED
    assert applicant.kyb_reviewed_by == staff
    assert applicant.kyb_note == "Registry extract checked"
    entry = AuditLog.objects.get(action="kyb_approved")
    assert entry.actor == staff
    assert entry.object_id == str(applicant.pk)
    assert entry.changes["kyb_status"] == ["pending", "approved"]
    assert entry.changes["kyb_note"] == "Registry extract checked"
    assert entry.ip_address
    notification = Notification.objects.get(user=applicant)
    assert notification.title == "Your business details are approved"
    assert notification.email
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [applicant.email]
    assert mail.outbox[0].subject == "Your business details are approved"
    # The page shows the decision and its audit entry, in words.
    assertContains(response, "KYB approved")
    assertContains(response, "Pending review → Approved")


def test_reject_needs_a_reason(ops_client, applicant):
    for confirmed in (False, True):
        response = decide(ops_client, applicant, "reject", reason="   ", confirmed=confirmed)
        assertContains(response, "Give the reason for rejecting the KYB")
    applicant.refresh_from_db()
    assert applicant.kyb_status == User.KybStatus.PENDING
    assert not AuditLog.objects.filter(action="kyb_rejected").exists()


def test_reject_with_a_reason_tells_the_customer_why(
    ops_client, staff, applicant, django_capture_on_commit_callbacks
):
    confirm = decide(
        ops_client, applicant, "reject", reason="The registry number is missing", confirmed=False
    )
    assertContains(confirm, "Reject KYB?")
    assertContains(confirm, "The registry number is missing")
    with django_capture_on_commit_callbacks(execute=True):
        decide(ops_client, applicant, "reject", reason="The registry number is missing")
    applicant.refresh_from_db()
    assert applicant.kyb_status == User.KybStatus.REJECTED
    assert AuditLog.objects.get(action="kyb_rejected").actor == staff
    notification = Notification.objects.get(user=applicant)
    assert "Reason: The registry number is missing." in notification.body
    assert "Reason: The registry number is missing." in mail.outbox[0].body


def test_a_decision_is_not_taken_twice(ops_client, applicant):
    decide(ops_client, applicant, "approve")
    again = decide(ops_client, applicant, "approve")
    assertContains(again, f"The KYB of {applicant.email} is already approved.")
    assert AuditLog.objects.filter(action="kyb_approved").count() == 1
    assert Notification.objects.filter(user=applicant).count() == 1


def test_staff_cannot_decide_their_own_kyb(staff):
    staff.kyb_status = User.KybStatus.PENDING
    staff.save(update_fields=["kyb_status"])
    with pytest.raises(Forbidden, match="another staff member must"):
        kyb_decide(user=staff, decision="approve", actor=staff)
    other = StaffFactory()
    kyb_decide(user=staff, decision="approve", actor=other)
    with pytest.raises(Conflict):
        kyb_decide(user=staff, decision="approve", actor=other)


def test_staff_without_the_user_permission_cannot_decide(client, applicant):
    from tests.ops.conftest import ops_signed_in

    limited = StaffFactory(is_superuser=False)
    ops_signed_in(client, limited)
    response = decide(client, applicant, "approve")
    assertContains(response, "may not decide KYB")
    applicant.refresh_from_db()
    assert applicant.kyb_status == User.KybStatus.PENDING


# --- The admin links to the review screen ------------------------------------------------


def test_the_user_list_has_no_bulk_kyb_actions_and_links_to_the_review(ops_client, applicant):
    response = ops_client.get(reverse("admin:accounts_user_changelist"))
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "approve_kyb" not in actions and "reject_kyb" not in actions
    assertContains(response, f'href="{url(applicant)}"')
    assertContains(response, "Review KYB")


def test_the_user_page_has_a_review_kyb_button(ops_client, applicant):
    response = ops_client.get(reverse("admin:accounts_user_change", args=[applicant.pk]))
    assertContains(
        response, f'<a href="{url(applicant)}" class="ops-kyb-review-link">Review KYB</a>'
    )
    assertNotContains(response, "Approve KYB / Reject KYB actions")
