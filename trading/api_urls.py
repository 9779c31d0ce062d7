"""The trading app's /v1/intelligence/ endpoints (mounted by portal.api.urls)."""

from django.urls import path

from trading import api, api_linked, api_markets, api_orders

urlpatterns = [
    path("positions", api.PositionListApi.as_view(), name="api-positions"),
    path(
        "positions/<str:symbol>/close",
        api.PositionCloseApi.as_view(),
        name="api-position-close",
    ),
    path("execute", api.ExecuteApi.as_view(), name="api-execute"),
    path("margin", api.MarginApi.as_view(), name="api-margin"),
    path("margin/simulate", api.MarginSimulateApi.as_view(), name="api-margin-simulate"),
    path("leverage", api.LeverageApi.as_view(), name="api-leverage"),
    path("leverage/levels", api.LeverageLevelsApi.as_view(), name="api-leverage-levels"),
    path("orders", api_orders.OrderCollectionApi.as_view(), name="api-orders"),
    path(
        "orders/by-client-id/<str:client_order_id>",
        api_orders.OrderByClientIdApi.as_view(),
        name="api-order-by-client-id",
    ),
    path(
        "orders/by-client-id/<str:client_order_id>/triggers",
        api_orders.OrderTriggersByClientIdApi.as_view(),
        name="api-order-triggers-by-client-id",
    ),
    path("orders/<str:order_id>", api_orders.OrderDetailApi.as_view(), name="api-order"),
    path(
        "orders/<str:order_id>/triggers",
        api_orders.OrderTriggersApi.as_view(),
        name="api-order-triggers",
    ),
    path("linked-account", api_linked.LinkedAccountApi.as_view(), name="api-linked-account"),
    path(
        "linked-account/sync",
        api_linked.LinkedAccountSyncApi.as_view(),
        name="api-linked-account-sync",
    ),
    path("fills", api_orders.FillListApi.as_view(), name="api-fills"),
    path("markets", api_markets.MarketListApi.as_view(), name="api-markets"),
    path("markets/<str:symbol>", api_markets.MarketDetailApi.as_view(), name="api-market"),
    path(
        "markets/<str:symbol>/orderbook",
        api_markets.OrderBookApi.as_view(),
        name="api-market-orderbook",
    ),
]
