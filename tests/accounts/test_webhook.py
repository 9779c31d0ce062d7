"""The payment webhook endpoint: signed, replay-safe, never credits twice."""

import hashlib
import hmac
import json
import threading
import time
from decimal import Decimal

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import Deposit, Journal, PaymentWebhookEvent
from accounts.payments.signing import webhook_sign
from accounts.payments.simulated import SimulatedPaymentProvider
from accounts.services.deposits import deposit_create
from accounts.services.reconciliation import ledger_reconcile
from tests.factories import open_account

pytestmark = pytest.mark.django_db

URL = reverse("accounts:payment-webhook", args=["simulated"])


@pytest.fixture
def deposit(custodial_account) -> Deposit:
    """A pending 100 USDC bank transfer; its own confirmation is never sent here."""
    return deposit_create(
        account=custodial_account, amount=Decimal("100"), method=Deposit.Method.BANK_TRANSFER
    )


def _post(client: Client, body: bytes, signature: str | None, url: str = URL):
    headers = {} if signature is None else {"X-Signature": signature}
    return client.post(url, data=body, content_type="application/json", headers=headers)


def _event(deposit: Deposit, *, event_id: str = "evt_test_1", **data) -> dict:
    return {
        "id": event_id,
        "type": "payment.succeeded",
        "data": {
            "reference": deposit.provider_reference,
            "amount": "100.000000",
            "currency": "USDC",
            "failure_reason": None,
            **data,
        },
    }


def _signed(payload: dict, *, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    return body, webhook_sign(body, secret=secret, timestamp=timestamp or int(time.time()))


def _credited(deposit: Deposit) -> Decimal:
    deposit.account.refresh_from_db()
    return deposit.account.cash_balance


def _assert_untouched(deposit: Deposit) -> None:
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.PENDING
    assert _credited(deposit) == 0
    assert not Journal.objects.exists()
    assert not PaymentWebhookEvent.objects.exists()


def test_replayed_event_is_acknowledged_and_credits_once(client, deposit):
    body, signature = SimulatedPaymentProvider.build_event(deposit)
    first = _post(client, body, signature)
    replay = _post(client, body, signature)
    assert first.status_code == replay.status_code == 200
    assert first.json()["outcome"] == "confirmed"
    assert replay.json() == {
        "received": True,
        "event_id": first.json()["event_id"],
        "outcome": "duplicate",
    }
    assert _credited(deposit) == Decimal("100")
    assert Journal.objects.count() == 1
    assert PaymentWebhookEvent.objects.count() == 1
    assert ledger_reconcile().ok


def test_second_distinct_success_event_for_a_confirmed_deposit_credits_nothing(
    client, deposit, settings
):
    secret = settings.PAYMENT_WEBHOOK_SECRET
    first = _post(client, *_signed(_event(deposit, event_id="evt_a"), secret=secret))
    second = _post(client, *_signed(_event(deposit, event_id="evt_b"), secret=secret))
    assert [first.json()["outcome"], second.json()["outcome"]] == ["confirmed", "already_final"]
    assert _credited(deposit) == Decimal("100")
    assert Journal.objects.count() == 1
    assert PaymentWebhookEvent.objects.count() == 2


def test_failure_then_success_leaves_the_deposit_failed(client, deposit, caplog):
    failed = _post(client, *SimulatedPaymentProvider.build_event(deposit, succeed=False))
    succeeded = _post(client, *SimulatedPaymentProvider.build_event(deposit, succeed=True))
    assert [failed.json()["outcome"], succeeded.json()["outcome"]] == ["failed", "already_final"]
    # Money reported received for a failed deposit is not credited, nor silent: ops see it.
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert deposit.public_id in record.getMessage() and "reconcile" in record.getMessage()
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.FAILED
    assert "declined" in deposit.failure_reason
    assert _credited(deposit) == 0
    assert not Journal.objects.exists()


def test_forged_signature_is_rejected_and_nothing_credited(client, deposit):
    body, signature = SimulatedPaymentProvider.build_event(deposit)
    forged = body.replace(b'"100.000000"', b'"900000.000000"')
    assert forged != body
    response = _post(client, forged, signature)
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_signature",
        "message": "The signature does not match the payload.",
    }
    _assert_untouched(deposit)
    # The genuine delivery still goes through.
    assert _post(client, body, signature).json()["outcome"] == "confirmed"
    assert _credited(deposit) == Decimal("100")


def test_signature_made_with_another_secret_is_rejected(client, deposit):
    response = _post(client, *_signed(_event(deposit), secret="whsec_attacker"))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    _assert_untouched(deposit)


@pytest.mark.parametrize("offset", [-1, +1])
def test_signature_outside_the_tolerance_window_is_rejected(client, deposit, settings, offset):
    tolerance = settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS
    timestamp = int(time.time()) + offset * (tolerance + 5)
    response = _post(
        client,
        *_signed(_event(deposit), secret=settings.PAYMENT_WEBHOOK_SECRET, timestamp=timestamp),
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_signature",
        "message": "The signature timestamp is outside the tolerance window.",
    }
    _assert_untouched(deposit)


def test_signature_inside_the_tolerance_window_is_accepted(client, deposit, settings):
    timestamp = int(time.time()) - settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS + 30
    response = _post(
        client,
        *_signed(_event(deposit), secret=settings.PAYMENT_WEBHOOK_SECRET, timestamp=timestamp),
    )
    assert response.json()["outcome"] == "confirmed"


def test_any_of_several_signatures_may_match_during_secret_rotation(client, deposit, settings):
    body, signature = _signed(_event(deposit), secret=settings.PAYMENT_WEBHOOK_SECRET)
    timestamp, valid = signature.split(",")
    rotated = f"{timestamp},v1={'0' * 64},{valid}"
    assert _post(client, body, rotated).json()["outcome"] == "confirmed"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "t=,v1=",
        "v1={sig}",
        "t={t}",
        "t=abc,v1={sig}",
        "t=١٧٠٠٠٠٠٠٠٠,v1={sig}",
        "t={t};v1={sig}",
        "t={t},v1={sig}é",
        "t={t},v2={sig}",
        "t=" + "9" * 5000 + ",v1={sig}",
        "t=" + "9" * 400 + ",v1={sig}",
    ],
)
def test_malformed_signature_header_is_rejected(client, deposit, settings, header):
    body, signature = _signed(_event(deposit), secret=settings.PAYMENT_WEBHOOK_SECRET)
    timestamp, sig = (part.split("=", 1)[1] for part in signature.split(","))
    if header is not None:
        header = header.format(t=timestamp, sig=sig)
    response = _post(client, body, header)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    _assert_untouched(deposit)


def test_without_a_configured_secret_every_delivery_is_rejected(client, deposit, settings):
    settings.PAYMENT_WEBHOOK_SECRET = ""
    body = json.dumps(_event(deposit)).encode()
    timestamp = int(time.time())
    empty_key_signature = hmac.new(b"", f"{timestamp}.".encode() + body, hashlib.sha256)
    response = _post(client, body, f"t={timestamp},v1={empty_key_signature.hexdigest()}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    _assert_untouched(deposit)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"id": "evt_1", "type": "payment.succeeded"}',
        b'{"id": 1, "type": "payment.succeeded", "data": {}}',
        b'{"id": "evt_1", "type": "payment.succeeded", "data": {"amount": "1"}}',
        b'{"id": "evt_1", "type": "payment.succeeded", "data": {"reference": "r",'
        b' "amount": "lots", "currency": "USDC"}}',
        b'{"id": "evt_1", "type": "payment.succeeded", "data": {"reference": "r",'
        b' "amount": "NaN", "currency": "USDC"}}',
        b'{"id": "evt_1", "type": "payment.failed", "data": {"reference": "r",'
        b' "amount": "1", "currency": "USDC", "failure_reason": 7}}',
        json.dumps({"id": "e" * 81, "type": "payment.succeeded", "data": {}}).encode(),
    ],
)
def test_signed_but_malformed_body_is_a_400(client, deposit, settings, body):
    timestamp = int(time.time())
    signature = webhook_sign(body, secret=settings.PAYMENT_WEBHOOK_SECRET, timestamp=timestamp)
    response = _post(client, body, signature)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_params"
    assert response.json()["message"].startswith("Malformed webhook event")
    _assert_untouched(deposit)


def test_unknown_event_type_is_recorded_and_ignored(client, deposit, settings):
    payload = {"id": "evt_refund", "type": "charge.refunded", "data": {"anything": 1}}
    response = _post(client, *_signed(payload, secret=settings.PAYMENT_WEBHOOK_SECRET))
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert PaymentWebhookEvent.objects.get().event_type == "charge.refunded"
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.PENDING


def test_unknown_provider_is_a_json_404(client, deposit):
    body, signature = SimulatedPaymentProvider.build_event(deposit)
    url = reverse("accounts:payment-webhook", args=["stripe"])
    response = _post(client, body, signature, url=url)
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "Unknown payment provider 'stripe'.",
    }
    _assert_untouched(deposit)


def test_unknown_payment_reference_is_a_404_and_not_recorded(client, deposit, settings):
    payload = _event(deposit, reference="simpay_unknown")
    response = _post(client, *_signed(payload, secret=settings.PAYMENT_WEBHOOK_SECRET))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    _assert_untouched(deposit)


def test_get_is_a_json_405(client):
    response = client.get(URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("data", "reported"),
    [
        ({"amount": "1000.000000"}, "1,000.00 USDC"),
        ({"amount": "99.999999"}, "99.999999 USDC"),
        ({"currency": "EUR"}, "100.00 EUR"),
    ],
)
def test_amount_or_currency_mismatch_fails_the_deposit_and_credits_nothing(
    client, deposit, settings, data, reported
):
    payload = _event(deposit, **data)
    response = _post(client, *_signed(payload, secret=settings.PAYMENT_WEBHOOK_SECRET))
    assert response.status_code == 200
    assert response.json()["outcome"] == "mismatch"
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.FAILED
    assert f"reported {reported}" in deposit.failure_reason
    assert "100.00 USDC deposit" in deposit.failure_reason
    assert _credited(deposit) == 0
    assert not Journal.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("distinct_events", [False, True])
def test_concurrent_deliveries_credit_once(monkeypatch, settings, distinct_events):
    # The provider's own delivery goes nowhere: the threads below are the deliveries.
    monkeypatch.setattr(
        SimulatedPaymentProvider,
        "http_transport",
        httpx.MockTransport(lambda request: httpx.Response(200, request=request)),
    )
    account = open_account()
    deposit = deposit_create(
        account=account, amount=Decimal("100"), method=Deposit.Method.BANK_TRANSFER
    )
    deliveries = [
        _signed(
            _event(deposit, event_id=f"evt_{n if distinct_events else 0}"),
            secret=settings.PAYMENT_WEBHOOK_SECRET,
        )
        for n in range(8)
    ]
    barrier = threading.Barrier(len(deliveries))
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def deliver(body: bytes, signature: str) -> None:
        try:
            barrier.wait()
            response = _post(Client(), body, signature)
            outcomes.append(response.json()["outcome"])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=delivery) for delivery in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    repeat = "already_final" if distinct_events else "duplicate"
    assert sorted(outcomes) == sorted(["confirmed"] + [repeat] * 7)
    account.refresh_from_db()
    assert account.cash_balance == Decimal("100")
    assert Journal.objects.count() == 1
    assert ledger_reconcile().ok
