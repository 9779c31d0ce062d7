"""Deposits, withdrawal requests and the payment provider's webhook events."""

import secrets

from django.db import models
from django.utils import timezone

from portal import format as fmt
from portal.money import money_field_kwargs


def new_deposit_id() -> str:
    return f"dep_{secrets.token_hex(8)}"


def new_withdrawal_id() -> str:
    return f"wd_{secrets.token_hex(8)}"


class Deposit(models.Model):
    """Money coming in through the payment provider: pending until its webhook."""

    class Method(models.TextChoices):
        CARD = "card", "Card"
        BANK_TRANSFER = "bank_transfer", "Bank transfer"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed"

    public_id = models.CharField(max_length=40, unique=True, default=new_deposit_id)
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.PROTECT, related_name="deposits"
    )
    amount = models.DecimalField(**money_field_kwargs())
    method = models.CharField(max_length=16, choices=Method.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    provider = models.CharField(max_length=40)
    provider_reference = models.CharField(max_length=80, unique=True, null=True, blank=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    journal = models.OneToOneField(
        "accounts.Journal", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="deposit_amount_positive"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="confirmed") | models.Q(journal__isnull=False),
                name="deposit_confirmed_has_journal",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {fmt.usdc(self.amount)} {self.status}"


class WithdrawalRequest(models.Model):
    """A customer's request to take cash out; ops approve or reject it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Payout failed (returned to cash)"

    public_id = models.CharField(max_length=40, unique=True, default=new_withdrawal_id)
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.PROTECT, related_name="withdrawals"
    )
    amount = models.DecimalField(**money_field_kwargs())
    destination = models.CharField(
        max_length=120, help_text="Where the money goes, e.g. the bank account's label."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reviewed_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=255, blank=True)
    provider_reference = models.CharField(max_length=80, blank=True)
    journal = models.OneToOneField(
        "accounts.Journal", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    failure_reason = models.CharField(
        max_length=255, blank=True, help_text="Why the provider refused the payout."
    )
    reversal_journal = models.OneToOneField(
        "accounts.Journal",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The journal that returned a failed payout's amount to cash.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="withdrawal_amount_positive"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="approved") | models.Q(journal__isnull=False),
                name="withdrawal_approved_has_journal",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="failed")
                | models.Q(journal__isnull=False, reversal_journal__isnull=False),
                name="withdrawal_failed_is_reversed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {fmt.usdc(self.amount)} {self.status}"


class PaymentWebhookEvent(models.Model):
    """Every webhook event accepted from the provider, by its id (dedupes replays)."""

    provider = models.CharField(max_length=40)
    event_id = models.CharField(max_length=80)
    event_type = models.CharField(max_length=60)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} {self.event_type}"
