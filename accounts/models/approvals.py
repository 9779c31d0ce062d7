"""Four-eyes approvals: one staff member proposes a sensitive change, another approves it.

Risk-policy changes, withdrawals above the policy's threshold and force-closes
are not applied by whoever asks: they become an `Approval` (pending), and only
a different staff member's approval applies them (`accounts.services.approvals`).
Every step is audited. What a kind does when applied is registered by the app
that owns it (`approval_kind_register`), so accounts imports no trading code.
"""

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def approval_public_id() -> str:
    return f"apr_{secrets.token_hex(6)}"


class Approval(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a second approver"
        APPROVED = "approved", "Approved, being applied"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Approved, but could not be applied"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Withdrawn by the proposer"

    public_id = models.CharField(max_length=20, unique=True, default=approval_public_id)
    kind = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    summary = models.CharField(max_length=300, help_text="What it does, in one line.")
    reason = models.TextField(help_text="Why, as the proposer wrote it.")
    account = models.ForeignKey(
        "accounts.Account",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approvals",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    result = models.TextField(blank=True, help_text="What applying it did, or why it failed.")

    class Meta:
        ordering = ["-proposed_at", "-id"]
        indexes = [models.Index(fields=["status", "proposed_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | ~models.Q(decided_by=models.F("proposed_by")),
                name="approval_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id}: {self.summary}"
