"""Celery tasks of the trading app: thin, idempotent wrappers over services."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from trading.marketdata.history import price_ticks_prune

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
