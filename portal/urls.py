"""Root URL configuration: each app's URLs by dotted path (portal imports no app)."""

from django.urls import include, path

from portal.health import health, ready
from portal.metrics import metrics_view
from portal.views import favicon, home

urlpatterns = [
    path("admin/", include("accounts.admin_urls")),
    path("ops/", include("trading.ops_urls")),
    path("health/", health, name="health"),
    path("ready/", ready, name="ready"),
    # Prometheus (portal.metrics): loopback / METRICS_ALLOWED_NETWORKS / bearer token only.
    path("metrics", metrics_view, name="metrics"),
    path("v1/", include("portal.api.urls")),
    path("favicon.ico", favicon, name="favicon"),
    path("", home, name="home"),
    path("", include("accounts.urls")),
    path("", include("accounts.web_urls")),
    path("", include("trading.web_urls")),
]

handler400 = "portal.views.bad_request"
handler404 = "portal.views.not_found"
handler500 = "portal.views.server_error"
