"""KYB review: ops approve or reject a customer's business details, with a reason.

One decision at a time, from the review screen (/ops/kyb/<user id>/): the
decision (`user_kyb_set`: reviewer, time, note, audit entry) and the customer's
notification (in-app and e-mailed once the transaction commits) are written in
one transaction, so a customer is told exactly when the decision is recorded.
"""

from django.db import transaction
from django.http import HttpRequest

from accounts.models import Notification, User
from accounts.services.accounts import user_kyb_set
from accounts.services.notifications import (
    notification_create,
    notification_email_send_on_commit,
)
from portal.errors import Conflict, Forbidden, InvalidParams
from portal.format import sentence

KYB_REASON_MAX = 2000
KYB_DECISIONS = {
    "approve": User.KybStatus.APPROVED,
    "reject": User.KybStatus.REJECTED,
}


def kyb_reason_clean(decision: str, reason: str) -> str:
    """The reason, stripped: required to reject (the customer reads it), optional to approve."""
    if decision not in KYB_DECISIONS:
        raise InvalidParams("Choose Approve or Reject.")
    reason = (reason or "").strip()
    if decision == "reject" and not reason:
        raise InvalidParams("Give the reason for rejecting the KYB: the customer is told it.")
    if len(reason) > KYB_REASON_MAX:
        raise InvalidParams(f"The reason is too long: at most {KYB_REASON_MAX} characters.")
    return reason


def kyb_decide(
    *,
    user: User,
    decision: str,
    actor: User,
    reason: str = "",
    request: HttpRequest | None = None,
) -> User:
    """Approve or reject `user`'s KYB (`decision`: "approve" / "reject"), audited, and tell
    them (in-app and by e-mail, in the same transaction).

    Raises Forbidden (not staff, or one's own KYB), InvalidParams (no reason to reject)
    or Conflict (the KYB already has that status: nothing is recorded or sent twice).
    """
    reason = kyb_reason_clean(decision, reason)
    status = KYB_DECISIONS[decision]
    if not (actor.is_active and actor.is_staff):
        raise Forbidden("Only ops staff can review KYB.")
    if actor.pk == user.pk:
        raise Forbidden("Staff cannot decide their own KYB: another staff member must.")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.kyb_status == status:
            raise Conflict(f"The KYB of {locked.email} is already {status.label.lower()}.")
        decided = user_kyb_set(
            user=locked, status=status, actor=actor, note=reason, request=request
        )
        kyb_notify(user=decided, reason=reason)
    return decided


def kyb_notify(*, user: User, reason: str) -> Notification:
    """The customer's notification of a KYB decision (in-app, e-mailed after commit)."""
    if user.kyb_status == User.KybStatus.APPROVED:
        title = "Your business details are approved"
        body = (
            "We have reviewed your business details (KYB) and approved them: you can now "
            "deposit, trade and withdraw."
        )
    else:
        title = "Your business details could not be approved"
        body = (
            "We have reviewed your business details (KYB) and could not approve them. "
            f"Reason: {sentence(reason) or 'No reason was given.'} Until they are approved "
            "you cannot deposit, trade or withdraw. Reply to this e-mail or contact support "
            "to send what is missing."
        )
    notification, _ = notification_create(
        user_id=user.pk,
        kind=Notification.Kind.SYSTEM,
        title=title,
        body=body,
        email=True,
    )
    notification_email_send_on_commit(notifications=[notification])
    return notification
