"""Deposits and withdrawals tell their owner: one notification per outcome or step, in the
event's transaction, in words (no codes), emailed through the outbox."""

from decimal import Decimal

import pytest
from django.core import mail

from accounts.enqueue import NOTIFICATION_EMAILS_SEND
from accounts.models import Deposit, Notification, OutboxItem
from accounts.models import WithdrawalRequest as Withdrawal
from accounts.payments.simulated import SimulatedPaymentProvider
from accounts.services.deposits import deposit_create, payment_webhook_handle
from accounts.services.notifications import notification_email_send
from accounts.services.withdrawals import (
    withdrawal_approve,
    withdrawal_cancel,
    withdrawal_payout_send,
    withdrawal_reject,
    withdrawal_request,
)
from tests.conftest import credit_cash
from tests.factories import StaffFactory, open_account

pytestmark = pytest.mark.django_db


def email_queued(notification: Notification) -> bool:
    return any(
        notification.pk in item.kwargs["notification_ids"]
        for item in OutboxItem.objects.filter(task=NOTIFICATION_EMAILS_SEND)
    )


def notes(kind: str) -> list[Notification]:
    return list(Notification.objects.filter(kind=kind).order_by("pk"))


def deliver(deposit: Deposit, *, succeed: bool = True) -> None:
    body, signature = SimulatedPaymentProvider.build_event(deposit, succeed=succeed)
    payment_webhook_handle(provider="simulated", body=body, signature_header=signature)


@pytest.fixture
def bystander():
    """Another customer with money: never told of the others' deposits and withdrawals."""
    account = open_account()
    credit_cash(account, "50")
    return account


def test_a_confirmed_deposit_is_notified_once_to_its_owner(custodial_account, bystander):
    deposit = deposit_create(
        account=custodial_account, amount=Decimal("1234.5"), method=Deposit.Method.BANK_TRANSFER
    )
    assert not notes(Notification.Kind.DEPOSIT)  # pending: nothing to tell yet
    deliver(deposit)
    deliver(deposit)  # the provider redelivers: still one
    (note,) = notes(Notification.Kind.DEPOSIT)
    assert note.user == custodial_account.owner and note.account == custodial_account
    assert note.title == "Deposit of 1,234.50 USDC received"
    assert "bank transfer deposit of 1,234.50 USDC" in note.body
    assert note.email and email_queued(note)
    assert not Notification.objects.filter(user=bystander.owner).exists()


def test_a_failed_deposit_says_why_without_the_providers_code(custodial_account):
    deposit = deposit_create(
        account=custodial_account,
        amount=Decimal("25"),
        method=Deposit.Method.CARD,
        card_number="4242424242424242",
    )
    deliver(deposit, succeed=False)
    deliver(deposit, succeed=False)
    (note,) = notes(Notification.Kind.DEPOSIT)
    assert note.title == "Deposit of 25.00 USDC failed"
    assert "card_declined" not in note.body
    assert "The card issuer declined the payment." in note.body
    assert "Nothing was credited" in note.body
    assert email_queued(note)


@pytest.fixture
def funded():
    account = open_account()
    credit_cash(account, "1000")
    return account


def request(account, amount="250"):
    return withdrawal_request(
        account=account,
        amount=Decimal(amount),
        destination="Business checking ••1234",
        requested_by=account.owner,
    )


def test_a_withdrawal_tells_each_step_once(funded, bystander):
    withdrawal = request(funded)
    staff = StaffFactory()
    withdrawal_approve(withdrawal=withdrawal, actor=staff)
    withdrawal_payout_send(withdrawal_id=withdrawal.pk)  # the payout task
    withdrawal_payout_send(withdrawal_id=withdrawal.pk)  # run again: nothing new
    titles = [note.title for note in notes(Notification.Kind.WITHDRAWAL)]
    assert titles == [
        "Withdrawal of 250.00 USDC requested",
        "Withdrawal of 250.00 USDC approved",
        "Withdrawal of 250.00 USDC paid out",
    ]
    requested, approved, paid = notes(Notification.Kind.WITHDRAWAL)
    assert {note.user_id for note in (requested, approved, paid)} == {funded.owner_id}
    assert "to Business checking ••1234 is waiting for review" in requested.body
    assert requested.email and approved.email and not paid.email  # the approval was emailed
    assert email_queued(requested) and email_queued(approved) and not email_queued(paid)
    assert not Notification.objects.filter(user=bystander.owner).exists()


def test_a_rejected_withdrawal_gives_the_reason_ops_wrote(funded):
    withdrawal = request(funded, "100")
    withdrawal_reject(
        withdrawal=withdrawal, actor=StaffFactory(), reason="the destination is not on file"
    )
    note = Notification.objects.get(dedupe_key=f"withdrawal:{withdrawal.public_id}:rejected")
    assert note.title == "Withdrawal of 100.00 USDC rejected"
    assert "Reason: The destination is not on file." in note.body
    assert "available in your cash again" in note.body
    assert email_queued(note)


def test_a_withdrawal_the_customer_cancels_tells_nothing_more(funded):
    withdrawal = request(funded, "100")
    withdrawal_cancel(withdrawal=Withdrawal.objects.get(pk=withdrawal.pk), user=funded.owner)
    assert [note.title for note in notes(Notification.Kind.WITHDRAWAL)] == [
        "Withdrawal of 100.00 USDC requested"
    ]


def test_the_email_says_what_and_when_and_links_the_page(funded):
    request(funded, "100")
    (note,) = notes(Notification.Kind.WITHDRAWAL)
    assert notification_email_send(notification_id=note.pk)
    (message,) = mail.outbox
    assert message.subject == "Withdrawal of 100.00 USDC requested"
    assert message.body.startswith(note.body)
    assert f"Withdrawal · {note.created_at:%-d %b %Y}" in message.body
    assert f"account {funded.public_id}" in message.body
    assert "/notifications/" in message.body
