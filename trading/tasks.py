"""Celery tasks of the trading app: thin, idempotent wrappers over services."""

import logging
from datetime import date, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from portal.errors import DomainError
from trading import enqueue
from trading.engine import margin_sweep_full
from trading.marketdata.history import price_ticks_prune
from trading.models import Instrument
from trading.services.execute import order_send, orders_reconcile
from trading.services.interest import interest_accrue, interest_accrue_recent
from trading.services.linked_accounts import linked_account_sync, linked_credentials_due
from trading.services.liquidation import account_liquidate, liquidations_finish_due
from trading.services.margin_calls import margin_call_notify, margin_calls_remind
from trading.services.perps import funding_apply, funding_period_last_completed
from trading.services.reports import report_generate
from trading.services.risk_policy import risk_policy_preview_store
from trading.services.settlement import market_settle, markets_settle_due
from trading.services.venue_budgets import venue_budgets_refresh

logger = logging.getLogger(__name__)


@shared_task(name="trading.price_ticks_prune")
def price_ticks_prune_task() -> int:
    """Delete market-data history older than MARKETDATA_HISTORY_RETENTION_DAYS.

    Safe to run twice: a second run finds nothing left to delete.
    """
    cutoff = timezone.now() - timedelta(days=settings.MARKETDATA_HISTORY_RETENTION_DAYS)
    deleted = price_ticks_prune(older_than=cutoff)
    logger.info("Pruned %d price ticks older than %s", deleted, cutoff.isoformat())
    return deleted


@shared_task(
    name=enqueue.ACCOUNT_LIQUIDATE,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def account_liquidate_task(
    *, account_id: int, reason: str, margin_call_id: int | None = None
) -> int | None:
    """Liquidate an account the margin engine found under-margined; return the report's id.

    `reason` is "below_threshold" or "grace_expired". Safe to run twice or
    concurrently: the service re-checks under the account lock and does
    nothing once health is restored. Retried on database errors (deadlock,
    lost connection); the transaction rolled back, so a retry starts afresh.
    """
    liquidation = account_liquidate(
        account_id=account_id, reason=reason, margin_call_id=margin_call_id
    )
    return None if liquidation is None else liquidation.pk


@shared_task(name="trading.interest_accrue_daily")
def interest_accrue_daily_task(day: str | None = None) -> dict[str, Any]:
    """Charge interest on Used Margin for `day` (ISO date), or by default for
    yesterday (UTC) and each of the INTEREST_CATCH_UP_DAYS - 1 days before it that is
    not charged yet (`caught_up`: those days' charges), so a lost run is made up.

    Safe to run twice: each account is charged once per day (idempotency key).
    """
    if day:
        runs = [interest_accrue(day=date.fromisoformat(day))]
    else:
        yesterday = timezone.now().date() - timedelta(days=1)
        runs = interest_accrue_recent(until=yesterday, days=max(1, settings.INTEREST_CATCH_UP_DAYS))
    *earlier, last = runs
    caught_up = {run.day.isoformat(): run.charged for run in earlier if run.charged}
    if caught_up:
        logger.warning("Interest caught up for days a run missed: %s", caught_up)
    log = logger.warning if any(run.failed for run in runs) else logger.info
    log("Interest for %s: %s", last.day.isoformat(), last.as_dict())
    return last.as_dict() | ({"caught_up": caught_up} if caught_up else {})


@shared_task(
    name=enqueue.MARGIN_CALLS_NOTIFY,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
)
def margin_calls_notify_task(*, margin_call_ids: list[int]) -> int:
    """Notify the users of these margin calls (in-app + email); return how many this run did.

    Exactly once per call: safe to run twice (each call's `notified_at`,
    under its row lock; the email by the notification's `emailed_at`).
    """
    return sum(margin_call_notify(margin_call_id=call_id) for call_id in margin_call_ids)


@shared_task(name="trading.margin_calls_remind")
def margin_calls_remind_task() -> dict[str, list[int]]:
    """Remind open margin calls in escalating words and request liquidation for calls
    past the grace period.

    Safe to run twice: each reminder slot is sent once (dedupe key, call lock).
    """
    summary = margin_calls_remind()
    if summary.reminded or summary.grace_expired:
        logger.info("Margin call reminders: %s", summary)
    return {
        "reminded": summary.reminded,
        "resolved": summary.resolved,
        "grace_expired": summary.grace_expired,
    }


@shared_task(name="trading.margin_sweep_full")
def margin_sweep_full_task() -> dict[str, int]:
    """Evaluate every account in one vectorised pass; open and resolve margin calls,
    request liquidations and store due snapshots (no live pushes).

    The safety net behind the margin engine process, and its stand-in when it
    is down. Safe to run twice, and alongside the engine: margin calls are
    decided under each account's lock from the database.
    """
    accounts, stats = margin_sweep_full()
    return {
        "accounts": accounts,
        "calls_opened": stats.calls_opened,
        "calls_resolved": stats.calls_resolved,
        "liquidations_requested": stats.liquidations_requested,
        "snapshots": stats.snapshots,
    }


@shared_task(
    name=enqueue.MARKET_SETTLE,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
)
def market_settle_task(*, instrument_id: int) -> dict[str, int | str | bool]:
    """Pay out the positions of a resolved market into cash.

    Exactly once per position: safe to run twice or concurrently (each
    position settles under its locks only while still open, with an
    idempotency key on its journal). Retried on database errors.
    """
    return market_settle(instrument_id=instrument_id).as_dict()


@shared_task(name="trading.markets_settle_due")
def markets_settle_due_task() -> list[int]:
    """The safety net of settlement: resolved markets with positions still to pay out
    (trading.services.settlement.markets_settle_due). Safe to run twice."""
    settled = markets_settle_due()
    if settled:
        logger.warning("Settled positions left in resolved markets: %s", settled)
    return settled


@shared_task(
    name=enqueue.ORDER_SEND,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def order_send_task(*, order_id: int) -> str:
    """Send an order the broker submitted (a take-profit or stop-loss child) to its
    venue and book the answer; return its status. Safe to run twice or concurrently:
    the venue is idempotent by the order's id and the booking re-checks under the
    locks. Retried on database errors."""
    return order_send(order_id=order_id).status


@shared_task(name="trading.orders_reconcile")
def orders_reconcile_task() -> dict[str, list[str]]:
    """Settle orders a venue did not confirm in time from the venue's own record, then
    finish the liquidations whose sales have all left their venues.

    Safe to run twice or concurrently: each order is settled under its row
    lock, once (trading.services.execute.order_reconcile); each liquidation
    is finished under its account's lock, once.
    """
    summary = orders_reconcile()
    if summary.filled or summary.closed:
        logger.info("Orders reconciled: %s", summary.as_dict())
    finished = liquidations_finish_due()
    if finished:
        logger.info("Liquidations finished by the reconciler: %s", finished)
    return summary.as_dict()


@shared_task(name="trading.funding_apply_due")
def funding_apply_due_task() -> dict[str, dict[str, str | int]]:
    """Apply every open perp market's last completed funding period.

    Safe to run twice or late: each (market, account, period) is paid once.
    A market without a funding rate is skipped (logged) and caught up next run
    only while its period is still the last completed one.
    """
    now = timezone.now()
    runs: dict[str, dict[str, str | int]] = {}
    perps = Instrument.objects.filter(
        kind=Instrument.Kind.PERPETUAL, status=Instrument.Status.OPEN
    ).order_by("symbol")
    for instrument in perps:
        period_start = funding_period_last_completed(instrument=instrument, now=now)
        try:
            runs[instrument.symbol] = funding_apply(
                instrument=instrument, period_start=period_start
            ).as_dict()
        except DomainError as exc:
            logger.warning("Funding for %s skipped: %s", instrument.symbol, exc)
            runs[instrument.symbol] = {"error": exc.code}
    return runs


@shared_task(name=enqueue.REPORT_GENERATE)
def report_generate_task(*, report_id: int) -> str:
    """Generate a requested report into storage; return its status.

    Safe to run twice or concurrently: the service claims the report
    (pending → running, or running with a stale heartbeat) with one
    conditional update; a run that finds another live run raises ReportBusy
    (the outbox sends it again later), one that finds it finished does nothing.
    """
    return report_generate(report_id=report_id).status


@shared_task(name=enqueue.RISK_POLICY_PREVIEW)
def risk_policy_preview_task(*, token: str, payload: dict[str, str]) -> int:
    """Compute a risk-policy change's preview for the ops page; return the accounts it
    covers. Safe to run twice: a stored preview is not computed again."""
    return risk_policy_preview_store(token=token, payload=payload).accounts


@shared_task(name="trading.venue_budgets_refresh")
def venue_budgets_refresh_task() -> int:
    """Re-read every Kalshi key's tier and endpoint costs (daily); return how many.

    Safe to run twice: each run writes what the venue reports now.
    """
    return venue_budgets_refresh()


@shared_task(name="trading.linked_accounts_sync_due")
def linked_accounts_sync_due_task() -> int:
    """Queue a sync of every linked account whose next sync is due; return how many.

    Safe to run twice: a sync already running for an account skips (its lock),
    and a finished one has moved the account's next sync on.
    """
    due = linked_credentials_due()
    for credential_id in due:
        linked_account_sync_task.delay(credential_id=credential_id)
    return len(due)


@shared_task(name=enqueue.LINKED_ACCOUNT_SYNC)
def linked_account_sync_task(*, credential_id: int) -> dict[str, object]:
    """Sync one linked account from its venue (periodic, or "Sync now").

    Idempotent: the same venue state gives the same positions. Venue failures
    are recorded on the credential with a back-off (the service), not retried
    here.
    """
    outcome = linked_account_sync(credential_id=credential_id)
    return {
        "ok": outcome.ok,
        "skipped": outcome.skipped,
        "positions": outcome.positions,
        "unmapped": outcome.unmapped,
    }
