"""Withdrawals: customers request, ops approve or reject, the provider pays out.

A request holds its amount at once (`Account.withdrawals_held`, under the
account lock): the margin figures and every check count that cash as gone
(`Account.risk_cash`), so trading cannot spend it before ops review the
request. Approval turns the hold into the ledger debit; rejection and
cancellation release it.

Lock order, wherever more than one row is locked: the Account row first,
then the WithdrawalRequest row (as deposits' webhook handling locks the
account before the deposit), so these functions cannot deadlock each other.
"""

import logging
from decimal import ROUND_FLOOR, Decimal

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.enqueue import withdrawal_payout_enqueue
from accounts.hooks import desk_changed, withdrawal_check
from accounts.models import Account, HouseAccount, Journal, User, WithdrawalRequest
from accounts.payments import payment_provider
from accounts.payments.base import PayoutRefused
from accounts.services.audit import audit_record
from accounts.services.deposits import payment_account_check, payment_amount_clean
from accounts.services.ledger import (
    Line,
    accounts_changed_mark,
    cash_ledger_account,
    house_ledger_account,
    journal_post,
)
from accounts.services.notifications import withdrawal_notify
from portal import format as fmt
from portal.db import row_add
from portal.errors import Conflict, ErrorCode, Forbidden, InsufficientFunds, InvalidParams
from portal.money import MONEY_QUANTUM, ZERO

logger = logging.getLogger(__name__)

WITHDRAWAL_MAX = Decimal("1000000")  # per request, USDC
DESTINATION_MAX_LENGTH = WithdrawalRequest._meta.get_field("destination").max_length
REJECTION_REASON_MAX_LENGTH = WithdrawalRequest._meta.get_field("rejection_reason").max_length
FAILURE_REASON_MAX_LENGTH = WithdrawalRequest._meta.get_field("failure_reason").max_length


def _account_lock(account_id: int) -> Account:
    """Lock one account row (FOR UPDATE of the account only, not of its owner)."""
    return (
        Account.objects.select_related("owner").select_for_update(of=("self",)).get(pk=account_id)
    )


def _hold_change(account: Account, delta: Decimal) -> None:
    """Hold (+) or release (−) cash for pending withdrawals on the locked `account`;
    the margin engine re-reads the account after commit."""
    row_add(account, withdrawals_held=delta)
    account_id = account.pk
    transaction.on_commit(lambda: accounts_changed_mark(account_ids=[account_id]), robust=True)


def _pending_check(withdrawal: WithdrawalRequest) -> None:
    if withdrawal.status != WithdrawalRequest.Status.PENDING:
        raise Conflict(
            f"Withdrawal {withdrawal.public_id} is already {withdrawal.status}.",
            code=ErrorCode.WITHDRAWAL_NOT_PENDING,
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
    precision, at most WITHDRAWAL_MAX, and never borrow: at most the cash not
    already held by other pending requests (`accounts.hooks.withdrawal_check`: the
    margin check trading registers, `margin_check_withdrawal`). The amount is
    then held (`Account.withdrawals_held`): no trade can spend it. No money
    moves until approval. Each call makes a new request.

    Raises InvalidParams (amount, destination), Forbidden (not the owner,
    `custodial_required`, `kyb_required`), AccountNotActive or InsufficientFunds.
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
        withdrawal_check(account=account, amount=amount)
        withdrawal = WithdrawalRequest.objects.create(
            account=account, amount=amount, destination=destination
        )
        _hold_change(account, amount)
        withdrawal_notify(withdrawal=withdrawal, event="requested")
        desk_changed(reason="withdrawal")
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
    account may still move money, and that the ledger's cash still covers the
    amount (trading could not spend the held cash, but a chargeback or a
    margin loan taken meanwhile could leave it short: the request then stays
    pending; requests approved first are paid first). The hold becomes ONE
    journal (−amount customer cash, +amount house payment clearing;
    idempotency key `withdrawal:<public_id>`) and is released (the margin
    figures do not move), the request is marked approved with reviewer and
    time, and the audit log written. After commit the payout is
    sent to the provider by `accounts.withdrawal_payout`, an outbox item
    written in the same transaction (re-sent until the payout is made, so a
    lost message or a dead worker delays it, never strands the debited
    money). Returns the updated row.

    Raises Forbidden (not staff, own withdrawal, `custodial_required`,
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
        available = max(ZERO, account.cash_balance)  # a payout never borrows
        if locked.amount > available:
            raise InsufficientFunds(
                f"Cannot withdraw {fmt.usdc_exact(locked.amount)} from {account.public_id}: "
                f"{fmt.usdc(available, rounding=ROUND_FLOOR)} is available to withdraw."
            )
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
        _hold_change(account, -locked.amount)
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
        withdrawal_notify(withdrawal=locked, event="approved")
        desk_changed(reason="withdrawal")
        withdrawal_payout_enqueue(withdrawal_id=locked.pk)
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

    Staff only. Locks the Account row, then the WithdrawalRequest row
    (select_for_update), re-checks it is pending and releases its hold; no
    money moves. Returns the updated row.

    Raises Forbidden (not staff), InvalidParams (no reason) or Conflict
    `withdrawal_not_pending`.
    """
    _staff_check(actor)
    reason = reason.strip()
    if not reason:
        raise InvalidParams("Give the customer a reason for the rejection.")
    with transaction.atomic():
        account = _account_lock(withdrawal.account_id)
        locked = WithdrawalRequest.objects.select_for_update().get(pk=withdrawal.pk)
        _pending_check(locked)
        _hold_change(account, -locked.amount)
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
        withdrawal_notify(withdrawal=locked, event="rejected")
        desk_changed(reason="withdrawal")
    return locked


def withdrawal_cancel(*, withdrawal: WithdrawalRequest, user: User) -> WithdrawalRequest:
    """The account's owner withdraws their own pending request.

    Locks the Account row, then the WithdrawalRequest row (select_for_update),
    re-checks it is pending and releases its hold; no money moves. Returns
    the updated row.

    Raises Forbidden (not the owner) or Conflict `withdrawal_not_pending`.
    """
    with transaction.atomic():
        account = _account_lock(withdrawal.account_id)
        locked = WithdrawalRequest.objects.select_for_update().get(pk=withdrawal.pk)
        if account.owner_id != user.pk:
            raise Forbidden("Only the account's owner can cancel its withdrawal.")
        _pending_check(locked)
        _hold_change(account, -locked.amount)
        locked.status = WithdrawalRequest.Status.CANCELLED
        locked.save(update_fields=["status"])
        desk_changed(reason="withdrawal")
    return locked


def withdrawal_payout_send(*, withdrawal_id: int) -> WithdrawalRequest:
    """Pay an approved withdrawal out through the provider, once.

    Does nothing unless the request is approved (final: nothing moves it back)
    and has no payout reference yet, so running it twice is safe. The provider
    is called outside any transaction or lock: its payout is idempotent on the
    withdrawal's public id, so two concurrent runs (or a run after a crash
    between its answer and the commit) get the same payout, never a second one.
    The reference is then recorded under the request's row lock, by the first run
    to get there; that run notifies the owner. A payout the provider refuses for
    good (PayoutRefused) fails the withdrawal (`_payout_failed`); any other error
    leaves it approved for the outbox to send again.
    """
    withdrawal = WithdrawalRequest.objects.get(pk=withdrawal_id)
    if withdrawal.status != WithdrawalRequest.Status.APPROVED or withdrawal.provider_reference:
        return withdrawal
    try:
        reference = payment_provider().payout_create(withdrawal=withdrawal)
    except PayoutRefused as exc:
        return _payout_failed(withdrawal_id=withdrawal_id, reason=exc.reason)
    with transaction.atomic():
        locked = WithdrawalRequest.objects.select_for_update().get(pk=withdrawal_id)
        if locked.provider_reference:
            return locked
        locked.provider_reference = reference
        locked.save(update_fields=["provider_reference"])
    # Its own transaction, after the request's lock is released: the notification's row
    # refers to the account, and the lock order is the account first (module docstring).
    with transaction.atomic():
        withdrawal_notify(withdrawal=locked, event="paid")
    logger.info(
        "Withdrawal %s paid out (reference %s).", locked.public_id, locked.provider_reference
    )
    return locked


def _payout_failed(*, withdrawal_id: int, reason: str) -> WithdrawalRequest:
    """Return a withdrawal the provider refused to pay out to the customer's cash.

    In one transaction, the account row locked, then the request's: only an
    approved request without a payout reference fails (a second run, or a
    run after another recorded a payout, changes nothing). ONE reversing
    journal (+amount customer cash, −amount house payment clearing;
    idempotency key `withdrawal-failed:<public_id>`), the request `failed`
    with the provider's reason, the audit log, the owner's notification
    (in-app and email) and the ops desk's refresh.
    """
    with transaction.atomic():
        account_id = WithdrawalRequest.objects.values_list("account_id", flat=True).get(
            pk=withdrawal_id
        )
        account = _account_lock(account_id)
        locked = WithdrawalRequest.objects.select_for_update().get(pk=withdrawal_id)
        if locked.status != WithdrawalRequest.Status.APPROVED or locked.provider_reference:
            return locked
        locked.reversal_journal = journal_post(
            kind=Journal.Kind.WITHDRAWAL,
            account=account,
            memo=f"Withdrawal {locked.public_id} returned: the payout failed ({reason})"[:255],
            idempotency_key=f"withdrawal-failed:{locked.public_id}",
            lines=[
                Line(cash_ledger_account(account), locked.amount),
                Line(house_ledger_account(HouseAccount.PAYMENT_CLEARING), -locked.amount),
            ],
        )
        locked.status = WithdrawalRequest.Status.FAILED
        locked.failure_reason = reason[:FAILURE_REASON_MAX_LENGTH]
        locked.save(update_fields=["status", "failure_reason", "reversal_journal"])
        audit_record(
            actor=None,
            action="withdrawal_payout_failed",
            obj=locked,
            changes={
                "status": [WithdrawalRequest.Status.APPROVED, locked.status],
                "failure_reason": ["", locked.failure_reason],
            },
        )
        withdrawal_notify(withdrawal=locked, event="failed")
        desk_changed(reason="withdrawal")
    logger.error(
        "Withdrawal %s of %s USDC from %s: the provider refused the payout (%s); the "
        "amount is back in the account's cash.",
        locked.public_id,
        locked.amount,
        account.public_id,
        reason,
    )
    return locked
