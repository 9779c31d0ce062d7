"""WebSocket URL routes (browser dashboard and partner streams join here).

Served under `AllowedHostsOriginValidator(AuthMiddlewareStack(...))` (portal.asgi).
"""

from django.urls import path

from trading.consumers import DashboardConsumer

websocket_urlpatterns: list = [
    path("ws/dashboard/<str:account_id>/", DashboardConsumer.as_asgi()),
]
