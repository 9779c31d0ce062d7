"""The API's one exception handler: every error is `{"code", "message"}`.

Domain errors keep their code and status; DRF's and Django's own errors are
mapped to the seed's codes; anything else is logged and answered as a 500
`internal_error` with no detail. `api_error_response` also serves the URL
resolver's 404 and the server's 500 for paths under /v1 (portal.urls).
"""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.response import Response

from portal.api.parsers import payload_too_large_message
from portal.errors import DomainError, PayloadTooLarge, ServiceUnavailable

logger = logging.getLogger(__name__)

# DRF exception class → (status, code)
_DRF_ERRORS: list[tuple[type[Exception], int, str]] = [
    (exceptions.NotAuthenticated, 401, "unauthorized"),
    (exceptions.AuthenticationFailed, 401, "unauthorized"),
    (exceptions.PermissionDenied, 403, "forbidden"),
    (DjangoPermissionDenied, 403, "forbidden"),
    (exceptions.NotFound, 404, "not_found"),
    (Http404, 404, "not_found"),
    (exceptions.MethodNotAllowed, 405, "method_not_allowed"),
    (exceptions.NotAcceptable, 406, "not_acceptable"),
    (exceptions.UnsupportedMediaType, 415, "unsupported_media_type"),
    (exceptions.Throttled, 429, "rate_limited"),
    (exceptions.ParseError, 400, "invalid_params"),
    (exceptions.ValidationError, 400, "invalid_params"),
    # Django refusing what it was sent: too many query parameters, a bad host, …
    (SuspiciousOperation, 400, "invalid_params"),
]

DEFAULT_MESSAGES = {
    401: "API key missing or invalid.",
    403: "This key does not have permission for this endpoint.",
    404: "Not found.",
    405: "Method not allowed.",
    429: "Too many requests.",
    500: "Something went wrong on our side.",
}


def _validation_message(detail) -> str:
    """A ValidationError's detail as one readable line: `field: problem; …`."""
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            text = _validation_message(value)
            if field == "non_field_errors":
                parts.append(text)
            elif text.startswith("Must "):  # "amount must be …" reads as a sentence
                parts.append(f"{field} m{text[1:]}")
            else:
                parts.append(f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return " ".join(_validation_message(item) for item in detail)
    return str(detail)


def suspicious_request_message(exc: Exception) -> str:
    """What to tell a client Django refused (without naming our settings)."""
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return f"Too many parameters: at most {limit:,} query or form fields."
    return "Bad request."


def error_body(code: str, message: str) -> dict:
    return {"code": code, "message": message}


# A service the request needs cannot be reached (not a bug): Redis, or the database's
# connection (refused, dropped by a restart). Data errors (IntegrityError, …) stay 500s.
UNAVAILABLE_ERRORS = (RedisError, OperationalError, InterfaceError)


def service_unavailable(exc: Exception) -> ServiceUnavailable:
    """What a client is told when Redis or the database cannot be reached."""
    logger.warning("Service unavailable (%s): %s", type(exc).__name__, exc)
    return ServiceUnavailable(
        "A service this request depends on is unavailable for a moment; "
        f"please retry in {ServiceUnavailable.retry_after} seconds."
    )


def api_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: the one place errors become responses."""
    headers = {}
    if isinstance(exc, UNAVAILABLE_ERRORS):
        exc = service_unavailable(exc)
    if isinstance(exc, RequestDataTooBig):  # request.body over DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = PayloadTooLarge(payload_too_large_message())
    if isinstance(exc, DomainError):
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return Response(error_body(exc.code, exc.message), status=exc.status, headers=headers)
    matched = next(((s, c) for kind, s, c in _DRF_ERRORS if isinstance(exc, kind)), None)
    if matched is None:
        request = context.get("request")
        logger.exception(
            "API error on %s %s",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            exc_info=exc,
        )
        return Response(error_body("internal_error", DEFAULT_MESSAGES[500]), status=500)
    status, code = matched
    if isinstance(exc, exceptions.ValidationError):
        message = _validation_message(exc.detail)
    elif isinstance(exc, exceptions.APIException):
        message = str(exc.detail)
    elif isinstance(exc, SuspiciousOperation):
        message = suspicious_request_message(exc)
    else:
        message = DEFAULT_MESSAGES.get(status, str(exc))
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(max(1, round(exc.wait + 0.499)))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return Response(error_body(code, message), status=status, headers=headers)


def api_error_response(status: int, code: str, message: str = "") -> JsonResponse:
    return JsonResponse(
        error_body(code, message or DEFAULT_MESSAGES.get(status, "")), status=status
    )


def api_payload_too_large(request: HttpRequest) -> JsonResponse:
    return api_error_response(413, PayloadTooLarge.code, payload_too_large_message())


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return api_error_response(404, "not_found", f"No endpoint {request.path}.")


def api_server_error(request: HttpRequest) -> JsonResponse:
    return api_error_response(500, "internal_error")
