"""The trading API's orders and fills (/v1/intelligence/orders, /fills; seed 002).

Limit (and market) orders with a time in force and take-profit / stop-loss,
modified and cancelled by order id or by client order id (and their take-profit /
stop-loss removed before they fire: DELETE …/triggers); lists paginated
with limit / offset. Every lookup is within the key's account: another
account's order is a 404, like one that does not exist.
"""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_serializers import page_data
from portal.api.views import READ_SCOPES as READ
from portal.api.views import TRADE_SCOPES as TRADE
from portal.api.views import ApiView, MethodPolicyApi, Policy, validated
from portal.errors import CANNOT_TRANSACT, NO_LIVE_PRICES, ErrorCode, NotFound
from trading import api_examples as examples
from trading import api_serializers as s
from trading.api import ACCOUNT_PARAM, TAGS
from trading.models import Order
from trading.presenters import fill_present, order_of, order_present
from trading.selectors import TradeFilters, fill_list, order_get, order_list
from trading.services.orders import (
    order_cancel,
    order_modify,
    order_place,
    order_triggers_cancel,
)

ORDER_ID_PARAM = OpenApiParameter(
    "order_id", str, OpenApiParameter.PATH, description="The order id (ord_…)."
)
CLIENT_ORDER_ID_PARAM = OpenApiParameter(
    "client_order_id", str, OpenApiParameter.PATH, description="Your client_order_id."
)
# What placing or changing an order can be refused for.
WRITE_ERRORS = (
    ErrorCode.NOT_FOUND,
    *CANNOT_TRANSACT,
    ErrorCode.MARKET_CLOSED,
    ErrorCode.INSUFFICIENT_FUNDS,
    ErrorCode.INSUFFICIENT_MARGIN,
)


class OrderCollectionApi(MethodPolicyApi):
    policies = {
        "GET": Policy(READ, "market_data", (ErrorCode.NOT_FOUND,)),
        "POST": Policy(
            TRADE, "order_management", (*WRITE_ERRORS, ErrorCode.DUPLICATE_ORDER, *NO_LIVE_PRICES)
        ),
    }

    @extend_schema(
        operation_id="orders_list",
        examples=examples.ORDERS_LIST,
        summary="List orders",
        description="The account's orders, newest first, optionally of one status ('active': "
        "pending, open or partially filled) or one contract symbol.",
        tags=TAGS,
        parameters=[ACCOUNT_PARAM, s.OrderListQuerySerializer],
        responses={200: s.OrderPageSerializer},
    )
    def get(self, request: Request) -> Response:
        account = self.account_get(request)
        query = validated(s.OrderListQuerySerializer, request.query_params)
        page = order_list(
            account=account,
            filters=TradeFilters(status=query.get("status"), symbol=query.get("symbol")),
            limit=query["limit"],
            offset=query["offset"],
        ).map(order_present)
        return Response(page_data(account_id=account.public_id, page=page, name="orders"))

    @extend_schema(
        operation_id="orders_create",
        examples=examples.ORDERS_CREATE,
        summary="Place an order",
        description="A limit order (or a market order: no price) with a time in force: GTC "
        "fills what crosses now and rests the rest; IOC cancels the rest; FOK fills all now or "
        "is rejected (status `rejected`, reject_code `fok_not_filled`). A filled order with a "
        "take-profit / stop-loss closes its quantity when the mark reaches either. What "
        "crosses is sent to the venue at once as an immediate-or-cancel order at the limit "
        "(fill-or-kill for FOK); a resting order is sent again whenever the book reaches "
        "its price. 201 with the order as it stands after the venue's answer; 202 when the "
        "venue did not confirm in time (status `pending`, settled from the venue's record "
        "within a minute); a retry with the same client_order_id and the same body answers "
        "200 with the original order (nothing placed twice). Errors: "
        "409 `duplicate_order` (client_order_id used for a different body), `market_closed`; "
        "422 `insufficient_margin`; 404 unknown symbol; 403 `custodial_required`, "
        "`kyb_required`; 503 no live book (IOC / FOK).",
        tags=TAGS,
        parameters=[ACCOUNT_PARAM],
        request=s.OrderPlaceInputSerializer,
        responses={
            201: s.OrderSerializer,
            200: s.OrderSerializer,
            202: OpenApiResponse(s.OrderSerializer, description="Pending venue confirmation."),
        },
    )
    def post(self, request: Request) -> Response:
        account = self.account_get(request)
        data = validated(s.OrderPlaceInputSerializer, request.data)
        order = order_place(
            account=account,
            symbol=data["symbol"],
            side=data["side"],
            order_type=data["order_type"],
            time_in_force=data["time_in_force"],
            quantity=data["quantity"],
            price=data.get("price"),
            take_profit=data.get("take_profit"),
            stop_loss=data.get("stop_loss"),
            client_order_id=data.get("client_order_id"),
            leverage=data.get("leverage"),
        )
        pending = order.status == Order.Status.PENDING
        return Response(order_of(order), status=200 if order.replayed else 202 if pending else 201)


class _OrderLookup:
    """An order named in the path by its id (`lookup` "order_id") or the client's."""

    lookup = "order_id"

    def _lookup(self, kwargs: dict[str, Any]) -> dict[str, str]:
        return {self.lookup: kwargs[self.lookup]}


class OrderDetailApi(_OrderLookup, MethodPolicyApi):
    """One order by its id; `OrderByClientIdApi` by the client's id."""

    policies = {
        "GET": Policy(READ, "market_data", (ErrorCode.NOT_FOUND,)),
        "PATCH": Policy(TRADE, "order_management", (*WRITE_ERRORS, ErrorCode.ORDER_NOT_ACTIVE)),
        "DELETE": Policy(
            TRADE, "order_management", (ErrorCode.NOT_FOUND, ErrorCode.ORDER_NOT_ACTIVE)
        ),
    }

    @extend_schema(
        operation_id="orders_get",
        examples=examples.ORDERS_GET,
        summary="Get an order",
        tags=TAGS,
        parameters=[ORDER_ID_PARAM, ACCOUNT_PARAM],
        responses={200: s.OrderSerializer},
    )
    def get(self, request: Request, **kwargs: str) -> Response:
        account = self.account_get(request)
        row = order_get(account=account, **self._lookup(kwargs))
        if row is None:
            raise NotFound(f"No order {kwargs[self.lookup]!r} in account {account.public_id}.")
        return Response(order_present(row))

    @extend_schema(
        operation_id="orders_modify",
        examples=examples.ORDERS_MODIFY,
        summary="Modify an order",
        description="Change an active limit order's price, quantity (not below what has "
        "filled), take-profit or stop-loss; the margin check runs again and a new price that "
        "crosses the book is sent to the venue at once (the order comes back `pending` when "
        "the venue did not confirm in time). 409 `order_not_active` for a filled, cancelled "
        "or rejected order, or one with a send at the venue; 422 `insufficient_margin`.",
        tags=TAGS,
        parameters=[ORDER_ID_PARAM, ACCOUNT_PARAM],
        request=s.OrderModifyInputSerializer,
        responses={200: s.OrderSerializer},
    )
    def patch(self, request: Request, **kwargs: str) -> Response:
        account = self.account_get(request)
        data = validated(s.OrderModifyInputSerializer, request.data)
        order = order_modify(
            account=account,
            **self._lookup(kwargs),
            price=data.get("price"),
            quantity=data.get("quantity"),
            take_profit=data.get("take_profit"),
            stop_loss=data.get("stop_loss"),
        )
        return Response(order_of(order))

    @extend_schema(
        operation_id="orders_cancel",
        examples=examples.ORDERS_CANCEL,
        summary="Cancel an order",
        description="Cancel an active order; what has filled stays filled. 200 with the "
        "cancelled order; 409 `order_not_active` if it is no longer active.",
        tags=TAGS,
        parameters=[ORDER_ID_PARAM, ACCOUNT_PARAM],
        responses={200: s.OrderSerializer},
    )
    def delete(self, request: Request, **kwargs: str) -> Response:
        account = self.account_get(request)
        order = order_cancel(account=account, **self._lookup(kwargs))
        return Response(order_of(order))


class OrderByClientIdApi(OrderDetailApi):
    lookup = "client_order_id"

    @extend_schema(
        operation_id="orders_get_by_client_id",
        examples=examples.ORDERS_GET_BY_CLIENT_ID,
        summary="Get an order by client order id",
        tags=TAGS,
        parameters=[CLIENT_ORDER_ID_PARAM, ACCOUNT_PARAM],
        responses={200: s.OrderSerializer},
    )
    def get(self, request: Request, **kwargs: str) -> Response:
        return super().get(request, **kwargs)

    @extend_schema(
        operation_id="orders_modify_by_client_id",
        examples=examples.ORDERS_MODIFY_BY_CLIENT_ID,
        summary="Modify an order by client order id",
        tags=TAGS,
        parameters=[CLIENT_ORDER_ID_PARAM, ACCOUNT_PARAM],
        request=s.OrderModifyInputSerializer,
        responses={200: s.OrderSerializer},
    )
    def patch(self, request: Request, **kwargs: str) -> Response:
        return super().patch(request, **kwargs)

    @extend_schema(
        operation_id="orders_cancel_by_client_id",
        examples=examples.ORDERS_CANCEL_BY_CLIENT_ID,
        summary="Cancel an order by client order id",
        tags=TAGS,
        parameters=[CLIENT_ORDER_ID_PARAM, ACCOUNT_PARAM],
        responses={200: s.OrderSerializer},
    )
    def delete(self, request: Request, **kwargs: str) -> Response:
        return super().delete(request, **kwargs)


class OrderTriggersApi(_OrderLookup, ApiView):
    """An order's take-profit / stop-loss (`OrderTriggersByClientIdApi` by the client's
    id): removed before they fire."""

    required_scopes = TRADE
    throttle_group = "order_management"
    error_codes = (ErrorCode.NOT_FOUND, ErrorCode.ORDER_NOT_ACTIVE)

    @extend_schema(
        operation_id="orders_triggers_cancel",
        examples=examples.ORDERS_TRIGGERS_CANCEL,
        summary="Remove an order's take-profit / stop-loss",
        description="Remove the take-profit, the stop-loss (`which`) or both before they "
        "fire, on a resting order or a filled one whose triggers still wait: once this "
        "answers, a removed trigger never fires. Safe to repeat (removing what is not set "
        "changes nothing). 200 with the order; 409 `order_not_active` once a trigger has "
        "fired (it placed its closing order, `parent_id` on that order) or for an order "
        "cancelled or rejected before anything filled.",
        tags=TAGS,
        parameters=[ORDER_ID_PARAM, ACCOUNT_PARAM, s.OrderTriggersQuerySerializer],
        responses={200: s.OrderSerializer},
    )
    def delete(self, request: Request, **kwargs: str) -> Response:
        account = self.account_get(request)
        query = validated(s.OrderTriggersQuerySerializer, request.query_params)
        order = order_triggers_cancel(
            account=account, **self._lookup(kwargs), which=query.get("which")
        )
        return Response(order_of(order))


class OrderTriggersByClientIdApi(OrderTriggersApi):
    lookup = "client_order_id"

    @extend_schema(
        operation_id="orders_triggers_cancel_by_client_id",
        examples=examples.ORDERS_TRIGGERS_CANCEL_BY_CLIENT_ID,
        summary="Remove an order's take-profit / stop-loss by client order id",
        tags=TAGS,
        parameters=[CLIENT_ORDER_ID_PARAM, ACCOUNT_PARAM, s.OrderTriggersQuerySerializer],
        responses={200: s.OrderSerializer},
    )
    def delete(self, request: Request, **kwargs: str) -> Response:
        return super().delete(request, **kwargs)


class FillListApi(ApiView):
    required_scopes = READ
    throttle_group = "market_data"
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="fills_list",
        examples=examples.FILLS_LIST,
        summary="List fills",
        description="The account's fills, newest first, optionally of one contract symbol.",
        tags=TAGS,
        parameters=[ACCOUNT_PARAM, s.FillListQuerySerializer],
        responses={200: s.FillPageSerializer},
    )
    def get(self, request: Request) -> Response:
        account = self.account_get(request)
        query = validated(s.FillListQuerySerializer, request.query_params)
        page = fill_list(
            account=account,
            filters=TradeFilters(symbol=query.get("symbol")),
            limit=query["limit"],
            offset=query["offset"],
        ).map(fill_present)
        return Response(page_data(account_id=account.public_id, page=page, name="fills"))
