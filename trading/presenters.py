"""One presenter per resource (ARCHITECTURE 6a): how an order, a fill, a position,
the margin figures and a leverage setting look to anyone outside.

The REST bodies (`trading.api*`), the pushes (`trading.broadcasts`: the partner
stream's account events and the dashboard's socket), the dashboard's pages and
JSON (`trading.web`) and the reports (`trading.services.reports`, whose fill
columns are `FILL_FIELDS`) all shape a resource here, so a field has one name and
one format everywhere: the partner API's (SPEC §7; the seeds' names where they
give one, e.g. seed 004's camelCase leverage change).

Pure functions of rows the selectors and services return: no queries, no I/O.
Decimals are strings at their fixed precision (`portal.money`: USDC 6 places,
prices 8, quantities 6; ratios as computed), timestamps ISO 8601 in UTC with
microseconds (`2026-04-01T09:30:00.000000+00:00`, as the reports write them),
whichever JSON encoder then writes the dict.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from portal.money import ZERO, dec, money, price, qty
from trading.models import Fill, Instrument, Order
from trading.selectors import (
    AccountMargin,
    ExposureGroup,
    MarginOverview,
    PositionMargin,
    PositionView,
    contract_symbol,
)


def timestamp(value: datetime | None) -> str | None:
    """A time as every presenter writes it: ISO 8601 in UTC, with microseconds."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# ---------------------------------------------------------------------------
# Orders


def order_row(order: Order) -> dict[str, Any]:
    """An Order instance as the row `trading.selectors.order_list` / `order_get` read."""
    return {
        "public_id": order.public_id,
        "client_order_id": order.client_order_id,
        "symbol": contract_symbol(order.instrument.symbol, order.outcome),
        "outcome": order.outcome,
        "side": order.side,
        "order_type": order.order_type,
        "time_in_force": order.time_in_force,
        "status": order.status,
        "quantity": order.quantity,
        "notional_usdc": order.notional_usdc,
        "limit_price": order.limit_price,
        "take_profit": order.take_profit,
        "stop_loss": order.stop_loss,
        "leverage": order.leverage,
        "filled_quantity": order.filled_quantity,
        "filled_notional": order.filled_notional,
        "average_fill_price": order.average_fill_price,
        "fees": order.fees,
        "venue": order.venue.code if order.venue_id else None,
        "reject_code": order.reject_code,
        "reject_reason": order.reject_reason,
        "parent__public_id": order.parent.public_id if order.parent_id else None,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def order_present(row: dict[str, Any]) -> dict[str, Any]:
    """An order row (`order_row`, `order_list`, `order_get`) as the order object.

    `status` is passed through as the order service sets it (pending, submitted,
    open, partially_filled, filled, cancelled, rejected, …)."""
    return {
        "id": row["public_id"],
        "client_order_id": row["client_order_id"],
        "symbol": row["symbol"],
        "side": row["side"],
        "order_type": row["order_type"],
        "time_in_force": row["time_in_force"],
        "status": row["status"],
        "venue": row["venue"],
        "quantity": qty(row["quantity"]),
        "notional": money(row["notional_usdc"]),
        "price": price(row["limit_price"]),
        "take_profit": price(row["take_profit"]),
        "stop_loss": price(row["stop_loss"]),
        "leverage": row["leverage"],
        "filled_quantity": qty(row["filled_quantity"]),
        "filled_notional": money(row["filled_notional"]),
        "average_price": price(row["average_fill_price"]),
        "fees": money(row["fees"]),
        "reject_code": row["reject_code"] or None,
        "reject_reason": row["reject_reason"] or None,
        "parent_id": row["parent__public_id"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }


def order_of(order: Order) -> dict[str, Any]:
    """An Order instance (as a service returned it) as the order object."""
    return order_present(order_row(order))


# ---------------------------------------------------------------------------
# Fills

# The fill object's fields, in order: also the columns of the `positions` report.
FILL_FIELDS = (
    "id",
    "order_id",
    "client_order_id",
    "symbol",
    "side",
    "quantity",
    "price",
    "notional",
    "venue_fee",
    "commission",
    "realized_pnl",
    "liquidity",
    "venue",
    "created_at",
)


def fill_row(fill: Fill, *, order: Order | None) -> dict[str, Any]:
    """A Fill instance (and its order, if any) as the row `trading.selectors.fill_list`
    reads."""
    return {
        "public_id": fill.public_id,
        "order__public_id": order.public_id if order is not None else None,
        "order__client_order_id": order.client_order_id if order is not None else None,
        "symbol": contract_symbol(fill.instrument.symbol, fill.outcome),
        "outcome": fill.outcome,
        "side": fill.side,
        "quantity": fill.quantity,
        "price": fill.price,
        "notional": fill.notional,
        "venue_fee": fill.venue_fee,
        "commission": fill.commission,
        "realized_pnl": fill.realized_pnl,
        "liquidity": fill.liquidity,
        "venue": fill.venue.code,
        "created_at": fill.created_at,
    }


def fill_present(row: dict[str, Any]) -> dict[str, Any]:
    """A fill row (`fill_row`, `fill_list`) as the fill object (keys: FILL_FIELDS)."""
    return {
        "id": row["public_id"],
        "order_id": row["order__public_id"],
        "client_order_id": row["order__client_order_id"],
        "symbol": row["symbol"],
        "side": row["side"],
        "quantity": qty(row["quantity"]),
        "price": price(row["price"]),
        "notional": money(row["notional"]),
        "venue_fee": money(row["venue_fee"]),
        "commission": money(row["commission"]),
        "realized_pnl": money(row["realized_pnl"]),
        "liquidity": row["liquidity"],
        "venue": row["venue"],
        "created_at": timestamp(row["created_at"]),
    }


# ---------------------------------------------------------------------------
# Positions


def position_present(view: PositionView) -> dict[str, Any]:
    """A priced position (`position_book_get`, `position_view_get`) as the position object."""
    return {
        "symbol": view.symbol,
        "kind": view.kind,
        "venue": view.venue,
        "side": view.side,
        "quantity": qty(view.quantity),
        "average_price": price(view.average_price),
        "mark_price": price(view.mark_price),
        "notional": money(view.notional),
        "pnl": money(view.unrealized_pnl),
        "realized_pnl": money(view.realized_pnl),
        "opened_at": timestamp(view.opened_at),
        "leverage": view.leverage,
        "liquidation_price": price(view.liquidation_price),
        "isolated_margin": money(view.isolated_margin),
        "quoted_at": timestamp(view.quoted_at),
        "stale": view.stale,
    }


# The positions page's table and its CSV export: the position object plus what the
# open quantity cost and its P&L as a fraction of that (`PositionView.cost`,
# `PositionView.pnl_fraction`), in this column order.
POSITION_TABLE_FIELDS = (
    "symbol",
    "kind",
    "venue",
    "side",
    "quantity",
    "average_price",
    "cost",
    "mark_price",
    "notional",
    "pnl",
    "pnl_percent",
    "realized_pnl",
    "leverage",
    "isolated_margin",
    "liquidation_price",
    "opened_at",
    "quoted_at",
    "stale",
)


def position_row_present(view: PositionView) -> dict[str, Any]:
    """A priced position as a row of the positions table (keys: POSITION_TABLE_FIELDS);
    `pnl_percent` is the P&L over cost as a fraction (0.125 = 12.5 %)."""
    row = position_present(view) | {
        "cost": money(view.cost),
        "pnl_percent": dec(view.pnl_fraction),
    }
    return {name: row[name] for name in POSITION_TABLE_FIELDS}


# ---------------------------------------------------------------------------
# Margin


class MarginFigures(Protocol):
    """An account's headline Margin Portfolio figures: `AccountMargin` (selectors),
    `MarginUpdate` (the engine's push), `MarginFigures` (a simulation's before/after)."""

    cash: Decimal
    used_margin: Decimal
    adjusted_equity: Decimal
    available_margin: Decimal
    health: Decimal | None
    utilization: Decimal | None
    status: str


class MarginHeadline(MarginFigures, Protocol):
    at: datetime
    may_borrow: bool
    stale: bool
    stale_since: datetime | None


def margin_figures_present(figures: MarginFigures) -> dict[str, Any]:
    """The figures every margin view shares (a summary, a push, a projection)."""
    return {
        "cash": money(figures.cash),
        "used_margin": money(figures.used_margin),
        "adjusted_equity": money(figures.adjusted_equity),
        "available_margin": money(figures.available_margin),
        "health": dec(figures.health),
        "margin_utilization": dec(figures.utilization),
        "status": figures.status,
    }


class MarginProjection(MarginFigures, Protocol):
    initial_requirement: Decimal
    maintenance_requirement: Decimal


def margin_projection_present(prefix: str, figures: MarginProjection) -> dict[str, Any]:
    """Simulated figures as seed 003 names them (`pre_…` / `post_…`): its requirements
    and the shared margin figures, each name prefixed."""
    return {
        f"{prefix}_initial_margin": money(figures.initial_requirement),
        f"{prefix}_maintenance_margin": money(figures.maintenance_requirement),
    } | {f"{prefix}_{name}": value for name, value in margin_figures_present(figures).items()}


def margin_headline_present(figures: MarginHeadline) -> dict[str, Any]:
    """The figures with their time and price freshness: the `margin` push's body, and
    the part of the margin summary the engine recomputes on every tick."""
    return margin_figures_present(figures) | {
        # Credit only for an account that can borrow: a cash-only account has none.
        "available_credit": money(figures.available_margin if figures.may_borrow else ZERO),
        "as_of": timestamp(figures.at),
        "stale": figures.stale,
        "stale_since": timestamp(figures.stale_since),
    }


def margin_summary_present(summary: AccountMargin) -> dict[str, Any]:
    """An account's margin summary (GET margin's figures, the dashboard's summary)."""
    return margin_headline_present(summary) | {
        "deposit": money(summary.deposit),
        "collateral_value": money(summary.collateral_value),
        "diversification": dec(summary.diversification),
    }


def margin_position_present(row: PositionMargin, view: PositionView) -> dict[str, Any]:
    """A binary position's line of the margin breakdown (its part of Adjusted Equity)."""
    return {
        "symbol": view.symbol,
        "venue": view.venue,
        "quantity": qty(row.quantity),
        "collateral_price": price(row.collateral_price),
        "value": money(row.value),
        "haircut": dec(row.haircut),
        "contribution": money(row.contribution),
    }


def exposure_present(group: ExposureGroup) -> dict[str, Any]:
    """Positions grouped by asset class or venue (the margin summary's exposure)."""
    return {
        "positions": group.positions,
        "notional": money(group.notional),
        "unrealized_pnl": money(group.unrealized_pnl),
        "adjusted_value": money(group.adjusted_value),
        "isolated_margin": money(group.isolated_margin),
    }


# ---------------------------------------------------------------------------
# The account's priced figures: GET positions' and GET margin's bodies (also stored by
# the margin engine, `trading.services.figures_store`, and read by the streams)


def positions_body_present(
    *,
    account_id: str,
    utilization: Decimal | None,
    at: datetime,
    positions: Sequence[PositionView],
) -> dict[str, Any]:
    """GET positions: the account's open positions and its margin utilization."""
    return {
        "account_id": account_id,
        "margin_utilization": dec(utilization),
        "as_of": timestamp(at),
        "positions": [position_present(view) for view in positions],
    }


def margin_body_present(
    *, account_id: str, margin_enabled: bool, overview: MarginOverview
) -> dict[str, Any]:
    """GET margin: the summary, the thresholds, exposure by class and venue, and the
    binary positions' contributions."""
    summary = overview.summary
    views = {view.position_id: view for view in overview.positions}
    return {
        "account_id": account_id,
        "margin_enabled": margin_enabled,
        **margin_summary_present(summary),
        "initial_margin_requirement": dec(overview.initial_threshold),
        "maintenance_margin_requirement": dec(overview.maintenance_threshold),
        "by_asset_class": {
            group.asset_class: exposure_present(group) for group in overview.by_asset_class
        },
        "by_venue": [
            {"venue": group.venue, "asset_class": group.asset_class} | exposure_present(group)
            for group in overview.by_venue
        ],
        "breakdown": [
            margin_position_present(row, views[row.position_id]) for row in summary.breakdown
        ],
    }


def prices_present(positions: Sequence[PositionView], *, stale_after_seconds: float) -> dict:
    """Whether the positions' prices are delayed (the dashboard's banner), and since when."""
    delayed = [view for view in positions if view.stale]
    since = [view.quoted_at for view in delayed if view.quoted_at is not None]
    return {
        "stale": bool(delayed),
        "stale_since": timestamp(min(since)) if since else None,
        "stale_after_seconds": int(stale_after_seconds),
        "symbols": sorted({view.symbol for view in delayed}),
    }


def dashboard_figures_present(
    overview: MarginOverview, *, stale_after_seconds: float
) -> dict[str, Any]:
    """The dashboard's priced figures (`trading.web.figures.dashboard_snapshot`): the
    summary, the breakdown by contribution with each position's P&L, the perps and
    the prices' freshness, in the API's shapes."""
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
    return {
        "as_of": timestamp(summary.at),
        "summary": margin_summary_present(summary) | {"borrowing": summary.used_margin > ZERO},
        "breakdown": breakdown,
        "perps": [
            {"position_id": view.position_id, **position_present(view)}
            for view in overview.positions
            if view.kind == Instrument.Kind.PERPETUAL
        ],
        "prices": prices_present(overview.positions, stale_after_seconds=stale_after_seconds),
    }


# ---------------------------------------------------------------------------
# Leverage (perpetuals)


def leverage_present(*, symbol: str, leverage: int, max_leverage: int, is_default: bool) -> dict:
    """The leverage in force in one perp market."""
    return {
        "symbol": symbol,
        "leverage": leverage,
        "max_leverage": max_leverage,
        "is_default": is_default,
    }


def leverage_levels_present(*, symbol: str, levels: Sequence[int], default: int) -> dict:
    """A perp market's allowed leverage levels."""
    return {
        "symbol": symbol,
        "levels": list(levels),
        "default_leverage": default,
        "max_leverage": max(levels),
    }


def leverage_change_present(
    *,
    symbol: str,
    status: str,
    old_leverage: int | None,
    new_leverage: int | None,
    cancelled_order_ids: Sequence[str],
    message: str | None = None,
    reject_reason: str | None = None,
) -> dict[str, Any]:
    """A leverage change's outcome, in seed 004's names (camelCase): `leverage` is the
    leverage now in force; `rejectReason` only on REJECTED; `message` when known."""
    body: dict[str, Any] = {
        "symbol": symbol,
        "leverage": new_leverage,
        "oldLeverage": old_leverage,
        "newLeverage": new_leverage,
        "status": status,
    }
    if message is not None:
        body["message"] = message
    body["cancelledOrderIds"] = list(cancelled_order_ids)
    if reject_reason is not None:
        body["rejectReason"] = reject_reason
    return body


class LeverageOutcome(Protocol):
    """`trading.services.perps.LeverageResult`'s fields."""

    market: str
    status: str
    reject_reason: str | None
    old_leverage: int | None
    new_leverage: int | None
    message: str
    cancelled_order_ids: list[str]


def leverage_result_present(result: LeverageOutcome) -> dict[str, Any]:
    """`leverage_set`'s result as the leverage change object (POST leverage, the
    dashboard's leverage form)."""
    return leverage_change_present(
        symbol=result.market,
        status=result.status,
        old_leverage=result.old_leverage,
        new_leverage=result.new_leverage,
        cancelled_order_ids=result.cancelled_order_ids,
        message=result.message,
        reject_reason=result.reject_reason,
    )
