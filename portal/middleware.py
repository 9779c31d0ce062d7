"""Project-wide middleware: requests refused at the door, and outages answered."""

import logging
import time
import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.views import defaults

from portal.api.errors import UNAVAILABLE_ERRORS, api_error_response
from portal.api.views import is_api_path
from portal.errors import ErrorCode
from portal.logs import (
    REQUEST_ID_HEADER,
    request_id_bind,
    request_id_clean,
    request_id_new,
    request_id_reset,
)
from portal.validators import text_problem
from portal.views import not_found, payload_too_large, service_unavailable_response

access_logger = logging.getLogger("portal.access")


class RequestIdMiddleware:
    """The request's id (portal.logs): the incoming `X-Request-ID` when it is a valid
    one (1–64 of A–Z a–z 0–9 . _ : -), else a new one. Bound to every log line of the
    request and to the tasks and outbox items it sends; returned in the response's
    `X-Request-ID`; also `request.request_id`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_clean(request.headers.get(REQUEST_ID_HEADER)) or request_id_new()
        request.request_id = request_id
        token = request_id_bind(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            # The access line (uvicorn's own is off): no query string, which may hold tokens.
            access_logger.info(
                "%s %s %s %.1f ms",
                request.method,
                request.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
        finally:
            request_id_reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


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
                return api_error_response(ErrorCode.NOT_FOUND, message)
            return defaults.page_not_found(request, Http404(message))
        return self.get_response(request)


class ServiceUnavailableMiddleware:
    """A view that finds Redis (prices, rate limits, the broker) or the database's
    connection out of reach answers 503 with Retry-After, never a 500 (and, under
    DEBUG, never the debug page): `portal.views.service_unavailable_response`. DRF views
    answer the same through the API's exception handler; a middleware that raises it
    reaches the same response through the 500 handler (`portal.views.server_error`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, UNAVAILABLE_ERRORS):
            return None
        return service_unavailable_response(request, exception)


class TimeZoneMiddleware:
    """Times on pages in the reader's zone: the IANA zone the pages' script stores in
    the `tz` cookie (static/js/format.js) is activated for the request; a missing or
    unknown zone leaves UTC (`portal.format.when` shows the zone either way)."""

    COOKIE = "tz"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = _zone(request.COOKIES.get(self.COOKIE, ""))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    if not name or len(name) > 64 or text_problem(name) is not None:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


class FriendlyNotFoundMiddleware:
    """Under DEBUG (`make run`), a page that does not exist answers with the portal's own
    404 page (templates/404.html; JSON `{"code","message"}` under /v1), as it does in
    production, instead of Django's technical 404 that lists every URL pattern. Tracebacks
    of real errors (500) keep Django's debug page: that one is the developer's tool.

    A path that resolves to no view is answered before the view layer (Django turns that
    Resolver404 into the technical page before any middleware could see it); an Http404
    a view raises comes through `process_exception`. With DEBUG off it does nothing:
    handler404 (`portal.views.not_found`) already answers. Sits inside CommonMiddleware,
    whose APPEND_SLASH redirect of a 404 still applies, and inside the CSP middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.DEBUG:
            try:
                resolve(request.path_info, getattr(request, "urlconf", None))
            except Resolver404 as exception:
                return not_found(request, exception)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if settings.DEBUG and isinstance(exception, Http404):
            return not_found(request, exception)
        return None
