"""Deposits through the simulated provider: pending until its signed webhook lands."""

import logging
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from accounts.enqueue import SIMULATED_PAYMENT_DELIVER
from accounts.models import (
    Account,
    Deposit,
    HouseAccount,
    Journal,
    Notification,
    OutboxItem,
    PaymentWebhookEvent,
    User,
)
from accounts.outbox import outbox_dispatch
from accounts.payments.simulated import SimulatedPaymentProvider
from accounts.services.deposits import deposit_create
from accounts.services.ledger import cash_balance_from_ledger
from accounts.services.reconciliation import ledger_reconcile
from accounts.services.withdrawals import withdrawal_request
from accounts.tasks import simulated_payment_deliver_task
from portal.errors import AccountNotActive, DomainError, Forbidden, InsufficientFunds
from tests.factories import open_account
from tests.trading.margining import capture_outbox_sends

pytestmark = pytest.mark.django_db

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"


def _forward_to_view(client: Client, answers: list, request: httpx.Request) -> httpx.Response:
    """Hand an outgoing webhook POST to our real view through Django's test client."""
    response = client.post(
        request.url.path,
        data=request.content,
        content_type=request.headers["content-type"],
        headers={"X-Signature": request.headers.get("x-signature", "")},
    )
    answers.append(response)
    return httpx.Response(response.status_code, content=response.content, request=request)


@pytest.fixture
def webhook_answers(monkeypatch) -> list:
    """The simulated provider's deliveries reach the real endpoint; its answers, in order."""
    answers: list = []
    client = Client()
    monkeypatch.setattr(
        SimulatedPaymentProvider,
        "http_transport",
        httpx.MockTransport(lambda request: _forward_to_view(client, answers, request)),
    )
    return answers


def _postings(journal: Journal) -> dict[str, Decimal]:
    return {
        p.ledger_account.code: p.amount for p in journal.postings.select_related("ledger_account")
    }


def test_card_deposit_is_pending_until_its_webhook_then_credited_once(
    custodial_account, webhook_answers, django_capture_on_commit_callbacks, caplog, settings
):
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks() as callbacks:
        deposit = deposit_create(
            account=custodial_account,
            amount=Decimal("250.5"),
            method=Deposit.Method.CARD,
            card_number=GOOD_CARD,
        )
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.PENDING
    assert deposit.amount == Decimal("250.500000")
    assert deposit.provider == "simulated"
    assert deposit.provider_reference.startswith("simpay_")
    custodial_account.refresh_from_db()
    assert custodial_account.cash_balance == 0
    assert not Journal.objects.exists()

    for callback in callbacks:  # the commit happened: the provider confirms
        callback()

    assert [(a.status_code, a.json()["outcome"]) for a in webhook_answers] == [(200, "confirmed")]
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.CONFIRMED
    assert deposit.confirmed_at is not None
    custodial_account.refresh_from_db()
    assert custodial_account.cash_balance == Decimal("250.5")
    assert cash_balance_from_ledger(custodial_account) == Decimal("250.5")
    journal = Journal.objects.get()
    assert journal == deposit.journal
    assert journal.kind == Journal.Kind.DEPOSIT
    assert journal.account == custodial_account
    assert journal.idempotency_key == f"deposit:{deposit.public_id}"
    assert _postings(journal) == {
        f"cash:{custodial_account.public_id}": Decimal("250.5"),
        HouseAccount.PAYMENT_CLEARING.value: Decimal("-250.5"),
    }
    assert ledger_reconcile().ok
    # Neither the card number nor the webhook secret reach the logs.
    assert "4242424242424242" not in caplog.text
    assert GOOD_CARD not in caplog.text
    assert settings.PAYMENT_WEBHOOK_SECRET not in caplog.text
    assert deposit.public_id in caplog.text


def test_declined_card_fails_with_a_reason_and_credits_nothing(
    custodial_account, webhook_answers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        deposit = deposit_create(
            account=custodial_account,
            amount=Decimal("100"),
            method=Deposit.Method.CARD,
            card_number=DECLINED_CARD,
        )
    assert [(a.status_code, a.json()["outcome"]) for a in webhook_answers] == [(200, "failed")]
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.FAILED
    assert "declined" in deposit.failure_reason
    assert deposit.journal is None
    assert deposit.confirmed_at is None
    custodial_account.refresh_from_db()
    assert custodial_account.cash_balance == 0
    assert not Journal.objects.exists()
    assert ledger_reconcile().ok


def test_bank_transfer_stays_pending_until_it_settles(
    custodial_account, webhook_answers, django_capture_on_commit_callbacks, monkeypatch, settings
):
    settings.SIMULATED_BANK_TRANSFER_DELAY = 20
    sent = capture_outbox_sends(monkeypatch, SIMULATED_PAYMENT_DELIVER)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        deposit = deposit_create(
            account=custodial_account, amount=Decimal("5000"), method=Deposit.Method.BANK_TRANSFER
        )
    kwargs = {"reference": deposit.provider_reference, "succeed": True}
    assert sent.calls == [(SIMULATED_PAYMENT_DELIVER, kwargs)]
    (item,) = OutboxItem.objects.filter(task=SIMULATED_PAYMENT_DELIVER)
    # Re-sent if nothing is heard of it a lease after its countdown.
    assert item.due_at >= before + timedelta(seconds=20 + settings.OUTBOX_LEASE_SECONDS)
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.PENDING
    # Money still in flight cannot be withdrawn.
    with pytest.raises(InsufficientFunds):
        withdrawal_request(
            account=custodial_account,
            amount=Decimal("1"),
            destination="Bank ****1234",
            requested_by=custodial_account.owner,
        )
    assert webhook_answers == []

    simulated_payment_deliver_task.delay(**kwargs)  # the transfer settles

    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.CONFIRMED
    custodial_account.refresh_from_db()
    assert custodial_account.cash_balance == Decimal("5000")


def test_confirmation_task_is_safe_to_run_twice(
    custodial_account, webhook_answers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        deposit = deposit_create(
            account=custodial_account,
            amount=Decimal("42"),
            method=Deposit.Method.CARD,
            card_number=GOOD_CARD,
        )
    assert (
        simulated_payment_deliver_task.delay(
            reference=deposit.provider_reference, succeed=True
        ).get()
        is False
    )
    assert len(webhook_answers) == 1
    custodial_account.refresh_from_db()
    assert custodial_account.cash_balance == Decimal("42")
    assert Journal.objects.count() == 1


def test_a_failed_delivery_is_retried_by_the_outbox_until_the_endpoint_answers(
    custodial_account, monkeypatch
):
    client = Client()
    answers: list = []
    attempts: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        if len(attempts) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        if len(attempts) == 2:
            return httpx.Response(503, request=request)
        return _forward_to_view(client, answers, request)

    monkeypatch.setattr(SimulatedPaymentProvider, "http_transport", httpx.MockTransport(flaky))
    deposit = deposit_create(
        account=custodial_account, amount=Decimal("10"), method=Deposit.Method.BANK_TRANSFER
    )
    (item,) = OutboxItem.objects.filter(task=SIMULATED_PAYMENT_DELIVER)
    waits = []
    for _ in range(3):
        assert outbox_dispatch(now=item.due_at) == 1
        item.refresh_from_db()
        waits.append(item.due_at - timezone.now())
    assert attempts == ["/payments/webhooks/simulated/"] * 3
    assert [a.status_code for a in answers] == [200]
    assert item.done_at is not None and item.attempts == 3
    # Back-off grows between failed runs (the third run succeeded).
    assert timedelta(seconds=5) <= waits[0] < waits[1] <= timedelta(seconds=30)
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.CONFIRMED
    # The delivery is done: never sent again (the deposit's notification email may be).
    outbox_dispatch(now=item.due_at + timedelta(days=1))
    item.refresh_from_db()
    assert item.attempts == 3
    assert Notification.objects.get(kind=Notification.Kind.DEPOSIT).title == (
        "Deposit of 10.00 USDC received"
    )


def test_a_refused_delivery_keeps_being_retried_and_the_deposit_stays_pending(
    custodial_account, monkeypatch
):
    attempts: list[int] = []

    def refused(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        return httpx.Response(400, json={"code": "invalid_signature"}, request=request)

    monkeypatch.setattr(SimulatedPaymentProvider, "http_transport", httpx.MockTransport(refused))
    deposit = deposit_create(
        account=custodial_account, amount=Decimal("10"), method=Deposit.Method.BANK_TRANSFER
    )
    (item,) = OutboxItem.objects.filter(task=SIMULATED_PAYMENT_DELIVER)
    for _ in range(4):
        outbox_dispatch(now=item.due_at)
        item.refresh_from_db()
    assert len(attempts) == 4
    assert item.done_at is None and item.attempts == 4
    assert "400 Bad Request" in item.last_error
    assert item.due_at - timezone.now() > timedelta(seconds=60)  # backing off
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.PENDING


@pytest.mark.parametrize(
    ("amount", "method", "card_number", "message"),
    [
        ("0", "card", GOOD_CARD, "greater than zero"),
        ("-5", "card", GOOD_CARD, "greater than zero"),
        ("0.5", "card", GOOD_CARD, "between 1.00 USDC and 25,000.00 USDC"),
        ("25000.000001", "card", GOOD_CARD, "between 1.00 USDC and 25,000.00 USDC"),
        ("1000000.01", "bank_transfer", "", "between 1.00 USDC and 1,000,000.00 USDC"),
        ("10.1234567", "card", GOOD_CARD, "at most 6 decimal places"),
        (10.5, "card", GOOD_CARD, "not a float"),
        ("ten", "card", GOOD_CARD, "decimal string"),
        ("NaN", "card", GOOD_CARD, "decimal string"),
        ("Infinity", "bank_transfer", "", "decimal string"),
        ("١٢٣", "bank_transfer", "", "decimal string of ASCII digits"),  # Arabic-Indic digits
        ("1_000", "bank_transfer", "", "decimal string of ASCII digits"),
        (" 50 ", "bank_transfer", "", "decimal string of ASCII digits"),
        ("10", "card", "", "valid card number"),
        ("10", "card", "4242 4242 4242 4241", "valid card number"),
        ("10", "card", "4242", "valid card number"),
        ("10", "card", "4242-abcd-4242-4242", "valid card number"),
        ("10", "bank_transfer", GOOD_CARD, "only taken for card"),
        ("10", "crypto", "", "Unknown deposit method"),
    ],
)
def test_invalid_deposits_are_refused(custodial_account, amount, method, card_number, message):
    with pytest.raises(DomainError, match=message) as info:
        deposit_create(
            account=custodial_account, amount=amount, method=method, card_number=card_number
        )
    assert info.value.as_dict()["code"] == "invalid_params"
    assert info.value.status == 400
    assert not Deposit.objects.exists()


def test_deposit_limits_are_inclusive(custodial_account):
    low = deposit_create(
        account=custodial_account,
        amount=Decimal("1"),
        method=Deposit.Method.CARD,
        card_number=GOOD_CARD,
    )
    high = deposit_create(
        account=custodial_account,
        amount=Decimal("25000"),
        method=Deposit.Method.CARD,
        card_number=GOOD_CARD,
    )
    assert (low.status, high.status) == (Deposit.Status.PENDING, Deposit.Status.PENDING)


def test_non_custodial_account_cannot_deposit_through_the_portal(non_custodial_account):
    with pytest.raises(Forbidden, match="non-custodial") as info:
        deposit_create(
            account=non_custodial_account,
            amount=Decimal("10"),
            method=Deposit.Method.CARD,
            card_number=GOOD_CARD,
        )
    assert info.value.code == "custodial_required"
    assert not Deposit.objects.exists()


def test_frozen_account_cannot_deposit(custodial_account):
    Account.objects.filter(pk=custodial_account.pk).update(status=Account.Status.FROZEN)
    with pytest.raises(AccountNotActive, match="frozen"):
        deposit_create(
            account=custodial_account,
            amount=Decimal("10"),
            method=Deposit.Method.CARD,
            card_number=GOOD_CARD,
        )
    assert not Deposit.objects.exists()


def test_owner_without_kyb_approval_cannot_deposit():
    account = open_account()
    User.objects.filter(pk=account.owner_id).update(kyb_status=User.KybStatus.PENDING)
    with pytest.raises(Forbidden, match="KYB") as info:
        deposit_create(account=account, amount=Decimal("10"), method=Deposit.Method.BANK_TRANSFER)
    assert info.value.code == "kyb_required"
    assert not Deposit.objects.exists()


def test_card_deposit_confirmed_over_real_http(live_server, settings):
    """End to end: deposit → after commit the provider POSTs to the running server."""
    settings.SITE_URL = live_server.url
    account = open_account()
    confirmed = deposit_create(
        account=account,
        amount=Decimal("75.25"),
        method=Deposit.Method.CARD,
        card_number=GOOD_CARD,
    )
    declined = deposit_create(
        account=account,
        amount=Decimal("30"),
        method=Deposit.Method.CARD,
        card_number=DECLINED_CARD,
    )
    confirmed.refresh_from_db()
    declined.refresh_from_db()
    assert confirmed.status == Deposit.Status.CONFIRMED
    assert declined.status == Deposit.Status.FAILED
    account.refresh_from_db()
    assert account.cash_balance == Decimal("75.25")
    assert PaymentWebhookEvent.objects.count() == 2
    assert ledger_reconcile().ok
