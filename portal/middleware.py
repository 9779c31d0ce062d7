"""Project-wide middleware: requests refused at the door, and a Redis outage answered."""

from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import defaults
from redis.exceptions import RedisError

from portal.api.errors import api_error_response, service_unavailable
from portal.api.views import is_api_path
from portal.validators import text_problem
from portal.views import payload_too_large


class RequestGuardMiddleware:
    """Refuses, whatever the view:

    - a body declared (Content-Length) larger than DATA_UPLOAD_MAX_MEMORY_SIZE:
      413 (`payload_too_large` under /v1), before anything reads it (no view
      takes file uploads);
    - a path with a control character (a NUL in an id, …): 404, as no such
      record or page can exist, before an id reaches the database (PostgreSQL
      refuses NUL in text).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return payload_too_large(request)
        if text_problem(request.path) is not None:
            message = "Not found: the path contains a control character."
            if is_api_path(request):
                return api_error_response(404, "not_found", message)
            return defaults.page_not_found(request, Http404(message))
        return self.get_response(request)


class ServiceUnavailableMiddleware:
    """A Redis outage (prices, rate limits, the broker) answers 503 with Retry-After,
    never a 500: JSON `service_unavailable` under /v1, a page that says to retry
    elsewhere. (DRF views answer the same through the API's exception handler.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, RedisError):
            return None
        error = service_unavailable(exception)
        if is_api_path(request):
            response = api_error_response(error.status, error.code, error.message)
        else:
            response = render(
                request, "503.html", {"retry_after": error.retry_after}, status=error.status
            )
        response["Retry-After"] = str(error.retry_after)
        return response
