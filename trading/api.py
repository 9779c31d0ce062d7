"""The trading API (/v1/intelligence): positions, execute, margin, leverage.

Thin views (ARCHITECTURE "APIs are thin"): the account comes from the key
(`ApiView.account_get`), an input serializer validates, a selector or service
decides, and the view renders the resource as its presenter shapes it
(`trading.presenters`: the same object the pushes, pages and reports carry),
documented by the output serializers in `trading.api_serializers`. Errors are
the services' DomainErrors, rendered as `{"code", "message"}` by the API's one
exception handler. Orders and fills are in `trading.api_orders`, markets and order
books in `trading.api_markets`.
"""

import uuid

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.views import (
    READ_SCOPES as READ,
)
from portal.api.views import (
    TRADE_SCOPES as TRADE,
)
from portal.api.views import (
    ApiView,
    MethodPolicyApi,
    Policy,
    validated,
)
from portal.errors import CANNOT_TRANSACT, NO_LIVE_PRICES, VENUE_FAILURES, ErrorCode, NotFound
from portal.money import money, price, qty
from trading import api_examples as examples
from trading import api_serializers as s
from trading.models import Order
from trading.presenters import (
    leverage_levels_present,
    leverage_present,
    leverage_result_present,
    margin_projection_present,
    order_of,
)
from trading.services.execute import order_execute
from trading.services.figures_store import account_figures_get
from trading.services.orders import position_close
from trading.services.perps import LeverageStatus, leverage_get, leverage_levels, leverage_set
from trading.services.simulation import portfolio_what_if

TAGS = ["Trading"]

ACCOUNT_PARAM = OpenApiParameter(
    "account_id", str, OpenApiParameter.QUERY, required=False, description=s.ACCOUNT_ID_HELP
)

# ---------------------------------------------------------------------------
# Positions


class PositionListApi(ApiView):
    required_scopes = READ
    throttle_group = "market_data"
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="positions_list",
        summary="Open positions",
        description="All open positions across prediction-market and perpetual venues, with "
        "notional, side, unrealized P&L (`pnl`) and the account's margin utilization.",
        tags=TAGS,
        parameters=[ACCOUNT_PARAM],
        responses={200: s.PositionListSerializer},
    )
    def get(self, request: Request) -> Response:
        account = self.account_get(request)
        # Stored by the margin engine when current, else computed (figures_store).
        return Response(account_figures_get(account=account, part="positions"))


class PositionCloseApi(ApiView):
    required_scopes = TRADE
    throttle_group = "order_management"
    error_codes = (
        ErrorCode.NOT_FOUND,
        *CANNOT_TRANSACT,
        ErrorCode.DUPLICATE_ORDER,
        ErrorCode.MARKET_CLOSED,
        *NO_LIVE_PRICES,
    )

    @extend_schema(
        operation_id="position_close",
        examples=examples.POSITION_CLOSE,
        summary="Close a position",
        description="Close all of a position, a `quantity` or a `percent` of it, with an "
        "immediate-or-cancel limit order at the protective price: the best bid less "
        "`slippage_bps` for a sale (the best ask plus it to cover a short perp). It fills "
        "what the venue's book holds down to that price now and cancels the rest (status "
        "`cancelled`, reject_code `ioc_unfilled`, with `filled_quantity` showing what "
        "closed). A close only lowers risk: no margin check refuses it. `symbol` is the "
        "contract: `TRUMP-WIN`, `TRUMP-WIN:NO` or `BTC-PERP`. 201 with the order; 202 when "
        "the venue did not confirm in time (status `pending`); a retry with the same "
        "client_order_id and body answers 200 with the original. Errors: 404 "
        "no open position (or unknown symbol); 400 both quantity and percent, or more than "
        "the position; 409 `duplicate_order`, `market_closed`; 403 `custodial_required`, "
        "`kyb_required`; 503 no live book.",
        tags=TAGS,
        parameters=[ACCOUNT_PARAM, OpenApiParameter("symbol", str, OpenApiParameter.PATH)],
        request=s.PositionCloseInputSerializer,
        responses={
            201: s.OrderSerializer,
            200: s.OrderSerializer,
            202: OpenApiResponse(s.OrderSerializer, description="Pending venue confirmation."),
        },
    )
    def post(self, request: Request, symbol: str) -> Response:
        account = self.account_get(request)
        data = validated(s.PositionCloseInputSerializer, request.data)
        order = position_close(
            account=account,
            symbol=symbol,
            quantity=data.get("quantity"),
            percent=data.get("percent"),
            slippage_bps=data["slippage_bps"],
            client_order_id=data.get("client_order_id"),
        )
        pending = order.status == Order.Status.PENDING
        return Response(order_of(order), status=200 if order.replayed else 202 if pending else 201)


# ---------------------------------------------------------------------------
# Execute


class ExecuteApi(ApiView):
    required_scopes = TRADE
    throttle_group = "execute"
    error_codes = (
        ErrorCode.NOT_FOUND,
        *CANNOT_TRANSACT,
        ErrorCode.DUPLICATE_ORDER,
        ErrorCode.MARKET_CLOSED,
        ErrorCode.INSUFFICIENT_LIQUIDITY,
        ErrorCode.INSUFFICIENT_FUNDS,
        ErrorCode.INSUFFICIENT_MARGIN,
        ErrorCode.SLIPPAGE_EXCEEDED,
        *NO_LIVE_PRICES,
        *VENUE_FAILURES,
    )

    @extend_schema(
        operation_id="execute",
        examples=examples.EXECUTE,
        summary="Execute a trade",
        description="A market order for a USDC notional, routed to the venue with the best "
        "executable price (or `venue`), checked against the margin requirement, filled and "
        "booked at once. 201: done (filled, or rejected by the venue: see `status`); 202: the "
        "venue has not confirmed in time, the order is `pending` and is reconciled later; "
        "200: a retry with the same client_order_id and body, answered with the original "
        "order as it stands. "
        "Errors: 404 unknown symbol, venue or account; 409 `duplicate_order`, "
        "`market_closed`; 422 `insufficient_margin`, `slippage_exceeded`; 400 "
        "`insufficient_liquidity`; 403 `custodial_required`, `kyb_required`; 503 "
        "`market_data_unavailable`, `market_data_stale`, a venue that cannot be reached.",
        tags=TAGS,
        parameters=[ACCOUNT_PARAM],
        request=s.ExecuteInputSerializer,
        responses={
            201: s.OrderSerializer,
            202: OpenApiResponse(s.OrderSerializer, description="Pending venue confirmation."),
            200: OpenApiResponse(s.OrderSerializer, description="A retry: the original order."),
        },
    )
    def post(self, request: Request) -> Response:
        account = self.account_get(request)
        data = validated(s.ExecuteInputSerializer, request.data)
        order = order_execute(
            account=account,
            symbol=data["symbol"],
            side=data["side"],
            notional_usdc=data["notional_usdc"],
            venue=data.get("venue"),
            slippage_bps=data["slippage_bps"],
            client_order_id=data.get("client_order_id"),
        )
        pending = order.status == Order.Status.PENDING
        return Response(order_of(order), status=200 if order.replayed else 202 if pending else 201)


# ---------------------------------------------------------------------------
# Margin


class MarginApi(ApiView):
    required_scopes = READ
    throttle_group = "market_data"
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="margin_get",
        summary="Margin",
        description="Margin utilization, available credit (Available Margin), Margin Health "
        "and status, the account summary (Deposit, Used Margin, Adjusted Equity), and "
        "exposure by venue and by asset class (prediction vs perpetual).",
        tags=TAGS,
        parameters=[ACCOUNT_PARAM],
        responses={200: s.MarginSerializer},
    )
    def get(self, request: Request) -> Response:
        account = self.account_get(request)
        # Stored by the margin engine when current, else computed (figures_store).
        return Response(account_figures_get(account=account, part="margin"))


class MarginSimulateApi(ApiView):
    required_scopes = READ
    throttle_group = "market_data"
    error_codes = (
        ErrorCode.NOT_FOUND,
        ErrorCode.MARKET_CLOSED,
        ErrorCode.INSUFFICIENT_LIQUIDITY,
        *NO_LIVE_PRICES,
    )

    @extend_schema(
        operation_id="margin_simulate",
        examples=examples.MARGIN_SIMULATE,
        summary="Simulate margin",
        description="Seed 003's what-if: the account's Margin Portfolio with simulated "
        "collateral changes (USDC deposits +, withdrawals −) and position changes (signed "
        "contracts of binary contracts; `entry_price` defaults to the executable price at the "
        "best venue) → pre/post Used Margin, Adjusted Equity, health, initial (1.2 × UM) and "
        "maintenance (1.0 × UM) requirements, and whether the pre-trade check would accept "
        "it. Nothing is written. Perpetuals are not simulated here (isolated margin is not "
        "part of the portfolio): 400. 404 unknown instrument; 409 `market_closed`; 400 "
        "`insufficient_liquidity`; 503 no live price for a default entry price.",
        tags=TAGS,
        parameters=[ACCOUNT_PARAM],
        request=s.MarginSimulateInputSerializer,
        responses={200: s.MarginSimulationSerializer},
    )
    def post(self, request: Request) -> Response:
        account = self.account_get(request)
        data = validated(s.MarginSimulateInputSerializer, request.data)
        what_if = portfolio_what_if(
            account=account,
            collateral_changes=data.get("simulated_collateral_changes"),
            position_changes=data.get("simulated_position_changes"),
        )
        projection = what_if.projection
        return Response(
            {
                "account_id": account.public_id,
                "result": {
                    "is_valid_trade": projection.is_valid_trade,
                    "breach": None if projection.breach is None else projection.breach.value,
                    **margin_projection_present("pre", projection.before),
                    **margin_projection_present("post", projection.after),
                    "positions": [
                        {
                            "instrument_name": position.instrument_name,
                            "amount": qty(position.amount),
                            "entry_price": price(position.entry_price),
                            "fee": money(position.fee),
                            "cash": money(position.cash),
                        }
                        for position in what_if.positions
                    ],
                },
            }
        )


# ---------------------------------------------------------------------------
# Leverage (seeds 001, 002, 004)


class LeverageApi(MethodPolicyApi):
    policies = {
        "GET": Policy(READ, "market_data", (ErrorCode.NOT_FOUND,)),
        "POST": Policy(TRADE, "order_management", (ErrorCode.NOT_FOUND, *CANNOT_TRANSACT)),
    }

    @extend_schema(
        operation_id="leverage_get",
        examples=examples.LEVERAGE_GET,
        summary="Leverage in a perpetual market",
        description="The account's leverage in one perp market (the market default until "
        "set). 404: unknown market.",
        tags=TAGS,
        parameters=[ACCOUNT_PARAM, s.SymbolQuerySerializer],
        responses={200: s.LeverageSerializer},
    )
    def get(self, request: Request) -> Response:
        account = self.account_get(request)
        symbol = validated(s.SymbolQuerySerializer, request.query_params)["symbol"]
        view = leverage_get(account=account, symbol=symbol)
        return Response(
            {
                "account_id": account.public_id,
                **leverage_present(
                    symbol=view.market,
                    leverage=view.leverage,
                    max_leverage=view.max_leverage,
                    is_default=view.is_default,
                ),
            }
        )

    @extend_schema(
        operation_id="leverage_set",
        examples=examples.LEVERAGE_SET,
        summary="Set leverage in a perpetual market",
        description="Set the account's isolated leverage in one perp market (seed 004). The "
        "open position's isolated margin is re-sized (raising leverage frees margin; lowering "
        "it needs more and passes the margin check, or is rolled back) and the account's open "
        "orders in the market are cancelled. 200 `APPLIED`; 422 `REJECTED` with "
        "`rejectReason` UNDERCOLLATERALIZED, INVALID_LEVERAGE (not in [1, max]) or "
        "UNKNOWN_MARKET. The 422 body is this result, not an error object. An account that "
        "may not trade (non-custodial, frozen or closed, KYB lapsed) is refused as an order "
        "is: 403 with its code.",
        tags=TAGS,
        parameters=[ACCOUNT_PARAM],
        request=s.LeverageSetInputSerializer,
        responses={
            200: s.LeverageResultSerializer,
            422: OpenApiResponse(s.LeverageResultSerializer, description="REJECTED."),
        },
    )
    def post(self, request: Request) -> Response:
        account = self.account_get(request)
        data = validated(s.LeverageSetInputSerializer, request.data)
        result = leverage_set(account=account, symbol=data["symbol"], leverage=data["leverage"])
        body = {
            "requestId": str(uuid.uuid4()),
            "accountId": account.public_id,
            **leverage_result_present(result),
        }
        status = 200 if result.status == LeverageStatus.APPLIED else 422
        return Response(body, status=status)


class LeverageLevelsApi(ApiView):
    required_scopes = READ
    throttle_group = "market_data"
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="leverage_levels",
        examples=examples.LEVERAGE_LEVELS_GET,
        summary="Allowed leverage levels",
        description="The leverage levels [1 … max] and the default of every perp market, or "
        "of `symbol` (404 if it is not a perp market).",
        tags=TAGS,
        parameters=[s.OptionalSymbolQuerySerializer],
        responses={200: s.LeverageLevelsListSerializer},
    )
    def get(self, request: Request) -> Response:
        symbol = validated(s.OptionalSymbolQuerySerializer, request.query_params).get("symbol")
        markets = leverage_levels(symbol=symbol)
        if symbol is not None and not markets:
            raise NotFound(f"Unknown perpetual market {symbol!r}.")
        return Response(
            {
                "markets": [
                    leverage_levels_present(
                        symbol=market.symbol, levels=market.levels, default=market.default
                    )
                    for market in markets
                ]
            }
        )
