"""Four-eyes approvals (accounts.services.approvals): nobody approves their own, every
step audited, an approved change applied once even when applying is retried."""

import pytest
from django.db import IntegrityError, transaction

from accounts.models import Approval, AuditLog
from accounts.services import approvals
from accounts.services.approvals import (
    ApprovalKind,
    approval_apply,
    approval_approve,
    approval_kind_register,
    approval_propose,
    approval_reject,
    approvals_apply_due,
)
from portal.errors import Conflict, Forbidden, InvalidParams
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

applied: list[str] = []


def _check(payload: dict) -> str:
    if payload.get("value", 0) < 0:
        raise InvalidParams("The value cannot be negative.")
    return f"Set the test value to {payload['value']}"


def _apply(approval: Approval) -> str:
    if approval.payload.get("explode"):
        raise RuntimeError("venue down")
    if approval.payload.get("refuse"):
        raise Conflict("The position is already closed.")
    if approval.public_id not in applied:  # idempotent by the approval's id
        applied.append(approval.public_id)
    return f"Test value set to {approval.payload['value']}."


@pytest.fixture(autouse=True)
def kind():
    applied.clear()
    approval_kind_register(ApprovalKind("test_value", "Test value", _check, _apply))
    yield
    approvals._kinds.pop("test_value", None)


def propose(proposer, **payload) -> Approval:
    return approval_propose(
        kind="test_value", payload={"value": 1, **payload}, proposer=proposer, reason="Because."
    )


def test_a_second_staff_member_approves_and_it_applies_once():
    alice, bob = StaffFactory(), StaffFactory()
    approval = propose(alice)
    assert approval.status == Approval.Status.PENDING
    assert approval.summary == "Set the test value to 1"
    assert applied == []

    approval = approval_approve(approval_id=approval.public_id, approver=bob, note="Fine.")
    assert approval.status == Approval.Status.APPLIED
    assert approval.result == "Test value set to 1."
    assert applied == [approval.public_id]
    # Running it again changes nothing.
    approval_apply(approval_id=approval.public_id)
    assert applied == [approval.public_id]
    actions = list(
        AuditLog.objects.filter(object_id=str(approval.pk))
        .order_by("pk")
        .values_list("action", "actor_email")
    )
    assert actions == [
        ("approval_proposed", alice.email),
        ("approval_approved", bob.email),
        ("approval_applied", bob.email),
    ]


def test_nobody_approves_their_own_proposal():
    alice = StaffFactory()
    approval = propose(alice)
    with pytest.raises(Forbidden, match="another staff member must approve"):
        approval_approve(approval_id=approval.public_id, approver=alice)
    approval.refresh_from_db()
    assert approval.status == Approval.Status.PENDING and applied == []
    # The database refuses it too.
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.filter(pk=approval.pk).update(decided_by=alice)


def test_only_staff_propose_and_decide():
    alice = StaffFactory()
    customer = UserFactory()
    with pytest.raises(Forbidden):
        propose(customer)
    approval = propose(alice)
    with pytest.raises(Forbidden):
        approval_approve(approval_id=approval.public_id, approver=customer)


def test_a_reason_is_required_and_the_change_is_checked_when_proposed():
    alice = StaffFactory()
    with pytest.raises(InvalidParams, match="reason"):
        approval_propose(kind="test_value", payload={"value": 1}, proposer=alice, reason=" ")
    with pytest.raises(InvalidParams, match="negative"):
        propose(alice, value=-1)
    with pytest.raises(InvalidParams, match="no kind"):
        approval_propose(kind="nope", payload={}, proposer=alice, reason="x")
    assert not Approval.objects.exists()


def test_reject_needs_a_reason_and_the_proposer_may_withdraw():
    alice, bob = StaffFactory(), StaffFactory()
    approval = propose(alice)
    with pytest.raises(InvalidParams):
        approval_reject(approval_id=approval.public_id, staff=bob, note="")
    rejected = approval_reject(approval_id=approval.public_id, staff=bob, note="Too risky.")
    assert rejected.status == Approval.Status.REJECTED and rejected.decided_by == bob
    with pytest.raises(Conflict):
        approval_approve(approval_id=approval.public_id, approver=bob)

    own = propose(alice)
    withdrawn = approval_reject(approval_id=own.public_id, staff=alice, note="")
    assert withdrawn.status == Approval.Status.CANCELLED and withdrawn.decided_by is None
    assert applied == []


def test_a_refused_change_fails_with_the_reason():
    alice, bob = StaffFactory(), StaffFactory()
    approval = approval_approve(approval_id=propose(alice, refuse=True).public_id, approver=bob)
    assert approval.status == Approval.Status.FAILED
    assert approval.result == "The position is already closed."


def test_an_approval_left_unapplied_is_finished_by_the_periodic_task():
    alice, bob = StaffFactory(), StaffFactory()
    approval = approval_approve(approval_id=propose(alice, explode=True).public_id, approver=bob)
    assert approval.status == Approval.Status.APPROVED  # the venue was down: retried later
    assert approvals_apply_due() == 0  # not yet due
    Approval.objects.filter(pk=approval.pk).update(
        decided_at=approval.decided_at - approvals.APPLY_RETRY_AFTER * 2,
        payload={"value": 1},  # the venue is back
    )
    assert approvals_apply_due() == 1
    approval.refresh_from_db()
    assert approval.status == Approval.Status.APPLIED and approval.attempts == 2
    assert applied == [approval.public_id]


def test_a_kind_may_need_a_permission_to_propose_and_to_approve():
    from django.contrib.auth.models import Permission

    approval_kind_register(
        ApprovalKind("guarded", "Guarded change", _check, _apply, "accounts.change_account")
    )
    alice = StaffFactory(is_superuser=False)
    bob = StaffFactory(is_superuser=False)
    with pytest.raises(Forbidden, match="cannot propose or approve a guarded change"):
        approval_propose(kind="guarded", payload={"value": 1}, proposer=alice, reason="x")
    perm = Permission.objects.get(codename="change_account", content_type__app_label="accounts")
    alice.user_permissions.add(perm)
    alice = type(alice).objects.get(pk=alice.pk)  # drop the permission cache
    approval = approval_propose(kind="guarded", payload={"value": 1}, proposer=alice, reason="x")
    with pytest.raises(Forbidden, match="cannot propose or approve"):
        approval_approve(approval_id=approval.public_id, approver=bob)
    assert (
        approval_approve(approval_id=approval.public_id, approver=StaffFactory()).status
        == Approval.Status.APPLIED
    )
    approvals._kinds.pop("guarded", None)
