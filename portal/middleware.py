"""Project-wide middleware."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from redis.exceptions import RedisError

from portal.api.errors import api_error_response, service_unavailable
from portal.api.views import is_api_path


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
