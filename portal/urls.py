"""Root URL configuration."""

from django.urls import include, path

from portal.admin import ops_admin_site
from portal.health import health, ready
from portal.views import home

urlpatterns = [
    path("admin/", ops_admin_site().urls),
    path("health/", health, name="health"),
    path("ready/", ready, name="ready"),
    path("v1/", include("portal.api.urls")),
    path("", home, name="home"),
    path("", include("accounts.urls")),
    path("", include("accounts.web_urls")),
    path("", include("trading.web_urls")),
]

handler400 = "portal.views.bad_request"
handler404 = "portal.views.not_found"
handler500 = "portal.views.server_error"
