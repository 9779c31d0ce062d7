"""What the dashboard shows, as JSON-ready dicts: reads only, no maths of its own.

Every figure comes from a selector or a simulation service and is shaped by
the partner API's own presenters (`trading.presenters`), so a field on the
page has the API's name and a number is, character for character, the one GET
/v1/intelligence/margin (or positions, orders) returns for the same account at
the same instant.

- `dashboard_snapshot`: the whole page (summary, breakdown, perps, margin
  call, health history), also served as JSON for the live page to re-read on
  every (re)connect and after fills and deposits;
- `trade_projection`: the order form's live projection: execute's own checks
  (`execute_preview`), so its verdict is the order's, and buying power;
- `position_close_projection`, `add_funds_projection`: the portfolio view's
  simulations;
- `leverage_preview`: a leverage change's new isolated margin and
  liquidation price (`trading.perp_math`) and whether it would be applied.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_UP, Decimal
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import Account, LinkedCredential
from accounts.services.accounts import account_check_can_order
from portal import format as fmt
from portal.money import ZERO, dec, money, price, qty, quantize_money
from trading import perp_math
from trading.catalog import instrument_get
from trading.models import Fill, Instrument, MarginCall, MarginSnapshot, Order, Position
from trading.presenters import (
    margin_figures_present,
    order_of,
    prices_present,
    timestamp,
)
from trading.selectors import (
    PositionView,
    contract_symbol,
    linked_syncs_pending,
    margin_params_get,
    net_deposit_steps_get,
    price_max_age,
)
from trading.services.execute import execute_preview
from trading.services.fees import fees_for_fill
from trading.services.figures_store import account_figures_get
from trading.services.fills import fill_notional
from trading.services.perps import (
    LeverageRejectReason,
    LeverageStatus,
    leverage_check,
    leverage_get,
    leverage_levels,
    leverage_parse,
    perp_power_get,
)
from trading.services.simulation import (
    Breach,
    Projection,
    add_funds_simulate,
    buying_power_get,
    position_close_simulate,
    selling_power_get,
)

CENT = Decimal("0.01")
HISTORY_DAYS = 30
HISTORY_POINTS = 500  # the latest snapshots shown on the chart


def dashboard_socket_path(account_id: str) -> str:
    """The account's dashboard socket (trading.routing, DashboardConsumer), which the
    dashboard and the positions page follow."""
    return f"/ws/dashboard/{account_id}/"


def _threshold(value: float) -> str:
    return format(Decimal(repr(value)), "f")


def thresholds_get() -> dict[str, str]:
    """The risk policy's lines on Margin Health, as the gauge and the chart draw them."""
    params = margin_params_get()
    return {
        "healthy": _threshold(params.healthy),
        "initial": _threshold(params.initial),
        "maintenance": _threshold(params.maintenance),
        "liquidation": _threshold(params.liquidation),
    }


def account_out(account: Account) -> dict[str, Any]:
    return {
        "id": account.public_id,
        "name": account.name or f"Account {account.index + 1}",
        "kind": account.kind,
        "custodial": account.is_custodial,
        "margin_enabled": account.margin_enabled,
        "status": account.status,
    }


def history_get(*, account: Account) -> list[dict[str, Any]]:
    """The health and equity series: the latest HISTORY_POINTS snapshots of the last
    HISTORY_DAYS days, oldest first (`health` None: no borrowing, unbounded).

    Custodial accounts also get `net_deposits` (deposits − withdrawals booked by
    then, from the ledger) and `equity_change`: the change in Adjusted Equity since
    the first point less the deposits and withdrawals booked since, so money moved
    in or out is never shown as a gain or a loss. It is not trading P&L: Adjusted
    Equity counts positions after haircuts (a purchase lowers it by the haircut at
    once) and leaves out a perpetual's isolated margin; the positions' P&L at
    market prices is the breakdown's and the perps' `pnl`. A non-custodial
    account's venue deposits are not known here: both are None.
    """
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    rows = list(
        MarginSnapshot.objects.filter(account=account, ts__gte=since)
        .order_by("-ts")
        .values_list("ts", "health", "status", "adjusted_equity", "used_margin")[:HISTORY_POINTS]
    )
    rows.reverse()
    deposits: list[Decimal | None] = [None] * len(rows)
    if rows and account.is_custodial:
        total, steps = net_deposit_steps_get(account_id=account.pk, since=rows[0][0])
        step = 0
        for i, row in enumerate(rows):
            while step < len(steps) and steps[step][0] <= row[0]:
                total += steps[step][1]
                step += 1
            deposits[i] = total
    first_equity = rows[0][3] if rows else ZERO
    return [
        {
            "ts": ts.isoformat(),
            "health": dec(health),
            "status": status,
            "adjusted_equity": money(adjusted_equity),
            "used_margin": money(used_margin),
            "net_deposits": None if deposits[i] is None else money(deposits[i]),
            "equity_change": None
            if deposits[i] is None
            else money(adjusted_equity - first_equity - (deposits[i] - deposits[0])),
        }
        for i, (ts, health, status, adjusted_equity, used_margin) in enumerate(rows)
    ]


GAUGE_MAX = Decimal(3)
GAUGE_MARKERS = {"unbounded": "∞ — no borrowing", "above": "≥ 3.0", "scale": ""}


def gauge_out(*, health: Decimal | None, borrowing: bool) -> dict[str, str]:
    """Where the gauge (0 to 3) shows Margin Health: "scale", "above" (3 or more: the
    needle at the stop, marked "≥ 3.0") or "unbounded" (no borrowing: marked
    "∞ — no borrowing", never drawn as 3)."""
    if not borrowing or health is None:
        state = "unbounded"
    elif health >= GAUGE_MAX:
        state = "above"
    else:
        state = "scale"
    return {"state": state, "marker": GAUGE_MARKERS[state], "max": format(GAUGE_MAX, "f")}


def link_out(credential: LinkedCredential | None, *, syncing: bool = False) -> dict | None:
    """A linked (non-custodial) account's link, as pages show it: the venue, the
    credential's status (active, failing, unlinked), the venue cash of the last sync
    (None: the venue does not report it), when it last synced and why the last
    attempt failed; `syncing`: a sync is queued or running."""
    if credential is None:
        return None
    return {
        "account_id": credential.account.public_id,
        "venue": credential.venue,
        "venue_label": credential.get_venue_display(),
        "status": credential.status,
        "status_label": credential.get_status_display(),
        "cash": None if credential.cash_balance is None else money(credential.cash_balance),
        "last_synced_at": timestamp(credential.last_synced_at),
        "last_sync_attempt_at": timestamp(credential.last_sync_attempt_at),
        "next_sync_at": timestamp(credential.next_sync_at),
        "last_error": fmt.sentence(credential.last_error),  # an old row's may start with a code
        "syncing": syncing,
    }


def link_status_get(credential: LinkedCredential) -> dict[str, Any]:
    """`link_out` with whether a sync is queued or running now (the Linked page's poll)."""
    pending = linked_syncs_pending(credential_ids=[credential.pk])
    return link_out(credential, syncing=credential.pk in pending) or {}


def margin_call_out(call: MarginCall | None) -> dict[str, Any] | None:
    if call is None:
        return None
    return {
        "margin_call_id": call.pk,
        "status": call.status,
        "opened_at": call.opened_at.isoformat(),
        "health_at_open": dec(call.health_at_open),
        "lowest_health": dec(call.lowest_health),
    }


def prices_out(positions: list[PositionView]) -> dict[str, Any]:
    """Whether the positions' prices are delayed (the dashboard's banner), and since when."""
    return prices_present(positions, stale_after_seconds=price_max_age())


def dashboard_snapshot(*, account: Account, history: bool = True) -> dict[str, Any]:
    """The dashboard of `account` (a freshly read row): its Margin Portfolio figures
    as GET margin serves them (stored by the margin engine when current, else
    computed: `trading.services.figures_store`), the breakdown by contribution with
    each position's P&L, the perps (`trading.presenters.dashboard_figures_present`),
    the open margin call and (with `history`) the health history.

    Statements: the open margin call, history (and, computing: positions, net
    deposit); Redis round trips for the stored figures and quotes.
    """
    figures = account_figures_get(account=account, part="dashboard")
    summary = figures["summary"]
    call = MarginCall.objects.filter(account=account, status=MarginCall.Status.OPEN).first()
    credential = (
        None
        if account.is_custodial
        else LinkedCredential.objects.filter(account=account).select_related("account").first()
    )
    health = summary["health"]
    snapshot = {
        "account": account_out(account),
        "link": link_out(credential),
        "gauge": gauge_out(
            health=None if health is None else Decimal(health), borrowing=summary["borrowing"]
        ),
        "as_of": figures["as_of"],
        "summary": summary,
        "thresholds": thresholds_get(),
        "breakdown": figures["breakdown"],
        "perps": figures["perps"],
        "margin_call": margin_call_out(call),
        "prices": figures["prices"],
    }
    if history:
        snapshot["history"] = history_get(account=account)
    return snapshot


# ---------------------------------------------------------------------------
# Projections


def zone_of(projection: Projection) -> str:
    """Where projected health lands: "ok" (≥ 1.5, or no borrowing), "warning"
    (below the healthy line), "danger" (the pre-trade check would refuse it)."""
    if projection.breach is not None:
        return "danger"
    health = projection.after.health
    if health is None:
        return "ok"
    params = margin_params_get()
    if health < Decimal(repr(params.initial)) and projection.after.used_margin > ZERO:
        return "danger"
    return "warning" if health < Decimal(repr(params.healthy)) else "ok"


BREACH_MESSAGES = {
    Breach.MARGIN_DISABLED: "Margin is not enabled on this account: it cannot borrow, and this "
    "order costs more than its cash.",
    Breach.BORROWING: "This would take cash below zero, which this action may not do.",
    Breach.INITIAL_MARGIN: "Projected Margin Health would fall below the initial margin "
    "requirement of {initial}: this order would be refused.",
}


def projection_out(projection: Projection) -> dict[str, Any]:
    breach = projection.breach
    return {
        "before": margin_figures_present(projection.before),
        "after": margin_figures_present(projection.after),
        "is_valid_trade": projection.is_valid_trade,
        "breach": None if breach is None else breach.value,
        "refusal": None
        if breach is None
        else BREACH_MESSAGES[breach].format(initial=projection.initial_threshold),
        "zone": zone_of(projection),
    }


def trade_projection(
    *, account: Account, symbol: object, side: object, notional: object, slippage_bps: object = 50
) -> dict[str, Any]:
    """The order form's projection of a market order for `notional` USDC of `symbol`.

    Execute's own checks (`execute_preview`: routing, the slippage limit, the
    account, the worst-case pre-trade check with fees), so the projection's
    verdict is the order's: `projection.refusal` is the message execute would
    refuse it with, and a refusal that comes before the margin check (no
    liquidity, slippage, a closed market) is raised as the DomainError the
    order would get. Every order also gets the largest notional its path
    accepts (`buying_power`: a buy's keeps health ≥ 1.2, `buying_power_get`;
    a sale's is what the position holds free, `selling_power_get`; a perp's
    is what the isolated margin at the leverage in force allows, fees
    included, `perp_power_get`) and what the books fill of it now within
    the slippage limit (`buying_power_fillable`).
    Perpetual: the isolated margin the fill would lock and the new position's
    liquidation price. A read: nothing is locked or written.
    """
    preview = execute_preview(
        account=account,
        symbol=symbol,
        side=side,
        notional_usdc=notional,
        slippage_bps=slippage_bps,
    )
    if preview.plan is None:
        raise preview.refusal
    plan, request = preview.plan, preview.request
    instrument, estimate = request.contract.instrument, plan.route.estimate
    projection = projection_out(plan.projection)
    if plan.refusal is not None:
        projection |= {"refusal": plan.refusal.message, "refusal_code": plan.refusal.code}
    result: dict[str, Any] = {
        "symbol": request.contract.symbol,
        "kind": instrument.kind,
        "side": request.side,
        "notional": money(request.notional),
        "venue": plan.route.venue,
        "quantity": qty(estimate.quantity),
        "average_price": price(estimate.average_price),
        "worst_price": price(plan.worst_price),
        # The fee the estimated fill books (`order_fill_apply` on the venue's fill), and
        # the larger one the pre-trade check counts (the fill at the slippage limit).
        "fees": money(
            fees_for_fill(
                venue=plan.listing.venue,
                quantity=estimate.quantity,
                price=estimate.average_price,
                notional=fill_notional(
                    side=request.side, quantity=estimate.quantity, price=estimate.average_price
                ),
                liquidity=Fill.Liquidity.TAKER,
            ).total
        ),
        "fees_max": money(quantize_money(plan.fee, rounding=ROUND_UP)),
        "slippage_bps": dec(
            None if estimate.slippage_bps is None else Decimal(estimate.slippage_bps).quantize(CENT)
        ),
        "reserved": money(plan.reserve_cash),
        "buying_power": None,
        "buying_power_fillable": None,
        "isolated_margin": None,
        "liquidation_price": None,
        "leverage": None,
        "projection": projection,
    }
    power_of = (
        (buying_power_get if request.side == Order.Side.BUY else selling_power_get)
        if instrument.is_binary
        else perp_power_get
    )
    power_for = (
        {"outcome": request.contract.outcome} if instrument.is_binary else {"side": request.side}
    )
    power = power_of(
        account=account,
        symbol=instrument.symbol,
        slippage_bps=request.slippage_bps,
        **power_for,
    )
    result["buying_power"] = money(power.notional)
    result["buying_power_fillable"] = money(power.fillable)
    if instrument.is_binary:
        return result
    held = (
        Position.objects.filter(account=account, instrument=instrument, outcome="")
        .exclude(quantity=0)
        .exists()
    )
    signed = estimate.quantity if request.side == Order.Side.BUY else -estimate.quantity
    liquidation = (
        None
        if held
        else perp_math.liquidation_price(
            quantity=signed,
            entry=estimate.average_price,
            margin=plan.isolated_margin,
            mmf=instrument.maintenance_margin_fraction,
        )
    )
    return result | {
        "isolated_margin": money(plan.isolated_margin),
        "liquidation_price": price(liquidation),
        "leverage": leverage_get(account=account, symbol=instrument.symbol).leverage,
    }


def position_close_projection(
    *, account: Account, position_id: int, quantity: object = None
) -> dict[str, Any]:
    """Closing all (or `quantity`) of one binary position: health before and after,
    valued as the margin engine values it, and what the books can absorb now."""
    close = position_close_simulate(account=account, position_id=position_id, quantity=quantity)
    fillable = close.fillable
    return {
        "position_id": position_id,
        "symbol": contract_symbol(close.position.instrument.symbol, close.position.outcome),
        "quantity": qty(close.quantity),
        "held": qty(close.position.quantity),
        "projection": projection_out(close.projection),
        "fillable": None
        if fillable is None
        else {
            "venue": close.venue,
            "quantity": qty(fillable.quantity),
            "average_price": price(fillable.average_price),
            "slippage_bps": dec(fillable.slippage_bps.quantize(CENT)),
            "proceeds": money(close.proceeds),
            "complete": fillable.quantity >= close.quantity,
        },
    }


def add_funds_projection(*, account: Account) -> dict[str, Any]:
    """The exact deposits that restore Margin Health to the healthy line (1.5) and
    to the initial requirement (1.2), and the figures after each."""
    params = margin_params_get()
    targets = []
    for name, value in (("healthy", params.healthy), ("initial", params.initial)):
        simulation = add_funds_simulate(account=account, target=Decimal(repr(value)))
        targets.append(
            {
                "name": name,
                "target": format(simulation.target, "f"),
                "amount": money(simulation.amount),
                "after": margin_figures_present(simulation.projection.after),
            }
        )
    before = add_funds_simulate(account=account).projection.before
    return {"before": margin_figures_present(before), "targets": targets}


# ---------------------------------------------------------------------------
# Perpetual leverage


@dataclass(frozen=True)
class PerpMarket:
    """A perp market's leverage controls: the levels and the leverage in force."""

    symbol: str
    title: str
    levels: list[int]
    default: int
    leverage: int
    is_default: bool


def perp_markets_get(*, account: Account) -> list[PerpMarket]:
    """Every perpetual market with its allowed levels and `account`'s leverage in it."""
    titles = dict(
        Instrument.objects.filter(kind=Instrument.Kind.PERPETUAL).values_list("symbol", "title")
    )
    markets = []
    for levels in leverage_levels():
        view = leverage_get(account=account, symbol=levels.symbol)
        markets.append(
            PerpMarket(
                symbol=levels.symbol,
                title=titles.get(levels.symbol, levels.symbol),
                levels=levels.levels,
                default=levels.default,
                leverage=view.leverage,
                is_default=view.is_default,
            )
        )
    return markets


REJECT_EXPLANATIONS = {
    LeverageRejectReason.INVALID_LEVERAGE: "That leverage is not one of this market's levels.",
    LeverageRejectReason.UNKNOWN_MARKET: "There is no such perpetual market.",
    LeverageRejectReason.UNDERCOLLATERALIZED: "The account cannot fund the isolated margin this "
    "leverage needs (or, raising it, the position would be left below its maintenance "
    "margin): nothing was changed.",
}


def leverage_preview(*, account: Account, symbol: str, leverage: object) -> dict[str, Any]:
    """What setting `leverage` in perp market `symbol` would do, before applying it.

    `leverage_set`'s own parse and check (`leverage_parse`, `leverage_check`),
    so the preview's verdict and message are the change's. With an open
    position: its isolated margin re-sized to |s|·entry/L, the cash that
    moves, the liquidation price before and after (`perp_math`) and, for more
    margin, the projection. Without one: the leverage applies to the next
    order. Fields named as in the leverage change object
    (`trading.presenters.leverage_change_present`: oldLeverage, newLeverage,
    status, rejectReason, message). Raises NotFound for an unknown market, and
    what the change itself raises for an account that may not trade.
    """
    account_check_can_order(account)
    current = leverage_get(account=account, symbol=symbol)
    instrument = instrument_get(symbol=current.market)
    result: dict[str, Any] = {
        "symbol": current.market,
        "oldLeverage": current.leverage,
        "newLeverage": None,
        "max_leverage": current.max_leverage,
        "has_position": False,
        "status": LeverageStatus.APPLIED,
        "rejectReason": None,
        "message": "",
    }
    new = leverage_parse(leverage, current.max_leverage)
    if new is None:
        reason = LeverageRejectReason.INVALID_LEVERAGE
        return result | {
            "status": LeverageStatus.REJECTED,
            "rejectReason": reason,
            "message": f"Leverage in {current.market} is a whole number from 1 to "
            f"{current.max_leverage}. {REJECT_EXPLANATIONS[reason]}",
        }
    result["newLeverage"] = new
    position = (
        Position.objects.filter(account=account, instrument=instrument, outcome="")
        .exclude(quantity=0)
        .first()
    )
    plan = leverage_check(account=account, instrument=instrument, leverage=new, position=position)
    if position is None:
        return result | {
            "message": f"No open {current.market} position: {new}x applies to your next order "
            f"(isolated margin = notional / {new})."
        }
    mmf = instrument.maintenance_margin_fraction
    result |= {
        "has_position": True,
        "isolated_margin": money(position.isolated_margin),
        "new_isolated_margin": money(plan.target),
        "margin_change": money(plan.delta),
        "liquidation_price": price(
            perp_math.liquidation_price(
                quantity=position.quantity,
                entry=position.average_price,
                margin=position.isolated_margin,
                mmf=mmf,
            )
        ),
        "new_liquidation_price": price(
            perp_math.liquidation_price(
                quantity=position.quantity,
                entry=position.average_price,
                margin=plan.target,
                mmf=mmf,
            )
        ),
        "projection": None if plan.projection is None else projection_out(plan.projection),
    }
    if plan.refusal is not None:
        return result | {
            "status": LeverageStatus.REJECTED,
            "rejectReason": LeverageRejectReason.UNDERCOLLATERALIZED,
            "message": plan.refusal,
        }
    if plan.delta > ZERO:
        message = f"{fmt.usdc(plan.delta)} moves from cash into isolated margin."
    elif plan.delta < ZERO:
        message = f"{fmt.usdc(-plan.delta)} of isolated margin is freed back to cash."
    else:
        message = "The isolated margin does not change."
    return result | {"message": message}


def _order_url(order_id: str) -> str:
    """The order's page (`order_detail`); its path pattern until that page exists."""
    try:
        return reverse("order_detail", args=[order_id])
    except NoReverseMatch:
        return f"/orders/{order_id}/"


ORDER_TIF_WORDS = {
    Order.TimeInForce.GTC: "good till cancelled",
    Order.TimeInForce.IOC: "immediate or cancel",
    Order.TimeInForce.FOK: "fill or kill",
}


def order_result_out(order: Order) -> dict[str, Any]:
    """An order the ticket (or a Close… panel) placed: the order as the partner API
    writes it, a sentence for people through `portal.format` ("Bought 1,086.96
    TRUMP-WIN YES at 46¢ on Kalshi · 500.00 USDC, fees 1.25 USDC.") and the link
    to its page."""
    row = order_of(order)
    instrument = order.instrument
    binary = instrument.is_binary
    label = f"{instrument.symbol} {order.outcome.upper()}" if binary else instrument.symbol
    venue = order.venue.name if order.venue_id else "the venue"
    buy = order.side == Order.Side.BUY

    def at(value: object) -> str:
        return fmt.price(value, binary=binary)

    def size(value: object) -> str:
        return fmt.quantity(value)  # a perp's 0.001999 BTC keeps its places

    filled = order.filled_quantity
    wanted = order.quantity
    left = None if wanted is None else wanted - filled
    tif = ORDER_TIF_WORDS.get(order.time_in_force, order.time_in_force)
    fills = ""
    if filled > 0:
        amount = size(filled)
        if left is not None and left > 0:
            amount = f"{amount} of {size(wanted)}"
        fills = (
            f"{'Bought' if buy else 'Sold'} {amount} {label} at {at(order.average_fill_price)} on "
            f"{venue} · {fmt.usdc(order.filled_notional)}, fees {fmt.usdc(order.fees)}."
        )
    status = order.status
    if status == Order.Status.FILLED:
        text = fills
    elif status in (Order.Status.PENDING, Order.Status.SUBMITTED):
        text = (
            f"{label}: sent to {venue}, waiting for the venue to confirm. It shows here, and "
            "in your orders, once filled."
        )
    elif status in (Order.Status.OPEN, Order.Status.PARTIALLY_FILLED):
        resting = (
            f"Your limit order to {order.side} {size(left)} {label} at "
            f"{at(order.limit_price)} rests on {venue} ({tif})."
        )
        text = f"{fills} {resting}" if fills else resting
    elif order.reject_code == "fok_not_filled":
        text = (
            f"Nothing filled: the book could not fill all {size(wanted)} {label} at "
            "once, so the fill-or-kill order was rejected."
        )
    elif order.reject_code == "ioc_unfilled":
        rest = (
            f"the other {size(left)} found no price within the limit and were cancelled"
            if fills
            else "nothing crossed the book within the limit, so the order was cancelled"
        )
        text = f"{fills} Immediate or cancel: {rest}." if fills else f"{label}: {rest}."
    elif status == Order.Status.CANCELLED:
        text = (
            f"{fills} The rest of the order was cancelled."
            if fills
            else (f"{label}: the order was cancelled with nothing filled.")
        )
    else:
        reason = order.reject_reason or "no reason given"
        text = f"{label}: the order was not filled. The venue said: {reason}"
        text = text if text.endswith(".") else f"{text}."
    return {"order": row, "message": text.strip(), "url": _order_url(order.public_id)}
