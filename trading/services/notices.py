"""The customer's notifications of trading events: order fills and linked-account syncs.

Each is written in the transaction of the event it tells of, through
`accounts.services.notifications` (in-app, and an email outbox item when it
is emailed), with a dedupe key, so a task run twice never tells twice. The
words go through `portal.format` (money, cents, quantities, times): no machine
codes, no eight-decimal prices.

Margin calls and liquidations write their own notifications
(`trading.services.margin_calls`, `liquidation`, `perps`); health alerts are
`trading.services.health_alerts`.
"""

from collections.abc import Sequence
from datetime import datetime

from accounts.credential_keys import CredentialKeyError
from accounts.models import LinkedCredential, Notification
from accounts.services.notifications import account_notify
from portal.format import contract, price, quantity, usdc, when
from portal.money import ZERO
from trading.models import Fill, Order
from trading.venues.tracking import (
    VenueAuthError,
    VenueBadResponse,
    VenueRateLimited,
    VenueUnavailable,
)

# --- Fills -----------------------------------------------------------------------------


def fills_text(order: Order, fills: Sequence[Fill]) -> tuple[str, str]:
    """Title and body for one fill event of `order` (the fills it booked at once).

    "Filled: bought 1,086.96 TRUMP-WIN YES at 46¢ (500.00 USDC, fees 1.25 USDC)."
    """
    filled = sum((fill.quantity for fill in fills), ZERO)
    notional = sum((fill.notional for fill in fills), ZERO)
    fees = sum((fill.venue_fee + fill.commission for fill in fills), ZERO)
    average = sum((fill.quantity * fill.price for fill in fills), ZERO) / filled
    binary = order.instrument.is_binary
    verb = "bought" if order.side == Order.Side.BUY else "sold"
    label = contract(order.instrument.symbol, order.outcome)
    done = order.quantity is None or order.filled_quantity >= order.quantity
    size = quantity(filled)
    if not done and order.quantity is not None:
        size = f"{size} of {quantity(order.quantity)}"
    what = (
        f"{verb} {size} {label} at {price(average, binary=binary)} "
        f"({usdc(notional)}, fees {usdc(fees)})"
    )
    if done:
        title = f"Order filled: {verb} {quantity(filled)} {label}"
        body = f"Filled: {what}."
    else:
        title = f"Order partly filled: {verb} {quantity(filled)} {label}"
        body = (
            f"Partly filled: {what}. In all {quantity(order.filled_quantity)} of "
            f"{quantity(order.quantity)} have filled so far."
        )
    if order.parent_id is not None:
        body += f" This order closed the position of order {order.parent.public_id} when its "
        body += "take-profit or stop-loss was reached."
    body += f" Order {order.public_id}, account {order.account.public_id}."
    return title, body


def fills_notify(
    *, order: Order, fills: Sequence[Fill], email: bool = False
) -> Notification | None:
    """Tell the order's owner about one fill event: the fills booked at once (several
    levels of a book, or the venue's one report), as one notification.

    In the caller's transaction (the one booking the fills), deduplicated on the
    order and its filled quantity after the event, which only grows: a booking
    task run twice tells once. `email`: also by email (fills the customer did not
    wait for: a resting order matched, a take-profit or stop-loss fired, a venue
    confirming late). None when nothing filled.
    """
    fills = [fill for fill in fills if fill.quantity > 0]
    if not fills:
        return None
    title, body = fills_text(order, fills)
    return account_notify(
        account=order.account,
        kind=Notification.Kind.TRADE,
        title=title,
        body=body,
        dedupe_key=f"fill:{order.public_id}:{order.filled_quantity.normalize():f}",
        email=email,
    )


# --- Linked account syncs ---------------------------------------------------------------


def sync_error_sentence(exc: Exception, *, venue: str) -> str:
    """Why a sync failed, as a sentence for the customer (never a code or a secret)."""
    if isinstance(exc, VenueAuthError):
        return (
            f"{venue} refused the credential: it may have been revoked, have expired or lack "
            "the read permission. Replace it on the Linked exchanges page."
        )
    if isinstance(exc, VenueRateLimited):
        return f"{venue} is limiting how often we may ask; we keep trying, more slowly."
    if isinstance(exc, VenueUnavailable):
        return f"{venue} could not be reached; we keep trying."
    if isinstance(exc, VenueBadResponse):
        return f"{venue} answered something we could not read; we keep trying."
    if isinstance(exc, CredentialKeyError):
        return (
            "We could not open the stored credential on our side. Replacing the credential "
            "on the Linked exchanges page fixes it."
        )
    return f"{venue} refused the request; we keep trying."


def linked_sync_failed_notify(
    *, credential: LinkedCredential, exc: Exception, now: datetime
) -> Notification:
    """Tell the owner that syncing a linked account has started failing (in-app and
    email), once per failing episode: the caller calls it on the episode's first failure,
    under the credential's row lock."""
    venue = credential.get_venue_display()
    account = credential.account
    since = (
        f" Positions and cash shown are from the last good sync, {when(credential.last_synced_at)}."
        if credential.last_synced_at
        else " No sync has succeeded yet, so no positions are shown."
    )
    return account_notify(
        account=account,
        kind=Notification.Kind.LINKED_SYNC,
        title=f"{venue} account {account.public_id} is not syncing",
        body=(
            f"We could not sync your {venue} account {account.public_id} "
            f"({credential.identity_masked}) at {when(now)}. "
            f"{sync_error_sentence(exc, venue=venue)}{since} We will tell you when it works again."
        ),
        dedupe_key=f"linked_sync:{credential.pk}:failing:{now.timestamp():.0f}",
        email=True,
    )


def linked_sync_recovered_notify(
    *, credential: LinkedCredential, failures: int, now: datetime
) -> Notification:
    """Tell the owner that a linked account syncs again after `failures` failed attempts
    (in-app and email): the end of the episode `linked_sync_failed_notify` opened."""
    venue = credential.get_venue_display()
    account = credential.account
    attempts = "attempt" if failures == 1 else "attempts"
    return account_notify(
        account=account,
        kind=Notification.Kind.LINKED_SYNC,
        title=f"{venue} account {account.public_id} is syncing again",
        body=(
            f"Your {venue} account {account.public_id} synced at {when(now)} after "
            f"{failures} failed {attempts}: its positions and cash are up to date again."
        ),
        dedupe_key=f"linked_sync:{credential.pk}:recovered:{now.timestamp():.0f}",
        email=True,
    )
