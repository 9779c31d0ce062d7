"""The one error vocabulary: domain errors with a stable code and HTTP status.

Services raise these; the API's exception handler, the WebSocket consumers
and the pages turn them into `{"code", "message"}` or a form message.
"""


class DomainError(Exception):
    code = "invalid_params"
    status = 400

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class InvalidParams(DomainError):
    code = "invalid_params"
    status = 400


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class NotFound(DomainError):
    code = "not_found"
    status = 404


class PayloadTooLarge(DomainError):
    """A request body over settings.DATA_UPLOAD_MAX_MEMORY_SIZE."""

    code = "payload_too_large"
    status = 413


class Conflict(DomainError):
    code = "conflict"
    status = 409


class InsufficientFunds(DomainError):
    """The account does not hold the cash an action needs (no borrowing)."""

    code = "insufficient_funds"
    status = 422


class InsufficientMargin(DomainError):
    code = "insufficient_margin"
    status = 422


class AccountNotActive(DomainError):
    code = "account_not_active"
    status = 403


class DuplicateOrder(Conflict):
    """A client_order_id reused for a different request on the same account."""

    code = "duplicate_order"
    status = 409


class SlippageExceeded(DomainError):
    """A market order would fill further from the best price than the client allows."""

    code = "slippage_exceeded"
    status = 422


class ServiceUnavailable(DomainError):
    """Something the action depends on (Redis: rate limits, prices, the broker) is down
    for a moment; the client should retry after `retry_after` seconds."""

    code = "service_unavailable"
    status = 503
    retry_after = 5
