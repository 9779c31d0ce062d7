"""The one error vocabulary: every code the product answers, with its HTTP status and a
default message, and the domain errors that carry one.

`ErrorCode` is the whole list. A code is never typed as a string at a raise site:
passing one is a TypeError. How to raise:

    raise DomainError("Margin is not enabled for …", code=ErrorCode.INSUFFICIENT_MARGIN)
    raise NotFound(f"No order {order_id!r}.")          # its class's code: not_found
    raise Forbidden("KYB approval is required …", code=ErrorCode.KYB_REQUIRED)

`DomainError(message, code=ErrorCode.X)` is the one way; the subclasses below exist
because callers catch them by type (a form shows a NotFound differently, perps
retries on InsufficientMargin, …) or because they add behaviour (`retry_after`). A
subclass stands for its `error` and takes `code=` for a more specific code of the
same status (a Forbidden is always a 403). The message defaults to the code's.

`exc.code` is the wire string (`"kyb_required"`), `exc.error` the member,
`exc.status` its HTTP status. The API's exception handler, the partner stream, the
dashboard's JSON endpoints and the pages turn a DomainError into
`{"code", "message"}` (or a form message) from these; the OpenAPI document lists
the members each /v1 operation declares (`portal.api.schema`).
"""

import enum
from typing import Any


@enum.unique
class ErrorCode(enum.Enum):
    """A code of the API's `{"code", "message"}`: `.code` (wire), `.status`, `.message`."""

    # --- the request itself (the seed's codes, SPEC §7) ---
    INVALID_PARAMS = ("invalid_params", 400, "The request is not valid.")
    UNAUTHORIZED = ("unauthorized", 401, "API key missing or invalid.")
    FORBIDDEN = ("forbidden", 403, "This key does not have permission for this endpoint.")
    NOT_FOUND = ("not_found", 404, "Not found.")
    METHOD_NOT_ALLOWED = ("method_not_allowed", 405, "Method not allowed.")
    NOT_ACCEPTABLE = ("not_acceptable", 406, "The answer is JSON: accept application/json.")
    CONFLICT = ("conflict", 409, "The request conflicts with the current state.")
    PAYLOAD_TOO_LARGE = ("payload_too_large", 413, "The request body is too large.")
    UNSUPPORTED_MEDIA_TYPE = ("unsupported_media_type", 415, "Send the body as JSON.")
    RATE_LIMITED = ("rate_limited", 429, "Too many requests.")
    INTERNAL_ERROR = ("internal_error", 500, "Something went wrong on our side.")
    SERVICE_UNAVAILABLE = (
        "service_unavailable",
        503,
        "A service this request depends on is unavailable for a moment; please retry.",
    )

    # --- who may do it ---
    KYB_REQUIRED = ("kyb_required", 403, "KYB approval is required first.")
    CUSTODIAL_REQUIRED = (
        "custodial_required",
        403,
        "This is a non-custodial account: the broker moves money and trades for custodial "
        "accounts only.",
    )
    ACCOUNT_NOT_ACTIVE = ("account_not_active", 403, "The account is not active.")
    TWO_FACTOR_REQUIRED = (
        "two_factor_required",
        403,
        "Two-factor authentication is required for this.",
    )
    INVALID_TOKEN = ("invalid_token", 400, "That code is not valid.")
    INVALID_SIGNATURE = ("invalid_signature", 400, "The signature is not valid.")

    # --- orders and markets ---
    INSUFFICIENT_LIQUIDITY = (
        "insufficient_liquidity",
        400,
        "Not enough liquidity in the order books for this size right now.",
    )
    DUPLICATE_ORDER = (
        "duplicate_order",
        409,
        "This client_order_id was already used for another request.",
    )
    ORDER_NOT_ACTIVE = ("order_not_active", 409, "The order is no longer active.")
    MARKET_CLOSED = ("market_closed", 409, "The market is not open for trading.")
    SLIPPAGE_EXCEEDED = (
        "slippage_exceeded",
        422,
        "The order would fill further from the best price than allowed.",
    )
    MARKET_DATA_UNAVAILABLE = (
        "market_data_unavailable",
        503,
        "No venue has a live price for this market.",
    )
    MARKET_DATA_STALE = (
        "market_data_stale",
        503,
        "Prices for this market are delayed; nothing trades on them until they catch up.",
    )

    # --- money ---
    INSUFFICIENT_FUNDS = ("insufficient_funds", 422, "The account does not hold enough cash.")
    INSUFFICIENT_MARGIN = (
        "insufficient_margin",
        422,
        "Margin Health after this would be below the initial requirement.",
    )
    WITHDRAWAL_NOT_PENDING = ("withdrawal_not_pending", 409, "The withdrawal is not pending.")
    ALREADY_POSTED = ("already_posted", 409, "This journal was already posted.")
    ALREADY_RESOLVED = ("already_resolved", 409, "The market has already resolved.")
    NOT_RESOLVED = ("not_resolved", 409, "The market has not resolved.")
    TWO_FACTOR_ENABLED = ("two_factor_enabled", 409, "Two-factor authentication is already on.")

    # --- venues (linked accounts, routing) ---
    VENUE_UNAVAILABLE = ("venue_unavailable", 503, "The venue could not be reached.")
    VENUE_AUTH_FAILED = ("venue_auth_failed", 422, "The venue refused the credential.")
    VENUE_RATE_LIMITED = ("venue_rate_limited", 503, "The venue is rate-limiting us.")
    VENUE_BAD_RESPONSE = ("venue_bad_response", 502, "The venue answered something unreadable.")
    VENUE_NOT_FOUND = ("venue_not_found", 404, "The venue has no such market or order.")
    VENUE_CONFLICT = ("venue_conflict", 409, "The venue reports a conflict.")
    VENUE_REJECTED = ("venue_rejected", 422, "The venue refused the request.")

    def __init__(self, code: str, status: int, message: str):
        self.code = code
        self.status = status
        self.message = message

    @classmethod
    def from_code(cls, code: str) -> "ErrorCode":
        """The member of a wire code read back off the wire (a REST reply relayed on the
        partner stream; tests). Never for raising. ValueError for an unknown code."""
        member = _BY_CODE.get(code)
        if member is None:
            raise ValueError(f"Unknown error code {code!r}.")
        return member


# Codes that come together, for declaring what an operation answers (`error_codes`).
# Money may not move for this account: KYB pending, non-custodial, frozen or closed.
CANNOT_TRANSACT = (
    ErrorCode.KYB_REQUIRED,
    ErrorCode.CUSTODIAL_REQUIRED,
    ErrorCode.ACCOUNT_NOT_ACTIVE,
)
# No price to trade on: never quoted, or older than the risk policy allows.
NO_LIVE_PRICES = (ErrorCode.MARKET_DATA_UNAVAILABLE, ErrorCode.MARKET_DATA_STALE)
# A venue call that failed (trading.venues.tracking.VenueError and its kinds).
VENUE_FAILURES = (
    ErrorCode.VENUE_UNAVAILABLE,
    ErrorCode.VENUE_AUTH_FAILED,
    ErrorCode.VENUE_RATE_LIMITED,
    ErrorCode.VENUE_BAD_RESPONSE,
    ErrorCode.VENUE_NOT_FOUND,
)

_BY_CODE = {member.code: member for member in ErrorCode}
if len(_BY_CODE) != len(ErrorCode):
    raise RuntimeError("Two ErrorCode members share a wire code.")


def _restore(cls: type["DomainError"], message: str, state: dict[str, Any]) -> "DomainError":
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class DomainError(Exception):
    """A refusal with a code: `DomainError(message, code=ErrorCode.X)`.

    `code` (the wire string), `status` and the default message come from the member.
    """

    error: ErrorCode  # a subclass's own; an instance's when raised with code=
    retry_after: float | None = None  # seconds; sent as Retry-After when set

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("code", "status"):
            if name in cls.__dict__:
                raise TypeError(f"{cls.__name__}: set `error = ErrorCode.…`, not `{name}`.")
        if not isinstance(getattr(cls, "error", None), ErrorCode):
            raise TypeError(f"{cls.__name__}: set `error` to an ErrorCode member.")

    def __init__(self, message: str | None = None, *, code: ErrorCode | None = None):
        if code is None:
            if type(self) is DomainError:
                raise TypeError("DomainError needs code=ErrorCode.…")
        elif not isinstance(code, ErrorCode):
            raise TypeError(f"code must be an ErrorCode member, not {code!r}.")
        elif type(self) is not DomainError and code.status != self.error.status:
            raise TypeError(
                f"{type(self).__name__} is a {self.error.status}: "
                f"raise DomainError(code=ErrorCode.{code.name}) instead."
            )
        else:
            self.error = code
        self.message = message or self.error.message
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def status(self) -> int:
        return self.error.status

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def __reduce__(self):
        return _restore, (type(self), self.message, self.__dict__)


class InvalidParams(DomainError):
    error = ErrorCode.INVALID_PARAMS


class Forbidden(DomainError):
    error = ErrorCode.FORBIDDEN


class NotFound(DomainError):
    error = ErrorCode.NOT_FOUND


class Conflict(DomainError):
    error = ErrorCode.CONFLICT


class InsufficientFunds(DomainError):
    """The account does not hold the cash an action needs (no borrowing)."""

    error = ErrorCode.INSUFFICIENT_FUNDS


class InsufficientMargin(DomainError):
    error = ErrorCode.INSUFFICIENT_MARGIN


class AccountNotActive(DomainError):
    error = ErrorCode.ACCOUNT_NOT_ACTIVE


class DuplicateOrder(Conflict):
    """A client_order_id reused for a different request on the same account."""

    error = ErrorCode.DUPLICATE_ORDER


class SlippageExceeded(DomainError):
    """A market order would fill further from the best price than the client allows."""

    error = ErrorCode.SLIPPAGE_EXCEEDED


class ServiceUnavailable(DomainError):
    """Something the action depends on (Redis: rate limits, prices, the broker) is down
    for a moment; the client should retry after `retry_after` seconds."""

    error = ErrorCode.SERVICE_UNAVAILABLE
    retry_after = 5
