"""Deposits: money coming in through the payment provider.

`deposit_create` starts a payment and leaves a pending Deposit. The provider's
signed webhook, handled by `payment_webhook_handle`, then confirms it (one
balanced journal crediting the customer's cash) or fails it. The amount and
account checks shared with withdrawals live here too.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, Deposit, HouseAccount, Journal, PaymentWebhookEvent
from accounts.payments import payment_provider
from accounts.payments.base import (
    PAYMENT_EVENT_TYPES,
    PAYMENT_FAILURES,
    SETTLEMENT_CURRENCY,
    PaymentEvent,
    PaymentEventType,
)
from accounts.services.accounts import account_check_can_transact
from accounts.services.ledger import Line, cash_ledger_account, house_ledger_account, journal_post
from accounts.services.notifications import deposit_notify
from portal import format as fmt
from portal.errors import ErrorCode, Forbidden, InvalidParams, NotFound
from portal.money import decimal_parse, quantize_money

logger = logging.getLogger(__name__)

# Per-deposit limits in USDC, by method (cards carry lower limits than wires).
DEPOSIT_LIMITS: dict[str, tuple[Decimal, Decimal]] = {
    Deposit.Method.CARD: (Decimal("1"), Decimal("25000")),
    Deposit.Method.BANK_TRANSFER: (Decimal("1"), Decimal("1000000")),
}
CARD_NUMBER_LENGTHS = range(12, 20)
FAILURE_REASON_MAX_LENGTH = Deposit._meta.get_field("failure_reason").max_length


class WebhookOutcome(StrEnum):
    CONFIRMED = "confirmed"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    """This event id was handled before: acknowledged, nothing done."""
    ALREADY_FINAL = "already_final"
    """An earlier event already confirmed or failed the deposit: nothing done."""
    MISMATCH = "mismatch"
    """Amount or currency differ from the deposit: failed, nothing credited."""
    IGNORED = "ignored"
    """An event type deposits do not act on: recorded only."""


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    outcome: WebhookOutcome


def payment_amount_clean(
    amount: Decimal | int | str, *, minimum: Decimal, maximum: Decimal
) -> Decimal:
    """`amount` as a Decimal at USDC precision within [minimum, maximum].

    Raises InvalidParams for a float (binary floats are not money), a string
    not in the plain decimal form (`portal.money.decimal_parse`: ASCII digits,
    optional sign and point; not "1_000" or "١٢٣"), anything else that is not a
    finite number, an amount ≤ 0, outside the limits, or with more than 6
    decimal places (never rounded silently).
    """
    value = decimal_parse(amount, name="The amount")
    if value <= 0:
        raise InvalidParams("The amount must be greater than zero.")
    if not minimum <= value <= maximum:
        raise InvalidParams(
            f"The amount must be between {fmt.usdc_exact(minimum)} and {fmt.usdc_exact(maximum)}."
        )
    if quantize_money(value) != value:
        raise InvalidParams("The amount can have at most 6 decimal places.")
    return quantize_money(value)


def payment_account_check(account: Account) -> None:
    """Raise unless money may move through the payment provider for `account`.

    Forbidden `custodial_required` for a non-custodial account (its money moves on
    the exchange), AccountNotActive unless active, Forbidden `kyb_required`
    unless the owner's KYB is approved. Expects `account.owner` loaded.
    """
    if not account.is_custodial:
        raise Forbidden(
            f"Account {account.public_id} is non-custodial: its deposits and withdrawals "
            "happen on the exchange directly.",
            code=ErrorCode.CUSTODIAL_REQUIRED,
        )
    account_check_can_transact(account)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _card_number_clean(card_number: str) -> str:
    digits = card_number.replace(" ", "").replace("-", "")
    if not (
        digits.isascii()
        and digits.isdigit()
        and len(digits) in CARD_NUMBER_LENGTHS
        and _luhn_valid(digits)
    ):
        raise InvalidParams("Enter a valid card number.")
    return digits


def deposit_create(
    *, account: Account, amount: Decimal, method: Deposit.Method, card_number: str = ""
) -> Deposit:
    """Start a deposit: create it pending and ask the provider to collect it.

    Checks: the account is custodial, active, its owner KYB-approved; the
    amount is within the method's limits (DEPOSIT_LIMITS) at USDC precision;
    a card deposit carries a valid card number, a bank transfer none.

    Takes no lock: creating a deposit changes no balance (the credit happens
    in `payment_webhook_handle`, under the account lock). The deposit and its
    provider reference are written in one transaction; the provider's own
    work (the simulated one's confirming webhook) starts after commit.
    The card number goes to the provider only: never stored, never logged.

    Raises InvalidParams, Forbidden (`custodial_required`, `kyb_required`) or
    AccountNotActive.
    """
    if method not in Deposit.Method.values:
        raise InvalidParams(f"Unknown deposit method {method!r}.")
    method = Deposit.Method(method)
    minimum, maximum = DEPOSIT_LIMITS[method]
    amount = payment_amount_clean(amount, minimum=minimum, maximum=maximum)
    if method == Deposit.Method.CARD:
        card_number = _card_number_clean(card_number)
    elif card_number:
        raise InvalidParams("A card number is only taken for card deposits.")
    current = Account.objects.select_related("owner").get(pk=account.pk)
    payment_account_check(current)
    provider = payment_provider()
    with transaction.atomic():
        deposit = Deposit.objects.create(
            account=current, amount=amount, method=method, provider=provider.code
        )
        deposit.provider_reference = provider.payment_start(
            deposit=deposit, card_number=card_number
        )
        deposit.save(update_fields=["provider_reference", "updated_at"])
    logger.info(
        "Deposit %s of %s USDC by %s started for %s (reference %s).",
        deposit.public_id,
        amount,
        method,
        current.public_id,
        deposit.provider_reference,
    )
    return deposit


def _deposit_fail(deposit: Deposit, *, reason: str) -> None:
    deposit.status = Deposit.Status.FAILED
    deposit.failure_reason = reason[:FAILURE_REASON_MAX_LENGTH]
    deposit.save(update_fields=["status", "failure_reason", "updated_at"])
    deposit_notify(deposit=deposit)


def _reported(event: PaymentEvent) -> str:
    """What the provider reported, exactly: "99.999999 USDC", "100.00 EUR"."""
    if event.currency == SETTLEMENT_CURRENCY:
        return fmt.usdc_exact(event.amount)
    return f"{fmt.usdc_exact(event.amount).removesuffix(' ' + fmt.CURRENCY)} {event.currency}"


def _deposit_settle(*, provider: str, event: PaymentEvent) -> WebhookOutcome:
    """Apply a payment event to its deposit. Locks the account, then the deposit."""
    found = (
        Deposit.objects.filter(provider=provider, provider_reference=event.reference)
        .values_list("pk", "account_id")
        .first()
    )
    if found is None:
        raise NotFound(f"No deposit has payment reference {event.reference!r}.")
    deposit_pk, account_pk = found
    account = Account.objects.select_for_update().get(pk=account_pk)
    deposit = Deposit.objects.select_for_update().get(pk=deposit_pk)
    if deposit.status != Deposit.Status.PENDING:
        if (
            deposit.status == Deposit.Status.FAILED
            and event.type == PaymentEventType.PAYMENT_SUCCEEDED
        ):
            # Money the provider says arrived for a deposit we failed: never credited
            # blindly (it may be the provider's error), never silent either.
            logger.error(
                "Deposit %s is failed but the provider reports the payment succeeded "
                "(event %s, %s %s): nothing credited; reconcile with the provider.",
                deposit.public_id,
                event.id,
                event.amount,
                event.currency,
            )
        else:
            logger.info(
                "Payment event %s for %s ignored: the deposit is already %s.",
                event.id,
                deposit.public_id,
                deposit.status,
            )
        return WebhookOutcome.ALREADY_FINAL
    if event.type == PaymentEventType.PAYMENT_FAILED:
        _deposit_fail(
            deposit,
            reason=fmt.sentence(event.failure_reason, PAYMENT_FAILURES)
            or "The payment provider declined the payment.",
        )
        logger.info("Deposit %s failed: %s", deposit.public_id, deposit.failure_reason)
        return WebhookOutcome.FAILED
    if event.amount != deposit.amount or event.currency != SETTLEMENT_CURRENCY:
        logger.error(
            "Deposit %s: the provider reported %s %s, expected %s %s (event %s). "
            "Marked failed, nothing credited; reconcile with the provider.",
            deposit.public_id,
            event.amount,
            event.currency,
            deposit.amount,
            SETTLEMENT_CURRENCY,
            event.id,
        )
        _deposit_fail(
            deposit,
            reason=(
                f"The payment provider reported {_reported(event)} for this "
                f"{fmt.usdc_exact(deposit.amount)} deposit; nothing was credited. "
                "Please contact support."
            ),
        )
        return WebhookOutcome.MISMATCH
    journal = journal_post(
        kind=Journal.Kind.DEPOSIT,
        account=account,
        memo=f"Deposit {deposit.public_id} ({deposit.get_method_display()}, {event.reference})",
        idempotency_key=f"deposit:{deposit.public_id}",
        lines=[
            Line(cash_ledger_account(account), deposit.amount),
            Line(house_ledger_account(HouseAccount.PAYMENT_CLEARING), -deposit.amount),
        ],
    )
    deposit.status = Deposit.Status.CONFIRMED
    deposit.journal = journal
    deposit.confirmed_at = timezone.now()
    deposit.save(update_fields=["status", "journal", "confirmed_at", "updated_at"])
    deposit_notify(deposit=deposit)
    logger.info(
        "Deposit %s confirmed: %s USDC credited to %s.",
        deposit.public_id,
        deposit.amount,
        account.public_id,
    )
    return WebhookOutcome.CONFIRMED


def payment_webhook_handle(*, provider: str, body: bytes, signature_header: str) -> WebhookResult:
    """Verify and apply one webhook delivery from the payment provider.

    Verification (signature over the raw body, timestamp tolerance) happens
    before anything is read or written. Then, in one transaction: the event
    is recorded by (provider, event id) — a replayed event is acknowledged as
    DUPLICATE and changes nothing — and a payment event is applied to its
    pending deposit with the deposit's Account row locked, then the Deposit
    row (select_for_update; the same account-first order as withdrawals):

    - payment.succeeded: ONE journal (+amount customer cash, −amount house
      payment clearing; idempotency key `deposit:<public_id>`), status
      confirmed. Credited even if the account was frozen meanwhile: the money
      has arrived and is owed to the customer.
    - payment.failed: status failed with the provider's reason.
    - an event for a deposit already confirmed or failed: ALREADY_FINAL, no-op
      (a success reported for a failed deposit is logged as an error for ops to
      reconcile with the provider, as a mismatch is).
    - amount or currency different from the deposit's: refused, never
      credited (neither figure can be trusted blindly); the deposit is
      marked failed with the discrepancy as its reason and an error is
      logged for ops to reconcile with the provider (MISMATCH).

    Raises NotFound for an unknown provider or payment reference (nothing is
    recorded, so the provider's retry can succeed later), InvalidParams with
    code `invalid_signature` for a missing/forged/stale signature, and
    InvalidParams for a body that is not an event.
    """
    implementation = payment_provider()
    if provider != implementation.code:
        raise NotFound(f"Unknown payment provider {provider!r}.")
    event = implementation.webhook_event_parse(body=body, signature_header=signature_header)
    with transaction.atomic():
        try:
            with transaction.atomic():
                PaymentWebhookEvent.objects.create(
                    provider=provider,
                    event_id=event.id,
                    event_type=event.type,
                    payload=event.payload,
                )
        except IntegrityError:
            logger.info("Payment event %s:%s was already handled (replay).", provider, event.id)
            return WebhookResult(event.id, WebhookOutcome.DUPLICATE)
        if event.type not in PAYMENT_EVENT_TYPES:
            return WebhookResult(event.id, WebhookOutcome.IGNORED)
        outcome = _deposit_settle(provider=provider, event=event)
    return WebhookResult(event.id, outcome)
