"""What a fill costs: the venue's fee (its VenueFeeSchedule) plus the broker's commission.

SPEC §6: every fill pays the venue's published fee and the ops-set broker
commission (FeePolicy.broker_commission_bps, on the fill's notional). Both
are charged to the customer's cash; the venue fee is paid through the
venue's settlement account, the commission is the broker's fee income.
Fees always round up to the micro-dollar (Kalshi's own formula to the cent),
never in the customer's favour.
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_UP, Decimal

from portal.money import ZERO, quantize_money
from portal.refdata import refdata_get
from trading.models import FeePolicy, Fill, Venue, VenueFeeSchedule

CENT = Decimal("0.01")
BPS_PER_UNIT = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class FeeBreakdown:
    venue_fee: Decimal
    commission: Decimal

    @property
    def total(self) -> Decimal:
        return self.venue_fee + self.commission


def fee_policy_get() -> FeePolicy:
    """The singleton fee policy (primary key 1), created with its defaults on first use.

    Cached per process (`portal.refdata`), like the venues' schedules: read it;
    to change it, read the row from the database and save it.
    """
    return refdata_get("fee_policy", 1, lambda: FeePolicy.objects.get_or_create(pk=1)[0])


def _venue_schedule(venue: Venue) -> VenueFeeSchedule | None:
    # Cached as a 1-tuple so that "no schedule" is remembered too.
    return refdata_get(
        "venue_fee_schedule",
        venue.pk,
        lambda: (VenueFeeSchedule.objects.filter(venue_id=venue.pk).first(),),
    )[0]


def ceil_to_cent(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_CEILING)


def kalshi_fee(*, rate: Decimal, quantity: Decimal, price: Decimal) -> Decimal:
    """Kalshi's trading fee: ceil_to_cent(rate × contracts × P × (1 − P))."""
    return ceil_to_cent(rate * quantity * price * (1 - price))


def _bps_of(notional: Decimal, bps: Decimal) -> Decimal:
    return quantize_money(abs(notional) * bps / BPS_PER_UNIT, rounding=ROUND_UP)


def venue_fee_for_fill(
    *, venue: Venue, quantity: Decimal, price: Decimal, notional: Decimal, liquidity: str
) -> Decimal:
    """The venue's own fee for one fill, from its VenueFeeSchedule (0 without one)."""
    schedule = _venue_schedule(venue)
    if schedule is None:
        return ZERO
    if schedule.model == VenueFeeSchedule.Model.KALSHI:
        return kalshi_fee(rate=schedule.kalshi_rate, quantity=quantity, price=price)
    bps = schedule.maker_bps if liquidity == Fill.Liquidity.MAKER else schedule.taker_bps
    return _bps_of(notional, bps)


def fees_for_fill(
    *, venue: Venue, quantity: Decimal, price: Decimal, notional: Decimal, liquidity: str
) -> FeeBreakdown:
    """The venue fee and the broker commission of one fill of `quantity` at `price`.

    `notional` is the fill's USDC notional (quantity × price as booked). A read
    of cached reference data, nothing written except the fee policy row on first use.
    """
    commission = _bps_of(notional, fee_policy_get().broker_commission_bps)
    venue_fee = venue_fee_for_fill(
        venue=venue, quantity=quantity, price=price, notional=notional, liquidity=liquidity
    )
    return FeeBreakdown(venue_fee=venue_fee, commission=commission)
