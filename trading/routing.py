"""WebSocket URL routes: the browser dashboard's and the partners' stream
(settings.WEBSOCKET_URLCONF, mounted by portal.asgi).

The dashboard's routes are served under
`SiteOriginValidator` and channels' auth stack (session cookie, so the
Origin is checked: scheme, host and port, portal.origins); the partner
stream authenticates with an API key in its first message, so it needs
neither.
"""

from django.urls import path, re_path

from trading.consumers import DashboardConsumer, OpsDeskConsumer
from trading.streams.consumer import StreamConsumer

browser_urlpatterns: list = [
    path("ws/dashboard/<str:account_id>/", DashboardConsumer.as_asgi()),
    path("ws/ops/desk/", OpsDeskConsumer.as_asgi()),
]

partner_urlpatterns: list = [
    re_path(r"^v1/stream/?$", StreamConsumer.as_asgi()),
]
