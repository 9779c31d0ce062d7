"""Four-eyes approvals: propose, approve (by someone else), apply; reject or withdraw.

A kind of change (a risk-policy change, a large withdrawal, a force-close) is
registered by the app that owns it (`approval_kind_register`, from its
AppConfig.ready) with two functions:

- `check(payload) -> str`: validates the change as it would apply now and
  returns its one-line summary; raises DomainError when it cannot apply. Run
  when it is proposed and again when it is approved (the world may have moved).
- `apply(approval) -> str`: applies it and returns what it did, in a sentence.
  It runs outside any transaction (it may call a venue) and must be safe to run
  twice for the same approval (key its effects by `approval.public_id`): a
  crash between the approval and the end of `apply` leaves the approval
  `approved`, and `approvals_apply_due` (every minute) runs it again.

Nobody approves their own proposal (here, and by a database constraint). Every
step is written to the audit log in the transaction that takes it.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Account, Approval, User
from accounts.services.audit import audit_record
from portal.errors import Conflict, DomainError, Forbidden, InvalidParams, NotFound

logger = logging.getLogger(__name__)

REASON_MAX = 2000
# An approval still `approved` this long after its decision is applied again.
APPLY_RETRY_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class ApprovalKind:
    name: str
    label: str  # "Risk-policy change", as the approvals list shows it
    check: Callable[[dict[str, Any]], str]
    apply: Callable[[Approval], str]
    # The Django permission a staff member needs to propose or approve it
    # ("trading.change_riskpolicy"); empty: any verified staff member.
    permission: str = ""


_kinds: dict[str, ApprovalKind] = {}


def approval_kind_register(kind: ApprovalKind) -> None:
    _kinds[kind.name] = kind


def approval_kind_get(name: str) -> ApprovalKind:
    try:
        return _kinds[name]
    except KeyError:
        raise InvalidParams(f"There is no kind of approval called {name!r}.") from None


def _staff_check(user: User, kind: ApprovalKind | None = None) -> None:
    if not (user.is_active and user.is_staff):
        raise Forbidden("Only staff can propose or decide changes that need approval.")
    if kind is not None and kind.permission and not user.has_perm(kind.permission):
        raise Forbidden(
            f"Your staff role cannot propose or approve a {kind.label.lower()}: "
            "ask an administrator for the permission."
        )


def _reason_clean(text: str, *, what: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidParams(f"Give {what}: it is kept in the audit log.")
    if len(text) > REASON_MAX:
        raise InvalidParams(f"The {what} is too long: at most {REASON_MAX} characters.")
    return text


def _locked(approval_id: str) -> Approval:
    approval = Approval.objects.select_for_update().filter(public_id=approval_id).first()
    if approval is None:
        raise NotFound(f"There is no approval {approval_id}.")
    return approval


def _locked_pending(approval_id: str, done: str) -> Approval:
    """The approval, locked; Conflict unless it is pending (only then can it be `done`:
    "approved", "rejected")."""
    approval = _locked(approval_id)
    if approval.status != Approval.Status.PENDING:
        raise Conflict(
            f"{approval.public_id} is {approval.get_status_display().lower()}: "
            f"only a pending proposal can be {done}."
        )
    return approval


def _audit(approval: Approval, *, actor: User | None, action: str, request=None, **extra) -> None:
    audit_record(
        actor=actor,
        action=action,
        obj=approval,
        changes={"kind": approval.kind, "status": approval.status, **extra},
        request=request,
    )


def approval_propose(
    *,
    kind: str,
    payload: dict[str, Any],
    proposer: User,
    reason: str,
    account: Account | None = None,
    request: HttpRequest | None = None,
) -> Approval:
    """A pending change: checked now, applied once another staff member approves it."""
    registered = approval_kind_get(kind)
    _staff_check(proposer, registered)
    reason = _reason_clean(reason, what="a reason")
    summary = registered.check(payload)
    with transaction.atomic():
        approval = Approval.objects.create(
            kind=kind,
            payload=payload,
            summary=summary[:300],
            reason=reason,
            account=account,
            proposed_by=proposer,
        )
        _audit(approval, actor=proposer, action="approval_proposed", request=request, reason=reason)
    return approval


def approval_approve(
    *, approval_id: str, approver: User, note: str = "", request: HttpRequest | None = None
) -> Approval:
    """Approve someone else's proposal, then apply it (outside the transaction)."""
    _staff_check(approver)
    with transaction.atomic():
        approval = _locked_pending(approval_id, "approved")
        if approval.proposed_by_id == approver.pk:
            raise Forbidden("You proposed this change, so another staff member must approve it.")
        kind = approval_kind_get(approval.kind)
        _staff_check(approver, kind)
        kind.check(approval.payload)
        approval.status = Approval.Status.APPROVED
        approval.decided_by = approver
        approval.decided_at = timezone.now()
        approval.decision_note = (note or "").strip()[:REASON_MAX]
        approval.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        _audit(approval, actor=approver, action="approval_approved", request=request)
    return approval_apply(approval_id=approval.public_id)


def approval_reject(
    *, approval_id: str, staff: User, note: str, request: HttpRequest | None = None
) -> Approval:
    """Reject another's proposal (a reason required), or withdraw one's own."""
    _staff_check(staff)
    with transaction.atomic():
        approval = _locked_pending(approval_id, "rejected")
        own = approval.proposed_by_id == staff.pk
        if own:
            approval.status = Approval.Status.CANCELLED
            approval.decision_note = (note or "").strip()[:REASON_MAX]
        else:
            approval.status = Approval.Status.REJECTED
            approval.decided_by = staff
            approval.decision_note = _reason_clean(note, what="the reason for rejecting it")
        approval.decided_at = timezone.now()
        approval.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        action = "approval_withdrawn" if own else "approval_rejected"
        _audit(approval, actor=staff, action=action, request=request)
    return approval


def approval_apply(*, approval_id: str) -> Approval:
    """Apply an approved change (safe to run twice: the kind's `apply` is idempotent).

    A refusal (DomainError) marks it `failed` with the reason; any other error
    (a venue or the network) leaves it `approved` for `approvals_apply_due`."""
    with transaction.atomic():
        approval = _locked(approval_id)
        if approval.status != Approval.Status.APPROVED:
            return approval
        approval.attempts += 1
        approval.save(update_fields=["attempts"])
    kind = approval_kind_get(approval.kind)
    try:
        result = kind.apply(approval)
    except DomainError as exc:
        status, result, action = Approval.Status.FAILED, exc.message, "approval_failed"
    except Exception:
        logger.exception("Applying %s failed; it will be retried.", approval.public_id)
        return approval
    else:
        status, action = Approval.Status.APPLIED, "approval_applied"
    with transaction.atomic():
        approval = _locked(approval_id)
        if approval.status != Approval.Status.APPROVED:
            return approval  # another run finished it first
        approval.status = status
        approval.result = result
        approval.applied_at = timezone.now() if status == Approval.Status.APPLIED else None
        approval.save(update_fields=["status", "result", "applied_at"])
        _audit(approval, actor=approval.decided_by, action=action, result=result)
    return approval


def approvals_apply_due() -> int:
    """Finish approvals left `approved` by a crash or an outage; how many were tried."""
    due = Approval.objects.filter(
        status=Approval.Status.APPROVED, decided_at__lt=timezone.now() - APPLY_RETRY_AFTER
    ).values_list("public_id", flat=True)
    ids = list(due[:100])
    for approval_id in ids:
        approval_apply(approval_id=approval_id)
    return len(ids)
