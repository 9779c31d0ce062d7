"""What the audit log's codes mean, in words: "api_key_issued" → "API key issued",
"accounts.ApiKey" → "API key". Used by the audit log's admin list and filters and by
the ops pages that show audit trails; a code not listed here is humanised
("margin_auto_enabled" → "Margin auto enabled"), never shown raw."""

from django.apps import apps
from django.utils.text import capfirst

ACTION_LABELS: dict[str, str] = {
    "add": "Added",
    "change": "Changed",
    "delete": "Deleted",
    "login": "Signed in to the admin",
    "password_change": "Password changed",
    "two_factor_enabled": "Two-factor sign-in turned on",
    "two_factor_disabled": "Two-factor sign-in turned off",
    "api_key_issued": "API key issued",
    "api_key_revoked": "API key revoked",
    "kyb_approved": "KYB approved",
    "kyb_rejected": "KYB rejected",
    "kyb_pending": "KYB set back to pending",
    "account_freeze": "Trading frozen",
    "account_unfreeze": "Trading unfrozen",
    "account_frozen": "Account frozen",
    "account_unfrozen": "Account unfrozen",
    "margin_override_granted": "Margin granted",
    "margin_override_revoked": "Margin revoked",
    "margin_override_automatic": "Margin set to automatic",
    "margin_auto_enabled": "Margin turned on by volume",
    "margin_auto_disabled": "Margin turned off by volume",
    "withdrawal_approved": "Withdrawal approved",
    "withdrawal_rejected": "Withdrawal rejected",
    "linked_credential_link": "Exchange account linked",
    "linked_credential_rotate": "Exchange credential rotated",
    "linked_credential_unlink": "Exchange account unlinked",
    "instrument.resolve": "Market resolved",
    "order_reservation_corrected": "Order reservation corrected",
    "haircut_addon_set": "Haircut add-on set",
    "risk_policy_changed": "Risk policy changed",
    "approval_proposed": "Change proposed",
    "approval_approved": "Change approved",
    "approval_rejected": "Change rejected",
    "approval_withdrawn": "Proposal withdrawn",
    "approval_applied": "Change applied",
    "approval_failed": "Change could not be applied",
}

OBJECT_TYPE_LABELS: dict[str, str] = {
    "accounts.ApiKey": "API key",
    "accounts.User": "User",
    "otp_totp.TOTPDevice": "Authenticator app",
    "otp_static.StaticDevice": "Backup codes",
    "axes.AccessAttempt": "Sign-in attempt",
}


def _humanised(code: str) -> str:
    text = code.replace("_", " ").replace(".", " ").strip()
    return capfirst(text) if text else "—"


def action_label(code: str) -> str:
    """A person's words for an audit action code."""
    if code in ACTION_LABELS:
        return ACTION_LABELS[code]
    if code.startswith("action:"):  # an admin list action (accounts.admin_site)
        return f"Admin action: {_humanised(code.removeprefix('action:')).lower()}"
    return _humanised(code)


def object_type_label(label: str) -> str:
    """A person's name for a model label ("accounts.ApiKey" → "API key")."""
    if label in OBJECT_TYPE_LABELS:
        return OBJECT_TYPE_LABELS[label]
    if not label:
        return "—"
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return _humanised(label.rpartition(".")[2])
    return capfirst(str(model._meta.verbose_name))
