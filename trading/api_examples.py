"""Examples of the trading API's request and response bodies in the OpenAPI document.

Values as the API writes them (`trading.presenters`): decimals as strings (money and
quantities with 6 places, prices with 8), ids as the models make them (`ord_…`,
`fill_…`), times ISO 8601 in UTC with microseconds. They tell one story, seed 000's:
account acct_9f3a2bc0d1 is long BTC-PERP (notional 2,840,000, P&L 18,420) and TRUMP-WIN
on Polymarket (notional 480,000, P&L 11,050) at a margin utilization of 0.62.

Serializers carry their resource's examples (`extend_schema_serializer`); views add the
cases of their own (`extend_schema(examples=…)`); error examples are generated from the
codes each operation answers (`portal.api.schema`).
"""

from drf_spectacular.utils import OpenApiExample

from portal.api.schema import EXAMPLE_ACCOUNT_ID as ACCOUNT_ID
from portal.api.schema import error_example
from portal.errors import ErrorCode
from trading.services.reports import PERFORMANCE_COLUMNS

# ---------------------------------------------------------------------------
# Orders and fills

EXECUTED_ORDER_ID = "ord_5e0c3a9b7d2f4e61"
LIMIT_ORDER_ID = "ord_b71f0c2e9a4d6385"
CLOSE_ORDER_ID = "ord_2d94e7a1c05b3f88"

EXECUTED_ORDER = {
    "id": EXECUTED_ORDER_ID,
    "client_order_id": "rebalance-2026-04-22-001",
    "symbol": "TRUMP-WIN",
    "side": "buy",
    "order_type": "market",
    "time_in_force": "IOC",
    "status": "filled",
    "venue": "polymarket",
    "quantity": None,
    "notional": "50000.000000",
    "price": None,
    "take_profit": None,
    "stop_loss": None,
    "leverage": None,
    "filled_quantity": "83194.675540",
    "filled_notional": "50000.000000",
    "average_price": "0.60100000",
    "fees": "50.000000",
    "reject_code": None,
    "reject_reason": None,
    "parent_id": None,
    "created_at": "2026-04-22T15:04:37.218094+00:00",
    "updated_at": "2026-04-22T15:04:37.264511+00:00",
}
PENDING_ORDER = EXECUTED_ORDER | {
    "status": "pending",
    "venue": "kalshi",
    "filled_quantity": "0.000000",
    "filled_notional": "0.000000",
    "average_price": None,
    "fees": "0.000000",
    "updated_at": "2026-04-22T15:04:42.230117+00:00",
}
LIMIT_ORDER = {
    "id": LIMIT_ORDER_ID,
    "client_order_id": "grid-trump-052",
    "symbol": "TRUMP-WIN",
    "side": "buy",
    "order_type": "limit",
    "time_in_force": "GTC",
    "status": "open",
    "venue": "kalshi",
    "quantity": "10000.000000",
    "notional": None,
    "price": "0.52000000",
    "take_profit": "0.70000000",
    "stop_loss": "0.45000000",
    "leverage": None,
    "filled_quantity": "0.000000",
    "filled_notional": "0.000000",
    "average_price": None,
    "fees": "0.000000",
    "reject_code": None,
    "reject_reason": None,
    "parent_id": None,
    "created_at": "2026-04-22T15:06:02.871530+00:00",
    "updated_at": "2026-04-22T15:06:02.871530+00:00",
}
MODIFIED_ORDER = LIMIT_ORDER | {
    "quantity": "15000.000000",
    "price": "0.53000000",
    "updated_at": "2026-04-22T15:11:48.046273+00:00",
}
CANCELLED_ORDER = MODIFIED_ORDER | {
    "status": "cancelled",
    "reject_code": "cancelled",
    "reject_reason": "Cancelled by the customer.",
    "updated_at": "2026-04-22T15:20:13.592817+00:00",
}
# The limit order filled, its stop-loss removed; the take-profit still waits.
STOP_LOSS_REMOVED_ORDER = MODIFIED_ORDER | {
    "status": "filled",
    "filled_quantity": "15000.000000",
    "filled_notional": "7950.000000",
    "average_price": "0.53000000",
    "fees": "7.950000",
    "stop_loss": None,
    "updated_at": "2026-04-22T16:02:37.118402+00:00",
}
CLOSE_ORDER = {
    "id": CLOSE_ORDER_ID,
    "client_order_id": "close-trump-25pct",
    "symbol": "TRUMP-WIN",
    "side": "sell",
    "order_type": "limit",
    "time_in_force": "IOC",
    "status": "filled",
    "venue": "polymarket",
    "quantity": "200000.000000",
    "notional": None,
    "price": "0.59700000",
    "take_profit": None,
    "stop_loss": None,
    "leverage": None,
    "filled_quantity": "200000.000000",
    "filled_notional": "120000.000000",
    "average_price": "0.60000000",
    "fees": "120.000000",
    "reject_code": None,
    "reject_reason": None,
    "parent_id": None,
    "created_at": "2026-04-22T15:31:05.402716+00:00",
    "updated_at": "2026-04-22T15:31:05.447902+00:00",
}
PERP_FILL = {
    "id": "fill_8c1d07bf06b24064",
    "order_id": "ord_c4a81f3e6b907d25",
    "client_order_id": None,
    "symbol": "BTC-PERP",
    "side": "buy",
    "quantity": "40.000000",
    "price": "70539.50000000",
    "notional": "2821580.000000",
    "venue_fee": "0.000000",
    "commission": "2821.580000",
    "realized_pnl": "0.000000",
    "liquidity": "taker",
    "venue": "leviathan",
    "created_at": "2026-04-22T14:30:00.412305+00:00",
}
BINARY_FILL = {
    "id": "fill_d23da19774ddbd7b",
    "order_id": "ord_9a7e2c4b1f8d0635",
    "client_order_id": "trump-win-entry",
    "symbol": "TRUMP-WIN",
    "side": "buy",
    "quantity": "800000.000000",
    "price": "0.58618750",
    "notional": "468950.000000",
    "venue_fee": "0.000000",
    "commission": "468.950000",
    "realized_pnl": "0.000000",
    "liquidity": "taker",
    "venue": "polymarket",
    "created_at": "2026-04-20T09:15:00.208817+00:00",
}

ORDER = [
    OpenApiExample(
        "Filled market order",
        summary="A market order for a USDC notional, filled at the best venue",
        value=EXECUTED_ORDER,
        response_only=True,
    )
]
ORDER_PAGE = [
    OpenApiExample(
        "Orders",
        summary="The newest two orders; more on the next page",
        value={
            "account_id": ACCOUNT_ID,
            "orders": [LIMIT_ORDER, EXECUTED_ORDER],
            "limit": 2,
            "offset": 0,
            "next_offset": 2,
        },
        response_only=True,
    )
]
FILL_PAGE = [
    OpenApiExample(
        "Fills",
        summary="The account's fills, the last page",
        value={
            "account_id": ACCOUNT_ID,
            "fills": [PERP_FILL, BINARY_FILL],
            "limit": 100,
            "offset": 0,
            "next_offset": None,
        },
        response_only=True,
    )
]

# ---------------------------------------------------------------------------
# Requests

EXECUTE_REQUEST = [
    OpenApiExample(
        "Quickstart",
        summary="Seed 000's trade: buy 50,000 USDC of TRUMP-WIN, smart-routed",
        value={"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "50000.00"},
        request_only=True,
    ),
    OpenApiExample(
        "With every option",
        summary="A venue, a slippage limit and an idempotency key",
        value={
            "account_id": ACCOUNT_ID,
            "symbol": "TRUMP-WIN",
            "side": "buy",
            "notional_usdc": "50000.00",
            "venue": "polymarket",
            "slippage_bps": 50,
            "client_order_id": "rebalance-2026-04-22-001",
        },
        request_only=True,
    ),
]
ORDER_PLACE_REQUEST = [
    OpenApiExample(
        "Limit order",
        summary="Buy 10,000 TRUMP-WIN at 0.52 with take-profit and stop-loss",
        value={
            "symbol": "TRUMP-WIN",
            "side": "buy",
            "order_type": "limit",
            "time_in_force": "GTC",
            "quantity": "10000",
            "price": "0.52",
            "take_profit": "0.70",
            "stop_loss": "0.45",
            "client_order_id": "grid-trump-052",
        },
        request_only=True,
    ),
    OpenApiExample(
        "Perpetual limit order",
        summary="Sell 2 BTC-PERP at 72,000 with 5x leverage, fill-or-kill",
        value={
            "symbol": "BTC-PERP",
            "side": "sell",
            "order_type": "limit",
            "time_in_force": "FOK",
            "quantity": "2",
            "price": "72000.00",
            "leverage": 5,
        },
        request_only=True,
    ),
]
ORDER_MODIFY_REQUEST = [
    OpenApiExample(
        "New price and size",
        value={"price": "0.53", "quantity": "15000"},
        request_only=True,
    )
]
POSITION_CLOSE_REQUEST = [
    OpenApiExample(
        "A quarter",
        value={"percent": "25", "slippage_bps": 50, "client_order_id": "close-trump-25pct"},
        request_only=True,
    ),
    OpenApiExample("All of it", value={}, request_only=True),
]
LEVERAGE_SET_REQUEST = [
    OpenApiExample("5x", value={"symbol": "BTC-PERP", "leverage": 5}, request_only=True)
]
MARGIN_SIMULATE_REQUEST = [
    OpenApiExample(
        "Withdraw and buy",
        summary="Withdraw 2,500 USDC and buy 10,000 TRUMP-WIN at 0.61",
        value={
            "simulated_collateral_changes": [{"amount": "-2500.00", "asset_name": "USDC"}],
            "simulated_position_changes": [
                {"instrument_name": "TRUMP-WIN", "amount": "10000", "entry_price": "0.61"}
            ],
        },
        request_only=True,
    )
]

# ---------------------------------------------------------------------------
# Positions and margin (seed 000's account)

POSITION_LIST = [
    OpenApiExample(
        "Open positions",
        summary="Seed 000's positions",
        value={
            "account_id": ACCOUNT_ID,
            "margin_utilization": "0.620000",
            "as_of": "2026-04-22T15:02:11.902113+00:00",
            "positions": [
                {
                    "symbol": "BTC-PERP",
                    "kind": "perpetual",
                    "venue": "leviathan",
                    "side": "long",
                    "quantity": "40.000000",
                    "average_price": "70539.50000000",
                    "mark_price": "71000.00000000",
                    "notional": "2840000.000000",
                    "pnl": "18420.000000",
                    "realized_pnl": "0.000000",
                    "opened_at": "2026-04-22T14:30:00.412305+00:00",
                    "leverage": 10,
                    "liquidation_price": "65449.02061856",
                    "isolated_margin": "282158.000000",
                    "quoted_at": "2026-04-22T15:02:11.418207+00:00",
                    "stale": False,
                },
                {
                    "symbol": "TRUMP-WIN",
                    "kind": "binary",
                    "venue": "polymarket",
                    "side": "long",
                    "quantity": "800000.000000",
                    "average_price": "0.58618750",
                    "mark_price": "0.60000000",
                    "notional": "480000.000000",
                    "pnl": "11050.000000",
                    "realized_pnl": "0.000000",
                    "opened_at": "2026-04-20T09:15:00.208817+00:00",
                    "leverage": None,
                    "liquidation_price": None,
                    "isolated_margin": None,
                    "quoted_at": "2026-04-22T15:02:10.977342+00:00",
                    "stale": False,
                },
            ],
        },
        response_only=True,
    )
]

_PREDICTION = {
    "positions": 1,
    "notional": "480000.000000",
    "unrealized_pnl": "11050.000000",
    "adjusted_value": "249030.000000",
    "isolated_margin": "0.000000",
}
_PERPETUAL = {
    "positions": 1,
    "notional": "2840000.000000",
    "unrealized_pnl": "18420.000000",
    "adjusted_value": "0.000000",
    "isolated_margin": "282158.000000",
}
MARGIN = [
    OpenApiExample(
        "Borrowing and healthy",
        summary="Used Margin 154,398.53 USDC at Margin Health 1.61",
        value={
            "account_id": ACCOUNT_ID,
            "margin_enabled": True,
            "cash": "-154398.530000",
            "used_margin": "154398.530000",
            "adjusted_equity": "249030.000000",
            "available_margin": "94631.470000",
            "health": "1.612904",
            "margin_utilization": "0.620000",
            "status": "healthy",
            "available_credit": "94631.470000",
            "as_of": "2026-04-22T15:02:11.902113+00:00",
            "stale": False,
            "stale_since": None,
            "deposit": "600000.000000",
            "collateral_value": "480000.000000",
            "diversification": "0.750000",
            "initial_margin_requirement": "1.2",
            "maintenance_margin_requirement": "1.0",
            "by_asset_class": {"prediction": _PREDICTION, "perpetual": _PERPETUAL},
            "by_venue": [
                {"venue": "polymarket", "asset_class": "prediction"} | _PREDICTION,
                {"venue": "leviathan", "asset_class": "perpetual"} | _PERPETUAL,
            ],
            "breakdown": [
                {
                    "symbol": "TRUMP-WIN",
                    "venue": "polymarket",
                    "quantity": "800000.000000",
                    "collateral_price": "0.60000000",
                    "value": "480000.000000",
                    "haircut": "0.308250",
                    "contribution": "249030.000000",
                }
            ],
        },
        response_only=True,
    )
]
MARGIN_SIMULATION = [
    OpenApiExample(
        "Accepted",
        summary="Health falls from 1.61 to 1.55: above the initial requirement",
        value={
            "account_id": ACCOUNT_ID,
            "result": {
                "is_valid_trade": True,
                "breach": None,
                "pre_initial_margin": "185278.236000",
                "pre_maintenance_margin": "154398.530000",
                "pre_cash": "-154398.530000",
                "pre_used_margin": "154398.530000",
                "pre_adjusted_equity": "249030.000000",
                "pre_available_margin": "94631.470000",
                "pre_health": "1.612904",
                "pre_margin_utilization": "0.620000",
                "pre_status": "healthy",
                "post_initial_margin": "195605.556000",
                "post_maintenance_margin": "163004.630000",
                "post_cash": "-163004.630000",
                "post_used_margin": "163004.630000",
                "post_adjusted_equity": "252142.875000",
                "post_available_margin": "89138.245000",
                "post_health": "1.546845",
                "post_margin_utilization": "0.646477",
                "post_status": "healthy",
                "positions": [
                    {
                        "instrument_name": "TRUMP-WIN",
                        "amount": "10000.000000",
                        "entry_price": "0.61000000",
                        "fee": "6.100000",
                        "cash": "-6106.100000",
                    }
                ],
            },
        },
        response_only=True,
    )
]

# ---------------------------------------------------------------------------
# Leverage

LEVERAGE = [
    OpenApiExample(
        "Set by the account",
        value={
            "account_id": ACCOUNT_ID,
            "symbol": "BTC-PERP",
            "leverage": 10,
            "max_leverage": 20,
            "is_default": False,
        },
        response_only=True,
    )
]
LEVERAGE_RESULT = [
    OpenApiExample(
        "Applied",
        value={
            "requestId": "3b1f6c2e-8d4a-4f0b-9e57-a2c81d6f4b90",
            "accountId": ACCOUNT_ID,
            "symbol": "BTC-PERP",
            "leverage": 5,
            "oldLeverage": 10,
            "newLeverage": 5,
            "status": "APPLIED",
            "message": "Leverage in BTC-PERP set to 5x.",
            "cancelledOrderIds": ["ord_7f20b9d4e1c3a856"],
        },
        status_codes=["200"],
        response_only=True,
    ),
    OpenApiExample(
        "Rejected",
        summary="Outside [1, max]: INVALID_LEVERAGE, the leverage stays 10x",
        value={
            "requestId": "c9e04a7b-52d1-4e3f-8a6c-1b7d90f2e345",
            "accountId": ACCOUNT_ID,
            "symbol": "BTC-PERP",
            "leverage": 10,
            "oldLeverage": 10,
            "newLeverage": 10,
            "status": "REJECTED",
            "rejectReason": "INVALID_LEVERAGE",
            "message": "Leverage in BTC-PERP is a whole number from 1 to 20; got 25.",
            "cancelledOrderIds": [],
        },
        status_codes=["422"],
        response_only=True,
    ),
]
LEVERAGE_LEVELS = [
    OpenApiExample(
        "Perpetual markets",
        value={
            "markets": [
                {
                    "symbol": "BTC-PERP",
                    "levels": list(range(1, 21)),
                    "default_leverage": 5,
                    "max_leverage": 20,
                },
                {
                    "symbol": "SOL-PERP",
                    "levels": list(range(1, 11)),
                    "default_leverage": 3,
                    "max_leverage": 10,
                },
            ]
        },
        response_only=True,
    )
]

# ---------------------------------------------------------------------------
# Markets

# Polymarket lists a binary by the id of its YES outcome (a CLOB token id).
POLYMARKET_TRUMP_WIN_ID = (
    "21742633143463906290569050155826241533067272736897614950488156847949938836455"
)
BINARY_MARKET = {
    "symbol": "TRUMP-WIN",
    "title": "Trump-endorsed candidate wins the 2028 presidency",
    "kind": "binary",
    "status": "open",
    "event": "pres-2028",
    "expires_at": "2028-11-08T00:00:00+00:00",
    "resolution": None,
    "tick_size": "0.01",
    "max_leverage": None,
    "default_leverage": None,
    "maintenance_margin_fraction": None,
    "best_bid": "0.60000000",
    "best_ask": "0.61000000",
    "listings": [
        {
            "venue": "kalshi",
            "venue_symbol": "KXPRES-2028-TRUMPEND",
            "bid": "0.59000000",
            "ask": "0.61000000",
            "mark": "0.60000000",
            "quoted_at": "2026-04-22T15:02:10.512448+00:00",
        },
        {
            "venue": "polymarket",
            "venue_symbol": POLYMARKET_TRUMP_WIN_ID,
            "bid": "0.60000000",
            "ask": "0.61000000",
            "mark": "0.60500000",
            "quoted_at": "2026-04-22T15:02:10.977342+00:00",
        },
    ],
}
PERP_MARKET = {
    "symbol": "BTC-PERP",
    "title": "Bitcoin perpetual",
    "kind": "perpetual",
    "status": "open",
    "event": None,
    "expires_at": None,
    "resolution": None,
    "tick_size": "0.1",
    "max_leverage": 20,
    "default_leverage": 5,
    "maintenance_margin_fraction": "0.030000",
    "best_bid": "70995.50000000",
    "best_ask": "71004.50000000",
    "listings": [
        {
            "venue": "leviathan",
            "venue_symbol": "BTC-PERP",
            "bid": "70995.50000000",
            "ask": "71004.50000000",
            "mark": "71000.00000000",
            "quoted_at": "2026-04-22T15:02:11.418207+00:00",
        }
    ],
}
MARKET = [
    OpenApiExample("Binary market", value=BINARY_MARKET, response_only=True),
    OpenApiExample("Perpetual market", value=PERP_MARKET, response_only=True),
]
MARKET_LIST = [
    OpenApiExample("Markets", value={"markets": [PERP_MARKET, BINARY_MARKET]}, response_only=True)
]
ORDER_BOOK = [
    OpenApiExample(
        "Two venues",
        summary="TRUMP-WIN (YES) on two venues, with depth=2",
        value={
            "symbol": "TRUMP-WIN",
            "books": [
                {
                    "venue": "kalshi",
                    "bids": [
                        {"price": "0.59000000", "size": "12500"},
                        {"price": "0.58000000", "size": "40210"},
                    ],
                    "asks": [
                        {"price": "0.61000000", "size": "9800"},
                        {"price": "0.62000000", "size": "31750"},
                    ],
                },
                {
                    "venue": "polymarket",
                    "bids": [
                        {"price": "0.60000000", "size": "8421.55"},
                        {"price": "0.59000000", "size": "60312.4"},
                    ],
                    "asks": [
                        {"price": "0.61000000", "size": "15003.2"},
                        {"price": "0.62000000", "size": "22640"},
                    ],
                },
            ],
        },
        response_only=True,
    )
]

# ---------------------------------------------------------------------------
# Linked accounts

LINKED_ACCOUNT = [
    OpenApiExample(
        "Kalshi key in sync",
        value={
            "account_id": "acct_4c7e19a2b8",
            "venue": "kalshi",
            "environment": "production",
            "identity": "…7f3c",
            "scopes": "read",
            "warning": "",
            "status": "active",
            "cash": "18250.420000",
            "last_synced_at": "2026-04-22T15:00:04.118273Z",
            "last_sync_attempt_at": "2026-04-22T15:00:04.118273Z",
            "next_sync_at": "2026-04-22T15:05:04.118273Z",
            "last_error": "",
        },
        status_codes=["200", "202"],
        response_only=True,
    )
]

# ---------------------------------------------------------------------------
# Reports

READY_REPORT = {
    "id": "rep_4b439d0b0bff2778",
    "account_id": ACCOUNT_ID,
    "type": "performance",
    "format": "csv",
    "status": "ready",
    "rows": 30,
    "error": "",
    "created_at": "2026-05-01T08:00:12.294333Z",
    "finished_at": "2026-05-01T08:00:13.322609Z",
    "download_url": "https://api.leviathan.global/v1/intelligence/reports/rep_4b439d0b0bff2778"
    "/download?token=rep_4b439d0b0bff2778%3A1wKq3v%3AYaQrMNpb9wq17-H-nw0YC7VXJMkRNrpDbhKt-kQEAQk",
    "download_expires_at": "2026-05-01T08:15:20.337407Z",
    "from": "2026-04-01",
    "to": "2026-04-30",
}
PENDING_REPORT = READY_REPORT | {
    "status": "pending",
    "rows": None,
    "finished_at": None,
    "download_url": None,
    "download_expires_at": None,
}
REPORT_REQUEST = [
    OpenApiExample(
        "April performance",
        summary="A performance report for April 2026, as CSV",
        value={"type": "performance", "from": "2026-04-01", "to": "2026-04-30", "format": "csv"},
        request_only=True,
    )
]
REPORT = [
    OpenApiExample("Ready", value=READY_REPORT, status_codes=["200"], response_only=True),
    OpenApiExample(
        "Requested",
        summary="Pending: generated in the background; poll GET reports/{report_id}",
        value=PENDING_REPORT,
        status_codes=["202"],
        response_only=True,
    ),
]
REPORT_LIST = [
    OpenApiExample(
        "Reports",
        value={
            "account_id": ACCOUNT_ID,
            "reports": [READY_REPORT],
            "limit": 100,
            "offset": 0,
            "next_offset": None,
        },
        response_only=True,
    )
]
_PERFORMANCE_ROWS = [
    ("2026-04-20", 1, "468950.000000", "0.000000", "468.950000", "0.000000", "0.000000",
     "0.000000", "0.000000", "0.000000", "-469418.950000", "130581.050000"),
    ("2026-04-21", 0, "0.000000", "0.000000", "0.000000", "0.000000", "0.000000",
     "0.000000", "0.000000", "0.000000", "0.000000", "130581.050000"),
    ("2026-04-22", 1, "2821580.000000", "0.000000", "2821.580000", "0.000000", "0.000000",
     "0.000000", "0.000000", "0.000000", "-284979.580000", "-154398.530000"),
]  # fmt: skip
REPORT_DOWNLOAD = [
    OpenApiExample(
        "Performance report CSV",
        summary="One row a day (three days shown)",
        value="\n".join(
            [
                ",".join(PERFORMANCE_COLUMNS),
                *(",".join(map(str, row)) for row in _PERFORMANCE_ROWS),
            ]
        )
        + "\n",
        media_type="text/csv",
        status_codes=["200"],
        response_only=True,
    ),
    OpenApiExample(
        "Performance report JSON",
        summary="One object a row, keyed by the CSV's columns (three days shown)",
        value=[dict(zip(PERFORMANCE_COLUMNS, row, strict=True)) for row in _PERFORMANCE_ROWS],
        media_type="application/json",
        status_codes=["200"],
        response_only=True,
    ),
]


# ---------------------------------------------------------------------------
# Per operation (`extend_schema(examples=…)`): the cases an operation answers of its
# own, and its own words for the errors it shares with others.

_UNKNOWN_INSTRUMENT = error_example(ErrorCode.NOT_FOUND, "Unknown instrument 'TRUMP-WINN'.")
_NON_CUSTODIAL = error_example(
    ErrorCode.CUSTODIAL_REQUIRED,
    "Account acct_4c7e19a2b8 is non-custodial: trade on your own venue accounts; the "
    "broker places orders for custodial accounts only.",
)
_BAD_PAGE = error_example(
    ErrorCode.INVALID_PARAMS, "limit: Ensure this value is less than or equal to 500."
)

POSITION_CLOSE = [
    OpenApiExample(
        "Closed a quarter",
        summary="25 % of the TRUMP-WIN position sold with an immediate-or-cancel order",
        value=CLOSE_ORDER,
        status_codes=["200", "201"],
        response_only=True,
    ),
    OpenApiExample(
        "Pending venue confirmation",
        summary="The venue has not confirmed the sale in time: pending, reconciled later",
        value=CLOSE_ORDER
        | {
            "status": "pending",
            "filled_quantity": "0.000000",
            "filled_notional": "0.000000",
            "average_price": None,
            "fees": "0.000000",
        },
        status_codes=["202"],
        response_only=True,
    ),
    error_example(ErrorCode.INVALID_PARAMS, "Give quantity or percent, not both."),
    error_example(ErrorCode.NOT_FOUND, f"No open TRUMP-WIN:NO position in account {ACCOUNT_ID}."),
    _NON_CUSTODIAL,
]
EXECUTE = [
    OpenApiExample(
        "Pending venue confirmation",
        summary="The venue has not confirmed in time: pending, reconciled later",
        value=PENDING_ORDER,
        status_codes=["202"],
        response_only=True,
    ),
    error_example(
        ErrorCode.INVALID_PARAMS,
        'notional_usdc must be a decimal string of ASCII digits such as "1500.00".',
    ),
    _UNKNOWN_INSTRUMENT,
    _NON_CUSTODIAL,
]
MARGIN_SIMULATE = [
    error_example(
        ErrorCode.INVALID_PARAMS,
        "BTC-PERP is a perpetual: its isolated margin is not part of the Margin Portfolio, "
        "so it is not simulated here.",
    ),
    _UNKNOWN_INSTRUMENT,
]
LEVERAGE_GET = [
    error_example(ErrorCode.INVALID_PARAMS, "symbol: This field is required."),
    error_example(ErrorCode.NOT_FOUND, "Unknown perpetual market 'DOGE-PERP'."),
]
LEVERAGE_SET = [
    error_example(
        ErrorCode.INVALID_PARAMS, 'leverage must be a whole number of ASCII digits such as "10".'
    ),
]
LEVERAGE_LEVELS_GET = [
    error_example(ErrorCode.NOT_FOUND, "Unknown perpetual market 'TRUMP-WIN'."),
]
ORDERS_LIST = [_BAD_PAGE]
FILLS_LIST = [_BAD_PAGE]
ORDERS_CREATE = [
    OpenApiExample(
        "Resting limit order",
        summary="A GTC limit order with take-profit and stop-loss, resting on the book",
        value=LIMIT_ORDER,
        status_codes=["200", "201"],
        response_only=True,
    ),
    OpenApiExample(
        "Pending venue confirmation",
        summary="What crossed was sent to the venue, which has not confirmed in time",
        value=LIMIT_ORDER | {"status": "pending", "price": "0.61000000"},
        status_codes=["202"],
        response_only=True,
    ),
    error_example(ErrorCode.INVALID_PARAMS, "A limit order needs a price."),
    _UNKNOWN_INSTRUMENT,
    _NON_CUSTODIAL,
]
_ORDER_NOT_FOUND = error_example(
    ErrorCode.NOT_FOUND, f"No order 'ord_0f1e2d3c4b5a6978' in account {ACCOUNT_ID}."
)
_CLIENT_ORDER_NOT_FOUND = error_example(
    ErrorCode.NOT_FOUND, f"No order 'grid-trump-099' in account {ACCOUNT_ID}."
)
_MODIFIED = OpenApiExample(
    "Modified order",
    summary="Its price and quantity changed; still resting",
    value=MODIFIED_ORDER,
    status_codes=["200"],
    response_only=True,
)
_BAD_PRICE = error_example(
    ErrorCode.INVALID_PARAMS, 'price must be a decimal string of ASCII digits such as "0.55".'
)
_CANCELLED = OpenApiExample(
    "Cancelled order", value=CANCELLED_ORDER, status_codes=["200"], response_only=True
)
ORDERS_GET = [_ORDER_NOT_FOUND]
ORDERS_GET_BY_CLIENT_ID = [_CLIENT_ORDER_NOT_FOUND]
ORDERS_MODIFY = [_MODIFIED, _BAD_PRICE, _ORDER_NOT_FOUND, _NON_CUSTODIAL]
ORDERS_MODIFY_BY_CLIENT_ID = [_MODIFIED, _BAD_PRICE, _CLIENT_ORDER_NOT_FOUND, _NON_CUSTODIAL]
_TRIGGERS_REMOVED = OpenApiExample(
    "Stop-loss removed",
    summary="which=stop_loss on a filled order: its take-profit still waits",
    value=STOP_LOSS_REMOVED_ORDER,
    status_codes=["200"],
    response_only=True,
)
_TRIGGER_FIRED = error_example(
    ErrorCode.ORDER_NOT_ACTIVE,
    f"Order {LIMIT_ORDER_ID}'s take-profit / stop-loss already fired: it placed order "
    "ord_5e6f7a8b9c0d1e2f.",
)
ORDERS_TRIGGERS_CANCEL = [_TRIGGERS_REMOVED, _TRIGGER_FIRED, _ORDER_NOT_FOUND]
ORDERS_TRIGGERS_CANCEL_BY_CLIENT_ID = [_TRIGGERS_REMOVED, _TRIGGER_FIRED, _CLIENT_ORDER_NOT_FOUND]
ORDERS_CANCEL = [_CANCELLED, _ORDER_NOT_FOUND]
ORDERS_CANCEL_BY_CLIENT_ID = [_CANCELLED, _CLIENT_ORDER_NOT_FOUND]
MARKETS_LIST = [
    error_example(ErrorCode.INVALID_PARAMS, 'kind: "option" is not a valid choice.'),
]
MARKETS_GET = [_UNKNOWN_INSTRUMENT]
MARKETS_ORDERBOOK = [
    error_example(ErrorCode.NOT_FOUND, "TRUMP-WIN is not listed on 'leviathan'."),
]
LINKED_ACCOUNT_ANY = [
    error_example(ErrorCode.NOT_FOUND, f"Account {ACCOUNT_ID} is not a linked exchange account."),
]
REPORTS_CREATE = [
    error_example(ErrorCode.INVALID_PARAMS, "`from` must be on or before `to`."),
]
REPORTS_GET = [
    error_example(ErrorCode.NOT_FOUND, "No report 'rep_0a9b8c7d6e5f4a3b'."),
]
REPORTS_DOWNLOAD = [
    *REPORT_DOWNLOAD,
    error_example(ErrorCode.FORBIDDEN, "This download link is not valid."),
    error_example(ErrorCode.NOT_FOUND, "No report 'rep_4b439d0b0bff2778' is ready."),
]
