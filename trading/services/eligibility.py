"""Margin eligibility: who may borrow.

Borrowing (cash below zero) needs `Account.margin_enabled`. It follows the
rule: custodial accounts only; on automatically once lifetime traded volume
reaches the policy's threshold ($1M by default); ops can grant it earlier or
revoke it (`margin_override`), and their choice wins over the volume rule.
"""

from django.db import transaction
from django.http import HttpRequest

from accounts.models import Account, User
from accounts.services.audit import audit_record
from portal.errors import Forbidden, InvalidParams
from trading.models import RiskPolicy
from trading.selectors import risk_policy_get

MARGIN_FIELDS = ("margin_override", "margin_enabled")


def margin_eligible(account: Account, policy: RiskPolicy) -> bool:
    """What `margin_enabled` should be for `account` under `policy`."""
    if account.kind != Account.Kind.CUSTODIAL:
        return False
    if account.margin_override == Account.MarginOverride.GRANTED:
        return True
    if account.margin_override == Account.MarginOverride.REVOKED:
        return False
    return account.lifetime_volume >= policy.margin_volume_threshold


def _margin_enabled_apply(account: Account) -> tuple[bool, bool]:
    """Set `margin_enabled` by the rule; return (before, after)."""
    before = account.margin_enabled
    after = margin_eligible(account, risk_policy_get())
    if after != before:
        account.margin_enabled = after
        account.save(update_fields=["margin_enabled"])
    return before, after


def account_margin_eligibility_refresh(*, account: Account) -> bool:
    """Bring `margin_enabled` in line with the rule; return its value.

    Call with `account` locked and freshly read (its lifetime volume and
    override) inside the transaction that changed them. An automatic change
    is written to the audit log with no actor.
    """
    before, after = _margin_enabled_apply(account)
    if after != before:
        audit_record(
            actor=None,
            action="margin_auto_enabled" if after else "margin_auto_disabled",
            obj=account,
            changes={"margin_enabled": [before, after]},
        )
    return after


def account_margin_override_set(
    *,
    account: Account,
    override: Account.MarginOverride,
    actor: User,
    reason: str = "",
    request: HttpRequest | None = None,
) -> Account:
    """Ops grant or revoke margin, or hand it back to the volume rule; audited (with
    the reason, if any: the ops account page asks for one).

    Locks the account row. Revoking margin does not repay a loan: an account
    already borrowing keeps its Used Margin and can only reduce risk.
    Raises Forbidden (not staff) or InvalidParams (granting a non-custodial
    account).
    """
    if not actor.is_staff:
        raise Forbidden("Only ops staff can change margin eligibility.")
    if override not in Account.MarginOverride.values:
        raise InvalidParams(f"Unknown margin override {override!r}.")
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        if override == Account.MarginOverride.GRANTED and locked.kind != Account.Kind.CUSTODIAL:
            raise InvalidParams("Only custodial accounts can borrow on margin.")
        before = {
            "margin_override": locked.margin_override,
            "margin_enabled": locked.margin_enabled,
        }
        locked.margin_override = override
        locked.save(update_fields=["margin_override"])
        _margin_enabled_apply(locked)
        after = {name: getattr(locked, name) for name in MARGIN_FIELDS}
        changes: dict = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
        if reason:
            changes["reason"] = reason
        audit_record(
            actor=actor,
            action=f"margin_override_{override or 'automatic'}",
            obj=locked,
            changes=changes,
            request=request,
        )
    return locked
