"""Withdrawals: customers request, ops approve or reject, the provider pays out.

Lock order, wherever more than one row is locked: the Account row first,
then the WithdrawalRequest row (as deposits' webhook handling locks the
account before the deposit), so these functions cannot deadlock each other.
"""

import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Account, HouseAccount, Journal, User, WithdrawalRequest
from accounts.payments import payment_provider
from accounts.services.audit import audit_record
from accounts.services.deposits import payment_account_check, payment_amount_clean
from accounts.services.ledger import Line, cash_ledger_account, house_ledger_account, journal_post
from accounts.services.outbox import outbox_enqueue
from portal.errors import Conflict, Forbidden, InvalidParams
from portal.money import MONEY_QUANTUM, ZERO
from trading.services.margin_check import margin_check_withdrawal

logger = logging.getLogger(__name__)

PAYOUT_TASK = "accounts.withdrawal_payout"
WITHDRAWAL_MAX = Decimal("1000000")  # per request, USDC
DESTINATION_MAX_LENGTH = WithdrawalRequest._meta.get_field("destination").max_length
REJECTION_REASON_MAX_LENGTH = WithdrawalRequest._meta.get_field("rejection_reason").max_length


def withdrawal_funds_check(*, account: Account, amount: Decimal, reserved: Decimal = ZERO) -> None:
    """The one funds check every withdrawal passes, at request and at approval.

    A withdrawal never borrows, margin-enabled account or not: `amount` must
    be ≤ max(0, cash) − `reserved` (what other pending requests claim). It is
    the margin pre-trade check for withdrawals
    (`trading.services.margin_check.margin_check_withdrawal`). Expects
    `account` locked (select_for_update) and freshly read, inside the
    caller's transaction.

    Raises InsufficientFunds.
    """
    margin_check_withdrawal(account=account, amount=amount, reserved=reserved)


def _account_lock(account_id: int) -> Account:
    """Lock one account row (FOR UPDATE of the account only, not of its owner)."""
    return (
        Account.objects.select_related("owner").select_for_update(of=("self",)).get(pk=account_id)
    )


def _pending_check(withdrawal: WithdrawalRequest) -> None:
    if withdrawal.status != WithdrawalRequest.Status.PENDING:
        raise Conflict(
            f"Withdrawal {withdrawal.public_id} is already {withdrawal.status}.",
            code="withdrawal_not_pending",
        )


def _staff_check(actor: User) -> None:
    if not actor.is_staff:
        raise Forbidden("Only ops staff can review withdrawals.")


def withdrawal_request(
    *, account: Account, amount: Decimal, destination: str, requested_by: User
) -> WithdrawalRequest:
    """Ask for cash to be paid out; the request waits for ops to review it.

    Under the Account row lock (select_for_update), in one transaction:
    `requested_by` must own the account; the account must be custodial,
    active and its owner KYB-approved; the amount must be > 0 at USDC
    precision, at most WITHDRAWAL_MAX, and within `withdrawal_funds_check`
    counting the account's other pending requests as reserved. No money
    moves until approval. Each call makes a new request.

    Raises InvalidParams (amount, destination), Forbidden (not the owner,
    `not_custodial`, `kyb_required`), AccountNotActive or InsufficientFunds.
    """
    amount = payment_amount_clean(amount, minimum=MONEY_QUANTUM, maximum=WITHDRAWAL_MAX)
    destination = destination.strip()
    if not destination or len(destination) > DESTINATION_MAX_LENGTH:
        raise InvalidParams(
            f"Give a destination for the money, at most {DESTINATION_MAX_LENGTH} characters."
        )
    with transaction.atomic():
        account = _account_lock(account.pk)
        if account.owner_id != requested_by.pk:
            raise Forbidden("Only the account's owner can request a withdrawal.")
        payment_account_check(account)
        reserved = WithdrawalRequest.objects.filter(
            account=account, status=WithdrawalRequest.Status.PENDING
        ).aggregate(total=Sum("amount"))["total"]
        withdrawal_funds_check(account=account, amount=amount, reserved=reserved or ZERO)
        withdrawal = WithdrawalRequest.objects.create(
            account=account, amount=amount, destination=destination
        )
    logger.info(
        "Withdrawal %s of %s USDC requested from %s.",
        withdrawal.public_id,
        amount,
        account.public_id,
    )
    return withdrawal


def withdrawal_approve(
    *, withdrawal: WithdrawalRequest, actor: User, request: HttpRequest | None = None
) -> WithdrawalRequest:
    """Approve a pending withdrawal: post its journal, then pay it out.

    `actor` must be staff and not the account's owner. In one transaction:
    locks the Account row, then the WithdrawalRequest row (select_for_update),
    and re-checks under the locks that the request is still pending (so an
    approval run twice, even concurrently, posts one journal), that the
    account may still move money, and `withdrawal_funds_check` against the
    current cash (if it fails, the request stays pending). Then posts ONE
    journal (−amount customer cash, +amount house payment clearing;
    idempotency key `withdrawal:<public_id>`), marks the request approved with
    reviewer and time, and writes the audit log. After commit the payout is
    sent to the provider by `accounts.withdrawal_payout`, an outbox item
    written in the same transaction (re-sent until the payout is made, so a
    lost message or a dead worker delays it, never strands the debited
    money). Returns the updated row.

    Raises Forbidden (not staff, own withdrawal, `not_custodial`,
    `kyb_required`), Conflict `withdrawal_not_pending`, AccountNotActive or
    InsufficientFunds.
    """
    _staff_check(actor)
    with transaction.atomic():
        account = _account_lock(withdrawal.account_id)
        locked = WithdrawalRequest.objects.select_for_update().get(pk=withdrawal.pk)
        if account.owner_id == actor.pk:
            raise Forbidden("Staff cannot approve their own withdrawal.")
        _pending_check(locked)
        payment_account_check(account)
        withdrawal_funds_check(account=account, amount=locked.amount)
        locked.journal = journal_post(
            kind=Journal.Kind.WITHDRAWAL,
            account=account,
            memo=f"Withdrawal {locked.public_id} to {locked.destination}",
            idempotency_key=f"withdrawal:{locked.public_id}",
            created_by=actor,
            lines=[
                Line(cash_ledger_account(account), -locked.amount),
                Line(house_ledger_account(HouseAccount.PAYMENT_CLEARING), locked.amount),
            ],
        )
        locked.status = WithdrawalRequest.Status.APPROVED
        locked.reviewed_by = actor
        locked.reviewed_at = timezone.now()
        locked.save(update_fields=["status", "reviewed_by", "reviewed_at", "journal"])
        audit_record(
            actor=actor,
            action="withdrawal_approved",
            obj=locked,
            changes={"status": [WithdrawalRequest.Status.PENDING, locked.status]},
            request=request,
        )
        outbox_enqueue(
            task=PAYOUT_TASK,
            kwargs={"withdrawal_id": locked.pk},
            key=f"withdrawal_payout:{locked.pk}",
        )
    logger.info(
        "Withdrawal %s of %s USDC from %s approved by %s.",
        locked.public_id,
        locked.amount,
        account.public_id,
        actor.email,
    )
    return locked


def withdrawal_reject(
    *,
    withdrawal: WithdrawalRequest,
    actor: User,
    reason: str,
    request: HttpRequest | None = None,
) -> WithdrawalRequest:
    """Reject a pending withdrawal with a reason the customer sees; audited.

    Staff only. Locks only the WithdrawalRequest row (select_for_update) and
    re-checks it is pending; no money moves. Returns the updated row.

    Raises Forbidden (not staff), InvalidParams (no reason) or Conflict
    `withdrawal_not_pending`.
    """
    _staff_check(actor)
    reason = reason.strip()
    if not reason:
        raise InvalidParams("Give the customer a reason for the rejection.")
    with transaction.atomic():
        locked = WithdrawalRequest.objects.select_for_update().get(pk=withdrawal.pk)
        _pending_check(locked)
        locked.status = WithdrawalRequest.Status.REJECTED
        locked.reviewed_by = actor
        locked.reviewed_at = timezone.now()
        locked.rejection_reason = reason[:REJECTION_REASON_MAX_LENGTH]
        locked.save(update_fields=["status", "reviewed_by", "reviewed_at", "rejection_reason"])
        audit_record(
            actor=actor,
            action="withdrawal_rejected",
            obj=locked,
            changes={
                "status": [WithdrawalRequest.Status.PENDING, locked.status],
                "rejection_reason": ["", locked.rejection_reason],
            },
            request=request,
        )
    return locked


def withdrawal_cancel(*, withdrawal: WithdrawalRequest, user: User) -> WithdrawalRequest:
    """The account's owner withdraws their own pending request.

    Locks only the WithdrawalRequest row (select_for_update) and re-checks it
    is pending; no money moves. Returns the updated row.

    Raises Forbidden (not the owner) or Conflict `withdrawal_not_pending`.
    """
    with transaction.atomic():
        locked = (
            WithdrawalRequest.objects.select_related("account")
            .select_for_update(of=("self",))
            .get(pk=withdrawal.pk)
        )
        if locked.account.owner_id != user.pk:
            raise Forbidden("Only the account's owner can cancel its withdrawal.")
        _pending_check(locked)
        locked.status = WithdrawalRequest.Status.CANCELLED
        locked.save(update_fields=["status"])
    return locked


def withdrawal_payout_send(*, withdrawal_id: int) -> WithdrawalRequest:
    """Pay an approved withdrawal out through the provider, once.

    Locks the WithdrawalRequest row (select_for_update), so concurrent runs
    reach the provider one at a time; does nothing unless the request is
    approved and has no payout reference yet, so running it twice is safe.
    The provider's payout is itself idempotent on the withdrawal's public id,
    so a crash between its answer and this commit cannot pay twice either.
    """
    with transaction.atomic():
        locked = WithdrawalRequest.objects.select_for_update().get(pk=withdrawal_id)
        if locked.status != WithdrawalRequest.Status.APPROVED or locked.provider_reference:
            return locked
        locked.provider_reference = payment_provider().payout_create(withdrawal=locked)
        locked.save(update_fields=["provider_reference"])
    logger.info(
        "Withdrawal %s paid out (reference %s).", locked.public_id, locked.provider_reference
    )
    return locked
