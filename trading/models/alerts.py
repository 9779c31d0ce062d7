"""User-set health alerts: tell me when this account's Margin Health falls below a level.

The margin engine compares each alert with the health it computes anyway
(`trading.engine`, `trading.services.health_alerts`): an armed alert fires once
when health falls below `level` and disarms; it re-arms when health is back at
`level` plus a small hysteresis, so a health wobbling around the level never
sends a stream of notifications.
"""

from django.db import models
from django.utils import timezone

from trading.models.risk import RATIO


class HealthAlert(models.Model):
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="health_alerts"
    )
    level = models.DecimalField(
        max_digits=6, decimal_places=2, help_text="Alert when Margin Health falls below this."
    )
    email = models.BooleanField(default=True, help_text="Also sent by email (always in-app).")
    armed = models.BooleanField(
        default=True, help_text="Fires at the next fall below the level (off once fired)."
    )
    fired_count = models.PositiveIntegerField(default=0)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_fired_health = models.DecimalField(null=True, blank=True, **RATIO)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["account", "-level"]
        constraints = [
            models.UniqueConstraint(fields=["account", "level"], name="healthalert_one_per_level"),
            models.CheckConstraint(
                condition=models.Q(level__gt=0), name="healthalert_level_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Health alert {self.level} on {self.account_id}"
