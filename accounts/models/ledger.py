"""Double-entry ledger: journals of immutable postings that sum to zero.

Amounts are signed. A customer's cash ledger account holds what the broker
owes the customer (positive = cash); house accounts are the other side of
every movement. PostgreSQL enforces, with a deferred constraint trigger, that
every journal sums to zero at commit, and refuses UPDATE/DELETE of postings
and journals (migration 0002). Only `accounts.services.ledger` writes here.
"""

from django.db import models
from django.utils import timezone

from portal import format as fmt
from portal.money import money_field_kwargs


class HouseAccount(models.TextChoices):
    """The broker's own ledger accounts, the far side of customer movements."""

    PAYMENT_CLEARING = "house:payment_clearing", "Payment provider clearing"
    VENUE_SETTLEMENT = "house:venue_settlement", "Venue settlement"
    FEE_INCOME = "house:fee_income", "Fee and commission income"
    INTEREST_INCOME = "house:interest_income", "Interest income"
    FUNDING_POOL = "house:funding_pool", "Perpetual funding pool"
    MARKET_SETTLEMENT = "house:market_settlement", "Market resolution settlement"


class LedgerAccount(models.Model):
    class Purpose(models.TextChoices):
        CASH = "cash", "Customer cash"
        ISOLATED_MARGIN = "isolated_margin", "Customer isolated margin"
        HOUSE = "house", "House"

    code = models.CharField(max_length=120, unique=True)
    name = models.CharField(max_length=200)
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    account = models.ForeignKey(
        "accounts.Account",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(purpose="house") & models.Q(account__isnull=True))
                | (~models.Q(purpose="house") & models.Q(account__isnull=False)),
                name="ledgeraccount_house_has_no_customer",
            ),
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(purpose="cash"),
                name="ledgeraccount_one_cash_per_account",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Journal(models.Model):
    class Kind(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        WITHDRAWAL = "withdrawal", "Withdrawal"
        TRADE = "trade", "Trade"
        FEE = "fee", "Fee"
        INTEREST = "interest", "Interest"
        SETTLEMENT = "settlement", "Settlement"
        FUNDING = "funding", "Funding"
        LIQUIDATION = "liquidation", "Liquidation"
        MARGIN_ALLOCATION = "margin_allocation", "Isolated margin allocation"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    account = models.ForeignKey(
        "accounts.Account",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="journals",
        db_index=False,  # the (account, -created_at) index serves it
        help_text="The customer account this journal is about, if any.",
    )
    memo = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=160, unique=True, null=True, blank=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return f"J{self.pk} {self.kind}"


class Posting(models.Model):
    journal = models.ForeignKey(Journal, on_delete=models.PROTECT, related_name="postings")
    ledger_account = models.ForeignKey(  # the (ledger_account, id) index serves it
        LedgerAccount, on_delete=models.PROTECT, related_name="postings", db_index=False
    )
    amount = models.DecimalField(**money_field_kwargs())
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["ledger_account", "id"])]
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="posting_amount_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.ledger_account.code} {fmt.usdc_signed(self.amount)}"
