"""Positions: what an account holds of each contract.

A binary position is long-only in one outcome's contract (YES or NO of a
market; quantity ≥ 0). A perpetual position has a signed quantity (long > 0,
short < 0) and its own isolated margin and leverage. A position whose
quantity returns to zero keeps its row (its realized P&L stays visible);
`opened_at` restarts when it reopens. Only `trading.services.positions`
writes here.
"""

from django.db import models
from django.utils import timezone

from portal import format as fmt
from portal.money import money_field_kwargs, price_field_kwargs, quantity_field_kwargs


class Position(models.Model):
    class Outcome(models.TextChoices):
        YES = "yes", "YES"
        NO = "no", "NO"
        NONE = "", "—"  # perpetuals

    account = models.ForeignKey(  # the unique (account, instrument, outcome) index serves it
        "accounts.Account", on_delete=models.PROTECT, related_name="positions", db_index=False
    )
    instrument = models.ForeignKey(
        "trading.Instrument", on_delete=models.PROTECT, related_name="positions"
    )
    outcome = models.CharField(max_length=3, choices=Outcome.choices, blank=True)
    quantity = models.DecimalField(default=0, **quantity_field_kwargs())
    average_price = models.DecimalField(default=0, **price_field_kwargs())
    realized_pnl = models.DecimalField(default=0, **money_field_kwargs())
    # Perpetuals: isolated margin locked to this position, and its leverage.
    isolated_margin = models.DecimalField(default=0, **money_field_kwargs())
    leverage = models.PositiveSmallIntegerField(null=True, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["account_id", "instrument_id", "outcome"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "instrument", "outcome"], name="position_unique_contract"
            ),
            models.CheckConstraint(
                condition=models.Q(outcome="") | models.Q(quantity__gte=0),
                name="position_binary_long_only",
            ),
            models.CheckConstraint(
                condition=models.Q(isolated_margin__gte=0), name="position_margin_nonnegative"
            ),
            models.CheckConstraint(
                condition=models.Q(average_price__gte=0), name="position_price_nonnegative"
            ),
        ]
        indexes = [
            models.Index(
                fields=["instrument", "account"],
                condition=~models.Q(quantity=0),
                name="position_open_by_instrument",
            )
        ]

    def __str__(self) -> str:
        side = f" {self.outcome.upper()}" if self.outcome else ""
        size = fmt.quantity(self.quantity, 6)
        return f"{self.account.public_id} {self.instrument.symbol}{side} {size}"
