"""Partner API keys (SPEC §7): issued by ops after KYB, shown once, stored hashed.

A key reads `lev_live_<secret>` (or `lev_test_…`). Only its SHA-256 is stored,
with a visible `prefix` (the environment and the secret's first characters) to
tell keys apart in lists. A key is bound to one or more accounts of its owner,
carries scopes, may be limited to IP networks and may require Ed25519
request signatures (`signing_public_key`).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    class Environment(models.TextChoices):
        LIVE = "live", "Live"
        TEST = "test", "Test"

    class Scope(models.TextChoices):
        INTELLIGENCE = "intelligence", "Intelligence (the Prime API)"
        READ = "read", "Read positions, margin, orders, markets"
        TRADE = "trade", "Trade: execute, orders, leverage, transfers"
        REPORTS = "reports", "Generate and download reports"

    name = models.CharField(max_length=100)
    environment = models.CharField(
        max_length=4, choices=Environment.choices, default=Environment.LIVE
    )
    prefix = models.CharField(max_length=24, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_keys"
    )
    accounts = models.ManyToManyField("accounts.Account", related_name="api_keys")
    scopes = models.JSONField(default=list)
    ip_allowlist = models.JSONField(
        default=list, blank=True, help_text="IP networks (CIDR); empty: any address."
    )
    signing_public_key = models.CharField(
        max_length=64,
        blank=True,
        help_text="Hex Ed25519 public key: when set, every write must be signed.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
