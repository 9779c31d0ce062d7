"""The liquidation engine (SPEC §4): sell an under-margined account back to health.

When Margin Health is below the liquidation threshold, or a margin call has
stayed open past the grace period, `account_liquidate` sells the account's
binary positions, least-contributing first, until health is back at the
initial margin requirement (1.2 by default). The sales are market orders at
the venues, in the three steps of every order (`trading.services.execute`):

1. Submit, in one transaction under the account lock: the decision (priced
   against one snapshot of the order books, read through the venue adapters
   before the lock and walked by the same `book_walk` the venues' fills
   follow, fees included, so the projected health that sizes the last,
   partial sale is what the fills give), the `Liquidation` report
   (`selling`) and one `submitted` sell per venue, each reserving the
   contracts it sells; commit.
2. Send each sale to its venue (`order_send`), outside any transaction or
   lock, and book its answer through the one fill path (journal kind
   LIQUIDATION).
3. Finish (`liquidation_finish`), under the account lock once no sale is at
   a venue: the report's sales, proceeds and health after, its status
   (COMPLETED, SHORTFALL, or UNFILLED when the venues filled none), the
   margin call marked LIQUIDATED when health is back at maintenance, and the
   owner's notification (emailed after commit).

A process that dies between the steps strands nothing: a new run for the
account resumes its `selling` liquidation (one per account, backed by a
unique constraint) instead of starting another, the reconciler sends and
books its sales, and `liquidations_finish_due` (after every reconciliation)
finishes it.
"""

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from accounts.models import Account, Notification
from accounts.services.notifications import account_notify
from portal import format as fmt
from portal import metrics
from portal.errors import DomainError, InvalidParams, NotFound
from portal.money import ZERO
from trading import margin
from trading.broadcasts import desk_changed_broadcast
from trading.marketdata.quotes import OrderBook, Outcome
from trading.models import (
    Fill,
    Instrument,
    Liquidation,
    Listing,
    MarginCall,
    Order,
    Position,
    RiskPolicy,
)
from trading.selectors import (
    Portfolio,
    margin_params_get,
    portfolio_load,
    ratio_decimal,
    risk_policy_get,
)
from trading.services.execute import order_send, reservation_change
from trading.services.fills import fill_notional, taker_fee
from trading.services.positions import Side
from trading.services.simulation import sells_at_venue
from trading.venues import venue_adapter
from trading.venues.base import QUANTITY_QUANTUM, FillEstimate, book_walk

logger = logging.getLogger(__name__)

# A liquidation the venues filled nothing of is not tried again for this long
# (the margin engine asks on every tick; a venue refusing every sale would
# otherwise start a new one each time).
UNFILLED_RETRY_AFTER = timedelta(seconds=60)

VenueBook = tuple[Listing, OrderBook]
Route = list[tuple[Listing, FillEstimate]]


@dataclass(frozen=True, slots=True)
class _Sale:
    instrument: Instrument
    outcome: str
    listing: Listing
    estimate: FillEstimate


def account_liquidate(
    *, account_id: int, reason: str, margin_call_id: int | None = None
) -> Liquidation | None:
    """Liquidate the account if it still needs it; return the report, or None.

    Runs the module docstring's steps. The submit locks the account row,
    then its open margin call, and re-reads everything under the lock: cash
    from the account row, positions from the database, prices from the
    market-data store, evaluated with the margin engine's maths
    (`portfolio_load` + `Portfolio.evaluate`).

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
    far as needed (bisection on projected health, fees included, in whole
    quantity steps). Each position is sold on the listing with the best bid
    whose book can take the whole sale; if none can, down the listings in
    best-bid order. Positions in halted or resolved markets, or without a
    book, are skipped, and contracts the account's sells at a venue hold are
    never sold again. If health is still below the requirement with nothing
    more that can be sold, the report says SHORTFALL and the account keeps
    its debt.

    Never on a stale price: an account a position of which is priced with a
    price older than the risk policy allows is left alone (None; logged).
    Returns the finished report (still `selling` when a venue has not
    answered yet) to the run that started it; None otherwise: nothing to
    do, or a run that resumed another's unfinished liquidation. Idempotent
    and safe to run concurrently. Raises InvalidParams for an unknown
    reason, NotFound for an unknown account.
    """
    if reason not in Liquidation.Reason.values:
        raise InvalidParams(f"Unknown liquidation reason {reason!r}.")
    books = _account_books(account_id)
    liquidation, started = _liquidation_submit(
        account_id=account_id, reason=reason, margin_call_id=margin_call_id, books=books
    )
    if liquidation is None:
        return None
    at_venue = liquidation.orders.filter(status__in=Order.AT_VENUE_STATUSES).order_by("pk")
    for order_id in at_venue.values_list("pk", flat=True):
        try:
            order_send(order_id=order_id)
        except Exception:  # the others still go; the reconciler owns this one
            logger.exception("liquidation %s: sending order %s failed", liquidation.pk, order_id)
    finished = liquidation_finish(liquidation_id=liquidation.pk)
    return finished if started else None


def _liquidation_submit(
    *,
    account_id: int,
    reason: str,
    margin_call_id: int | None,
    books: dict[tuple[int, str], list[VenueBook]],
) -> tuple[Liquidation | None, bool]:
    """Step 1: (the liquidation, True) when one started; (the account's unfinished
    one, False) to resume; (None, False) when there is nothing to do."""
    with transaction.atomic():
        try:
            account = Account.objects.select_for_update().get(pk=account_id)
        except Account.DoesNotExist as exc:
            raise NotFound(f"No account {account_id}.") from exc
        selling = Liquidation.objects.filter(
            account=account, status=Liquidation.Status.SELLING
        ).first()
        if selling is not None:
            return selling, False
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
            return None, False
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
            return None, False
        if Liquidation.objects.filter(
            account=account,
            status=Liquidation.Status.UNFILLED,
            created_at__gte=now - UNFILLED_RETRY_AFTER,
        ).exists():
            logger.warning(
                "liquidation of account %s deferred: the venues filled none of its last "
                "sales less than %s s ago",
                account.pk,
                UNFILLED_RETRY_AFTER.seconds,
            )
            return None, False
        sales = _sales_plan(account=account, portfolio=portfolio, params=params, books=books)
        if not sales:
            logger.warning(
                "liquidation: account %s is due (%s, health %.4f) but no position can be sold",
                account.pk,
                cause,
                health_before,
            )
            return None, False
        used_margin = max(ZERO, -account.cash_balance)
        liquidation = Liquidation.objects.create(
            account=account,
            margin_call=call,
            reason=cause,
            status=Liquidation.Status.SELLING,
            created_at=now,
            health_before=ratio_decimal(health_before),
            used_margin_before=used_margin,
            used_margin_after=used_margin,
        )
        for sale in sales:
            sold = sale.estimate.quantity.quantize(QUANTITY_QUANTUM)  # book sizes may be whole
            order = Order(
                account=account,
                instrument=sale.instrument,
                outcome=sale.outcome,
                side=Order.Side.SELL,
                order_type=Order.Type.MARKET,
                time_in_force=Order.TimeInForce.IOC,
                status=Order.Status.SUBMITTED,
                venue_sends=1,
                quantity=sold,
                venue=sale.listing.venue,
                reference_price=sale.estimate.best_price,
                liquidation=liquidation,
                created_at=now,
                updated_at=now,
            )
            reservation_change(account=account, order=order, cash=ZERO, quantity=sold)
            order.save()
        desk_changed_broadcast(reason="liquidation")
    return liquidation, True


def liquidation_finish(*, liquidation_id: int) -> Liquidation:
    """Step 3: record a `selling` liquidation whose sales have all left their venues;
    return it (as it stands when a sale is still at a venue, or it is finished).

    Locks the account row, then the report, then the open margin call. The
    report's steps are the sales' fills (quantity, average price, proceeds
    net of fees, fees, what the position holds after); health after is the
    margin engine's figure at the decision's instant. Safe to run twice or
    concurrently.
    """
    with transaction.atomic():
        account_id = Liquidation.objects.values_list("account_id", flat=True).get(pk=liquidation_id)
        account = Account.objects.select_for_update().get(pk=account_id)
        liquidation = Liquidation.objects.select_for_update().get(pk=liquidation_id)
        if liquidation.status != Liquidation.Status.SELLING:
            return liquidation
        orders = list(
            liquidation.orders.select_related("instrument", "venue")
            .prefetch_related(Prefetch("fills", queryset=Fill.objects.order_by("pk")))
            .order_by("created_at", "pk")
        )
        if any(order.status in Order.AT_VENUE_STATUSES for order in orders):
            return liquidation
        liquidation.steps = _steps(account, orders)
        liquidation.proceeds = sum((Decimal(step["proceeds"]) for step in liquidation.steps), ZERO)
        policy = risk_policy_get()
        params = margin_params_get(policy)
        # Judged at the decision's instant, as health before was (haircuts grow
        # as expiry nears: a later clock would move the target it was sized to).
        reloaded = replace(portfolio_load(accounts=[account]), at=liquidation.created_at)
        health_after = float(reloaded.evaluate(params).health[0])
        liquidation.health_after = ratio_decimal(health_after)
        liquidation.used_margin_after = max(ZERO, -account.cash_balance)
        if not liquidation.steps:
            liquidation.status = Liquidation.Status.UNFILLED
        elif health_after >= params.initial:
            liquidation.status = Liquidation.Status.COMPLETED
        else:
            liquidation.status = Liquidation.Status.SHORTFALL
        liquidation.save(
            update_fields=["steps", "proceeds", "health_after", "used_margin_after", "status"]
        )
        call = (
            MarginCall.objects.select_for_update()
            .filter(pk=liquidation.margin_call_id, status=MarginCall.Status.OPEN)
            .first()
        )
        if call is not None and health_after >= params.maintenance:
            call.status = MarginCall.Status.LIQUIDATED
            call.resolved_at = timezone.now()
            call.save(update_fields=["status", "resolved_at"])
            metrics.count_on_commit(metrics.MARGIN_CALLS, event="liquidated")
        metrics.count_on_commit(metrics.LIQUIDATIONS, kind="account", status=liquidation.status)
        if liquidation.steps:
            account_notify(
                account=account,
                kind=Notification.Kind.LIQUIDATION,
                email=True,
                dedupe_key=f"liquidation:{liquidation.pk}",
                **_notification_text(liquidation, account=account, policy=policy),
            )
        else:
            logger.error(
                "liquidation %s of account %s: the venues filled none of its sales",
                liquidation.pk,
                account.public_id,
            )
        desk_changed_broadcast(reason="liquidation")
    return liquidation


def liquidations_finish_due() -> list[int]:
    """Finish every `selling` liquidation none of whose sales is still at a venue
    (the safety net of `account_liquidate`'s last step); return their ids."""
    due = Liquidation.objects.filter(status=Liquidation.Status.SELLING).exclude(
        orders__status__in=Order.AT_VENUE_STATUSES
    )
    finished = []
    for liquidation_id in due.values_list("pk", flat=True):
        if liquidation_finish(liquidation_id=liquidation_id).status != Liquidation.Status.SELLING:
            finished.append(liquidation_id)
    return finished


def _steps(account: Account, orders: list[Order]) -> list[dict[str, str]]:
    """The report's steps: each fill of the liquidation's sales, in order, with what
    the position held after it."""
    fills = [(order, fill) for order in orders for fill in order.fills.all()]
    contracts = {(order.instrument_id, order.outcome) for order, _ in fills}
    held = {
        (instrument_id, outcome): quantity
        for instrument_id, outcome, quantity in Position.objects.filter(
            account=account, instrument_id__in={key[0] for key in contracts}
        ).values_list("instrument_id", "outcome", "quantity")
    }
    # What each contract held before the sales: now plus everything they sold.
    remaining = {key: held.get(key, ZERO) for key in contracts}
    for order, fill in fills:
        remaining[(order.instrument_id, order.outcome)] += fill.quantity
    steps = []
    for order, fill in fills:
        key = (order.instrument_id, order.outcome)
        remaining[key] -= fill.quantity
        fees = fill.venue_fee + fill.commission
        steps.append(
            {
                "symbol": order.instrument.symbol,
                "outcome": order.outcome,
                "venue": order.venue.code,
                "order_id": order.public_id,
                "quantity": str(fill.quantity),
                "average_price": str(fill.price),
                "proceeds": str(fill.notional - fees),
                "fees": str(fees),
                "remaining": str(remaining[key]),
                "journal_id": str(fill.journal_id),
            }
        )
    return steps


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


def _sales_plan(
    *,
    account: Account,
    portfolio: Portfolio,
    params: margin.MarginParams,
    books: dict[tuple[int, str], list[VenueBook]],
) -> list[_Sale]:
    """The sales that bring health to `params.initial`, or as close as selling can.

    `account` is locked and `portfolio` its freshly loaded margin inputs;
    both are projected forward sale by sale (cash plus the proceeds net of
    fees, quantities less what is sold), valued at the prices loaded under
    the lock, and sold into `books` (read before the lock). Each position is
    considered once, so this ends after at most one pass.
    """
    instruments = Instrument.objects.in_bulk({c.instrument_id for c in portfolio.contracts})
    # Contracts the account's sells at a venue hold are sold already: never twice.
    at_venue = sells_at_venue(account)
    considered: set[int] = set()
    sales: list[_Sale] = []
    cash = account.cash_balance
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
            cash=cash,
            portfolio=portfolio,
            index=i,
            free=free,
            books=books.get((instrument.pk, contract.outcome), []),
            params=params,
        )
        for listing, estimate in route:
            sales.append(_Sale(instrument, contract.outcome, listing, estimate))
        if route:
            cash += _proceeds(route)
            portfolio = _after(portfolio, cash=cash, index=i, route=route)
    return sales


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


def _proceeds(route: Route) -> Decimal:
    """The cash the sales of `route` book: each fill's notional (rounded down, as the
    fill path books a sale) less its fees."""
    total = ZERO
    for listing, estimate in route:
        sold = estimate.quantity.quantize(QUANTITY_QUANTUM)
        price = estimate.average_price
        total += fill_notional(side=Side.SELL, quantity=sold, price=price) - taker_fee(
            venue=listing.venue, side=Side.SELL, quantity=sold, price=price
        )
    return total


def _after(portfolio: Portfolio, *, cash: Decimal, index: int, route: Route) -> Portfolio:
    """`portfolio` after the sales of `route` from position `index`, `cash` the cash
    after them."""
    sold = sum((estimate.quantity for _, estimate in route), ZERO)
    quantity = portfolio.quantity.copy()
    quantity[index] = float(portfolio.quantity_exact[index] - sold)
    quantity_exact = list(portfolio.quantity_exact)
    quantity_exact[index] = portfolio.quantity_exact[index] - sold
    balance = portfolio.cash.copy()
    balance[0] = float(cash)
    return replace(portfolio, quantity=quantity, quantity_exact=quantity_exact, cash=balance)


def _sale_route(
    *,
    cash: Decimal,
    portfolio: Portfolio,
    index: int,
    free: Decimal,
    books: list[VenueBook],
    params: margin.MarginParams,
) -> Route:
    """The sales of position `index`: all it may sell (`free`, the contracts no
    sell at a venue holds) if that does not restore the initial requirement, else
    the fewest quantity steps that do. `cash`: the account's, projected.

    Bisection over whole quantity steps keeps `low` below the target and
    `high` at or above it; `high` is the answer, so the target is met.
    """

    def health_after(route: Route) -> float:
        after = _after(portfolio, cash=cash + _proceeds(route), index=index, route=route)
        return float(after.evaluate(params).health[0])

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
