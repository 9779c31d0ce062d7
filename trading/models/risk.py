"""The Margin Portfolio's parameters and its records.

RiskPolicy holds SPEC §4's parameters (one row, edited by ops in the admin,
audited), with per-instrument haircut add-ons. MarginSnapshot is the
health-history series; MarginCall one record per episode below maintenance;
Liquidation what the liquidation engine did.
"""

from decimal import Decimal

from django.db import models
from django.utils import timezone

from portal import format as fmt
from portal.money import money_field_kwargs

RATIO = {"max_digits": 12, "decimal_places": 6}


class RiskPolicy(models.Model):
    """The one active risk policy (primary key 1). See SPEC §4."""

    healthy_threshold = models.DecimalField(
        default=Decimal("1.5"), help_text="Health above this is healthy (green).", **RATIO
    )
    initial_margin_threshold = models.DecimalField(
        default=Decimal("1.2"),
        help_text="Initial margin requirement: projected health after an action that adds "
        "risk must stay at or above this.",
        **RATIO,
    )
    maintenance_threshold = models.DecimalField(
        default=Decimal("1.0"),
        help_text="Maintenance margin requirement: below this a margin call opens.",
        **RATIO,
    )
    liquidation_threshold = models.DecimalField(
        default=Decimal("0.9"), help_text="Below this the account is liquidated at once.", **RATIO
    )
    grace_period_hours = models.PositiveIntegerField(
        default=24, help_text="A margin call open this long leads to liquidation."
    )
    reminder_interval_hours = models.PositiveIntegerField(
        default=4, help_text="How often an open margin call reminds the user."
    )
    haircut_uncertainty_a = models.DecimalField(
        "haircut a (uncertainty)", default=Decimal("0.30"), **RATIO
    )
    haircut_expiry_b = models.DecimalField("haircut b (expiry)", default=Decimal("0.20"), **RATIO)
    haircut_tau0_days = models.DecimalField("haircut τ0 (days)", default=Decimal("14"), **RATIO)
    haircut_max = models.DecimalField("haircut h_max", default=Decimal("0.95"), **RATIO)
    concentration_c = models.DecimalField("concentration c", default=Decimal("0.25"), **RATIO)
    interest_rate_annual = models.DecimalField(
        default=Decimal("0.08"), help_text="Annual rate charged daily on Used Margin.", **RATIO
    )
    price_stale_after_seconds = models.PositiveIntegerField(
        default=15,
        help_text="A price older than this (seconds) is stale: shown as delayed, refused "
        "for trading, and never the basis of a margin call or a liquidation.",
    )
    margin_volume_threshold = models.DecimalField(
        default=Decimal("1000000"),
        help_text="Lifetime traded volume (USDC) at which margin turns on automatically.",
        **money_field_kwargs(),
    )
    ticket_confirm_fraction = models.DecimalField(
        "order ticket: confirm above (fraction of Adjusted Equity)",
        default=Decimal("0.10"),
        help_text="An order from the dashboard's ticket whose notional exceeds this fraction "
        "of the account's Adjusted Equity asks for a confirmation first (0.10 = 10%).",
        **RATIO,
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "risk policy"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(pk=1),
                name="riskpolicy_singleton",
                violation_error_message="There is one risk policy; edit it instead.",
            ),
            models.CheckConstraint(
                name="riskpolicy_threshold_order",
                condition=models.Q(liquidation_threshold__gt=0)
                & models.Q(liquidation_threshold__lt=models.F("maintenance_threshold"))
                & models.Q(maintenance_threshold__lte=models.F("initial_margin_threshold"))
                & models.Q(initial_margin_threshold__lte=models.F("healthy_threshold")),
                violation_error_message=(
                    "Thresholds must satisfy 0 < liquidation < maintenance ≤ initial ≤ healthy "
                    "(defaults 0.9 < 1.0 ≤ 1.2 ≤ 1.5)."
                ),
            ),
            models.CheckConstraint(
                name="riskpolicy_haircut_ranges",
                condition=models.Q(haircut_uncertainty_a__gte=0)
                & models.Q(haircut_expiry_b__gte=0)
                & models.Q(haircut_tau0_days__gt=0)
                & models.Q(haircut_max__gt=0)
                & models.Q(haircut_max__lte=1)
                & models.Q(concentration_c__gte=0)
                & models.Q(concentration_c__lt=1)
                & models.Q(interest_rate_annual__gte=0)
                & models.Q(interest_rate_annual__lt=1),
                violation_error_message=(
                    "Haircut a, b and concentration c must be ≥ 0 (c below 1), τ0 above 0, "
                    "h_max in (0, 1], and the interest rate in [0, 1)."
                ),
            ),
            models.CheckConstraint(
                name="riskpolicy_price_stale_range",
                condition=models.Q(price_stale_after_seconds__gte=1)
                & models.Q(price_stale_after_seconds__lte=3600),
                violation_error_message="Prices go stale after 1 to 3,600 seconds.",
            ),
            models.CheckConstraint(
                name="riskpolicy_ticket_confirm_range",
                condition=models.Q(ticket_confirm_fraction__gte=0)
                & models.Q(ticket_confirm_fraction__lte=1),
                violation_error_message="The ticket's confirmation fraction lies between 0 "
                "(confirm every order) and 1 (100% of Adjusted Equity).",
            ),
        ]

    def __str__(self) -> str:
        return "Risk policy"


class InstrumentHaircut(models.Model):
    """An extra haircut for one instrument (e.g. thin liquidity, dispute risk)."""

    policy = models.ForeignKey(RiskPolicy, on_delete=models.CASCADE, related_name="haircuts")
    instrument = models.OneToOneField(
        "trading.Instrument", on_delete=models.CASCADE, related_name="haircut_addon"
    )
    addon = models.DecimalField(**RATIO)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(addon__gte=0) & models.Q(addon__lte=1),
                name="instrumenthaircut_range",
                violation_error_message="A haircut add-on lies between 0 and 1.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.instrument.symbol} +{self.addon}"


class MarginStatus(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    CAUTION = "caution", "Caution"
    MARGIN_CALL = "margin_call", "Margin call"


class MarginSnapshot(models.Model):
    """An account's margin figures at one instant (the health-history chart)."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="margin_snapshots"
    )
    ts = models.DateTimeField(default=timezone.now)
    cash = models.DecimalField(**money_field_kwargs())
    used_margin = models.DecimalField(**money_field_kwargs())
    adjusted_equity = models.DecimalField(**money_field_kwargs())
    health = models.DecimalField(
        null=True, blank=True, help_text="Empty when Used Margin is 0 (unbounded).", **RATIO
    )
    status = models.CharField(max_length=16, choices=MarginStatus.choices)

    class Meta:
        indexes = [models.Index(fields=["account", "-ts"])]

    def __str__(self) -> str:
        return f"{self.account_id} {self.ts:%Y-%m-%d %H:%M:%S} {fmt.ratio(self.health)}"


class MarginCall(models.Model):
    """One episode of Margin Health below maintenance, open until it recovers."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        LIQUIDATED = "liquidated", "Liquidated"

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.PROTECT, related_name="margin_calls"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    health_at_open = models.DecimalField(**RATIO)
    lowest_health = models.DecimalField(**RATIO)
    used_margin_at_open = models.DecimalField(**money_field_kwargs())
    adjusted_equity_at_open = models.DecimalField(**money_field_kwargs())
    notified_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveIntegerField(default=0)
    last_reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(status="open"),
                name="margincall_one_open_per_account",
            )
        ]

    def __str__(self) -> str:
        return f"Margin call {self.pk} on {self.account_id} ({self.status})"


class Liquidation(models.Model):
    """What the liquidation engine sold for one account, and why."""

    class Reason(models.TextChoices):
        BELOW_THRESHOLD = "below_threshold", "Health below the liquidation threshold"
        GRACE_EXPIRED = "grace_expired", "Margin call open past the grace period"

    class Status(models.TextChoices):
        SELLING = "selling", "Selling (its orders are at the venues)"
        COMPLETED = "completed", "Completed (health restored)"
        SHORTFALL = "shortfall", "Shortfall (all sold, health not restored)"
        UNFILLED = "unfilled", "Unfilled (the venues filled none of its sales)"

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.PROTECT, related_name="liquidations"
    )
    margin_call = models.ForeignKey(
        MarginCall, null=True, blank=True, on_delete=models.PROTECT, related_name="liquidations"
    )
    reason = models.CharField(max_length=20, choices=Reason.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    created_at = models.DateTimeField(default=timezone.now)
    health_before = models.DecimalField(**RATIO)
    health_after = models.DecimalField(null=True, blank=True, **RATIO)
    used_margin_before = models.DecimalField(**money_field_kwargs())
    used_margin_after = models.DecimalField(**money_field_kwargs())
    proceeds = models.DecimalField(default=0, **money_field_kwargs())
    steps = models.JSONField(
        default=list,
        help_text="Each sale: symbol, outcome, quantity, average price, proceeds, venue.",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One liquidation of an account sells at a time.
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(status="selling"),
                name="liquidation_one_selling_per_account",
            )
        ]

    def __str__(self) -> str:
        return f"Liquidation {self.pk} of {self.account_id} ({self.status})"
