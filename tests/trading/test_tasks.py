"""Pruning old market-data history."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from trading.marketdata.history import price_ticks_prune
from trading.models import PriceTick
from trading.tasks import price_ticks_prune_task


def tick(listing, age: timedelta) -> PriceTick:
    price = Decimal("0.5")
    return PriceTick.objects.create(
        listing=listing,
        ts=timezone.now() - age,
        is_binary=True,
        mark=price,
        bid=price,
        ask=price,
        twap=price,
    )


def test_prune_deletes_only_ticks_past_retention_and_is_safe_twice(markets, settings):
    settings.MARKETDATA_HISTORY_RETENTION_DAYS = 30
    listing = markets.listing("TRUMP-WIN@kalshi")
    old = [tick(listing, timedelta(days=days)) for days in (400, 31)]
    kept = [tick(listing, timedelta(days=29, hours=23)), tick(listing, timedelta(0))]
    assert price_ticks_prune_task.delay().get() == 2
    assert set(PriceTick.objects.values_list("pk", flat=True)) == {t.pk for t in kept}
    assert price_ticks_prune_task.delay().get() == 0
    assert PriceTick.objects.count() == 2
    assert not PriceTick.objects.filter(pk__in=[t.pk for t in old]).exists()


def test_prune_works_through_a_backlog_in_batches(markets):
    listing = markets.listing("BTC-PERP@leviathan")
    for minutes in range(7):
        tick(listing, timedelta(days=90, minutes=minutes))
    recent = tick(listing, timedelta(hours=1))
    assert price_ticks_prune(older_than=timezone.now() - timedelta(days=1), batch_size=3) == 7
    assert list(PriceTick.objects.all()) == [recent]
