"""Partner API keys: issue (ops, after KYB), authenticate, revoke.

The full key `lev_<env>_<secret>` exists only in `api_key_issue`'s return
value: it is shown to ops once and never stored; the database keeps its
SHA-256 (the secret is 40 random base-62 characters, so a fast hash is
enough) and a visible prefix.
"""

import hashlib
import ipaddress
import secrets
import string
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Account, ApiKey, User
from accounts.services.audit import audit_record
from portal.db import pk_get
from portal.errors import Forbidden, InvalidParams, NotFound
from portal.redis import redis_client, redis_key
from portal.refdata import refdata_get

SECRET_LENGTH = 40
PREFIX_SECRET_CHARS = 8
ALPHABET = string.ascii_letters + string.digits
# last_used_at is written at most this often per key (not on every request).
LAST_USED_RESOLUTION = timedelta(seconds=60)
# When this process last asked Redis whether to write last_used_at, by (key pk, prefix):
# it asks at most once a LAST_USED_RESOLUTION per key, not on every request.
_touch_asked: dict[tuple[int, str], float] = {}


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    key: str  # the full key: shown once, never stored


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _networks_clean(networks: Iterable[str]) -> list[str]:
    cleaned = []
    for network in networks:
        try:
            cleaned.append(str(ipaddress.ip_network(str(network).strip(), strict=False)))
        except ValueError as exc:
            raise InvalidParams(f"{network!r} is not an IP address or network.") from exc
    return cleaned


def _public_key_clean(value: str) -> str:
    value = value.strip().lower()
    if not value:
        return ""
    if len(value) != 64 or any(c not in string.hexdigits for c in value):
        raise InvalidParams("The signing public key is 64 hex characters (Ed25519).")
    return value


def api_key_issue(
    *,
    owner: User,
    accounts: Sequence[Account],
    scopes: Iterable[str],
    name: str,
    actor: User,
    environment: str = ApiKey.Environment.LIVE,
    ip_allowlist: Iterable[str] = (),
    signing_public_key: str = "",
    request: HttpRequest | None = None,
) -> IssuedKey:
    """Issue a key for `owner`'s `accounts`; return it with the full key (shown once).

    Only staff may issue; the owner's KYB must be approved; every account must
    be the owner's. Audited. Raises Forbidden or InvalidParams.
    """
    if not actor.is_staff:
        raise Forbidden("Only ops staff can issue API keys.")
    if not owner.is_kyb_approved:
        raise Forbidden(f"{owner.email} has not passed KYB: no API key can be issued.")
    if not accounts:
        raise InvalidParams("An API key is bound to at least one account.")
    if any(account.owner_id != owner.pk for account in accounts):
        raise InvalidParams("An API key may only be bound to its owner's accounts.")
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if not scopes or unknown:
        raise InvalidParams(
            f"Scopes must be some of {', '.join(ApiKey.Scope.values)}"
            + (f"; unknown: {', '.join(sorted(unknown))}." if unknown else ".")
        )
    if environment not in ApiKey.Environment.values:
        raise InvalidParams(f"Unknown environment {environment!r}.")
    secret = "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH))
    key = f"lev_{environment}_{secret}"
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            name=name.strip()[:100] or "API key",
            environment=environment,
            prefix=f"lev_{environment}_{secret[:PREFIX_SECRET_CHARS]}",
            key_hash=api_key_hash(key),
            owner=owner,
            scopes=scopes,
            ip_allowlist=_networks_clean(ip_allowlist),
            signing_public_key=_public_key_clean(signing_public_key),
            created_by=actor,
        )
        api_key.accounts.set(accounts)
        audit_record(
            actor=actor,
            action="api_key_issued",
            obj=api_key,
            changes={
                "owner": owner.email,
                "accounts": [account.public_id for account in accounts],
                "scopes": scopes,
            },
            request=request,
        )
    return IssuedKey(api_key=api_key, key=key)


def api_key_revoke(
    *, api_key: ApiKey, actor: User, reason: str = "", request: HttpRequest | None = None
) -> ApiKey:
    """Revoke a key at once (every process stops accepting it); audited with the
    reason ops gave (the admin's revoke page requires one). Idempotent."""
    if not actor.is_staff:
        raise Forbidden("Only ops staff can revoke API keys.")
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if locked.revoked_at is None:
            locked.revoked_at = timezone.now()
            locked.save(update_fields=["revoked_at"])
            audit_record(
                actor=actor,
                action="api_key_revoked",
                obj=locked,
                changes={"reason": reason.strip()} if reason.strip() else None,
                request=request,
            )
    return locked


@dataclass(frozen=True)
class KeyIdentity:
    """What a request authenticated with a key may do (cached per process)."""

    pk: int
    prefix: str
    owner: User
    scopes: frozenset[str]
    account_ids: tuple[int, ...]  # primary keys, in binding order
    account_public_ids: tuple[str, ...]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    signing_public_key: str
    revoked: bool

    def allows_address(self, address: str) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def account_get(self, public_id: str | None) -> Account:
        """The account a request with this key acts on (`portal.api.views.ApiView`):
        `public_id`, which must be one of the key's; optional (None) when the key has
        one account.

        Raises InvalidParams (missing with several accounts) or NotFound (not the key's:
        another customer's account is indistinguishable from one that does not exist).
        """
        if public_id is None:
            if len(self.account_ids) != 1:
                raise InvalidParams(
                    "account_id is required: this key is bound to "
                    f"{len(self.account_ids)} accounts "
                    f"({', '.join(self.account_public_ids)})."
                )
            pk = self.account_ids[0]
        else:
            if not isinstance(public_id, str) or public_id not in self.account_public_ids:
                raise NotFound(f"No account {public_id!r} for this key.")
            pk = self.account_ids[self.account_public_ids.index(public_id)]
        return pk_get(Account, pk)  # every API request: one fixed statement


def _identity_load(key_hash: str) -> KeyIdentity | None:
    api_key = (
        ApiKey.objects.select_related("owner")
        .prefetch_related("accounts")
        .filter(key_hash=key_hash)
        .first()
    )
    if api_key is None:
        return None
    accounts = sorted(api_key.accounts.all(), key=lambda account: (account.owner_id, account.index))
    return KeyIdentity(
        pk=api_key.pk,
        prefix=api_key.prefix,
        owner=api_key.owner,
        scopes=frozenset(api_key.scopes),
        account_ids=tuple(account.pk for account in accounts),
        account_public_ids=tuple(account.public_id for account in accounts),
        networks=tuple(ipaddress.ip_network(n, strict=False) for n in api_key.ip_allowlist),
        signing_public_key=api_key.signing_public_key,
        revoked=api_key.revoked_at is not None,
    )


def api_key_identify(key: str) -> KeyIdentity | None:
    """The identity of an active key, or None (unknown, malformed or revoked).

    Cached per process through `portal.refdata`: issuing, revoking or
    editing a key drops every process's copy (ApiKey is tracked).
    """
    if not key.startswith(("lev_live_", "lev_test_")) or len(key) > 64:
        return None
    return api_key_identity_get(api_key_hash(key))


def api_key_identity_get(key_hash: str) -> KeyIdentity | None:
    """`api_key_identify` by the key's hash: what a long-lived connection keeps
    instead of the key, to re-check it (revoked: None) on every command."""
    identity = refdata_get("api_key", key_hash, lambda: _identity_load(key_hash))
    if identity is None or identity.revoked:
        return None
    return identity


def api_key_touch(*, identity: KeyIdentity, address: str) -> None:
    """Record the key's last use (at most once a minute per key; a Redis flag shared by
    every process decides, and each process asks it at most once a minute per key)."""
    seconds = LAST_USED_RESOLUTION.total_seconds()
    now = time.monotonic()
    asked = (identity.pk, identity.prefix)
    if now - _touch_asked.get(asked, -seconds) < seconds:
        return
    _touch_asked[asked] = now
    flag = redis_key("api_key", "touched", str(identity.pk))
    if redis_client().set(flag, 1, nx=True, ex=int(seconds)):
        ApiKey.objects.filter(pk=identity.pk).update(
            last_used_at=timezone.now(), last_used_ip=address or None
        )
