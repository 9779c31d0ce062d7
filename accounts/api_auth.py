"""API key authentication (`Authorization: Bearer lev_live_…`), request signing, scopes:
settings.REST_FRAMEWORK's default authentication and permission, so every /v1 view
(`portal.api.views.ApiView`) uses them, and the key scheme of the OpenAPI document.

A key may be limited to IP networks, and may carry an Ed25519 public key: then
every write (POST, PUT, PATCH, DELETE) must be signed as in seed `004_…`'s
scheme: headers `X-Timestamp` (Unix time in nanoseconds, within ±30 s of the
server's clock) and `X-Signature` (hex Ed25519 signature of
`X-Timestamp + ACTION + canonicalJSON(body)`, ACTION being the final path
segment, canonicalJSON the body with keys sorted at every level and no
whitespace; an empty body signs as ""). A signature is accepted once.

Commands on the partner stream (`trading.streams`) run as in-process
requests carrying a `StreamCommand`: the same checks, with the command's
`timestamp` and `signature` fields signing `timestamp + COMMAND +
canonicalJSON(params)` (COMMAND: the command's type, e.g. `add_order`).
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.services.api_keys import (
    KeyIdentity,
    api_key_identify,
    api_key_identity_get,
    api_key_touch,
)
from portal.api.parsers import json_loads
from portal.api.throttles import key_failure_record, key_failures_wait, throttle_group_of
from portal.net import client_ip
from portal.redis import redis_client, redis_key

SIGNED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_DRIFT_NS = 30 * 10**9
MIN_NS_TIMESTAMP = 10**18  # a nanosecond epoch; millisecond or second epochs are refused
KEY_FAILURES_MESSAGE = (
    "Too many failed API key attempts from this address; try again after Retry-After seconds."
)


def canonical_json(body: bytes) -> str:
    """The body as signed: keys sorted at every level, no whitespace ("" for no body)."""
    if not body.strip():
        return ""
    json_loads(body)  # InvalidParams unless JSON within the API's depth limit
    # The stdlib's reading (exact integers) is what clients sign.
    parsed = json.loads(body)
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def signing_message(*, timestamp: str, path: str, body: bytes) -> bytes:
    action = path.rstrip("/").rsplit("/", 1)[-1]
    return f"{timestamp}{action}{canonical_json(body)}".encode()


@dataclass(frozen=True)
class StreamCommand:
    """How a command on the partner stream (`trading.streams`) authenticates the
    request it is run as: the socket's key (by hash, re-checked on every command),
    the socket's client address, and the command's own signature fields.

    Set as `stream_command` on requests built in-process, never from HTTP.
    """

    key_hash: str
    address: str
    command: str = ""
    params: bytes = b""  # the command's params as received (JSON)
    timestamp: str = ""
    signature: str = ""
    throttled: bool = True  # False: a read the server pushes (pulses, snapshots)


def _signature_verify(
    identity: KeyIdentity, *, timestamp: str, signature: str, message: Callable[[], bytes]
) -> None:
    """Check a write's X-Timestamp / X-Signature pair (`message()` is what was signed)."""
    if not timestamp or not signature:
        raise exceptions.AuthenticationFailed(
            "This key signs its requests: X-Timestamp and X-Signature are required."
        )
    if not timestamp.isdigit() or int(timestamp) < MIN_NS_TIMESTAMP:
        raise exceptions.AuthenticationFailed("X-Timestamp is Unix time in nanoseconds.")
    if abs(time.time_ns() - int(timestamp)) > MAX_DRIFT_NS:
        raise exceptions.AuthenticationFailed("X-Timestamp is more than 30 s from server time.")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(identity.signing_public_key)).verify(
            bytes.fromhex(signature), message()
        )
    except (InvalidSignature, ValueError) as exc:
        raise exceptions.AuthenticationFailed("The request signature is not valid.") from exc
    seen = redis_key("api", "signature", signature.lower())
    if not redis_client().set(seen, 1, nx=True, ex=2 * MAX_DRIFT_NS // 10**9 + 10):
        raise exceptions.AuthenticationFailed("This signed request was already received.")


@dataclass(frozen=True)
class ApiCaller:
    """request.user for API requests: the key's owner, with the key's identity."""

    identity: KeyIdentity

    @property
    def owner(self):
        return self.identity.owner

    is_authenticated = True
    is_staff = False


def _refused_if_waiting(wait: float) -> None:
    """Throttled (429) when the address must wait before authenticating again (its
    failed key authentications reached the limit: `key_failures_wait`,
    `key_failure_record`)."""
    if wait:
        raise exceptions.Throttled(wait=wait, detail=KEY_FAILURES_MESSAGE)


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiCaller, KeyIdentity] | None:
        stream: StreamCommand | None = getattr(request._request, "stream_command", None)
        if stream is not None:
            identity = api_key_identity_get(stream.key_hash)
            if identity is None:
                raise exceptions.AuthenticationFailed("This API key has been revoked.")
            address, timestamp, signature = stream.address, stream.timestamp, stream.signature

            def message() -> bytes:
                return f"{timestamp}{stream.command}{canonical_json(stream.params)}".encode()
        else:
            header = request.headers.get("Authorization", "")
            if not header:
                return None  # NotAuthenticated (401) from the permission check
            address = client_ip(request)
            scheme, _, key = header.partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                _refused_if_waiting(key_failures_wait(address))
                raise exceptions.AuthenticationFailed(
                    "Use the header Authorization: Bearer lev_live_…"
                )
            identity = api_key_identify(key.strip())  # in-process: no round trip
            if identity is None:
                _refused_if_waiting(key_failure_record(address))
                raise exceptions.AuthenticationFailed("API key missing or invalid.")
            timestamp = request.headers.get("X-Timestamp", "")
            signature = request.headers.get("X-Signature", "")
            # An address over its failure limit is refused whatever the key. When nothing
            # below can refuse the key (no IP allowlist refusal, no signature to check),
            # the same Redis call counts this use in the view's rate-limit window.
            signs = bool(identity.signing_public_key) and request.method in SIGNED_METHODS
            group = throttle_group_of((request.parser_context or {}).get("view"))
            if signs or not identity.allows_address(address):
                group = ""
            _refused_if_waiting(
                key_failures_wait(
                    address, request=request._request, group=group, key_pk=identity.pk
                )
            )

            def message() -> bytes:
                return signing_message(timestamp=timestamp, path=request.path, body=request.body)

        if not identity.allows_address(address):
            raise exceptions.PermissionDenied(f"This key may not be used from {address}.")
        if identity.signing_public_key and request.method in SIGNED_METHODS:
            _signature_verify(identity, timestamp=timestamp, signature=signature, message=message)
        api_key_touch(identity=identity, address=address)
        return ApiCaller(identity), identity

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ScopePermission(BasePermission):
    """The view's `required_scopes` must all be on the key."""

    def has_permission(self, request: Request, view) -> bool:
        identity = request.auth
        if not isinstance(identity, KeyIdentity):
            raise exceptions.NotAuthenticated("API key missing or invalid.")
        missing = [scope for scope in view.required_scopes if scope not in identity.scopes]
        if missing:
            raise exceptions.PermissionDenied(
                f"This key lacks the {', '.join(missing)} scope{'s' if len(missing) > 1 else ''}."
            )
        return True


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "lev_live_… / lev_test_…",
            "description": "A Prime API key issued by ops after KYB. Keys with a signing "
            "key must also sign writes: X-Timestamp (ns) and X-Signature (Ed25519, hex).",
        }
