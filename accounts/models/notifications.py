"""In-app notifications, written in the transaction that caused them (an outbox).

Email delivery is a Celery task that claims the email (`email_claimed_at`), sends
it outside any transaction and marks `emailed_at`, so a notification is never lost
with a worker and emailed once (again only if a run died between its send and that
mark).
"""

from django.db import models
from django.utils import timezone


class Notification(models.Model):
    class Kind(models.TextChoices):
        MARGIN_CALL = "margin_call", "Margin call"
        MARGIN_CALL_REMINDER = "margin_call_reminder", "Margin call reminder"
        MARGIN_CALL_RESOLVED = "margin_call_resolved", "Margin call resolved"
        LIQUIDATION = "liquidation", "Liquidation"
        DEPOSIT = "deposit", "Deposit"
        WITHDRAWAL = "withdrawal", "Withdrawal"
        TRADE = "trade", "Order filled"
        LINKED_SYNC = "linked_sync", "Linked account sync"
        HEALTH_ALERT = "health_alert", "Health alert"
        SYSTEM = "system", "System"

    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="notifications"
    )
    account = models.ForeignKey(
        "accounts.Account",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField()
    dedupe_key = models.CharField(max_length=160, unique=True, null=True, blank=True)
    email = models.BooleanField(default=False, help_text="Also sent by email.")
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_claimed_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When a run took the email to send it (outside any transaction); another "
        "run takes it over once this is older than the outbox's lease.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: {self.title}"
