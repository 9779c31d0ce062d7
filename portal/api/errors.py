"""The API's one exception handler: every error is `{"code", "message"}`.

Domain errors answer their ErrorCode's code and status; DRF's and Django's own
errors are mapped to members too; anything else is logged and answered as a 500
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
from portal.errors import DomainError, ErrorCode, ServiceUnavailable

logger = logging.getLogger(__name__)

# DRF's and Django's exception classes → the code they answer
_DRF_ERRORS: list[tuple[type[Exception], ErrorCode]] = [
    (exceptions.NotAuthenticated, ErrorCode.UNAUTHORIZED),
    (exceptions.AuthenticationFailed, ErrorCode.UNAUTHORIZED),
    (exceptions.PermissionDenied, ErrorCode.FORBIDDEN),
    (DjangoPermissionDenied, ErrorCode.FORBIDDEN),
    (exceptions.NotFound, ErrorCode.NOT_FOUND),
    (Http404, ErrorCode.NOT_FOUND),
    (exceptions.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED),
    (exceptions.NotAcceptable, ErrorCode.NOT_ACCEPTABLE),
    (exceptions.UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (exceptions.Throttled, ErrorCode.RATE_LIMITED),
    (exceptions.ParseError, ErrorCode.INVALID_PARAMS),
    (exceptions.ValidationError, ErrorCode.INVALID_PARAMS),
    # Django refusing what it was sent: too many query parameters, a bad host, …
    (SuspiciousOperation, ErrorCode.INVALID_PARAMS),
]


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


def error_body(error: ErrorCode, message: str | None = None) -> dict:
    return {"code": error.code, "message": message or error.message}


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
        exc = DomainError(payload_too_large_message(), code=ErrorCode.PAYLOAD_TOO_LARGE)
    if isinstance(exc, DomainError):
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return Response(error_body(exc.error, exc.message), status=exc.status, headers=headers)
    error = next((error for kind, error in _DRF_ERRORS if isinstance(exc, kind)), None)
    if error is None:
        request = context.get("request")
        logger.exception(
            "API error on %s %s",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            exc_info=exc,
        )
        return Response(error_body(ErrorCode.INTERNAL_ERROR), status=500)
    if isinstance(exc, exceptions.ValidationError):
        message = _validation_message(exc.detail)
    elif isinstance(exc, exceptions.APIException):
        message = str(exc.detail)
    elif isinstance(exc, SuspiciousOperation):
        message = suspicious_request_message(exc)
    else:
        message = error.message
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(max(1, round(exc.wait + 0.499)))
    if error is ErrorCode.UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return Response(error_body(error, message), status=error.status, headers=headers)


def api_error_response(error: ErrorCode, message: str | None = None) -> JsonResponse:
    """`{"code", "message"}` for `error`, outside a DRF view (URL resolver, middleware)."""
    return JsonResponse(error_body(error, message), status=error.status)


def api_payload_too_large(request: HttpRequest) -> JsonResponse:
    return api_error_response(ErrorCode.PAYLOAD_TOO_LARGE, payload_too_large_message())


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return api_error_response(ErrorCode.NOT_FOUND, f"No endpoint {request.path}.")


def api_server_error(request: HttpRequest) -> JsonResponse:
    return api_error_response(ErrorCode.INTERNAL_ERROR)
