"""Reviewing a withdrawal: its effect on the account's margin, and who may approve it.

The review screen (/ops/withdrawals/<id>/) shows the account's figures with the
request's amount still in its cash ("before": as if it were rejected) and after
the payout, both from the margin figures trading registers
(`accounts.hooks.margin_summary_get`), and the verdict of the withdrawal margin
check (`accounts.hooks.withdrawal_check`) on the account with this request's hold
released: the same check the request passed, run again now (a chargeback or a
loss since the request can leave the cash short). No new maths here.

Approving re-runs that check under the account lock and refuses a payout that
would breach it. Above `settings.WITHDRAWAL_FOUR_EYES_USDC` a staff member's
approval only proposes it (a four-eyes approval of kind "withdrawal_approve",
`accounts.services.approvals`); another staff member's approval pays it out.
"""

import copy
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from accounts.hooks import MarginFigures, margin_summary_get, withdrawal_check
from accounts.models import Account, Approval, User, WithdrawalRequest
from accounts.services.approvals import (
    ApprovalKind,
    approval_propose,
    approval_reject,
)
from accounts.services.withdrawals import withdrawal_approve, withdrawal_reject
from portal import format as fmt
from portal.errors import Conflict, DomainError, InvalidParams, NotFound

FOUR_EYES_KIND = "withdrawal_approve"


def withdrawal_four_eyes_threshold() -> Decimal:
    """Withdrawals above this many USDC need a second staff member's approval."""
    return Decimal(str(settings.WITHDRAWAL_FOUR_EYES_USDC))


def withdrawal_needs_four_eyes(withdrawal: WithdrawalRequest) -> bool:
    return withdrawal.amount > withdrawal_four_eyes_threshold()


@dataclass(frozen=True)
class WithdrawalEffect:
    """A pending withdrawal's effect on its account, and whether it may be paid out now."""

    before: MarginFigures  # the request's amount still in the cash (as if rejected)
    after: MarginFigures  # after the payout
    refusal: DomainError | None  # why the payout would breach the margin rules; None: it may go

    @property
    def refusal_message(self) -> str:
        return self.refusal.message if self.refusal is not None else ""


def _without_hold(account: Account, amount: Decimal) -> Account:
    """An unsaved copy of `account` with this request's hold released."""
    released = copy.copy(account)
    released.withdrawals_held = account.withdrawals_held - amount
    return released


def _refusal(account: Account, amount: Decimal) -> DomainError | None:
    """The withdrawal check on `account` (hold released), inside the caller's transaction."""
    try:
        with transaction.atomic():
            withdrawal_check(account=account, amount=amount)
    except DomainError as error:
        return error
    return None


def withdrawal_effect_get(*, withdrawal: WithdrawalRequest) -> WithdrawalEffect:
    """`withdrawal`'s effect on its account as of now (read, nothing locked or written)."""
    account = Account.objects.select_related("owner").get(pk=withdrawal.account_id)
    amount = withdrawal.amount
    held = withdrawal.status == WithdrawalRequest.Status.PENDING
    before = _without_hold(account, amount) if held else account
    paid = copy.copy(before)
    paid.cash_balance = before.cash_balance - amount
    return WithdrawalEffect(
        before=margin_summary_get(account=before),
        after=margin_summary_get(account=paid),
        refusal=_refusal(before, amount) if held else None,
    )


def withdrawal_pending_approval(withdrawal: WithdrawalRequest) -> Approval | None:
    """The four-eyes approval waiting for this withdrawal, if any."""
    return (
        Approval.objects.filter(
            kind=FOUR_EYES_KIND,
            status__in=(Approval.Status.PENDING, Approval.Status.APPROVED),
            payload__withdrawal=withdrawal.public_id,
        )
        .select_related("proposed_by")
        .order_by("proposed_at")
        .first()
    )


def withdrawal_approve_checked(
    *, withdrawal: WithdrawalRequest, actor: User, request: HttpRequest | None = None
) -> WithdrawalRequest:
    """`withdrawal_approve`, refused when the payout would now breach the margin rules.

    Under the account lock (the lock order of accounts.services.withdrawals): the
    withdrawal check on the account with this request's hold released, then the
    approval in the same transaction. Approving one already approved raises
    Conflict `withdrawal_not_pending` (the service's own check).
    """
    with transaction.atomic():
        account = (
            Account.objects.select_related("owner")
            .select_for_update(of=("self",))
            .get(pk=withdrawal.account_id)
        )
        current = WithdrawalRequest.objects.get(pk=withdrawal.pk)
        if current.status == WithdrawalRequest.Status.PENDING:
            refusal = _refusal(_without_hold(account, current.amount), current.amount)
            if refusal is not None:
                raise refusal
        return withdrawal_approve(withdrawal=current, actor=actor, request=request)


def withdrawal_review_approve(
    *,
    withdrawal: WithdrawalRequest,
    actor: User,
    reason: str = "",
    request: HttpRequest | None = None,
) -> WithdrawalRequest | Approval:
    """Approve a withdrawal from the review screen.

    At or below the four-eyes threshold: approved now (`withdrawal_approve_checked`),
    returning the withdrawal. Above it: proposed for a second staff member's approval
    (a reason required), returning the pending Approval; Conflict if one is already
    waiting. Either way a payout that would breach the margin rules is refused.
    """
    if not withdrawal_needs_four_eyes(withdrawal):
        return withdrawal_approve_checked(withdrawal=withdrawal, actor=actor, request=request)
    waiting = withdrawal_pending_approval(withdrawal)
    if waiting is not None:
        raise Conflict(
            f"Withdrawal {withdrawal.public_id} is already waiting for a second approval "
            f"({waiting.public_id}, proposed by {waiting.proposed_by.email})."
        )
    return approval_propose(
        kind=FOUR_EYES_KIND,
        payload={"withdrawal": withdrawal.public_id},
        proposer=actor,
        reason=reason,
        account=withdrawal.account,
        request=request,
    )


def withdrawal_review_reject(
    *,
    withdrawal: WithdrawalRequest,
    actor: User,
    reason: str,
    request: HttpRequest | None = None,
) -> WithdrawalRequest:
    """Reject a withdrawal (the reason is shown to the customer); a four-eyes approval
    waiting for it is closed too (withdrawn if `actor` proposed it, else rejected)."""
    rejected = withdrawal_reject(withdrawal=withdrawal, actor=actor, reason=reason, request=request)
    waiting = withdrawal_pending_approval(rejected)
    if waiting is not None and waiting.status == Approval.Status.PENDING:
        approval_reject(
            approval_id=waiting.public_id,
            staff=actor,
            note=f"The withdrawal was rejected: {reason.strip()}",
            request=request,
        )
    return rejected


# --- The four-eyes kind (registered in accounts.apps) ------------------------------------


def _payload_withdrawal(payload: dict) -> WithdrawalRequest:
    public_id = payload.get("withdrawal") if isinstance(payload, dict) else None
    if not isinstance(public_id, str) or not public_id:
        raise InvalidParams("The approval names no withdrawal.")
    withdrawal = (
        WithdrawalRequest.objects.select_related("account__owner")
        .filter(public_id=public_id)
        .first()
    )
    if withdrawal is None:
        raise NotFound(f"There is no withdrawal {public_id}.")
    return withdrawal


def _four_eyes_check(payload: dict) -> str:
    withdrawal = _payload_withdrawal(payload)
    if withdrawal.status != WithdrawalRequest.Status.PENDING:
        raise Conflict(
            f"Withdrawal {withdrawal.public_id} is "
            f"{withdrawal.get_status_display().lower()}: only a pending one can be approved."
        )
    effect = withdrawal_effect_get(withdrawal=withdrawal)
    if effect.refusal is not None:
        raise effect.refusal
    account = withdrawal.account
    return (
        f"Pay out withdrawal {withdrawal.public_id}: {fmt.usdc(withdrawal.amount)} from "
        f"{account.public_id} ({account.owner.email}) to {withdrawal.destination}"
    )


def _four_eyes_apply(approval: Approval) -> str:
    withdrawal = _payload_withdrawal(approval.payload)
    amount = fmt.usdc(withdrawal.amount)
    if withdrawal.status == WithdrawalRequest.Status.APPROVED:
        return f"Withdrawal {withdrawal.public_id} of {amount} was already approved."
    if withdrawal.status != WithdrawalRequest.Status.PENDING:
        raise Conflict(
            f"Withdrawal {withdrawal.public_id} is "
            f"{withdrawal.get_status_display().lower()}: it was not paid out."
        )
    try:
        withdrawal_approve_checked(withdrawal=withdrawal, actor=approval.decided_by)
    except Conflict:
        withdrawal.refresh_from_db(fields=["status"])
        if withdrawal.status != WithdrawalRequest.Status.APPROVED:
            raise
        return f"Withdrawal {withdrawal.public_id} of {amount} was already approved."
    return f"Withdrawal {withdrawal.public_id} of {amount} approved: the payout is on its way."


WITHDRAWAL_APPROVE_KIND = ApprovalKind(
    name=FOUR_EYES_KIND,
    label="Large withdrawal",
    check=_four_eyes_check,
    apply=_four_eyes_apply,
    permission="accounts.change_withdrawalrequest",
)
