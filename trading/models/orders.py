"""Orders, fills, fees, perp leverage settings and funding payments.

An Order is what a customer asked for (execute = a market order for a USDC
notional; or a limit order with a time in force and optional take-profit /
stop-loss triggers); Fills are what the venue did with it, each recorded
through the one fill path with its own ledger journal. Only
`trading.services` writes here.
"""

import secrets

from django.db import models
from django.utils import timezone

from portal import format as fmt
from portal.money import money_field_kwargs, price_field_kwargs, quantity_field_kwargs

BPS = {"max_digits": 10, "decimal_places": 4}


def new_order_id() -> str:
    return f"ord_{secrets.token_hex(8)}"


def new_fill_id() -> str:
    return f"fill_{secrets.token_hex(8)}"


class FeePolicy(models.Model):
    """The broker's own commission on every fill (one row, primary key 1)."""

    broker_commission_bps = models.DecimalField(
        default=10, help_text="Charged on each fill's notional, in basis points.", **BPS
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "fee policy"
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="feepolicy_singleton"),
            models.CheckConstraint(
                condition=models.Q(broker_commission_bps__gte=0)
                & models.Q(broker_commission_bps__lte=1000),
                name="feepolicy_commission_range",
            ),
        ]

    def __str__(self) -> str:
        return "Fee policy"


class VenueFeeSchedule(models.Model):
    """How a venue charges for a fill (the venue's fee, before our commission)."""

    class Model(models.TextChoices):
        KALSHI = "kalshi", "Kalshi: ceil_to_cent(rate × contracts × P × (1 − P))"
        BPS = "bps", "Basis points of notional"

    policy = models.ForeignKey(FeePolicy, on_delete=models.CASCADE, related_name="venue_fees")
    venue = models.OneToOneField("trading.Venue", on_delete=models.CASCADE, related_name="fees")
    model = models.CharField(max_length=8, choices=Model.choices, default=Model.BPS)
    kalshi_rate = models.DecimalField(
        default="0.07", max_digits=8, decimal_places=6, help_text="Kalshi model only."
    )
    taker_bps = models.DecimalField(default=0, help_text="Basis-points model only.", **BPS)
    maker_bps = models.DecimalField(
        default=0, help_text="Basis-points model only: resting orders that fill.", **BPS
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kalshi_rate__gte=0)
                & models.Q(taker_bps__gte=0)
                & models.Q(maker_bps__gte=0),
                name="venuefeeschedule_nonnegative",
            )
        ]

    def __str__(self) -> str:
        return f"{self.venue.code} ({self.model})"


class Order(models.Model):
    class Side(models.TextChoices):
        BUY = "buy", "Buy"
        SELL = "sell", "Sell"

    class Type(models.TextChoices):
        MARKET = "market", "Market"
        LIMIT = "limit", "Limit"

    class TimeInForce(models.TextChoices):
        GTC = "GTC", "Good till cancelled"
        IOC = "IOC", "Immediate or cancel"
        FOK = "FOK", "Fill or kill"

    class Status(models.TextChoices):
        SUBMITTED = "submitted", "Submitted to the venue"
        PENDING = "pending", "Pending venue confirmation"
        OPEN = "open", "Open"
        PARTIALLY_FILLED = "partially_filled", "Partially filled"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled"
        REJECTED = "rejected", "Rejected"

    # Not stored: True on an Order a service returned for a retried client_order_id
    # with the same request (the API answers 200 with it instead of 201).
    replayed = False

    ACTIVE_STATUSES = (Status.SUBMITTED, Status.PENDING, Status.OPEN, Status.PARTIALLY_FILLED)
    # Sent (or about to be sent) to the venue, its answer not booked yet: the
    # reconciler (`trading.services.execute.orders_reconcile`) owns these.
    AT_VENUE_STATUSES = (Status.SUBMITTED, Status.PENDING)

    public_id = models.CharField(max_length=40, unique=True, default=new_order_id)
    account = models.ForeignKey(  # the (account, -created_at) index serves it
        "accounts.Account", on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    instrument = models.ForeignKey(
        "trading.Instrument", on_delete=models.PROTECT, related_name="orders"
    )
    outcome = models.CharField(max_length=3, blank=True, help_text="yes/no; blank for perps.")
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=8, choices=Type.choices)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SUBMITTED)
    quantity = models.DecimalField(
        null=True, blank=True, help_text="Contracts (limit orders).", **quantity_field_kwargs()
    )
    notional_usdc = models.DecimalField(
        null=True, blank=True, help_text="USDC notional (execute).", **money_field_kwargs()
    )
    limit_price = models.DecimalField(null=True, blank=True, **price_field_kwargs())
    take_profit = models.DecimalField(null=True, blank=True, **price_field_kwargs())
    stop_loss = models.DecimalField(null=True, blank=True, **price_field_kwargs())
    slippage_bps = models.PositiveIntegerField(default=50)
    leverage = models.PositiveSmallIntegerField(null=True, blank=True)
    client_order_id = models.CharField(max_length=64, null=True, blank=True)
    request_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the request, for client_order_id reuse."
    )
    venue = models.ForeignKey(
        "trading.Venue", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    venue_order_id = models.CharField(max_length=128, blank=True)
    reference_price = models.DecimalField(
        null=True, blank=True, help_text="Best price when routed.", **price_field_kwargs()
    )
    filled_quantity = models.DecimalField(default=0, **quantity_field_kwargs())
    filled_notional = models.DecimalField(default=0, **money_field_kwargs())
    average_fill_price = models.DecimalField(null=True, blank=True, **price_field_kwargs())
    fees = models.DecimalField(default=0, **money_field_kwargs())
    reserved_cash = models.DecimalField(
        default=0,
        help_text="Worst-case cost held from the account's cash until the venue's answer is "
        "booked (`Account.orders_reserved` is the sum over its orders).",
        **money_field_kwargs(),
    )
    reserved_quantity = models.DecimalField(
        default=0,
        help_text="Contracts a sell holds from its position until the venue's answer is booked.",
        **quantity_field_kwargs(),
    )
    reject_code = models.CharField(max_length=40, blank=True)
    reject_reason = models.CharField(max_length=255, blank=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The order whose take-profit / stop-loss created this one.",
    )
    venue_sends = models.PositiveIntegerField(
        default=0,
        help_text="How many immediate-or-cancel orders the broker has sent to the venue for "
        "this one (a limit order is sent each time the book reaches its price).",
    )
    venue_resend_after = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A resting order whose last send filled nothing is not sent again before.",
    )
    isolated_liquidation = models.BooleanField(
        default=False, help_text="Closes a perp position that fell below its maintenance margin."
    )
    liquidation = models.ForeignKey(
        "trading.Liquidation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        help_text="The liquidation that placed this sale.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "client_order_id"],
                condition=models.Q(client_order_id__isnull=False),
                name="order_client_id_unique_per_account",
            ),
            models.CheckConstraint(
                condition=models.Q(quantity__isnull=False) | models.Q(notional_usdc__isnull=False),
                name="order_has_size",
            ),
            models.CheckConstraint(
                condition=models.Q(filled_quantity__gte=0), name="order_filled_nonnegative"
            ),
            models.CheckConstraint(
                condition=models.Q(reserved_cash__gte=0) & models.Q(reserved_quantity__gte=0),
                name="order_reserved_nonnegative",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-created_at"]),
            models.Index(
                fields=["instrument", "status"],
                condition=models.Q(status__in=["pending", "open", "partially_filled"]),
                name="order_active_by_instrument",
            ),
            models.Index(
                fields=["created_at"],
                condition=models.Q(status__in=["submitted", "pending"]),
                name="order_at_venue",
            ),
            # The reconciler asks the venue again about these for a day.
            models.Index(
                fields=["updated_at"],
                condition=models.Q(reject_code="venue_not_received"),
                name="order_written_off",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.side} {self.instrument_id} {self.status}"

    @property
    def venue_client_id(self) -> str:
        """The id of its current send at the venue (the venue's dedupe key): the public
        id for the first, `<public id>.<n>` for the n-th send of a limit order."""
        return self.public_id if self.venue_sends <= 1 else f"{self.public_id}.{self.venue_sends}"

    @property
    def resent_when_unknown(self) -> bool:
        """A send the venue has no record of is sent again, never written off: the
        broker's own orders (a take-profit or stop-loss child, a liquidation sale) and
        a good-till-cancelled limit order (it stands until it fills or is cancelled)."""
        return self.broker_placed or self.time_in_force == self.TimeInForce.GTC

    @property
    def broker_placed(self) -> bool:
        """Placed by the broker itself (a take-profit or stop-loss child, a liquidation
        sale, an isolated perp liquidation), not by a customer's request: nobody waits
        on it, and it is sent again while its venue has no record of it."""
        return (
            self.parent_id is not None
            or self.liquidation_id is not None
            or self.isolated_liquidation
        )


class Fill(models.Model):
    class Liquidity(models.TextChoices):
        TAKER = "taker", "Taker"
        MAKER = "maker", "Maker"

    public_id = models.CharField(max_length=40, unique=True, default=new_fill_id)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="fills"
    )
    account = models.ForeignKey(  # the (account, -created_at) index serves it
        "accounts.Account", on_delete=models.PROTECT, related_name="fills", db_index=False
    )
    instrument = models.ForeignKey(
        "trading.Instrument", on_delete=models.PROTECT, related_name="fills"
    )
    outcome = models.CharField(max_length=3, blank=True)
    side = models.CharField(max_length=4, choices=Order.Side.choices)
    quantity = models.DecimalField(**quantity_field_kwargs())
    price = models.DecimalField(**price_field_kwargs())
    notional = models.DecimalField(**money_field_kwargs())
    venue_fee = models.DecimalField(default=0, **money_field_kwargs())
    commission = models.DecimalField(default=0, **money_field_kwargs())
    realized_pnl = models.DecimalField(default=0, **money_field_kwargs())
    liquidity = models.CharField(max_length=5, choices=Liquidity.choices, default=Liquidity.TAKER)
    venue = models.ForeignKey("trading.Venue", on_delete=models.PROTECT, related_name="fills")
    venue_fill_id = models.CharField(max_length=128, blank=True)
    journal = models.OneToOneField(
        "accounts.Journal", on_delete=models.PROTECT, related_name="fill"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="fill_quantity_pos"),
            models.UniqueConstraint(
                fields=["venue", "venue_fill_id"],
                condition=~models.Q(venue_fill_id=""),
                name="fill_venue_id_unique",
            ),
        ]

    def __str__(self) -> str:
        size, price = fmt.quantity(self.quantity, 6), fmt.number_exact(self.price, 2, 8)
        return f"{self.public_id} {self.side} {size} @ {price}"


class LeverageSetting(models.Model):
    """An account's chosen leverage in one perpetual market (default: the market's)."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="leverage_settings"
    )
    instrument = models.ForeignKey(
        "trading.Instrument", on_delete=models.CASCADE, related_name="leverage_settings"
    )
    leverage = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "instrument"], name="leverage_unique"),
            models.CheckConstraint(condition=models.Q(leverage__gte=1), name="leverage_min_1"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.instrument_id} {self.leverage}x"


class FundingPayment(models.Model):
    """One account's funding for one perpetual market and funding period (once)."""

    instrument = models.ForeignKey(
        "trading.Instrument", on_delete=models.PROTECT, related_name="funding_payments"
    )
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.PROTECT, related_name="funding_payments"
    )
    period_start = models.DateTimeField()
    position_quantity = models.DecimalField(**quantity_field_kwargs())
    mark_price = models.DecimalField(**price_field_kwargs())
    rate = models.DecimalField(max_digits=12, decimal_places=8)
    amount = models.DecimalField(
        help_text="Paid by the account (negative: received).", **money_field_kwargs()
    )
    journal = models.OneToOneField(
        "accounts.Journal", on_delete=models.PROTECT, related_name="funding_payment"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["instrument", "account", "period_start"], name="funding_once_per_period"
            )
        ]

    def __str__(self) -> str:
        period = f"{self.period_start:%Y-%m-%d %H:%M}"
        return f"{self.instrument_id} {self.account_id} {period} {fmt.usdc_signed(self.amount)}"
