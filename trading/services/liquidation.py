"""The liquidation engine (SPEC §4): sell an under-margined account back to health.

When Margin Health is below the liquidation threshold, or a margin call has
stayed open past the grace period, `account_liquidate` sells the account's
binary positions, least-contributing first, until health is back at the
initial margin requirement (1.2 by default). Every sale goes through the one
fill path (`binary_fill_apply`, journal kind LIQUIDATION), and the report
(`Liquidation`) and the owner's outbox notification are written in the same
transaction.

Each position is priced against one snapshot of its order books, read through
the venue adapters (`order_book`) before the account lock is taken (no venue
call ever waits under the lock) and walked by the same `book_walk` as
`VenueAdapter.fill_market`, so the projected health that sizes the last,
partial sale and the fill that is booked agree to the micro-dollar. The
walked book is the fill: liquidation sales are booked at it, not sent as
venue orders.
"""

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.db import transaction

from accounts.models import Account, Journal, Notification
from accounts.services.notifications import account_notify
from portal import format as fmt
from portal import metrics
from portal.errors import DomainError, InvalidParams, NotFound
from portal.money import ZERO, quantize_money
from trading import margin
from trading.broadcasts import desk_changed_broadcast
from trading.marketdata.quotes import OrderBook, Outcome
from trading.models import Instrument, Liquidation, Listing, MarginCall, Position, RiskPolicy
from trading.selectors import (
    Portfolio,
    margin_params_get,
    portfolio_load,
    ratio_decimal,
    risk_policy_get,
)
from trading.services.positions import Side, binary_fill_apply
from trading.services.simulation import sells_at_venue
from trading.venues import venue_adapter
from trading.venues.base import QUANTITY_QUANTUM, FillEstimate, book_walk

logger = logging.getLogger(__name__)


VenueBook = tuple[Listing, OrderBook]
Route = list[tuple[Listing, FillEstimate]]


def account_liquidate(
    *, account_id: int, reason: str, margin_call_id: int | None = None
) -> Liquidation | None:
    """Liquidate the account if it still needs it; return the report, or None.

    Locks the account row, then its open margin call, for one transaction,
    and re-reads everything under the lock: cash from the account row,
    positions from the database, prices from the market-data store, evaluated
    with the margin engine's maths (`portfolio_load` + `Portfolio.evaluate`).

    Triggers (`reason` is the one the caller saw; if only the other holds
    now, that one is recorded):
    - `below_threshold`: health below the policy's liquidation threshold;
    - `grace_expired`: the account's open margin call has been open for the
      grace period or longer and health is still below maintenance.
    `margin_call_id` names the call the caller saw; the account's open call
    is the one that counts (a call resolved meanwhile is not liquidated on).

    When triggered, sells positions in order of contribution to Adjusted
    Equity (smallest first; ties: smaller value first), each whole except the
    one that restores the initial margin requirement, which is sold only as
    far as needed (bisection on projected health, in whole quantity steps).
    Each position is sold on the listing with the best bid whose book can
    take the whole sale; if none can, down the listings in best-bid order.
    Positions in halted or resolved markets, or without a book, are skipped, and
    contracts the account's sells at a venue hold are never sold again.
    If health is still below the requirement with nothing more that can be
    sold, the report says SHORTFALL and the account keeps its debt. The open margin
    call is marked LIQUIDATED if health is back at maintenance, else left
    open. After commit, the notification's email is queued.

    Never on a stale price: an account a position of which is priced with a
    price older than the risk policy allows is left alone (None; logged).
    Idempotent and safe to run concurrently: a second run finds health
    restored (or nothing it can sell) and returns None without writing.
    Raises InvalidParams for an unknown reason, NotFound for an unknown
    account.
    """
    if reason not in Liquidation.Reason.values:
        raise InvalidParams(f"Unknown liquidation reason {reason!r}.")
    books = _account_books(account_id)
    with transaction.atomic():
        try:
            account = Account.objects.select_for_update().get(pk=account_id)
        except Account.DoesNotExist as exc:
            raise NotFound(f"No account {account_id}.") from exc
        call = (
            MarginCall.objects.select_for_update()
            .filter(account=account, status=MarginCall.Status.OPEN)
            .first()
        )
        if margin_call_id is not None and (call is None or call.pk != margin_call_id):
            logger.info(
                "liquidation: margin call %s of account %s is no longer open",
                margin_call_id,
                account.pk,
            )
        policy = risk_policy_get()
        params = margin_params_get(policy)
        portfolio = portfolio_load(accounts=[account])
        stale, since = portfolio.stale_prices()
        if stale[0]:
            logger.warning(
                "liquidation of account %s deferred: its prices are stale (oldest from %s); "
                "the margin engine asks again once they are live",
                account.pk,
                "never" if since[0] is None else since[0].isoformat(),
            )
            return None
        # One instant for the whole decision: haircuts grow as expiry nears, so
        # health must be judged before and after at the same `now`.
        now = portfolio.at
        health_before = float(portfolio.evaluate(params).health[0])
        cause = _liquidation_cause(
            requested=reason,
            health=health_before,
            call=call,
            params=params,
            grace_cutoff=now - timedelta(hours=policy.grace_period_hours),
        )
        if cause is None:
            return None
        cash_before = account.cash_balance
        steps = _sell_to_target(
            account=account, portfolio=portfolio, params=params, cause=cause, books=books
        )
        if not steps:
            logger.warning(
                "liquidation: account %s is due (%s, health %.4f) but no position can be sold",
                account.pk,
                cause,
                health_before,
            )
            return None

        reloaded = replace(portfolio_load(accounts=[account]), at=now)
        health_after = float(reloaded.evaluate(params).health[0])
        liquidation = Liquidation.objects.create(
            account=account,
            margin_call=call,
            reason=cause,
            status=(
                Liquidation.Status.COMPLETED
                if health_after >= params.initial
                else Liquidation.Status.SHORTFALL
            ),
            created_at=now,
            health_before=ratio_decimal(health_before),
            health_after=ratio_decimal(health_after),
            used_margin_before=max(ZERO, -cash_before),
            used_margin_after=max(ZERO, -account.cash_balance),
            proceeds=sum((Decimal(step["proceeds"]) for step in steps), ZERO),
            steps=steps,
        )
        if call is not None and health_after >= params.maintenance:
            call.status = MarginCall.Status.LIQUIDATED
            call.resolved_at = now
            call.save(update_fields=["status", "resolved_at"])
            metrics.count_on_commit(metrics.MARGIN_CALLS, event="liquidated")
        metrics.count_on_commit(metrics.LIQUIDATIONS, kind="account", status=liquidation.status)
        account_notify(
            account=account,
            kind=Notification.Kind.LIQUIDATION,
            email=True,
            dedupe_key=f"liquidation:{liquidation.pk}",
            **_notification_text(liquidation, account=account, policy=policy),
        )
        desk_changed_broadcast(reason="liquidation")
    return liquidation


def _liquidation_cause(
    *,
    requested: str,
    health: float,
    call: MarginCall | None,
    params: margin.MarginParams,
    grace_cutoff: datetime,
) -> str | None:
    """Which trigger holds now: the requested one if it does, else the other, else None.

    A call opened at or before `grace_cutoff` has run out its grace period.
    """
    holds = {
        Liquidation.Reason.BELOW_THRESHOLD: health < params.liquidation,
        Liquidation.Reason.GRACE_EXPIRED: (
            call is not None and call.opened_at <= grace_cutoff and health < params.maintenance
        ),
    }
    for cause in sorted(holds, key=lambda cause: cause != requested):
        if holds[cause]:
            return cause
    return None


def _account_books(account_id: int) -> dict[tuple[int, str], list[VenueBook]]:
    """The order books of every contract the account holds, by (instrument id,
    outcome), read before any lock is taken (see `_venue_books`)."""
    held = (
        Position.objects.filter(account_id=account_id, quantity__gt=0)
        .exclude(outcome="")
        .values_list("instrument_id", "outcome")
    )
    keys = set(held)
    listings: dict[int, list[Listing]] = {}
    for listing in Listing.objects.filter(
        instrument_id__in={instrument_id for instrument_id, _ in keys},
        is_active=True,
        venue__is_active=True,
    ).select_related("instrument", "venue"):
        listings.setdefault(listing.instrument_id, []).append(listing)
    return {
        (instrument_id, outcome): _venue_books(
            listings.get(instrument_id, []), outcome=Outcome(outcome)
        )
        for instrument_id, outcome in keys
    }


def _sell_to_target(
    *,
    account: Account,
    portfolio: Portfolio,
    params: margin.MarginParams,
    cause: str,
    books: dict[tuple[int, str], list[VenueBook]],
) -> list[dict[str, str]]:
    """Sell positions until health reaches `params.initial`; return the steps.

    `account` is locked and `portfolio` its freshly loaded margin inputs;
    both are kept current as fills land (cash from the ledger, quantities
    from the positions), valued at the prices loaded under the lock, and
    sold into `books` (read before the lock). Each position is considered
    once, so this ends after at most one pass.
    """
    instruments = Instrument.objects.in_bulk({c.instrument_id for c in portfolio.contracts})
    # Contracts the account's sells at a venue hold are sold already: never twice.
    at_venue = sells_at_venue(account)
    considered: set[int] = set()
    steps: list[dict[str, str]] = []
    while True:
        result = portfolio.evaluate(params, per_position=True)
        if result.health[0] >= params.initial:
            break
        candidates = [i for i in range(len(portfolio.position_ids)) if i not in considered]
        if not candidates:
            break
        i = min(
            candidates,
            key=lambda k: (result.contribution[k], result.value[k], portfolio.position_ids[k]),
        )
        considered.add(i)
        contract = portfolio.contracts[portfolio.position_contract[i]]
        instrument = instruments[contract.instrument_id]
        free = portfolio.quantity_exact[i] - at_venue.get((instrument.pk, contract.outcome), ZERO)
        if instrument.status != Instrument.Status.OPEN or free <= ZERO:
            continue
        route = _sale_route(
            account=account,
            portfolio=portfolio,
            index=i,
            free=free,
            books=books.get((instrument.pk, contract.outcome), []),
            params=params,
        )
        for listing, estimate in route:
            sold = estimate.quantity.quantize(QUANTITY_QUANTUM)  # book sizes may be whole
            fill = binary_fill_apply(
                account=account,
                instrument=instrument,
                outcome=contract.outcome,
                side=Side.SELL,
                quantity=sold,
                price=estimate.average_price,
                journal_kind=Journal.Kind.LIQUIDATION,
                memo=(
                    f"Liquidation ({Liquidation.Reason(cause).label.lower()}): "
                    + fmt.trade(
                        Side.SELL,
                        sold,
                        instrument.symbol,
                        estimate.average_price,
                        binary=True,
                        outcome=contract.outcome,
                        venue=listing.venue.name,
                    )
                ),
            )
            portfolio.cash[0] = float(account.cash_balance)
            portfolio.quantity[i] = float(fill.position.quantity)
            portfolio.quantity_exact[i] = fill.position.quantity
            steps.append(
                {
                    "symbol": instrument.symbol,
                    "outcome": contract.outcome,
                    "venue": listing.venue.code,
                    "quantity": str(sold),
                    "average_price": str(estimate.average_price),
                    "proceeds": str(fill.notional),
                    "remaining": str(fill.position.quantity),
                    "journal_id": str(fill.journal.pk),
                }
            )
    return steps


def _venue_books(listings: list[Listing], *, outcome: Outcome) -> list[VenueBook]:
    """The order books of `listings` for `outcome` that have bids, best bid first.

    A listing whose venue has no usable quote (or no adapter) is left out.
    """
    books = []
    for listing in listings:
        try:
            book = venue_adapter(listing.venue.code).order_book(listing, outcome=outcome)
        except DomainError as exc:
            logger.warning("liquidation: no order book for %s: %s", listing.key, exc)
            continue
        if book.bids:
            books.append((listing, book))
    books.sort(key=lambda venue_book: venue_book[1].bids[0].price, reverse=True)
    return books


def _route(books: list[VenueBook], quantity: Decimal) -> Route:
    """Where selling `quantity` fills: the best-bid listing whose book takes it
    all, else as much as each book takes, in best-bid order."""
    if quantity <= ZERO:
        return []
    for listing, book in books:
        estimate = book_walk(book, Side.SELL, quantity=quantity)
        if estimate.complete:
            return [(listing, estimate)]
    route: Route = []
    remaining = quantity
    for listing, book in books:
        estimate = book_walk(book, Side.SELL, quantity=remaining)
        if estimate.quantity > ZERO:
            route.append((listing, estimate))
            remaining -= estimate.quantity
        if remaining == ZERO:
            break
    return route


def _booked_proceeds(estimate: FillEstimate) -> Decimal:
    """The cash a fill of `estimate` books: rounded down, as binary_fill_apply does."""
    return quantize_money(estimate.quantity * estimate.average_price, rounding=ROUND_DOWN)


def _projected_health(
    *,
    account: Account,
    portfolio: Portfolio,
    index: int,
    route: Route,
    params: margin.MarginParams,
) -> float:
    """Margin Health after the sales of `route` from position `index`."""
    sold = sum((estimate.quantity for _, estimate in route), ZERO)
    proceeds = sum((_booked_proceeds(estimate) for _, estimate in route), ZERO)
    quantity = portfolio.quantity.copy()
    quantity[index] = float(portfolio.quantity_exact[index] - sold)
    cash = portfolio.cash.copy()
    cash[0] = float(account.cash_balance + proceeds)
    return float(replace(portfolio, quantity=quantity, cash=cash).evaluate(params).health[0])


def _sale_route(
    *,
    account: Account,
    portfolio: Portfolio,
    index: int,
    free: Decimal,
    books: list[VenueBook],
    params: margin.MarginParams,
) -> Route:
    """The sales of position `index`: all it may sell (`free`, the contracts no
    sell at a venue holds) if that does not restore the initial requirement, else
    the fewest quantity steps that do.

    Bisection over whole quantity steps keeps `low` below the target and
    `high` at or above it; `high` is the answer, so the target is met.
    """

    def health_after(route: Route) -> float:
        return _projected_health(
            account=account, portfolio=portfolio, index=index, route=route, params=params
        )

    whole = _route(books, free)
    if not whole or health_after(whole) < params.initial:
        return whole
    low, high = 0, int(free / QUANTITY_QUANTUM)
    while high - low > 1:
        middle = (low + high) // 2
        if health_after(_route(books, middle * QUANTITY_QUANTUM)) >= params.initial:
            high = middle
        else:
            low = middle
    return _route(books, high * QUANTITY_QUANTUM)


def _notification_text(
    liquidation: Liquidation, *, account: Account, policy: RiskPolicy
) -> dict[str, str]:
    """The owner's notification: why, what was sold, where the account stands."""
    if liquidation.reason == Liquidation.Reason.BELOW_THRESHOLD:
        why = (
            f"Margin Health fell to {_shown(liquidation.health_before)}, below the "
            f"liquidation threshold of {policy.liquidation_threshold:.2f}."
        )
    else:
        why = (
            f"Your margin call stayed open for {policy.grace_period_hours} hours "
            f"(Margin Health {_shown(liquidation.health_before)})."
        )
    sold = "; ".join(
        f"{fmt.quantity(step['quantity'])} {step['symbol']} {step['outcome'].upper()} "
        f"at {fmt.cents(step['average_price'])} on {str(step['venue']).capitalize()}"
        for step in liquidation.steps
    )
    health = (
        "unbounded (no borrowing)"
        if liquidation.health_after is None
        else _shown(liquidation.health_after)
    )
    where = (
        f"Margin Health is now {health}; Used Margin is {fmt.usdc(liquidation.used_margin_after)}."
    )
    if liquidation.status == Liquidation.Status.SHORTFALL:
        title = f"Positions in {account.public_id} liquidated: debt remains"
        where += " Selling what could be sold did not restore your margin: please deposit funds."
    else:
        title = f"Positions in {account.public_id} liquidated"
    body = (
        f"{why} To restore your margin we sold: {sold}, raising "
        f"{fmt.usdc(liquidation.proceeds)}. {where}"
    )
    return {"title": title, "body": body}


def _shown(health: Decimal) -> Decimal:
    """Health to two places, cut (not rounded) so 0.899 never reads as the 0.90 threshold."""
    return health.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
