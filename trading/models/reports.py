"""Reports a customer asks for (SPEC §7, §9): generated in the background, downloaded signed.

A Report row is the request and its outcome: `pending` until a worker claims
it, `running` while it streams rows into a file, then `ready` (the file is in
Django's default storage, `rows` counted) or `failed` (`error` says why).
Only `trading.services.reports` writes here.
"""

import secrets

from django.db import models
from django.utils import timezone


def new_report_id() -> str:
    return f"rep_{secrets.token_hex(8)}"


def report_upload_to(report: "Report", filename: str) -> str:
    return f"reports/{report.account.public_id}/{filename}"


class Report(models.Model):
    class Type(models.TextChoices):
        PERFORMANCE = "performance", "Performance (daily P&L, fees, volume, cash flows)"
        POSITIONS = "positions", "Positions (every fill that changed a position)"
        TRANSACTIONS = "transactions", "Transactions (cash ledger postings)"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSON = "json", "JSON"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    public_id = models.CharField(max_length=40, unique=True, default=new_report_id)
    account = models.ForeignKey(  # the (account, -created_at) index serves it
        "accounts.Account", on_delete=models.PROTECT, related_name="reports", db_index=False
    )
    type = models.CharField(max_length=16, choices=Type.choices)
    date_from = models.DateField(help_text="First day included (UTC).")
    date_to = models.DateField(help_text="Last day included (UTC).")
    format = models.CharField(max_length=4, choices=Format.choices, default=Format.CSV)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    file = models.FileField(upload_to=report_upload_to, max_length=255, blank=True)
    rows = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the run generating it."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(date_from__lte=models.F("date_to")),
                name="report_dates_ordered",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="ready") | ~models.Q(file=""),
                name="report_ready_has_file",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type} {self.date_from}..{self.date_to} {self.status}"
