"""Project-level views that belong to no app."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import defaults

from portal.api.errors import api_not_found, api_server_error
from portal.api.views import is_api_path


def home(request: HttpRequest) -> HttpResponse:
    """Signed-in users go to their dashboard; visitors see the front page."""
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "home.html")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404s: JSON `{"code","message"}` under /v1, the HTML page elsewhere."""
    if is_api_path(request):
        return api_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """500s: JSON `internal_error` under /v1 (never a trace), the HTML page elsewhere."""
    if is_api_path(request):
        return api_server_error(request)
    return defaults.server_error(request)
