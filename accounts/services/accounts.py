"""Users' KYB and their accounts: opening, status and margin eligibility."""

from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone

from accounts.hooks import desk_changed
from accounts.models import Account, User
from accounts.models.users import MAX_ACCOUNTS_PER_USER
from accounts.services.audit import audit_record
from accounts.services.ledger import cash_ledger_account
from portal.errors import AccountNotActive, ErrorCode, Forbidden, InvalidParams


def account_open(*, owner: User, kind: Account.Kind, name: str = "") -> Account:
    """Open the owner's next account (index 0 first, then sub-accounts 1–9).

    Locks the owner's user row so two concurrent opens cannot pick the same
    index; creates the account's cash ledger account in the same transaction.
    """
    with transaction.atomic():
        User.objects.select_for_update().get(pk=owner.pk)
        last = Account.objects.filter(owner=owner).aggregate(last=Max("index"))["last"]
        index = 0 if last is None else last + 1
        if index >= MAX_ACCOUNTS_PER_USER:
            raise InvalidParams(f"A user can hold at most {MAX_ACCOUNTS_PER_USER} accounts.")
        account = Account.objects.create(owner=owner, index=index, kind=kind, name=name)
        cash_ledger_account(account)
    return account


def user_kyb_set(
    *,
    user: User,
    status: User.KybStatus,
    actor: User,
    note: str = "",
    request: HttpRequest | None = None,
) -> User:
    """Record an ops decision on a user's KYB, audited with the actor."""
    if not actor.is_staff:
        raise Forbidden("Only ops staff can review KYB.")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        before = locked.kyb_status
        locked.kyb_status = status
        locked.kyb_reviewed_at = timezone.now()
        locked.kyb_reviewed_by = actor
        if note:
            locked.kyb_note = note
        locked.save(update_fields=["kyb_status", "kyb_reviewed_at", "kyb_reviewed_by", "kyb_note"])
        audit_record(
            actor=actor,
            action=f"kyb_{status}",
            obj=locked,
            changes={"kyb_status": [before, status], **({"kyb_note": note} if note else {})},
            request=request,
        )
        desk_changed(reason="kyb")
    return locked


def account_check_can_transact(account: Account) -> None:
    """Raise unless the account may move money: active, owner KYB-approved."""
    if account.status != Account.Status.ACTIVE:
        raise AccountNotActive(f"Account {account.public_id} is {account.status}.")
    if not account.owner.is_kyb_approved:
        raise Forbidden(
            "KYB approval is required before moving money.", code=ErrorCode.KYB_REQUIRED
        )


def account_check_can_order(account: Account, *, ops_close: bool = False) -> None:
    """The checks every order passes on the locked account row: custodial, active, KYB.

    `ops_close`: a close ops decided (a four-eyes force-close) only lowers risk, so a
    frozen account or an owner whose KYB lapsed does not stop it; a closed one does."""
    if not account.is_custodial:
        raise Forbidden(
            f"Account {account.public_id} is non-custodial: trade on your own venue accounts; "
            "the broker places orders for custodial accounts only.",
            code=ErrorCode.CUSTODIAL_REQUIRED,
        )
    if ops_close and account.status != Account.Status.CLOSED:
        return
    account_check_can_transact(account)


ACCOUNT_FREEZE_ACTIONS = {True: "account_freeze", False: "account_unfreeze"}


def account_freeze_set(
    *,
    account: Account,
    frozen: bool,
    actor: User,
    reason: str = "",
    request: HttpRequest | None = None,
) -> bool:
    """Freeze an account (no orders, no money movements: `account_check_can_transact`
    refuses it) or unfreeze it, under its row lock (as money movements take it);
    audited with the reason, if any. The admin's Freeze / Unfreeze actions and the
    ops account page both come here.

    Returns False when the account already was so (nothing written). Raises
    Forbidden (not staff), InvalidParams (a closed account).
    """
    if not (actor.is_active and actor.is_staff):
        raise Forbidden("Only ops staff can freeze or unfreeze an account.")
    status = Account.Status.FROZEN if frozen else Account.Status.ACTIVE
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        if locked.status == Account.Status.CLOSED:
            raise InvalidParams("The account is closed.")
        before = locked.status
        if before == status:
            return False
        locked.status = status
        locked.save(update_fields=["status"])
        changes: dict = {"status": [before, status]}
        if reason:
            changes["reason"] = reason
        audit_record(
            actor=actor,
            action=ACCOUNT_FREEZE_ACTIONS[frozen],
            obj=locked,
            changes=changes,
            request=request,
        )
    account.status = status
    return True
