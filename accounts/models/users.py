"""Users (email login, KYB) and their accounts (custodial / non-custodial)."""

import secrets
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from portal.money import money_field_kwargs

MAX_ACCOUNTS_PER_USER = 10  # account index 0–9, as in the seed's accountIndex


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username: str):
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in with an email address.

    KYB (know your business) is reviewed by ops; only approved users trade or
    receive API keys.
    """

    class KybStatus(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_staff = models.BooleanField(
        default=False, help_text="Ops staff: may enter the admin console (with 2FA)."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    kyb_status = models.CharField(
        max_length=16, choices=KybStatus.choices, default=KybStatus.PENDING
    )
    kyb_reviewed_at = models.DateTimeField(null=True, blank=True)
    kyb_reviewed_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kyb_note = models.TextField(blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_kyb_approved(self) -> bool:
        return self.kyb_status == self.KybStatus.APPROVED


def new_account_public_id() -> str:
    return f"acct_{secrets.token_hex(5)}"


class Account(models.Model):
    """A trading account. A user may hold several (index 0 is the main one).

    `cash_balance` is a cache of the sum of the account's cash postings,
    written only by the ledger service under the account's row lock and
    proved equal by the reconciliation check.
    """

    class Kind(models.TextChoices):
        CUSTODIAL = "custodial", "Custodial"
        NON_CUSTODIAL = "non_custodial", "Non-custodial"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FROZEN = "frozen", "Frozen"
        CLOSED = "closed", "Closed"

    public_id = models.CharField(max_length=32, unique=True, default=new_account_public_id)
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="accounts")
    index = models.PositiveSmallIntegerField(
        default=0, help_text="0 is the main account; 1–9 are sub-accounts."
    )
    name = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)

    class MarginOverride(models.TextChoices):
        AUTOMATIC = "", "Automatic (by lifetime volume)"
        GRANTED = "granted", "Granted by ops"
        REVOKED = "revoked", "Revoked by ops"

    margin_enabled = models.BooleanField(
        default=False,
        help_text="May borrow (cash below zero). Custodial accounts only. Follows lifetime "
        "volume unless ops override it.",
    )
    margin_override = models.CharField(
        max_length=8, choices=MarginOverride.choices, blank=True, default=""
    )
    lifetime_volume = models.DecimalField(default=0, **money_field_kwargs())
    cash_balance = models.DecimalField(default=0, editable=False, **money_field_kwargs())
    withdrawals_held = models.DecimalField(
        default=0,
        editable=False,
        help_text="Cash held for withdrawal requests awaiting review: counted as gone by "
        "the margin figures and every check, released on rejection or cancellation.",
        **money_field_kwargs(),
    )
    orders_reserved = models.DecimalField(
        default=0,
        editable=False,
        help_text="Cash held by orders sent to a venue and not booked yet (their worst-case "
        "cost): counted as gone by the margin figures and every check until the fill is "
        "booked or the order ends.",
        **money_field_kwargs(),
    )
    figures_version = models.PositiveBigIntegerField(
        default=0,
        db_default=0,  # rows written by raw SQL (bench seeding, triggers' peers) start at 0
        editable=False,
        help_text="Goes up by one in the transaction that changes what the account's priced "
        "figures rest on (its cash, holds, reservations, margin flag, linked cash or "
        "positions): set by database triggers, whatever wrote the row. Figures stored by "
        "the margin engine (trading.services.figures_store) are served only while it matches.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["owner_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "index"], name="account_owner_index_unique"),
            models.CheckConstraint(
                condition=models.Q(index__lt=MAX_ACCOUNTS_PER_USER), name="account_index_range"
            ),
            models.CheckConstraint(
                condition=models.Q(kind="custodial") | models.Q(margin_enabled=False),
                name="account_margin_custodial_only",
            ),
            models.CheckConstraint(
                condition=models.Q(lifetime_volume__gte=0), name="account_volume_nonnegative"
            ),
            models.CheckConstraint(
                condition=models.Q(withdrawals_held__gte=0), name="account_held_nonnegative"
            ),
            models.CheckConstraint(
                condition=models.Q(orders_reserved__gte=0), name="account_reserved_nonnegative"
            ),
        ]

    def __str__(self) -> str:
        label = self.name or self.get_kind_display()
        return f"{self.public_id} ({label}, {self.owner.email})"

    @property
    def is_custodial(self) -> bool:
        return self.kind == self.Kind.CUSTODIAL

    @property
    def risk_cash(self) -> Decimal:
        """The cash the margin figures start from.

        Custodial: ours, the ledger's cash balance less what pending withdrawal
        requests hold (that cash is leaving: no trade may spend it, and the
        figures count it as gone) and less what orders at a venue reserve
        (their worst-case cost, until their fills are booked). Non-custodial: the cash the
        user holds on the linked venue as of the last sync (0 before the first
        sync, or when the venue does not tell us); such an account has no cash
        with us. Load with select_related("linked_credential") for many accounts.
        """
        if self.is_custodial:
            return self.cash_balance - self.withdrawals_held - self.orders_reserved
        credential = getattr(self, "linked_credential", None)
        if credential is None or credential.cash_balance is None:
            return self.cash_balance
        return credential.cash_balance
