"""Fees (trading.services.fees): the venue's schedule plus the broker commission."""

from decimal import Decimal

import pytest

from tests.trading.conftest import venue_get
from trading.models import FeePolicy, Fill, VenueFeeSchedule
from trading.services.fees import fee_policy_get, fees_for_fill, kalshi_fee

pytestmark = pytest.mark.django_db
D = Decimal


def schedule(code: str, **fields) -> VenueFeeSchedule:
    return VenueFeeSchedule.objects.create(policy=fee_policy_get(), venue=venue_get(code), **fields)


def test_kalshi_formula_hand_worked():
    # 0.07 × 100 × 0.60 × 0.40 = 1.68 exactly; 0.07 × 33 × 0.55 × 0.45 = 0.5717… → 0.58
    assert kalshi_fee(rate=D("0.07"), quantity=D(100), price=D("0.60")) == D("1.68")
    assert kalshi_fee(rate=D("0.07"), quantity=D(33), price=D("0.55")) == D("0.58")
    # One contract at 0.50: 0.0175 → 0.02 (ceil to the cent, never down)
    assert kalshi_fee(rate=D("0.07"), quantity=D(1), price=D("0.50")) == D("0.02")


def test_kalshi_schedule_plus_commission():
    FeePolicy.objects.update_or_create(pk=1, defaults={"broker_commission_bps": 10})
    schedule("kalshi", model=VenueFeeSchedule.Model.KALSHI, kalshi_rate=D("0.07"))
    fees = fees_for_fill(
        venue=venue_get("kalshi"),
        quantity=D(100),
        price=D("0.60"),
        notional=D("60"),
        liquidity=Fill.Liquidity.TAKER,
    )
    assert fees.venue_fee == D("1.68")
    assert fees.commission == D("0.06")  # 10 bps of 60
    assert fees.total == D("1.74")


def test_bps_schedule_taker_and_maker():
    FeePolicy.objects.update_or_create(pk=1, defaults={"broker_commission_bps": 0})
    schedule("polymarket", model=VenueFeeSchedule.Model.BPS, taker_bps=D(20), maker_bps=D(5))
    venue = venue_get("polymarket")
    args = {"venue": venue, "quantity": D(1000), "price": D("0.5"), "notional": D("500")}
    assert fees_for_fill(**args, liquidity=Fill.Liquidity.TAKER).venue_fee == D("1")
    assert fees_for_fill(**args, liquidity=Fill.Liquidity.MAKER).venue_fee == D("0.25")


def test_no_schedule_means_no_venue_fee_and_default_commission_rounds_up():
    fees = fees_for_fill(
        venue=venue_get("nowhere"),
        quantity=D("3"),
        price=D("0.333333"),
        notional=D("0.999999"),
        liquidity=Fill.Liquidity.TAKER,
    )
    assert fees.venue_fee == 0
    assert fees.commission == D("0.001")  # 10 bps of 0.999999 = 0.000999999… → up
