"""An order's status changes that every order path shares: setting a status with its
reason (`order_status_set`), and cancelling orders in bulk — an account's orders in a
market whose leverage it changed (`trading.services.perps.leverage_set`), every order
in a market that halted or resolved (`trading.services.settlement`).

It sits below the order path (orders → fills → perps) and imports none of it, so
perps and settlement cancel orders without an import cycle.
"""

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from trading.broadcasts import order_update_broadcast
from trading.models import Instrument, Order

# Orders that rest with us. An order at a venue (`submitted`, `pending`) is never
# cancelled here: the venue may have filled it, and its answer is booked when it comes.
RESTING = (Order.Status.OPEN, Order.Status.PARTIALLY_FILLED)


def order_status_set(order: Order, *, status: str, code: str = "", reason: str = "") -> None:
    """Give `order` `status`, with the refusal or cancellation `code` and `reason` (blank
    for a fill). The caller holds the order's row lock."""
    order.status = status
    order.reject_code = code
    order.reject_reason = reason[:255]
    order.updated_at = timezone.now()
    order.save(update_fields=["status", "reject_code", "reject_reason", "updated_at"])


def _orders_cancel(orders, *, reason: str) -> list[Order]:
    """Cancel the resting orders of `orders` (a queryset), row-locked; return them."""
    cancelled = list(orders.filter(status__in=RESTING).select_for_update(of=("self",)))
    for order in cancelled:
        order_status_set(order, status=Order.Status.CANCELLED, code="cancelled", reason=reason)
        order_update_broadcast(order=order)
    return cancelled


def orders_cancel_for_market(
    *, account: Account, instrument: Instrument, reason: str
) -> list[Order]:
    """Cancel the account's resting orders in one market (e.g. its leverage changed).

    Runs in the caller's transaction if any (the caller holds the account
    lock); returns the cancelled orders.
    """
    with transaction.atomic():
        return _orders_cancel(
            Order.objects.filter(account=account, instrument=instrument), reason=reason
        )


def orders_cancel_for_instrument(*, instrument: Instrument, reason: str) -> list[Order]:
    """Cancel every resting order in a market (it halted or resolved); return them."""
    with transaction.atomic():
        return _orders_cancel(Order.objects.filter(instrument=instrument), reason=reason)
