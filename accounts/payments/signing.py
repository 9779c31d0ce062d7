"""Webhook signatures, as Stripe signs its webhooks.

Header: `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>`.
The timestamp is inside the signed message, so an old delivery cannot be
replayed with a fresh time; several `v1=` entries may be present while a
secret is being rotated, and any one matching is enough.
"""

import hashlib
import hmac
import logging
import time

from django.core.exceptions import ImproperlyConfigured

from portal.errors import ErrorCode, InvalidParams

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"
SIGNATURE_SCHEME = "v1"
TIMESTAMP_MAX_DIGITS = 12  # unix seconds until the year 33658


def _require_secret(secret: str) -> bytes:
    # An empty key would make every signature forgeable.
    if not secret:
        raise ImproperlyConfigured("PAYMENT_WEBHOOK_SECRET is not set.")
    return secret.encode()


def _digest(body: bytes, *, secret: str, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(_require_secret(secret), message, hashlib.sha256).hexdigest()


def webhook_sign(body: bytes, *, secret: str, timestamp: int) -> str:
    """The `X-Signature` header value for `body` sent at `timestamp`."""
    return f"t={timestamp},{SIGNATURE_SCHEME}={_digest(body, secret=secret, timestamp=timestamp)}"


def _invalid(message: str) -> InvalidParams:
    return InvalidParams(message, code=ErrorCode.INVALID_SIGNATURE)


def webhook_verify(
    body: bytes, *, signature_header: str, secret: str, tolerance_seconds: int
) -> None:
    """Check a signature header against the raw body.

    Raises InvalidParams with code `invalid_signature` when the header is
    missing or malformed, no signature matches (compared in constant time),
    the timestamp is further than `tolerance_seconds` from now (either way),
    or no secret is configured.
    """
    timestamp: int | None = None
    signatures: list[str] = []
    for item in signature_header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise _invalid("The signature header is malformed.")
        if key == "t":
            if not (value.isascii() and value.isdigit() and len(value) <= TIMESTAMP_MAX_DIGITS):
                raise _invalid("The signature header is malformed.")
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise _invalid("The signature header is malformed.")
    if abs(int(time.time()) - timestamp) > tolerance_seconds:
        raise _invalid("The signature timestamp is outside the tolerance window.")
    try:
        expected = _digest(body, secret=secret, timestamp=timestamp)
    except ImproperlyConfigured as exc:
        logger.error("Refusing a payment webhook: PAYMENT_WEBHOOK_SECRET is not set.")
        raise _invalid("Webhook signatures cannot be verified: no secret is configured.") from exc
    if not any(hmac.compare_digest(expected.encode(), sig.encode()) for sig in signatures):
        raise _invalid("The signature does not match the payload.")
