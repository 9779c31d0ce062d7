"""Instruments, venues, listings and stored market-data history.

A binary instrument is one prediction market (its YES contract; the NO
contract is priced 1 − YES). A perpetual is a signed-quantity contract on the
broker's own venue. One instrument may be listed on several venues, each
listing carrying the venue's own identifier (Kalshi ticker, Polymarket token
id). The latest quotes live in Redis (trading.marketdata.store); PriceTick
keeps a downsampled history for charts.
"""

from django.db import models
from django.utils import timezone

from portal.money import price_field_kwargs


class Venue(models.Model):
    class Kind(models.TextChoices):
        PREDICTION = "prediction", "Prediction market"
        PERPETUALS = "perpetuals", "Perpetual futures"

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.code


class EventGroup(models.Model):
    """Markets of the same event share one concentration bucket."""

    code = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.code


class Instrument(models.Model):
    class Kind(models.TextChoices):
        BINARY = "binary", "Binary contract"
        PERPETUAL = "perpetual", "Perpetual"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        HALTED = "halted", "Halted"
        RESOLVED = "resolved", "Resolved"

    class Resolution(models.TextChoices):
        YES = "yes", "YES"
        NO = "no", "NO"
        VOID = "void", "Void"

    symbol = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    tick_size = models.DecimalField(**price_field_kwargs())
    # Binary contracts
    event = models.ForeignKey(
        EventGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="instruments"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=8, choices=Resolution.choices, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(
        null=True, blank=True, help_text="When every position was paid out after resolution."
    )
    # Perpetuals
    base_asset = models.CharField(max_length=16, blank=True)
    max_leverage = models.PositiveSmallIntegerField(null=True, blank=True)
    default_leverage = models.PositiveSmallIntegerField(null=True, blank=True)
    maintenance_margin_fraction = models.DecimalField(
        max_digits=8, decimal_places=6, null=True, blank=True
    )
    funding_interval_hours = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=models.Q(tick_size__gt=0), name="instrument_tick_pos"),
            models.CheckConstraint(
                name="instrument_binary_fields",
                condition=~models.Q(kind="binary")
                | (
                    models.Q(event__isnull=False)
                    & models.Q(expires_at__isnull=False)
                    & models.Q(tick_size__lt=1)
                    & models.Q(max_leverage__isnull=True)
                ),
            ),
            models.CheckConstraint(
                name="instrument_perp_fields",
                condition=~models.Q(kind="perpetual")
                | (
                    models.Q(max_leverage__gte=1)
                    & models.Q(default_leverage__gte=1)
                    & models.Q(default_leverage__lte=models.F("max_leverage"))
                    & models.Q(maintenance_margin_fraction__gt=0)
                    & models.Q(maintenance_margin_fraction__lt=1)
                    & models.Q(funding_interval_hours__gte=1)
                    & models.Q(event__isnull=True)
                ),
            ),
            models.CheckConstraint(
                name="instrument_resolution_when_resolved",
                condition=(models.Q(status="resolved") & ~models.Q(resolution=""))
                | (~models.Q(status="resolved") & models.Q(resolution="")),
            ),
        ]

    def __str__(self) -> str:
        return self.symbol

    @property
    def is_binary(self) -> bool:
        return self.kind == self.Kind.BINARY


class Listing(models.Model):
    """An instrument as one venue lists it, under that venue's identifier."""

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="listings")
    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="listings")
    venue_symbol = models.CharField(max_length=128)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["instrument__symbol", "venue__code"]
        constraints = [
            models.UniqueConstraint(fields=["venue", "venue_symbol"], name="listing_venue_symbol"),
            models.UniqueConstraint(
                fields=["instrument", "venue"], name="listing_instrument_venue"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument.symbol}@{self.venue.code}"

    @property
    def key(self) -> str:
        """The listing's key in the market-data store: SYMBOL@venue."""
        return f"{self.instrument.symbol}@{self.venue.code}"


class PriceTick(models.Model):
    """A stored market-data observation of one listing (downsampled history)."""

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="ticks")
    ts = models.DateTimeField()
    is_binary = models.BooleanField()
    mark = models.DecimalField(**price_field_kwargs())
    bid = models.DecimalField(**price_field_kwargs())
    ask = models.DecimalField(**price_field_kwargs())
    twap = models.DecimalField(**price_field_kwargs())

    class Meta:
        indexes = [models.Index(fields=["listing", "-ts"])]
        constraints = [
            models.CheckConstraint(
                name="pricetick_positive_ordered",
                condition=models.Q(bid__gt=0)
                & models.Q(mark__gt=0)
                & models.Q(twap__gt=0)
                & models.Q(ask__gte=models.F("bid")),
            ),
            models.CheckConstraint(
                name="pricetick_binary_in_unit_interval",
                condition=models.Q(is_binary=False)
                | (models.Q(ask__lt=1) & models.Q(mark__lt=1) & models.Q(twap__lt=1)),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.listing_id} {self.ts:%Y-%m-%d %H:%M:%S} {self.mark}"
