"""The venues' request budgets, per credential: kept current and shown to ops.

Kalshi meters each key in tokens (a Read and a Write bucket; costs per
endpoint): `venue_budgets_refresh` re-reads every Kalshi key's tier and
costs daily (`trading.venue_budgets_refresh`; a key is also read as it is
linked), and `venue_budgets` reports every shared bucket (tokens left now,
rate, capacity, the last 429 and the last rate-limit warning) with the
credential it belongs to, for the ops page (Venues › Request budgets).
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from accounts.models import LinkedCredential
from trading.services.linked_accounts import credential_tracking_client
from trading.venues import kalshi
from trading.venues.ratelimit import token_buckets
from trading.venues.tracking import VenueError

logger = logging.getLogger(__name__)


def _kalshi_credentials() -> list[LinkedCredential]:
    return list(
        LinkedCredential.objects.filter(
            venue=LinkedCredential.Venue.KALSHI,
            status__in=[LinkedCredential.Status.ACTIVE, LinkedCredential.Status.FAILING],
        ).select_related("account")
    )


def venue_budgets_refresh() -> int:
    """Re-read the tier and endpoint costs of every Kalshi key in use (the broker's when
    it trades on Kalshi, each linked key); return how many were refreshed.

    No transaction is open and no lock held: each read is a venue call. A key
    Kalshi cannot answer for keeps its last budget (logged). Safe to run twice.
    """
    clients: list[kalshi.KalshiClient] = []
    if settings.VENUE_ADAPTERS.get("kalshi") == "kalshi" and settings.KALSHI_BROKER_KEY_ID:
        clients.append(kalshi.broker_client())
    for credential in _kalshi_credentials():
        try:
            tracker = credential_tracking_client(credential)
        except Exception:  # an unreadable sealed secret is the sync's to report
            logger.warning("venue budgets: credential %s cannot be opened", credential.pk)
            continue
        clients.append(tracker.client)
    refreshed = 0
    for client in clients:
        try:
            refreshed += client.budget_refresh() is not None
        except VenueError as exc:
            logger.warning("venue budgets: %s: %s", client.budget_key, exc)
    return refreshed


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """One shared bucket, as ops see it."""

    venue: str
    credential: str  # who spends it: "broker", a linked account, or the bucket's own name
    bucket: str  # read / write / a service
    tier: str
    tokens: float | None  # left now (None: idle, full)
    capacity: float | None
    rate: float | None  # refill per second
    last_429: datetime | None
    count_429: int
    last_warning: datetime | None
    count_warning: int


def venue_budgets() -> list[BudgetRow]:
    """Every shared request bucket with the credential it belongs to, by venue.

    Raises redis.RedisError when Redis cannot be read.
    """
    owners: dict[str, str] = {}
    if settings.KALSHI_BROKER_KEY_ID:
        owners[kalshi.budget_key_for(settings.KALSHI_BROKER_KEY_ID)] = "broker"
    for credential in _kalshi_credentials():
        owners[kalshi.budget_key_for(credential.identity)] = (
            f"linked {credential.identity_masked} ({credential.account.public_id})"
        )
    rows = []
    budgets: dict[str, kalshi.KalshiBudget | None] = {}  # a key's read and write share one
    for state in token_buckets():
        base, _, bucket = state.key.rpartition(":")
        venue = state.key.split(":", 1)[0]
        if venue == "kalshi" and base not in budgets:
            budgets[base] = kalshi.stored_budget(base)
        budget = budgets.get(base)
        rows.append(
            BudgetRow(
                venue=venue,
                credential=owners.get(base, base),
                bucket=bucket,
                tier=budget.tier if budget is not None else "",
                tokens=state.tokens,
                capacity=state.burst,
                rate=state.rate,
                last_429=state.last_429,
                count_429=state.count_429,
                last_warning=state.last_warning,
                count_warning=state.count_warning,
            )
        )
    return rows
