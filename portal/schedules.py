"""Default periodic schedules (django-celery-beat), installed once, then ops-owned.

`manage.py install_schedules` creates any missing schedule; it never
overwrites one ops have edited or disabled in the admin. Schedules of tasks
that no longer exist (RETIRED_TASKS) are removed.
"""

from dataclasses import dataclass

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask


@dataclass(frozen=True)
class DefaultSchedule:
    name: str
    task: str
    every_seconds: int


DEFAULT_SCHEDULES = [
    DefaultSchedule("Ledger reconciliation", "accounts.ledger_reconcile", 3600),
    DefaultSchedule("Prune old price history", "trading.price_ticks_prune", 86400),
    DefaultSchedule("Margin sweep (safety net)", "trading.margin_sweep_full", 300),
    DefaultSchedule("Margin call reminders and grace period", "trading.margin_calls_remind", 300),
    DefaultSchedule("Outbox dispatcher", "accounts.outbox_dispatch", 5),
    DefaultSchedule("Daily interest accrual", "trading.interest_accrue_daily", 86400),
    DefaultSchedule("Perpetual funding payments", "trading.funding_apply_due", 600),
    DefaultSchedule("Reconcile orders pending at venues", "trading.orders_reconcile", 30),
    DefaultSchedule("Settle resolved markets (safety net)", "trading.markets_settle_due", 300),
    DefaultSchedule("Sync linked exchange accounts", "trading.linked_accounts_sync_due", 15),
    DefaultSchedule("Refresh venue request budgets", "trading.venue_budgets_refresh", 86400),
    DefaultSchedule("Apply approved four-eyes changes", "accounts.approvals_apply_due", 60),
]


# Tasks whose work moved elsewhere: their old schedules are deleted.
RETIRED_TASKS = [
    # The outbox (accounts.outbox_dispatch) re-sends emails whose task was lost.
    "accounts.notification_emails_flush",
]


def schedules_install() -> list[str]:
    """Create missing default schedules, remove retired ones; return the names created."""
    created = []
    with transaction.atomic():
        PeriodicTask.objects.filter(task__in=RETIRED_TASKS).delete()
        for schedule in DEFAULT_SCHEDULES:
            if PeriodicTask.objects.filter(name=schedule.name).exists():
                continue
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=schedule.every_seconds, period=IntervalSchedule.SECONDS
            )
            PeriodicTask.objects.create(name=schedule.name, task=schedule.task, interval=interval)
            created.append(schedule.name)
    return created
