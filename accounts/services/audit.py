"""Writing the audit log of staff actions."""

from typing import Any

from django.db import models
from django.http import HttpRequest

from accounts.models import AuditLog, User
from portal.net import client_ip

# Never copied into the audit log, whatever model they sit on.
SENSITIVE_FIELD_NAMES = frozenset(
    {"password", "secret", "key_hash", "encrypted", "private_key", "passphrase", "token"}
)


def _is_sensitive(field_name: str) -> bool:
    return any(part in field_name for part in SENSITIVE_FIELD_NAMES)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


def audit_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    """{field: [old, new]} for the fields that changed, secrets masked."""
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if _is_sensitive(name):
            changes[name] = ["***", "***"]
        else:
            changes[name] = [_jsonable(old), _jsonable(new)]
    return changes


def _request_ip(request: HttpRequest | None) -> str | None:
    """The client address recorded for a staff action (portal.net.client_ip)."""
    if request is None:
        return None
    return client_ip(request) or None


def audit_record(
    *,
    actor: User | None,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    changes: dict | None = None,
    request: HttpRequest | None = None,
) -> AuditLog:
    """Append one audit entry. Call inside the transaction that made the change."""
    if obj is not None:
        object_type = object_type or obj._meta.label
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    return AuditLog.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_email=getattr(actor, "email", "") or "",
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:255],
        changes=changes or {},
        ip_address=_request_ip(request),
    )
