"""What every venue's HTTP client shares: Decimal parsing, back-off and 429 handling.

The request loops themselves differ by venue (signing, which failures are safe
to retry, what an unknown outcome means); the rules below do not.
"""

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from trading.venues.tracking import VenueBadResponse, VenueRateLimited

MAX_PAGES = 10_000  # a cursor that never ends is a venue bug, not a reason to loop forever
MAX_BACKOFF_SECONDS = 8.0
# A Retry-After longer than this is not slept through: the caller (a request,
# a task) is better told at once, with the advised wait, than blocked.
MAX_RETRY_AFTER_SECONDS = 30.0


def decimal_parse(value: Any, field: str, *, venue: str) -> Decimal:
    """A decimal string (".512" included) or JSON number as an exact, finite Decimal.

    Raises VenueBadResponse (naming `venue` and `field`) for a missing or
    unreadable value; a float is refused (it has already lost exactness).
    """
    if isinstance(value, bool) or value is None or value == "":
        raise VenueBadResponse(f"{venue} sent no usable {field}.")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise VenueBadResponse(
                f"{venue} sent an unreadable {field}: {str(value)[:40]!r}."
            ) from None
    else:
        raise VenueBadResponse(f"{venue} sent an unreadable {field}.")
    if not result.is_finite():
        raise VenueBadResponse(f"{venue} sent an unreadable {field}: {value!r}.")
    return result


def backoff_seconds(base: float, attempt: int) -> float:
    """Exponential back-off before retry `attempt` (0 first), capped."""
    return min(MAX_BACKOFF_SECONDS, base * 2**attempt)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def throttled_wait(
    response: httpx.Response, *, what: str, attempt: int, max_retries: int, base_backoff: float
) -> float:
    """How long to wait before retrying a 429 (its Retry-After, else back-off).

    Raises VenueRateLimited (with the advised wait) once the retries are spent
    or when the venue asks for longer than MAX_RETRY_AFTER_SECONDS.
    """
    advised = retry_after_seconds(response)
    if attempt >= max_retries or (advised is not None and advised > MAX_RETRY_AFTER_SECONDS):
        raise VenueRateLimited(
            f"{what} is still rate-limited after {attempt + 1} attempts.", retry_after=advised
        )
    return backoff_seconds(base_backoff, attempt) if advised is None else advised
