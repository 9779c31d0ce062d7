"""/v1: the partner REST API, its OpenAPI schema and interactive docs."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from portal.api import schema  # noqa: F401 (registers the key scheme with drf-spectacular)
from portal.api.errors import api_not_found

urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("intelligence/", include("trading.api_urls")),
    path("intelligence/", include("trading.reports_urls")),
    path("intelligence/", include("accounts.api_urls")),
    # Anything else under /v1 is a JSON 404, also with DEBUG on.
    re_path(r"^.*$", api_not_found),
]
