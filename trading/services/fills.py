"""The one fill path: every fill of an Order (execute, resting limit orders,
reconciliation of orders a venue confirmed late) goes through `order_fill_apply`.

It prices the fill's fees (`trading.services.fees`), changes the position and
posts the trade journal through the instrument's own fill function (binary:
`trading.services.positions.binary_fill_apply`; perpetual:
`trading.services.perps.perp_fill_apply`), records the Fill linked to that
journal and rolls the Order's filled quantity, notional, average price, fees
and status forward, all in the caller's transaction under its account lock.
After commit, the fill and the position it left are pushed to the account's
live streams and the fill goes out as an anonymized public trade.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Journal
from portal import format as fmt
from portal.errors import InvalidParams
from portal.money import ZERO, quantize_money
from trading.broadcasts import fill_broadcast
from trading.marketdata.quotes import quantize_price
from trading.models import Fill, Instrument, Order, Position, Venue
from trading.services.fees import fees_for_fill
from trading.services.perps import perp_fill_apply
from trading.services.positions import binary_fill_apply


@dataclass(frozen=True, slots=True)
class _Applied:
    position: Position
    journal: Journal
    notional: Decimal
    realized_pnl: Decimal


def fill_notional(*, side: str, quantity: Decimal, price: Decimal) -> Decimal:
    """A fill's USDC notional as the ledger books it: rounded to the micro-dollar,
    up for a buy and down for a sell (never in the customer's favour)."""
    rounding = ROUND_UP if side == Order.Side.BUY else ROUND_DOWN
    return quantize_money(quantity * price, rounding=rounding)


def taker_fee(*, venue: Venue, side: str, quantity: Decimal, price: Decimal) -> Decimal:
    """A taker fill's total fee on `venue` (its schedule plus the broker commission), on
    the notional the ledger books (`fill_notional`): what `order_fill_apply` charges."""
    notional = fill_notional(side=side, quantity=quantity, price=price)
    return fees_for_fill(
        venue=venue,
        quantity=quantity,
        price=price,
        notional=notional,
        liquidity=Fill.Liquidity.TAKER,
    ).total


def _journal_kind(order: Order) -> Journal.Kind:
    """A liquidation's fills (an account's sales, an isolated perp close) post
    LIQUIDATION journals; every other fill a TRADE."""
    if order.liquidation_id is not None or order.isolated_liquidation:
        return Journal.Kind.LIQUIDATION
    return Journal.Kind.TRADE


def _memo_prefix(order: Order) -> str:
    if order.isolated_liquidation:
        return "Isolated liquidation: "
    if order.liquidation_id is not None:
        return f"Liquidation ({order.liquidation.get_reason_display().lower()}): "
    return ""


def _position_apply(
    *,
    order: Order,
    account: Account,
    instrument: Instrument,
    quantity: Decimal,
    price: Decimal,
    venue_fee: Decimal,
    commission: Decimal,
    memo: str,
    account_deltas: Mapping[str, Decimal] | None,
) -> _Applied:
    if instrument.kind == Instrument.Kind.BINARY:
        budget = None
        if order.notional_usdc is not None and order.side == Order.Side.BUY:
            budget = max(ZERO, order.notional_usdc - order.filled_notional)
        result = binary_fill_apply(
            account=account,
            instrument=instrument,
            outcome=order.outcome,
            side=order.side,
            quantity=quantity,
            price=price,
            venue_fee=venue_fee,
            commission=commission,
            journal_kind=_journal_kind(order),
            memo=memo,
            notional_cap=budget,
            account_deltas=account_deltas,
        )
    else:
        result = perp_fill_apply(
            account=account,
            instrument=instrument,
            side=order.side,
            quantity=quantity,
            price=price,
            venue_fee=venue_fee,
            commission=commission,
            leverage=order.leverage,
            memo=memo,
            account_deltas=account_deltas,
            journal_kind=_journal_kind(order),
        )
    return _Applied(
        position=result.position,
        journal=result.journal,
        notional=result.notional,
        realized_pnl=result.realized_pnl,
    )


def order_fill_apply(
    *,
    order: Order,
    account: Account,
    quantity: Decimal,
    price: Decimal,
    venue: Venue,
    liquidity: str = Fill.Liquidity.TAKER,
    venue_fill_id: str = "",
    account_deltas: Mapping[str, Decimal] | None = None,
) -> Fill:
    """Record one fill of `order`: fees, position, journal, the Fill row and the Order.

    The caller runs inside transaction.atomic() holding `account` locked
    (select_for_update, freshly read) and `order` read under that lock (or its
    own row lock), or not saved yet (execute: the Order is inserted with its
    fill, one INSERT); it has done the pre-trade checks for a new order (a
    late venue confirmation is booked without them: the venue has filled). Fees:
    the venue's schedule plus the broker commission on the fill's notional.
    A market (notional) order is filled by its fill, and a notional buy
    never books more than its notional; a quantity order is filled when
    its filled quantity reaches its quantity, partially filled before.
    `account_deltas`: other columns of the account's row the caller changes
    with this fill (the order's reservation released), written in the one
    UPDATE of the row that books the cash.

    Raises InvalidParams for a non-positive quantity, an order of another
    account or one already filled, cancelled or rejected, and whatever the
    position's fill function raises (a sale beyond the position). A
    `venue_fill_id` already recorded for `venue` raises IntegrityError
    (the Fill's unique constraint): nothing is ever filled twice.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("order_fill_apply runs inside the caller's transaction.")
    if order.account_id != account.pk:
        raise InvalidParams(f"Order {order.public_id} is not an order of {account.public_id}.")
    if order.status not in Order.ACTIVE_STATUSES:
        raise InvalidParams(f"Order {order.public_id} is {order.status}: it cannot fill.")
    if quantity <= ZERO:
        raise InvalidParams("A fill needs a positive quantity.")
    instrument = order.instrument
    notional = fill_notional(side=order.side, quantity=quantity, price=price)
    fees = fees_for_fill(
        venue=venue, quantity=quantity, price=price, notional=notional, liquidity=liquidity
    )
    memo = fmt.trade(
        order.side,
        quantity,
        instrument.symbol,
        price,
        binary=instrument.is_binary,
        outcome=order.outcome or None,
        venue=venue.name,
    )
    applied = _position_apply(
        order=order,
        account=account,
        instrument=instrument,
        quantity=quantity,
        price=price,
        venue_fee=fees.venue_fee,
        commission=fees.commission,
        memo=f"{order.public_id}: {_memo_prefix(order)}{memo}",
        account_deltas=account_deltas,
    )
    now = timezone.now()
    held_value = order.filled_quantity * (order.average_fill_price or ZERO)
    order.filled_quantity += quantity
    order.filled_notional += applied.notional
    order.average_fill_price = quantize_price(
        (held_value + quantity * price) / order.filled_quantity
    )
    order.fees += fees.total
    order.venue = order.venue or venue
    if order.quantity is None or order.filled_quantity >= order.quantity:
        order.status = Order.Status.FILLED
    else:
        order.status = Order.Status.PARTIALLY_FILLED
    order.updated_at = now
    if order._state.adding:
        order.save()
    else:
        order.save(
            update_fields=[
                "venue_order_id",
                "filled_quantity",
                "filled_notional",
                "average_fill_price",
                "fees",
                "venue",
                "status",
                "reserved_cash",  # a reservation the caller released with this fill
                "reserved_quantity",
                "updated_at",
            ]
        )
    fill = Fill.objects.create(
        order=order,
        account=account,
        instrument=instrument,
        outcome=order.outcome,
        side=order.side,
        quantity=quantity,
        price=price,
        notional=applied.notional,
        venue_fee=fees.venue_fee,
        commission=fees.commission,
        realized_pnl=applied.realized_pnl,
        liquidity=liquidity,
        venue=venue,
        venue_fill_id=venue_fill_id,
        journal=applied.journal,
        created_at=now,
    )
    fill_broadcast(fill=fill, order=order, position=applied.position)
    return fill
