"""Serializers of the trading API (/v1/intelligence): input validation, and the
response shapes for the OpenAPI schema.

Input serializers validate types, ranges and precision (money 6 places,
prices 8, quantities 6; decimals as strings of ASCII digits, never JSON
numbers; free text printable on one line: `portal.api.fields`); the services
decide everything else. Responses are plain dicts shaped by `trading.presenters`
(the read paths are hot); the output serializers here document them. The same
objects are the partner stream's and the dashboard's events (an `order` event is
an OrderSerializer object with `"type": "order"`, and so on: README "Partner
stream"). Decimals are strings, timestamps ISO 8601 in UTC with microseconds.
"""

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from portal.api.fields import (
    TextField,
    WholeNumberField,
    money_input,
    price_input,
    quantity_input,
)
from portal.api.pagination import PageQuerySerializer
from trading import api_examples as examples
from trading.models import Instrument, Order
from trading.services.execute import CLIENT_ORDER_ID_MAX, SLIPPAGE_BPS_MAX

ACCOUNT_ID_HELP = (
    "The account to act on (one of the key's). Optional when the key is bound to one account."
)
SYMBOL_HELP = (
    "Contract symbol: a binary market's YES contract (TRUMP-WIN), its NO contract "
    "(TRUMP-WIN:NO), or a perpetual (BTC-PERP)."
)


def decimal_out(**kwargs) -> serializers.DecimalField:
    """A decimal in a response: a string such as "1250.500000"."""
    return serializers.DecimalField(max_digits=None, decimal_places=None, **kwargs)


def account_id_field() -> TextField:
    return TextField(required=False, max_length=32, help_text=ACCOUNT_ID_HELP)


def client_order_id_field() -> TextField:
    """Every order entry point's idempotency key (execute, orders, close)."""
    return TextField(
        required=False,
        allow_null=True,
        max_length=CLIENT_ORDER_ID_MAX,
        help_text="Unique per account. A retry with the same id and body returns the "
        "original order (200); the same id with a different body is a 409 duplicate_order.",
    )


# ---------------------------------------------------------------------------
# Input


@extend_schema_serializer(examples=examples.POSITION_CLOSE_REQUEST)
class PositionCloseInputSerializer(serializers.Serializer):
    account_id = account_id_field()
    quantity = quantity_input(
        required=False,
        allow_null=True,
        help_text="Contracts (or a perp's base units) to close. Omit both quantity and "
        "percent to close the whole position.",
    )
    percent = money_input(
        required=False,
        allow_null=True,
        min_value=0,
        help_text='Share of the position to close, e.g. "25" (rounded down to a whole step).',
    )
    slippage_bps = WholeNumberField(
        required=False,
        default=50,
        min_value=0,
        max_value=SLIPPAGE_BPS_MAX,
        help_text="How far below the best bid (above the best ask, covering a short) the "
        "order may fill, in basis points. Default 50.",
    )
    client_order_id = client_order_id_field()


@extend_schema_serializer(examples=examples.EXECUTE_REQUEST)
class ExecuteInputSerializer(serializers.Serializer):
    account_id = account_id_field()
    symbol = TextField(max_length=70, help_text=SYMBOL_HELP)
    side = serializers.ChoiceField(choices=Order.Side.values)
    notional_usdc = money_input(
        help_text='Trade size in USDC notional, a decimal string such as "1500.00".',
        min_value=0,
    )
    venue = TextField(
        required=False,
        allow_null=True,
        max_length=32,
        help_text="Preferred venue code (kalshi, polymarket, leviathan). Omit for smart "
        "routing: the venue whose book fills the whole size at the best average price.",
    )
    slippage_bps = WholeNumberField(
        required=False,
        default=50,
        min_value=0,
        max_value=SLIPPAGE_BPS_MAX,
        help_text="Max acceptable slippage from the best price, in basis points. Default 50.",
    )
    client_order_id = client_order_id_field()


@extend_schema_serializer(examples=examples.ORDER_PLACE_REQUEST)
class OrderPlaceInputSerializer(serializers.Serializer):
    account_id = account_id_field()
    symbol = TextField(max_length=70, help_text=SYMBOL_HELP)
    side = serializers.ChoiceField(choices=Order.Side.values)
    order_type = serializers.ChoiceField(choices=Order.Type.values, default=Order.Type.LIMIT)
    time_in_force = serializers.ChoiceField(
        choices=Order.TimeInForce.values,
        default=Order.TimeInForce.GTC,
        help_text="GTC rests what does not fill now; IOC cancels it; FOK fills all now or "
        "nothing (status rejected).",
    )
    quantity = quantity_input(help_text="Contracts (binaries) or base units (perpetuals).")
    price = price_input(
        required=False,
        allow_null=True,
        help_text="Limit price (required for limit orders; binaries strictly in (0, 1)).",
    )
    take_profit = price_input(required=False, allow_null=True)
    stop_loss = price_input(required=False, allow_null=True)
    client_order_id = client_order_id_field()
    leverage = WholeNumberField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="Perpetuals only: leverage for this order (default: the account's).",
    )


@extend_schema_serializer(examples=examples.ORDER_MODIFY_REQUEST)
class OrderModifyInputSerializer(serializers.Serializer):
    account_id = account_id_field()
    price = price_input(required=False, allow_null=True)
    quantity = quantity_input(required=False, allow_null=True)
    take_profit = price_input(required=False, allow_null=True)
    stop_loss = price_input(required=False, allow_null=True)


class OrderListQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(
        choices=[*Order.Status.values, "active"],
        required=False,
        help_text="One status, or 'active' for pending, open and partially filled.",
    )
    symbol = TextField(required=False, max_length=70, help_text=SYMBOL_HELP)


class OrderTriggersQuerySerializer(serializers.Serializer):
    which = serializers.ChoiceField(
        choices=["take_profit", "stop_loss"],
        required=False,
        help_text="The trigger to remove; absent: both.",
    )


class FillListQuerySerializer(PageQuerySerializer):
    symbol = TextField(required=False, max_length=70, help_text=SYMBOL_HELP)


class SymbolQuerySerializer(serializers.Serializer):
    symbol = TextField(max_length=64, help_text="A perpetual market, e.g. BTC-PERP.")


class OptionalSymbolQuerySerializer(serializers.Serializer):
    symbol = TextField(
        required=False, max_length=64, help_text="A perpetual market, e.g. BTC-PERP."
    )


@extend_schema_serializer(examples=examples.LEVERAGE_SET_REQUEST)
class LeverageSetInputSerializer(serializers.Serializer):
    account_id = account_id_field()
    symbol = TextField(max_length=64, help_text="A perpetual market, e.g. BTC-PERP.")
    leverage = WholeNumberField(
        help_text="Whole leverage, e.g. 10 for 10x. Outside [1, market max] the change is "
        "REJECTED (422, INVALID_LEVERAGE)."
    )


class CollateralChangeSerializer(serializers.Serializer):
    amount = money_input(help_text='Signed USDC: deposits +, withdrawals − (e.g. "-250.00").')
    asset_name = serializers.ChoiceField(choices=["USDC"])


class PositionChangeSerializer(serializers.Serializer):
    instrument_name = TextField(max_length=70, help_text=SYMBOL_HELP)
    amount = quantity_input(help_text="Signed contracts: buy +, sell −.")
    entry_price = price_input(
        required=False,
        allow_null=True,
        help_text="Price per contract; default the executable price at the best venue "
        "for that quantity (the ask for a buy, the bid for a sell).",
    )


@extend_schema_serializer(examples=examples.MARGIN_SIMULATE_REQUEST)
class MarginSimulateInputSerializer(serializers.Serializer):
    account_id = account_id_field()
    simulated_collateral_changes = CollateralChangeSerializer(
        many=True, required=False, max_length=100
    )
    simulated_position_changes = PositionChangeSerializer(many=True, required=False, max_length=100)


class MarketListQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Instrument.Kind.values, required=False)
    status = serializers.ChoiceField(choices=Instrument.Status.values, required=False)


class OrderBookQuerySerializer(serializers.Serializer):
    venue = TextField(required=False, max_length=32)
    depth = WholeNumberField(required=False, min_value=1, max_value=50)


# ---------------------------------------------------------------------------
# Output (documentation of the dicts the views render)


class PositionSerializer(serializers.Serializer):
    symbol = serializers.CharField(help_text=SYMBOL_HELP)
    kind = serializers.ChoiceField(choices=Instrument.Kind.values)
    venue = serializers.CharField(
        help_text="Binary: the venue whose price values the position (best collateral "
        "price); perpetual: its venue (leviathan)."
    )
    side = serializers.ChoiceField(choices=["long", "short"], help_text="Binaries are long.")
    quantity = decimal_out(help_text="Contracts held (absolute).")
    average_price = decimal_out(help_text="Average entry price.")
    mark_price = decimal_out(
        allow_null=True,
        help_text="Binary: the collateral price (lower of best bid and 60 s TWAP at the "
        "best venue; the last stored mark without a live quote; 1 or 0 once resolved). "
        "Perpetual: the mark. Null when no price is known.",
    )
    notional = decimal_out(allow_null=True, help_text="quantity × mark_price, USDC.")
    pnl = decimal_out(
        allow_null=True,
        help_text="Unrealized P&L, USDC: binary quantity × (mark_price − average_price); "
        "perpetual s × (mark − entry).",
    )
    realized_pnl = decimal_out(help_text="Realized P&L of this position so far, USDC.")
    opened_at = serializers.DateTimeField()
    leverage = serializers.IntegerField(allow_null=True, help_text="Perpetuals only.")
    liquidation_price = decimal_out(allow_null=True, help_text="Perpetuals only.")
    isolated_margin = decimal_out(allow_null=True, help_text="Perpetuals only, USDC.")
    quoted_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When mark_price was quoted (null: a resolved market's payout, or no price).",
    )
    stale = serializers.BooleanField(
        help_text="True when mark_price is older than the risk policy allows (15 s by "
        "default) in a market that trades: prices are delayed, and orders in it are "
        "refused with 503 market_data_stale until they are live again."
    )


@extend_schema_serializer(examples=examples.POSITION_LIST)
class PositionListSerializer(serializers.Serializer):
    account_id = serializers.CharField()
    margin_utilization = decimal_out(
        allow_null=True,
        help_text="Used Margin / Adjusted Equity (0 without borrowing; null when Adjusted "
        "Equity is 0 while borrowing).",
    )
    as_of = serializers.DateTimeField()
    positions = PositionSerializer(many=True)


@extend_schema_serializer(examples=examples.ORDER)
class OrderSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The order id (ord_…).")
    client_order_id = serializers.CharField(allow_null=True)
    symbol = serializers.CharField(help_text=SYMBOL_HELP)
    side = serializers.ChoiceField(choices=Order.Side.values)
    order_type = serializers.ChoiceField(choices=Order.Type.values)
    time_in_force = serializers.ChoiceField(choices=Order.TimeInForce.values)
    status = serializers.ChoiceField(
        choices=Order.Status.values,
        help_text="As the order stands: e.g. submitted (sent to the venue, no answer yet), "
        "pending (the venue has not confirmed in time; reconciled later), open, "
        "partially_filled, filled, cancelled, rejected.",
    )
    venue = serializers.CharField(allow_null=True)
    quantity = decimal_out(allow_null=True, help_text="Contracts ordered (limit orders).")
    notional = decimal_out(allow_null=True, help_text="USDC notional ordered (execute).")
    price = decimal_out(allow_null=True, help_text="Limit price.")
    take_profit = decimal_out(allow_null=True)
    stop_loss = decimal_out(allow_null=True)
    leverage = serializers.IntegerField(allow_null=True)
    filled_quantity = decimal_out()
    filled_notional = decimal_out(help_text="USDC traded.")
    average_price = decimal_out(allow_null=True, help_text="Average fill price.")
    fees = decimal_out(help_text="Venue fees and broker commission, USDC.")
    reject_code = serializers.CharField(allow_null=True)
    reject_reason = serializers.CharField(allow_null=True)
    parent_id = serializers.CharField(
        allow_null=True, help_text="The order whose take-profit / stop-loss created this one."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(examples=examples.ORDER_PAGE)
class OrderPageSerializer(serializers.Serializer):
    account_id = serializers.CharField()
    orders = OrderSerializer(many=True)
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next_offset = serializers.IntegerField(
        allow_null=True, help_text="The offset of the next page; null on the last page."
    )


class FillSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The fill id (fill_…).")
    order_id = serializers.CharField(allow_null=True)
    client_order_id = serializers.CharField(allow_null=True)
    symbol = serializers.CharField(help_text=SYMBOL_HELP)
    side = serializers.ChoiceField(choices=Order.Side.values)
    quantity = decimal_out()
    price = decimal_out()
    notional = decimal_out()
    venue_fee = decimal_out()
    commission = decimal_out()
    realized_pnl = decimal_out()
    liquidity = serializers.ChoiceField(choices=["taker", "maker"])
    venue = serializers.CharField()
    created_at = serializers.DateTimeField()


@extend_schema_serializer(examples=examples.FILL_PAGE)
class FillPageSerializer(serializers.Serializer):
    account_id = serializers.CharField()
    fills = FillSerializer(many=True)
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next_offset = serializers.IntegerField(allow_null=True)


class ExposureSerializer(serializers.Serializer):
    positions = serializers.IntegerField()
    notional = decimal_out(help_text="Σ notional, USDC.")
    unrealized_pnl = decimal_out()
    adjusted_value = decimal_out(
        help_text="Σ contribution to Adjusted Equity (binaries; perps count 0: their "
        "isolated margin is locked to them)."
    )
    isolated_margin = decimal_out(help_text="Σ isolated margin of perpetuals, USDC.")


class VenueExposureSerializer(ExposureSerializer):
    venue = serializers.CharField()
    asset_class = serializers.ChoiceField(choices=["prediction", "perpetual"])


class AssetClassExposureSerializer(serializers.Serializer):
    prediction = ExposureSerializer()
    perpetual = ExposureSerializer()


class MarginPositionSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    venue = serializers.CharField()
    quantity = decimal_out()
    collateral_price = decimal_out()
    value = decimal_out(help_text="V = quantity × collateral price.")
    haircut = decimal_out(help_text="h in [0, h_max].")
    contribution = decimal_out(help_text="D · V · (1 − h): its part of Adjusted Equity.")


@extend_schema_serializer(examples=examples.MARGIN)
class MarginSerializer(serializers.Serializer):
    account_id = serializers.CharField()
    margin_enabled = serializers.BooleanField()
    margin_utilization = decimal_out(allow_null=True)
    available_credit = decimal_out(
        help_text="What the account can still borrow: its Available Margin when margin is "
        "enabled, 0 for an account that cannot borrow (cash-only or non-custodial)."
    )
    available_margin = decimal_out(
        help_text="Adjusted Equity − Used Margin (room for new positions)."
    )
    health = decimal_out(
        allow_null=True, help_text="Adjusted Equity / Used Margin; null (unbounded) when UM = 0."
    )
    status = serializers.ChoiceField(choices=["healthy", "caution", "margin_call"])
    deposit = decimal_out(help_text="Net deposits (deposits − withdrawals).")
    cash = decimal_out()
    used_margin = decimal_out(help_text="max(0, −cash): collateral borrowed.")
    adjusted_equity = decimal_out()
    collateral_value = decimal_out(help_text="Σ V of binary positions.")
    diversification = decimal_out(help_text="D = 1 − c · HHI.")
    initial_margin_requirement = decimal_out(
        help_text="Health an action that adds risk must keep (1.2)."
    )
    maintenance_margin_requirement = decimal_out(help_text="Below it a margin call opens (1.0).")
    by_asset_class = AssetClassExposureSerializer()
    by_venue = VenueExposureSerializer(many=True)
    breakdown = MarginPositionSerializer(
        many=True, help_text="Binary positions by contribution to Adjusted Equity, largest first."
    )
    as_of = serializers.DateTimeField()
    stale = serializers.BooleanField(
        help_text="True when a position is valued with a price older than the risk policy "
        "allows: the figures rest on delayed prices, and no margin call or liquidation is "
        "decided on them until prices are live again."
    )
    stale_since = serializers.DateTimeField(
        allow_null=True,
        help_text="The time of the oldest delayed price (null when none is delayed, or a "
        "delayed market was never priced).",
    )


class WhatIfPositionSerializer(serializers.Serializer):
    instrument_name = serializers.CharField()
    amount = decimal_out()
    entry_price = decimal_out()
    fee = decimal_out(
        help_text="Venue fee plus broker commission of the fill, as execute counts them."
    )
    cash = decimal_out(help_text="−paid for a buy, +received for a sell; the fee included.")


class MarginSimulationResultSerializer(serializers.Serializer):
    is_valid_trade = serializers.BooleanField(help_text="True if it passes the pre-trade check.")
    breach = serializers.ChoiceField(
        choices=["borrowing", "margin_disabled", "initial_margin"],
        allow_null=True,
        help_text="Why not: a withdrawal would borrow, a non-margin account would borrow, "
        "or health would fall below the initial requirement.",
    )
    pre_initial_margin = decimal_out(help_text="Initial requirement 1.2 × Used Margin, before.")
    post_initial_margin = decimal_out()
    pre_maintenance_margin = decimal_out(help_text="Maintenance 1.0 × Used Margin, before.")
    post_maintenance_margin = decimal_out()
    pre_health = decimal_out(allow_null=True)
    post_health = decimal_out(allow_null=True)
    pre_margin_utilization = decimal_out(
        allow_null=True, help_text="Used Margin / Adjusted Equity, before (as GET margin)."
    )
    post_margin_utilization = decimal_out(allow_null=True)
    pre_status = serializers.CharField()
    post_status = serializers.CharField()
    pre_used_margin = decimal_out()
    post_used_margin = decimal_out()
    pre_adjusted_equity = decimal_out()
    post_adjusted_equity = decimal_out()
    pre_available_margin = decimal_out()
    post_available_margin = decimal_out()
    pre_cash = decimal_out()
    post_cash = decimal_out()
    positions = WhatIfPositionSerializer(many=True)


@extend_schema_serializer(examples=examples.MARGIN_SIMULATION)
class MarginSimulationSerializer(serializers.Serializer):
    account_id = serializers.CharField()
    result = MarginSimulationResultSerializer()


@extend_schema_serializer(examples=examples.LEVERAGE)
class LeverageSerializer(serializers.Serializer):
    account_id = serializers.CharField()
    symbol = serializers.CharField()
    leverage = serializers.IntegerField(help_text="In force for this (account, market).")
    max_leverage = serializers.IntegerField()
    is_default = serializers.BooleanField(help_text="True until the account sets its own.")


@extend_schema_serializer(examples=examples.LEVERAGE_RESULT)
class LeverageResultSerializer(serializers.Serializer):
    """Seed 004's setLeverage body (camelCase as the seed spells it)."""

    requestId = serializers.UUIDField()
    accountId = serializers.CharField()
    symbol = serializers.CharField()
    leverage = serializers.IntegerField(
        allow_null=True,
        help_text="Leverage now in force: on APPLIED the requested one; on REJECTED the "
        "prior one (null for an unknown market).",
    )
    oldLeverage = serializers.IntegerField(allow_null=True)
    newLeverage = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=["APPLIED", "REJECTED"])
    rejectReason = serializers.ChoiceField(
        choices=["UNDERCOLLATERALIZED", "INVALID_LEVERAGE", "UNKNOWN_MARKET"],
        required=False,
        help_text="Present on REJECTED (422).",
    )
    message = serializers.CharField()
    cancelledOrderIds = serializers.ListField(
        child=serializers.CharField(), help_text="Open orders in the market cancelled by it."
    )


class LeverageLevelsSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    levels = serializers.ListField(child=serializers.IntegerField())
    default_leverage = serializers.IntegerField()
    max_leverage = serializers.IntegerField()


@extend_schema_serializer(examples=examples.LEVERAGE_LEVELS)
class LeverageLevelsListSerializer(serializers.Serializer):
    markets = LeverageLevelsSerializer(many=True)


class ListingSerializer(serializers.Serializer):
    venue = serializers.CharField()
    venue_symbol = serializers.CharField()
    bid = decimal_out(allow_null=True, help_text="Binaries: YES prices.")
    ask = decimal_out(allow_null=True)
    mark = decimal_out(allow_null=True)
    quoted_at = serializers.DateTimeField(allow_null=True, help_text="Null: never quoted.")


@extend_schema_serializer(examples=examples.MARKET)
class MarketSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=Instrument.Kind.values)
    status = serializers.ChoiceField(choices=Instrument.Status.values)
    event = serializers.CharField(allow_null=True, help_text="Binaries: the event group.")
    expires_at = serializers.DateTimeField(allow_null=True)
    resolution = serializers.CharField(allow_null=True)
    tick_size = decimal_out()
    max_leverage = serializers.IntegerField(allow_null=True)
    default_leverage = serializers.IntegerField(allow_null=True)
    maintenance_margin_fraction = decimal_out(allow_null=True)
    best_bid = decimal_out(allow_null=True, help_text="Highest bid across venues (YES).")
    best_ask = decimal_out(allow_null=True, help_text="Lowest ask across venues (YES).")
    listings = ListingSerializer(many=True)


@extend_schema_serializer(examples=examples.MARKET_LIST)
class MarketListSerializer(serializers.Serializer):
    markets = MarketSerializer(many=True)


class BookLevelSerializer(serializers.Serializer):
    price = decimal_out()
    size = decimal_out()


class VenueBookSerializer(serializers.Serializer):
    venue = serializers.CharField()
    bids = BookLevelSerializer(many=True, help_text="Best first.")
    asks = BookLevelSerializer(many=True, help_text="Best first.")


@extend_schema_serializer(examples=examples.ORDER_BOOK)
class OrderBookSerializer(serializers.Serializer):
    symbol = serializers.CharField(help_text=SYMBOL_HELP)
    books = VenueBookSerializer(many=True, help_text="Each venue with a live book.")
