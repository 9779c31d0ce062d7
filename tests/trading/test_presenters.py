"""The presenters (`trading.presenters`): one shape per resource, as the OpenAPI
schema documents it, with fixed decimal places and UTC timestamps."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

from trading import api_serializers as s
from trading.presenters import (
    FILL_FIELDS,
    exposure_present,
    fill_present,
    leverage_change_present,
    leverage_levels_present,
    leverage_present,
    margin_figures_present,
    margin_position_present,
    margin_projection_present,
    margin_summary_present,
    order_present,
    position_present,
    timestamp,
)
from trading.selectors import AccountMargin, ExposureGroup, PositionMargin, PositionView
from trading.services.simulation import MarginFigures

AT = datetime(2026, 4, 1, 9, 30, tzinfo=UTC)


def fields(serializer: type) -> set[str]:
    return set(serializer().fields)


def order_row(**changes) -> dict:
    return {
        "public_id": "ord_1",
        "client_order_id": None,
        "symbol": "TRUMP-WIN:NO",
        "outcome": "no",
        "side": "buy",
        "order_type": "market",
        "time_in_force": "IOC",
        "status": "filled",
        "quantity": None,
        "notional_usdc": D("50"),
        "limit_price": None,
        "take_profit": None,
        "stop_loss": None,
        "leverage": None,
        "filled_quantity": D("111.1"),
        "filled_notional": D("49.995"),
        "average_fill_price": D("0.45"),
        "fees": D("0.5"),
        "venue": "kalshi",
        "reject_code": "",
        "reject_reason": "",
        "parent__public_id": None,
        "created_at": AT,
        "updated_at": AT + timedelta(microseconds=5),
    } | changes


def position_view(**changes) -> PositionView:
    fields_ = {
        "position_id": 7,
        "symbol": "BTC-PERP",
        "kind": "perpetual",
        "venue": "leviathan",
        "side": "long",
        "quantity": D("0.5"),
        "average_price": D("95000"),
        "mark_price": D("95010.5"),
        "notional": D("47505.25"),
        "unrealized_pnl": D("5.25"),
        "realized_pnl": D("0"),
        "leverage": 5,
        "liquidation_price": D("77551.02040816"),
        "isolated_margin": D("9500"),
        "opened_at": AT,
        "quoted_at": AT,
        "stale": False,
    }
    return PositionView(**(fields_ | changes))


def account_margin() -> AccountMargin:
    return AccountMargin(
        account_id=1,
        cash=D("-100"),
        deposit=D("1000"),
        used_margin=D("100"),
        adjusted_equity=D("250.5"),
        available_margin=D("150.5"),
        health=D("2.505"),
        utilization=D("0.399202"),
        status="healthy",
        collateral_value=D("300"),
        diversification=D("0.9"),
        breakdown=[],
        at=AT,
        stale=False,
        stale_since=None,
    )


def test_the_order_object_is_the_documented_one_with_fixed_places():
    order = order_present(order_row())
    assert set(order) == fields(s.OrderSerializer)
    assert (order["id"], order["symbol"], order["average_price"]) == (
        "ord_1",
        "TRUMP-WIN:NO",
        "0.45000000",
    )
    assert (order["notional"], order["filled_quantity"], order["fees"]) == (
        "50.000000",
        "111.100000",
        "0.500000",
    )
    assert order["reject_code"] is None and order["quantity"] is None
    assert order["created_at"] == "2026-04-01T09:30:00.000000+00:00"
    assert order["updated_at"] == "2026-04-01T09:30:00.000005+00:00"


def test_an_order_status_is_passed_through_as_is():
    for status in ("submitted", "pending", "open", "rejected"):
        assert order_present(order_row(status=status))["status"] == status


def test_the_fill_object_is_the_documented_one_and_the_reports_columns():
    fill = fill_present(
        {
            "public_id": "fill_1",
            "order__public_id": "ord_1",
            "order__client_order_id": "c-1",
            "symbol": "TRUMP-WIN",
            "outcome": "yes",
            "side": "sell",
            "quantity": D("10"),
            "price": D("0.6"),
            "notional": D("6"),
            "venue_fee": D("0.01"),
            "commission": D("0"),
            "realized_pnl": D("-0.5"),
            "liquidity": "taker",
            "venue": "polymarket",
            "created_at": AT,
        }
    )
    assert tuple(fill) == FILL_FIELDS
    assert set(fill) == fields(s.FillSerializer)
    assert (fill["price"], fill["venue_fee"], fill["realized_pnl"]) == (
        "0.60000000",
        "0.010000",
        "-0.500000",
    )


def test_the_position_object_is_the_documented_one():
    position = position_present(position_view())
    assert set(position) == fields(s.PositionSerializer)
    assert (position["average_price"], position["pnl"], position["quantity"]) == (
        "95000.00000000",
        "5.250000",
        "0.500000",
    )
    unpriced = position_present(position_view(mark_price=None, quoted_at=None, notional=None))
    assert (unpriced["mark_price"], unpriced["quoted_at"], unpriced["notional"]) == (
        None,
        None,
        None,
    )


def test_the_margin_summary_is_get_margins_figures():
    summary = margin_summary_present(account_margin())
    documented = fields(s.MarginSerializer)
    rest_only = {
        "account_id",
        "margin_enabled",
        "initial_margin_requirement",
        "maintenance_margin_requirement",
        "by_asset_class",
        "by_venue",
        "breakdown",
    }
    assert set(summary) == documented - rest_only
    assert summary["margin_utilization"] == "0.399202"
    assert summary["available_credit"] == summary["available_margin"] == "150.500000"
    assert summary["as_of"] == "2026-04-01T09:30:00.000000+00:00"

    row = PositionMargin(
        position_id=7,
        symbol="TRUMP-WIN",
        title="Trump wins",
        outcome="yes",
        quantity=D("100"),
        collateral_price=D("0.55"),
        value=D("55"),
        haircut=D("0.1"),
        contribution=D("49.5"),
    )
    line = margin_position_present(row, position_view(symbol="TRUMP-WIN", venue="kalshi"))
    assert set(line) == fields(s.MarginPositionSerializer)
    group = ExposureGroup(venue="kalshi", asset_class="prediction", positions=1)
    assert set(exposure_present(group)) == fields(s.ExposureSerializer)


def test_simulated_figures_use_the_same_names():
    figures = MarginFigures(
        cash=D("10"),
        collateral_value=D("0"),
        adjusted_equity=D("10"),
        used_margin=D("0"),
        available_margin=D("10"),
        health=None,
        utilization=D("0"),
        status="healthy",
        initial_requirement=D("0"),
        maintenance_requirement=D("0"),
    )
    shared = margin_figures_present(figures)
    assert set(shared) <= set(margin_summary_present(account_margin()))
    simulated = margin_projection_present("pre", figures) | margin_projection_present(
        "post", figures
    )
    assert set(simulated) <= fields(s.MarginSimulationResultSerializer)
    assert simulated["pre_margin_utilization"] == shared["margin_utilization"]


def test_leverage_objects_are_the_documented_ones():
    view = leverage_present(symbol="BTC-PERP", leverage=5, max_leverage=20, is_default=True)
    assert set(view) | {"account_id"} == fields(s.LeverageSerializer)
    levels = leverage_levels_present(symbol="BTC-PERP", levels=[1, 2, 5, 10], default=5)
    assert set(levels) == fields(s.LeverageLevelsSerializer) and levels["max_leverage"] == 10
    rejected = leverage_change_present(
        symbol="BTC-PERP",
        status="REJECTED",
        old_leverage=5,
        new_leverage=5,
        cancelled_order_ids=[],
        message="No.",
        reject_reason="UNDERCOLLATERALIZED",
    )
    assert set(rejected) | {"requestId", "accountId"} == fields(s.LeverageResultSerializer)
    applied = leverage_change_present(
        symbol="BTC-PERP", status="APPLIED", old_leverage=5, new_leverage=3, cancelled_order_ids=()
    )
    assert "rejectReason" not in applied and applied["leverage"] == 3


def test_timestamps_are_utc_with_microseconds():
    east = timezone(timedelta(hours=2))
    assert timestamp(datetime(2026, 4, 1, 11, 30, tzinfo=east)) == (
        "2026-04-01T09:30:00.000000+00:00"
    )
    assert timestamp(None) is None
