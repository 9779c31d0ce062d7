"""The trading app's browser pages (mounted at the site root by portal.urls).

The dashboard's live feed is a WebSocket: `ws/dashboard/<account id>/`
(trading.routing, trading.consumers).
"""

from django.urls import path

from trading.web import accounts, linked, reports, views
from trading.web import alerts as alert_views
from trading.web import exports as export_views
from trading.web import orders as order_views
from trading.web import positions as position_views

urlpatterns: list = [
    path("accounts/", accounts.account_list_view, name="account_list"),
    path("reports/", reports.report_list_view, name="report_list"),
    # Orders, positions and the CSV export of every table (issue 18, helper A).
    path("orders/", order_views.order_list_view, name="order_list"),
    path("orders/<str:order_id>/", order_views.order_detail_view, name="order_detail"),
    path("orders/<str:order_id>/cancel/", order_views.order_cancel_view, name="order_cancel"),
    path("orders/<str:order_id>/modify/", order_views.order_modify_view, name="order_modify"),
    path(
        "orders/<str:order_id>/triggers/remove/",
        order_views.order_triggers_cancel_view,
        name="order_triggers_cancel",
    ),
    path("positions/", position_views.position_list_view, name="position_list"),
    path("exports/<str:table>.csv", export_views.export_csv_view, name="export_csv"),
    path("reports/<str:report_id>/download/", reports.report_download_view, name="report_download"),
    path("alerts/", alert_views.health_alerts_view, name="health_alerts"),
    path(
        "alerts/<int:alert_id>/delete/",
        alert_views.health_alert_delete_view,
        name="health_alert_delete",
    ),
    path("linked/", linked.linked_list, name="linked-list"),
    path("linked/link/<str:venue>/", linked.linked_link, name="linked-link"),
    path("linked/<str:account_id>/rotate/", linked.linked_rotate, name="linked-rotate"),
    path("linked/<str:account_id>/unlink/", linked.linked_unlink, name="linked-unlink"),
    path("linked/<str:account_id>/sync/", linked.linked_sync, name="linked-sync"),
    path("linked/<str:account_id>/status.json", linked.linked_status, name="linked-status"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path(
        "dashboard/<str:account_id>/snapshot.json",
        views.dashboard_snapshot,
        name="dashboard-snapshot",
    ),
    path(
        "dashboard/<str:account_id>/projection.json",
        views.trade_projection,
        name="trade-projection",
    ),
    path("dashboard/<str:account_id>/orders/", views.order_place, name="order-place"),
    path(
        "dashboard/<str:account_id>/ticket/markets.json",
        views.ticket_markets,
        name="ticket-markets",
    ),
    path("dashboard/<str:account_id>/ticket/book.json", views.ticket_book, name="ticket-book"),
    path(
        "dashboard/<str:account_id>/positions/close/",
        views.position_close,
        name="position-close",
    ),
    path(
        "dashboard/<str:account_id>/positions/<int:position_id>/close.json",
        views.position_close_simulation,
        name="position-close-simulation",
    ),
    path(
        "dashboard/<str:account_id>/add-funds.json",
        views.add_funds_simulation,
        name="add-funds-simulation",
    ),
    path(
        "dashboard/<str:account_id>/leverage/<str:symbol>/preview.json",
        views.leverage_preview,
        name="leverage-preview",
    ),
    path(
        "dashboard/<str:account_id>/leverage/<str:symbol>/",
        views.leverage_apply,
        name="leverage-apply",
    ),
]
