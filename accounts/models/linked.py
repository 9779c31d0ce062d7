"""A non-custodial account's own exchange credential (SPEC §1), sealed at rest.

A Kalshi credential is an API key id (`identity`) and its RSA private key;
a Polymarket one is a wallet address (`identity`) with optional CLOB API
key, secret and passphrase. The secret parts live only in `sealed_secret`,
a token of `accounts.credential_keys` (its own rotatable key set), and are
never shown by any page, API, log or admin form: pages show `identity_masked`.

The row also carries what the last verification and sync learnt (scopes,
warning, cash, errors, when to sync next). Rules (who may link, when to
sync, what a failure does) live in the services, not here; that the account
is non-custodial is one of them.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.credential_keys import secret_open, secret_seal
from portal.money import money_field_kwargs


class LinkedCredential(models.Model):
    class Venue(models.TextChoices):
        KALSHI = "kalshi", "Kalshi"
        POLYMARKET = "polymarket", "Polymarket"

    class Environment(models.TextChoices):
        # Kalshi keys work only in the environment that issued them.
        PRODUCTION = "production", "Production"
        DEMO = "demo", "Demo"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FAILING = "failing", "Failing"
        UNLINKED = "unlinked", "Unlinked"

    account = models.OneToOneField(
        "accounts.Account", on_delete=models.PROTECT, related_name="linked_credential"
    )
    venue = models.CharField(max_length=16, choices=Venue.choices)
    environment = models.CharField(
        max_length=16,
        choices=Environment.choices,
        blank=True,
        help_text="Kalshi only: the environment that issued the key. Blank for Polymarket.",
    )
    identity = models.CharField(
        max_length=100,
        help_text="Kalshi API key id, or the Polymarket wallet address. Not secret.",
    )
    sealed_secret = models.TextField(
        blank=True,
        editable=False,
        help_text="The secret parts, sealed with LINKED_CREDENTIAL_KEYS; blank when none.",
    )
    scopes = models.CharField(
        max_length=64, blank=True, help_text='As the venue reports them: "read", "read,write".'
    )
    warning = models.CharField(
        max_length=255, blank=True, help_text="e.g. write scope where read would do."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    cash_balance = models.DecimalField(
        null=True,
        blank=True,
        help_text="The venue's cash as of the last sync (unknown for a wallet without CLOB keys).",
        **money_field_kwargs(),
    )
    last_verified_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_sync_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    rotated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the user last replaced the credential."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Kalshi keys belong to one environment; Polymarket has none.
            models.CheckConstraint(
                condition=Q(venue="polymarket", environment="")
                | Q(venue="kalshi", environment__in=["production", "demo"]),
                name="linked_credential_venue_environment",
            ),
            models.CheckConstraint(
                condition=~Q(identity=""), name="linked_credential_identity_present"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "failing", "unlinked"]),
                name="linked_credential_status_valid",
            ),
        ]

    def __str__(self) -> str:
        # Never the secret: the venue, the masked identity and the account.
        return f"{self.get_venue_display()} {self.identity_masked} ({self.account.public_id})"

    @property
    def identity_masked(self) -> str:
        """The identity as pages show it: Kalshi "…" + last 4; a wallet 0x1234…abcd."""
        identity = self.identity or ""
        if self.venue == self.Venue.POLYMARKET and len(identity) > 10:
            return f"{identity[:6]}…{identity[-4:]}"
        return f"…{identity[-4:]}" if identity else ""

    def secrets(self) -> dict[str, str]:
        """The opened secret parts ({} when none are stored).

        Kalshi: {"private_key_pem"}; Polymarket: {"api_key", "api_secret",
        "api_passphrase"} or {}. Raises accounts.credential_keys.CredentialKeyError
        when no configured key opens the stored token.
        """
        if not self.sealed_secret:
            return {}
        return secret_open(self.sealed_secret)

    def secrets_set(self, payload: dict[str, str]) -> None:
        """Seal `payload` into `sealed_secret` (blank for an empty payload). Does not save.

        Raises TypeError for a payload that is not a dict of strings and
        CredentialKeyError when the key set is empty or malformed.
        """
        self.sealed_secret = secret_seal(payload) if payload else ""
