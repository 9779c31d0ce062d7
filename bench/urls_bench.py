"""The API load benchmark's URLconf: every portal URL, plus the bare Django JSON view
(`/bench/bare`) that GET positions and GET margin are compared against."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from portal.urls import handler404, handler500  # noqa: F401 (the portal's error views)
from portal.urls import urlpatterns as portal_urlpatterns

BARE_BODY = {"status": "ok", "service": "bench", "version": "2026-04-01"}


def bare(request: HttpRequest) -> JsonResponse:
    """A plain Django view: no authentication, database, Redis or DRF; a small fixed dict."""
    return JsonResponse(BARE_BODY)


urlpatterns = [path("bench/bare", bare, name="bench-bare"), *portal_urlpatterns]
