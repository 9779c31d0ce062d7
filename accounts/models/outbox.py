"""The transactional outbox: background work recorded in the transaction that needs it.

A row is written in the same transaction as the state it finishes (a
deposit's provider webhook, an approved withdrawal's payout, a report, a
margin call's notification, an email, a market's settlement, a liquidation
request), so the work exists if and only if that state does. The row is sent
to Celery after commit and re-sent by the periodic dispatcher until a run of
its task succeeds (`accounts.outbox`).
"""

from django.db import models
from django.utils import timezone


class OutboxItem(models.Model):
    task = models.CharField(max_length=100, help_text="The Celery task that does the work.")
    kwargs = models.JSONField(default=dict)
    key = models.CharField(
        max_length=160,
        null=True,
        blank=True,
        help_text="At most one unfinished item per key (a second request joins the first).",
    )
    lease_seconds = models.PositiveIntegerField(
        help_text="How long after a send, without news, the item counts as lost and is re-sent."
    )
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(
        help_text="When the dispatcher next sends it (if it is still not done)."
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Sends by the dispatcher.")
    sent_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="The request that made it (portal.logs): its task runs log under this id.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=models.Q(done_at__isnull=True),
                name="outbox_due_unfinished",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(done_at__isnull=True),
                name="outbox_one_unfinished_per_key",
            )
        ]

    def __str__(self) -> str:
        state = "done" if self.done_at else f"due {self.due_at:%Y-%m-%d %H:%M:%S}"
        return f"{self.task} #{self.pk} ({state})"
