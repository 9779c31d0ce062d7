"""The embedded payment provider: a card/bank processor's test mode, in-process.

It behaves like a real processor in test mode, so the product's own flow
(pending → confirmed / failed through a signed webhook) is the one exercised:

- card payments settle within a second, except card numbers ending in 0002,
  which the "issuer" declines;
- bank transfers settle after `settings.SIMULATED_BANK_TRANSFER_DELAY` seconds;
- each outcome is an event POSTed, signed with `PAYMENT_WEBHOOK_SECRET`, to our
  own webhook endpoint at `settings.SITE_URL` by a Celery task sent through the
  outbox, so it is re-sent with back-off until the endpoint has taken it;
- payouts are accepted at once.
"""

import hashlib
import json
import logging
import secrets
import time
from typing import ClassVar

import httpx
from django.conf import settings
from django.urls import reverse

from accounts.enqueue import simulated_payment_deliver_enqueue
from accounts.models import Deposit, WithdrawalRequest
from accounts.payments.base import (
    SETTLEMENT_CURRENCY,
    PaymentEventType,
    PaymentProvider,
    PayoutRefused,
)
from accounts.payments.signing import SIGNATURE_HEADER, webhook_sign
from portal.money import quantize_money

logger = logging.getLogger(__name__)

DECLINED_CARD_SUFFIX = "0002"
DECLINE_REASON = "card_declined: the card issuer declined the payment."
CARD_SETTLEMENT_DELAY_SECONDS = 1
WEBHOOK_TIMEOUT_SECONDS = 10.0


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class SimulatedPaymentProvider(PaymentProvider):
    code = "simulated"

    http_transport: ClassVar[httpx.BaseTransport | None] = None
    """Transport for webhook deliveries; None is the network (our own SITE_URL).
    Tests put an `httpx.MockTransport` here."""

    def payment_start(self, *, deposit: Deposit, card_number: str = "") -> str:
        """Accept the payment and schedule its outcome's webhook after commit."""
        reference = f"simpay_{secrets.token_hex(12)}"
        if deposit.method == Deposit.Method.CARD:
            succeed = not card_number.endswith(DECLINED_CARD_SUFFIX)
            delay = CARD_SETTLEMENT_DELAY_SECONDS
        else:
            succeed = True
            delay = settings.SIMULATED_BANK_TRANSFER_DELAY

        # The processor's own record that the outcome is owed: an outbox item in the
        # deposit's transaction, delivered (and re-delivered until our endpoint took
        # it) however the worker or Redis fare meanwhile.
        simulated_payment_deliver_enqueue(reference=reference, succeed=succeed, delay=delay)
        return reference

    def payout_create(self, *, withdrawal: WithdrawalRequest) -> str:
        """Accept the payout; the reference is derived from the withdrawal (idempotent).
        A destination listed in settings.SIMULATED_PAYOUT_REFUSED_DESTINATIONS is refused
        for good (PayoutRefused), as a closed bank account would be."""
        if withdrawal.destination in settings.SIMULATED_PAYOUT_REFUSED_DESTINATIONS:
            raise PayoutRefused(f"The destination {withdrawal.destination} is closed.")
        return f"simpo_{_digest(f'payout:{withdrawal.public_id}')}"

    @classmethod
    def build_event(cls, deposit: Deposit, *, succeed: bool = True) -> tuple[bytes, str]:
        """The signed webhook delivery for `deposit`'s outcome: (body, X-Signature).

        The event id is derived from the payment reference and the outcome, so
        building it again yields the same event (a redelivery, not a new one).
        Also the in-process path for the demo seeder and tests: hand the pair to
        `payment_webhook_handle`, which verifies it like any delivery.
        """
        event_type = (
            PaymentEventType.PAYMENT_SUCCEEDED if succeed else PaymentEventType.PAYMENT_FAILED
        )
        payload = {
            "id": f"evt_{_digest(f'{deposit.provider_reference}:{event_type}')}",
            "type": str(event_type),
            "data": {
                "reference": deposit.provider_reference,
                "amount": str(quantize_money(deposit.amount)),
                "currency": SETTLEMENT_CURRENCY,
                "failure_reason": None if succeed else DECLINE_REASON,
            },
        }
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        signature = webhook_sign(
            body, secret=settings.PAYMENT_WEBHOOK_SECRET, timestamp=int(time.time())
        )
        return body, signature

    def webhook_deliver(self, *, reference: str, succeed: bool) -> bool:
        """POST payment `reference`'s outcome, signed, to our webhook endpoint.

        Returns False without sending when the deposit is unknown or already
        final, so running it twice is harmless (and a repeated delivery is a
        replay of the same event id, which the endpoint acknowledges without
        acting). Raises httpx.HTTPError on a transport failure or any non-2xx
        answer, for the calling task to retry.
        """
        deposit = Deposit.objects.filter(provider=self.code, provider_reference=reference).first()
        if deposit is None:
            logger.warning("Simulated payment %s has no deposit; nothing to deliver.", reference)
            return False
        if deposit.status != Deposit.Status.PENDING:
            return False
        body, signature = self.build_event(deposit, succeed=succeed)
        url = settings.SITE_URL.rstrip("/") + reverse("accounts:payment-webhook", args=[self.code])
        # trust_env=False: deliveries go straight to our own SITE_URL, never via a proxy.
        with httpx.Client(
            transport=self.http_transport, timeout=WEBHOOK_TIMEOUT_SECONDS, trust_env=False
        ) as client:
            response = client.post(
                url,
                content=body,
                headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
            )
        response.raise_for_status()
        logger.info("Delivered simulated payment event for %s to %s.", deposit.public_id, url)
        return True
