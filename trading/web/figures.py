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
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any

from django.utils import timezone

from accounts.models import Account
from portal.money import ZERO, dec, money, price, qty, quantize_money
from trading import perp_math
from trading.catalog import instrument_get
from trading.models import Instrument, MarginCall, MarginSnapshot, Order, Position
from trading.presenters import (
    margin_figures_present,
    margin_position_present,
    margin_summary_present,
    order_of,
    position_present,
    timestamp,
)
from trading.selectors import (
    PositionView,
    contract_symbol,
    margin_overview_get,
    margin_params_get,
    price_max_age,
)
from trading.services.execute import execute_preview
from trading.services.perps import (
    LeverageRejectReason,
    LeverageStatus,
    leverage_check,
    leverage_get,
    leverage_levels,
    leverage_parse,
)
from trading.services.simulation import (
    Breach,
    Projection,
    add_funds_simulate,
    buying_power_get,
    position_close_simulate,
)

CENT = Decimal("0.01")
HISTORY_DAYS = 30
HISTORY_POINTS = 500  # the latest snapshots shown on the chart


def _usdc(amount: Decimal) -> str:
    """An amount in a sentence: "1,234.57 USDC" (cents, half up, as the page shows it)."""
    return f"{amount.quantize(CENT, rounding=ROUND_HALF_UP):,} USDC"


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
    """The health-history series: the latest HISTORY_POINTS snapshots of the last
    HISTORY_DAYS days, oldest first (`health` None: no borrowing, unbounded)."""
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    rows = list(
        MarginSnapshot.objects.filter(account=account, ts__gte=since)
        .order_by("-ts")
        .values_list("ts", "health", "status", "adjusted_equity", "used_margin")[:HISTORY_POINTS]
    )
    rows.reverse()
    return [
        {
            "ts": ts.isoformat(),
            "health": dec(health),
            "status": status,
            "adjusted_equity": money(adjusted_equity),
            "used_margin": money(used_margin),
        }
        for ts, health, status, adjusted_equity, used_margin in rows
    ]


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
    delayed = [view for view in positions if view.stale]
    since = [view.quoted_at for view in delayed if view.quoted_at is not None]
    return {
        "stale": bool(delayed),
        "stale_since": min(since).isoformat() if since else None,
        "stale_after_seconds": int(price_max_age()),
        "symbols": sorted({view.symbol for view in delayed}),
    }


def dashboard_snapshot(*, account: Account, history: bool = True) -> dict[str, Any]:
    """The dashboard of `account` (a freshly read row): its Margin Portfolio figures
    as `margin_overview_get` computes them for the API, the breakdown by
    contribution with each position's P&L, the perps, the open margin call and
    (with `history`) the health history.

    Statements: positions, net deposit, open margin call, history; one Redis
    round trip for the quotes.
    """
    overview = margin_overview_get(account=account)
    summary = overview.summary
    views = {view.position_id: view for view in overview.positions}
    breakdown = []
    for row in summary.breakdown:
        view = views[row.position_id]
        position = position_present(view)
        breakdown.append(
            {
                "position_id": row.position_id,
                "title": row.title,
                "outcome": row.outcome,
                **margin_position_present(row, view),
                "average_price": position["average_price"],
                "pnl": position["pnl"],
            }
        )
    perps = [
        {"position_id": view.position_id, **position_present(view)}
        for view in overview.positions
        if view.kind == Instrument.Kind.PERPETUAL
    ]
    call = MarginCall.objects.filter(account=account, status=MarginCall.Status.OPEN).first()
    snapshot = {
        "account": account_out(account),
        "as_of": timestamp(summary.at),
        "summary": margin_summary_present(summary) | {"borrowing": summary.used_margin > ZERO},
        "thresholds": thresholds_get(),
        "breakdown": breakdown,
        "perps": perps,
        "margin_call": margin_call_out(call),
        "prices": prices_out(overview.positions),
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
    *, account: Account, symbol: object, side: object, notional: object
) -> dict[str, Any]:
    """The order form's projection of a market order for `notional` USDC of `symbol`.

    Execute's own checks (`execute_preview`: routing, the slippage limit, the
    account, the worst-case pre-trade check with fees), so the projection's
    verdict is the order's: `projection.refusal` is the message execute would
    refuse it with, and a refusal that comes before the margin check (no
    liquidity, slippage, a closed market) is raised as the DomainError the
    order would get. A buy also gets its buying power (`buying_power_get`:
    the largest notional keeping health ≥ 1.2, and what the books can fill
    of it now).
    Perpetual: the isolated margin the fill would lock and the new position's
    liquidation price. A read: nothing is locked or written.
    """
    preview = execute_preview(account=account, symbol=symbol, side=side, notional_usdc=notional)
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
        "fees": money(quantize_money(plan.fee, rounding=ROUND_UP)),
        "reserved": money(plan.reserve_cash),
        "buying_power": None,
        "buying_power_fillable": None,
        "isolated_margin": None,
        "liquidation_price": None,
        "leverage": None,
        "projection": projection,
    }
    if instrument.is_binary:
        if request.side == Order.Side.BUY:
            power = buying_power_get(
                account=account, symbol=instrument.symbol, outcome=request.contract.outcome
            )
            result["buying_power"] = money(power.notional)
            result["buying_power_fillable"] = money(power.fillable)
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
    status, rejectReason, message). Raises NotFound for an unknown market.
    """
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
        message = f"{_usdc(plan.delta)} moves from cash into isolated margin."
    elif plan.delta < ZERO:
        message = f"{_usdc(-plan.delta)} of isolated margin is freed back to cash."
    else:
        message = "The isolated margin does not change."
    return result | {"message": message}


def order_result_out(order: Order) -> dict[str, Any]:
    """An order the form placed, as the partner API writes it, with a sentence for people."""
    row = order_of(order)
    symbol = row["symbol"]
    if order.status == Order.Status.FILLED:
        verb = "Bought" if order.side == Order.Side.BUY else "Sold"
        text = (
            f"{verb} {row['filled_quantity']} {symbol} at {row['average_price']} on "
            f"{row['venue']} ({row['filled_notional']} USDC, fees {row['fees']} USDC)."
        )
    elif order.status == Order.Status.PENDING:
        text = (
            f"{symbol}: sent to {row['venue']}, waiting for the venue to confirm. It will "
            "appear here once filled."
        )
    else:
        reason = row["reject_reason"] or row["status"]
        text = f"{symbol}: {row['status']} ({reason})."
    return {"order": row, "message": text}
