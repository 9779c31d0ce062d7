"""The payment-provider interface: start payments, send payouts, read webhooks.

A provider is the card/bank processor behind deposits and withdrawals. The
services in `accounts.services.deposits` / `.withdrawals` own every state
change and ledger write; a provider only talks to the processor and turns
its webhook deliveries into `PaymentEvent`s.
"""

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar

from django.conf import settings

from accounts.models import Deposit, PaymentWebhookEvent, WithdrawalRequest
from accounts.payments.signing import webhook_verify
from portal.errors import InvalidParams

SETTLEMENT_CURRENCY = "USDC"
EVENT_ID_MAX_LENGTH = PaymentWebhookEvent._meta.get_field("event_id").max_length
EVENT_TYPE_MAX_LENGTH = PaymentWebhookEvent._meta.get_field("event_type").max_length
REFERENCE_MAX_LENGTH = Deposit._meta.get_field("provider_reference").max_length


class PaymentEventType(StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"


PAYMENT_EVENT_TYPES = frozenset(PaymentEventType)

# Decline codes processors send (Stripe's names, which most follow), as the sentence the
# customer reads on the deposit (`portal.format.sentence`; an unknown code is dropped and
# the provider's own words kept).
PAYMENT_FAILURES = {
    "card_declined": "The card issuer declined the payment.",
    "do_not_honor": "The card issuer declined the payment.",
    "generic_decline": "The card issuer declined the payment.",
    "insufficient_funds": "The card does not have enough funds for this payment.",
    "expired_card": "The card has expired.",
    "incorrect_cvc": "The card's security code is not right.",
    "incorrect_number": "The card number is not right.",
    "lost_card": "The card issuer declined the payment.",
    "stolen_card": "The card issuer declined the payment.",
    "fraudulent": "The card issuer declined the payment.",
    "authentication_required": "The card issuer asked for authentication the payment did not get.",
    "processing_error": "The payment could not be processed. Please try again.",
    "currency_not_supported": "The card does not support payments in this currency.",
}


@dataclass(frozen=True)
class PaymentEvent:
    """One verified webhook event, in the provider-neutral shape.

    `reference`, `amount` and `currency` are set for payment events; an event
    of another type keeps only its id, type and payload.
    """

    id: str
    type: str
    payload: dict[str, Any]
    reference: str = ""
    amount: Decimal | None = None
    currency: str = ""
    failure_reason: str = ""


def _malformed(message: str) -> InvalidParams:
    return InvalidParams(f"Malformed webhook event: {message}")


def _text(container: dict, name: str, *, max_length: int) -> str:
    value = container.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise _malformed(f"`{name}` must be a non-empty string of at most {max_length} characters.")
    return value


def payment_event_parse(body: bytes) -> PaymentEvent:
    """Parse the JSON event body; raise InvalidParams if it is not a valid event.

    Shape: {"id": "evt_…", "type": "payment.succeeded", "data": {"reference": …,
    "amount": "100.000000", "currency": "USDC", "failure_reason": … | null}}.
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _malformed("the body is not JSON.") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise _malformed("expected an object with a `data` object.")
    event_id = _text(payload, "id", max_length=EVENT_ID_MAX_LENGTH)
    event_type = _text(payload, "type", max_length=EVENT_TYPE_MAX_LENGTH)
    if event_type not in PAYMENT_EVENT_TYPES:
        return PaymentEvent(id=event_id, type=event_type, payload=payload)
    data = payload["data"]
    reference = _text(data, "reference", max_length=REFERENCE_MAX_LENGTH)
    try:
        amount = Decimal(_text(data, "amount", max_length=40))
    except InvalidOperation as exc:
        raise _malformed("`amount` is not a decimal number.") from exc
    if not amount.is_finite():
        raise _malformed("`amount` is not a decimal number.")
    failure_reason = data.get("failure_reason") or ""
    if not isinstance(failure_reason, str):
        raise _malformed("`failure_reason` must be a string or null.")
    return PaymentEvent(
        id=event_id,
        type=event_type,
        payload=payload,
        reference=reference,
        amount=amount,
        currency=_text(data, "currency", max_length=10),
        failure_reason=failure_reason,
    )


class PayoutRefused(Exception):
    """The provider refused a payout for good (a closed or invalid destination, a
    compliance block): nothing was sent, and sending it again will not change that.
    Any other error is transient: the payout is sent again later."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class PaymentProvider(ABC):
    """A card / bank-transfer processor.

    Implementations are stateless and built per use by `payment_provider()`.
    """

    code: ClassVar[str]
    """The provider's slug: stored on deposits and used in the webhook URL."""

    @abstractmethod
    def payment_start(self, *, deposit: Deposit, card_number: str = "") -> str:
        """Ask the processor to collect `deposit`; return its payment reference.

        Runs inside the transaction that creates the pending deposit, which may
        still roll back, so it must not wait on the network: whatever has to
        leave the process (a processor call carrying `deposit.public_id` as its
        idempotency key, the simulated provider's webhook) is recorded as an
        outbox item (`accounts.enqueue`) in that
        transaction and sent after commit, re-sent until it has been done.
        The outcome arrives later as a webhook. `card_number` (card deposits
        only) is never stored or logged.
        """

    @abstractmethod
    def payout_create(self, *, withdrawal: WithdrawalRequest) -> str:
        """Send an approved withdrawal's money out; return the payout reference.

        Must be idempotent on `withdrawal.public_id`: a retried call returns
        the same payout, never a second one. Raises PayoutRefused when the
        provider refuses it for good.
        """

    def webhook_event_parse(self, *, body: bytes, signature_header: str) -> PaymentEvent:
        """Verify a webhook delivery's signature, then parse its event.

        Raises InvalidParams: code `invalid_signature` for a missing, forged or
        stale signature; `invalid_params` for a body that is not an event.
        """
        webhook_verify(
            body,
            signature_header=signature_header,
            secret=settings.PAYMENT_WEBHOOK_SECRET,
            tolerance_seconds=settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS,
        )
        return payment_event_parse(body)
