"""Project-level views that belong to no app."""

import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views import defaults

from portal.api.errors import (
    UNAVAILABLE_ERRORS,
    api_error_response,
    api_not_found,
    api_payload_too_large,
    api_server_error,
    service_unavailable,
    suspicious_request_message,
)
from portal.api.parsers import payload_too_large_message
from portal.api.views import is_api_path
from portal.errors import ErrorCode


def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on their own: the site's icon."""
    return redirect(static("favicon.svg"), permanent=True)


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
    """500s: JSON `internal_error` under /v1 (never a trace), the HTML page elsewhere;
    an outage of Redis or of the database's connection (raised anywhere, a middleware
    included) is a 503 instead (`service_unavailable_response`)."""
    exception = sys.exc_info()[1]
    if isinstance(exception, UNAVAILABLE_ERRORS):
        return service_unavailable_response(request, exception)
    if is_api_path(request):
        return api_server_error(request)
    return defaults.server_error(request)


def service_unavailable_response(request: HttpRequest, exception: Exception) -> HttpResponse:
    """503 with Retry-After for Redis or the database out of reach: JSON
    `service_unavailable` under /v1, a plain page elsewhere (it reads nothing, so it
    shows whatever is down)."""
    error = service_unavailable(exception)
    if is_api_path(request):
        response = api_error_response(error.error, error.message)
    else:
        page = defaults.ERROR_PAGE_TEMPLATE % {
            "title": "Temporarily unavailable",
            "details": "Part of Prime Portal is unavailable for a moment, so this page "
            f"cannot be shown now. Please try again in {error.retry_after} seconds.",
        }
        response = HttpResponse(page, status=error.status)
    response["Retry-After"] = str(error.retry_after)
    return response


def payload_too_large(request: HttpRequest) -> HttpResponse:
    """413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE: JSON `payload_too_large` under /v1,
    a plain page elsewhere."""
    if is_api_path(request):
        return api_payload_too_large(request)
    page = defaults.ERROR_PAGE_TEMPLATE % {
        "title": "Request too large",
        "details": payload_too_large_message(),
    }
    return HttpResponse(page, status=413)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """400s Django raises itself (a body it will not read, too many fields): 413 for a
    body too large, JSON `invalid_params` under /v1, the HTML page elsewhere."""
    if isinstance(exception, RequestDataTooBig):
        return payload_too_large(request)
    if is_api_path(request):
        return api_error_response(ErrorCode.INVALID_PARAMS, suspicious_request_message(exception))
    return defaults.bad_request(request, exception)
