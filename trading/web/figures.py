"""What the dashboard shows, as JSON-ready dicts: reads only, no maths of its own.

Every figure comes from a selector or a simulation service and is shaped by
the partner API's own presenters (`trading.presenters`), so a field on the
page has the API's name and a number is, character for character, the one GET
/v1/intelligence/margin (or positions, orders) returns for the same account at
the same instant.

- `dashboard_snapshot`: the whole page (summary, breakdown, perps, margin
  call, health history), also served as JSON for the live page to re-read on
  every (re)connect and after fills and deposits;
- `trade_projection`: the order form's live projection (`trade_simulate` /
  `buying_power_get` for binaries; the perp pre-trade check's cash debit for
  perpetuals), fees included as execute's pre-trade check counts them;
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
from portal.errors import ErrorCode, Forbidden, InvalidParams, NotFound
from portal.money import ZERO, dec, money, price, qty, quantize_money
from portal.validators import whole_number_parse
from trading import perp_math
from trading.catalog import instrument_get, listings_get
from trading.marketdata.quotes import Outcome
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
    perp_quotes_get,
    price_max_age,
)
from trading.services.fees import fees_for_fill
from trading.services.fills import fill_notional
from trading.services.perps import (
    LeverageRejectReason,
    LeverageStatus,
    leverage_get,
    leverage_levels,
    perp_margin_needed,
)
from trading.services.simulation import (
    Breach,
    PortfolioChange,
    Projection,
    add_funds_simulate,
    buying_power_get,
    change_simulate,
    decimal_clean,
    order_books_get,
    position_close_simulate,
    side_clean,
    trade_change,
    trade_route,
    trade_simulate,
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


def contract_parse(symbol: object) -> tuple[Instrument, str]:
    """'X' (YES, or a perpetual) / 'X:NO' / 'X:YES' → (instrument, outcome; "" for a perp).

    Raises InvalidParams for a malformed symbol, NotFound for an unknown one.
    """
    if not isinstance(symbol, str) or not symbol.strip():
        raise InvalidParams("Choose an instrument.")
    base, colon, suffix = symbol.strip().partition(":")
    instrument = instrument_get(symbol=base)
    if instrument is None:
        raise NotFound(f"Unknown instrument {base!r}.")
    if not instrument.is_binary:
        if colon:
            raise InvalidParams(f"{base} is a perpetual: it has no YES or NO side.")
        return instrument, ""
    try:
        outcome = Outcome(suffix.lower()) if colon else Outcome.YES
    except ValueError as exc:
        raise InvalidParams(f"Unknown contract {symbol!r}: use SYMBOL or SYMBOL:NO.") from exc
    return instrument, outcome.value


def _venue_of(instrument: Instrument, code: str):
    return next(listing.venue for listing in listings_get(instrument) if listing.venue.code == code)


def _trading_check(account: Account) -> None:
    if not account.is_custodial:
        raise Forbidden(
            f"Account {account.public_id} is non-custodial: trade on your own venue accounts; "
            "the broker executes for custodial accounts only.",
            code=ErrorCode.CUSTODIAL_REQUIRED,
        )


def trade_projection(
    *, account: Account, symbol: object, side: object, notional: object
) -> dict[str, Any]:
    """The order form's projection of a market order for `notional` USDC of `symbol`.

    Binary: `trade_simulate` routes and fills it against the live books; the
    projection shown is execute's pre-trade check's own (`trade_change` with
    the fill's fees, `change_simulate`), and a buy also gets its buying power
    (`buying_power_get`, before fees). Perpetual: the isolated margin the fill
    would lock (`perp_margin_needed`) plus fees, debited from cash as execute's
    check does, and the new position's liquidation price. A read: nothing is
    locked or written. Raises the services' DomainErrors (bad input, unknown or
    closed market, no liquidity, no live prices) and Forbidden for a
    non-custodial account.
    """
    _trading_check(account)
    instrument, outcome = contract_parse(symbol)
    side = side_clean(side)
    notional = decimal_clean(notional, name="Notional", positive=True)
    result: dict[str, Any] = {
        "symbol": contract_symbol(instrument.symbol, outcome),
        "kind": instrument.kind,
        "side": side.value,
        "notional": money(notional),
    }
    if instrument.is_binary:
        trade = trade_simulate(
            account=account,
            symbol=instrument.symbol,
            outcome=outcome,
            side=side.value,
            notional=notional,
        )
        booked = fill_notional(side=side.value, quantity=trade.quantity, price=trade.average_price)
        fees = fees_for_fill(
            venue=_venue_of(instrument, trade.venue),
            quantity=trade.quantity,
            price=trade.average_price,
            notional=booked,
            liquidity="taker",
        )
        change = trade_change(
            contract=trade.projection.change.positions[0].contract,
            side=side.value,
            quantity=trade.quantity,
            notional=booked,
            fee=fees.total,
        )
        projection = change_simulate(account=account, change=change)
        result |= {
            "venue": trade.venue,
            "quantity": qty(trade.quantity),
            "average_price": price(trade.average_price),
            "fees": money(quantize_money(fees.total, rounding=ROUND_UP)),
            "buying_power": None,
            "isolated_margin": None,
            "liquidation_price": None,
            "leverage": None,
        }
        if side.value == "buy":
            power = buying_power_get(account=account, symbol=instrument.symbol, outcome=outcome)
            result["buying_power"] = money(power.notional)
    else:
        from trading.services.markets import instrument_check_tradable

        instrument_check_tradable(instrument)
        books = order_books_get(instrument=instrument, outcome=None)
        route = trade_route(books=books, side=side, notional=notional)
        if route is None:
            raise InvalidParams(
                f"Not enough liquidity: no venue's order book can {side.value} {notional} USDC "
                f"of {instrument.symbol} right now.",
                code=ErrorCode.INSUFFICIENT_LIQUIDITY,
            )
        estimate = route.estimate
        needed = perp_margin_needed(
            account=account,
            instrument=instrument,
            side=side.value,
            quantity=estimate.quantity,
            price=estimate.average_price,
        )
        fees = fees_for_fill(
            venue=_venue_of(instrument, route.venue),
            quantity=estimate.quantity,
            price=estimate.average_price,
            notional=fill_notional(
                side=side.value, quantity=estimate.quantity, price=estimate.average_price
            ),
            liquidity="taker",
        )
        projection = change_simulate(
            account=account, change=PortfolioChange(cash=-(needed + fees.total))
        )
        held = (
            Position.objects.filter(account=account, instrument=instrument, outcome="")
            .exclude(quantity=0)
            .exists()
        )
        signed = estimate.quantity if side.value == "buy" else -estimate.quantity
        liquidation = (
            None
            if held
            else perp_math.liquidation_price(
                quantity=signed,
                entry=estimate.average_price,
                margin=needed,
                mmf=instrument.maintenance_margin_fraction,
            )
        )
        result |= {
            "venue": route.venue,
            "quantity": qty(estimate.quantity),
            "average_price": price(estimate.average_price),
            "fees": money(quantize_money(fees.total, rounding=ROUND_UP)),
            "buying_power": None,
            "isolated_margin": money(needed),
            "liquidation_price": price(liquidation),
            "leverage": leverage_get(account=account, symbol=instrument.symbol).leverage,
        }
    result["projection"] = projection_out(projection)
    return result


def position_close_projection(*, account: Account, position_id: int) -> dict[str, Any]:
    """Closing one binary position at the best bid: proceeds and health before/after."""
    trade = position_close_simulate(account=account, position_id=position_id)
    return {
        "position_id": position_id,
        "symbol": contract_symbol(trade.symbol, trade.outcome),
        "venue": trade.venue,
        "quantity": qty(trade.quantity),
        "average_price": price(trade.average_price),
        "proceeds": money(trade.notional),
        "projection": projection_out(trade.projection),
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

    With an open position: its isolated margin re-sized to |s|·entry/L
    (`perp_math.isolated_margin_required`, rounded up as `leverage_set` books
    it), the cash that moves, the liquidation price before and after
    (`perp_math.liquidation_price`), and whether `leverage_set` would apply
    it: more margin must pass the pre-trade check (`change_simulate`), less
    must not leave the position liquidatable at the current mark. Without
    one: the leverage applies to the next order. Fields named as in the leverage
    change object (`trading.presenters.leverage_change_present`: oldLeverage,
    newLeverage, status, rejectReason, message). Raises NotFound for an unknown
    market.
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
    new = whole_number_parse(leverage.strip() if isinstance(leverage, str) else leverage)
    if new is None or not 1 <= new <= current.max_leverage:
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
    if position is None:
        return result | {
            "message": f"No open {current.market} position: {new}x applies to your next order "
            f"(isolated margin = notional / {new})."
        }
    mmf = instrument.maintenance_margin_fraction
    target = quantize_money(
        perp_math.isolated_margin_required(
            quantity=position.quantity, price=position.average_price, leverage=new
        ),
        rounding=ROUND_UP,
    )
    change = target - position.isolated_margin
    result |= {
        "has_position": True,
        "isolated_margin": money(position.isolated_margin),
        "new_isolated_margin": money(target),
        "margin_change": money(change),
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
                quantity=position.quantity, entry=position.average_price, margin=target, mmf=mmf
            )
        ),
        "projection": None,
    }
    rejected = None
    if change > ZERO:
        projection = change_simulate(account=account, change=PortfolioChange(cash=-change))
        result["projection"] = projection_out(projection)
        if not projection.is_valid_trade:
            rejected = (
                f"Lowering leverage to {new}x needs {_usdc(change)} more of isolated margin, "
                f"which the account cannot fund. {result['projection']['refusal']}"
            )
    elif change < ZERO:
        quote = perp_quotes_get(instrument_ids=[instrument.pk]).get(instrument.pk)
        if quote is None:
            rejected = f"No live mark for {current.market}: leverage cannot be raised now."
        elif perp_math.is_liquidatable(
            margin=target,
            quantity=position.quantity,
            entry=position.average_price,
            mark=quote.mark,
            mmf=mmf,
        ):
            rejected = (
                f"Raising leverage to {new}x would leave the isolated margin ({_usdc(target)}) "
                "below the position's maintenance margin at the current mark."
            )
    if rejected is not None:
        return result | {
            "status": LeverageStatus.REJECTED,
            "rejectReason": LeverageRejectReason.UNDERCOLLATERALIZED,
            "message": rejected,
        }
    if change > ZERO:
        message = f"{_usdc(change)} moves from cash into isolated margin."
    elif change < ZERO:
        message = f"{_usdc(-change)} of isolated margin is freed back to cash."
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
