"""Market-data history in the database (PriceTick rows), for charts.

The feed keeps at most one row per listing per history bucket
(MARKETDATA_HISTORY_EVERY_SECONDS, aligned to the epoch so every listing's
rows share timestamps); the prune task deletes rows past the retention.
"""

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from trading.marketdata.quotes import Quote
from trading.models import PriceTick

PRUNE_BATCH_SIZE = 10_000


class PriceHistoryRecorder:
    """Downsamples quotes to at most one stored PriceTick per listing per bucket.

    Buckets are `every` seconds long and aligned to the epoch, so n seconds
    of quotes store at most n / every + 1 rows per listing. Memory holds one
    number per listing; `retain` forgets listings that stopped moving.
    """

    def __init__(self, every: float):
        if every <= 0:
            raise ValueError("The history interval must be positive.")
        self.every = every
        self._last_bucket: dict[str, int] = {}

    def record(self, quotes: Sequence[Quote], listing_ids: Mapping[str, int], now: float) -> int:
        """Insert, in one statement, a row for each quote whose bucket has none yet.

        Quotes of listings absent from `listing_ids` (key → Listing pk) are
        skipped. Returns the number of rows inserted.
        """
        bucket = math.floor(now / self.every)
        due = [
            quote
            for quote in quotes
            if quote.listing_key in listing_ids
            and self._last_bucket.get(quote.listing_key) != bucket
        ]
        if not due:
            return 0
        PriceTick.objects.bulk_create(
            PriceTick(
                listing_id=listing_ids[quote.listing_key],
                ts=quote.ts,
                is_binary=quote.is_binary,
                mark=quote.mark,
                bid=quote.bid,
                ask=quote.ask,
                twap=quote.twap,
            )
            for quote in due
        )
        for quote in due:
            self._last_bucket[quote.listing_key] = bucket
        return len(due)

    def retain(self, listing_keys: Collection[str]) -> None:
        """Forget every listing not in `listing_keys`."""
        for key in self._last_bucket.keys() - set(listing_keys):
            del self._last_bucket[key]


def price_ticks_prune(*, older_than: datetime, batch_size: int = PRUNE_BATCH_SIZE) -> int:
    """Delete every PriceTick with ts before `older_than`; returns how many.

    Deletes in batches of `batch_size` rows, each its own statement, so a
    large backlog never holds one long transaction. Idempotent: a second run
    with the same cutoff deletes nothing.
    """
    deleted = 0
    while True:
        ids = list(
            PriceTick.objects.filter(ts__lt=older_than)
            .order_by()
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        count, _ = PriceTick.objects.filter(pk__in=ids).delete()
        deleted += count
