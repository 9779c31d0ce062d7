"""What the SDK raises. Every error is a `LeviathanError`.

An answer from the API that is an error becomes an `ApiError` subclass named
after its code (`InsufficientMarginError` for `insufficient_margin`, …, see
`leviathan.errors`), carrying the code, the message and the HTTP status; a
429 or 503 also carries `retry_after` (seconds). A request that never got an
answer raises `APIConnectionError` (or `APITimeoutError`).
"""

from typing import Any


class LeviathanError(Exception):
    """Anything the SDK raises."""


class APIConnectionError(LeviathanError):
    """No answer: the connection failed or dropped (the request may have been processed,
    unless it was idempotent and the SDK says so by retrying it)."""


class APITimeoutError(APIConnectionError):
    """No answer within the timeout."""


class ApiError(LeviathanError):
    """The API answered with an error: `{"code", "message"}` and an HTTP status."""

    code: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int,
        retry_after: float | None = None,
        body: Any = None,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        return f"{self.code} (HTTP {self.status}): {self.message}"

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(code={self.code!r}, status={self.status}, message={self.message!r})"
