"""The request logic both clients share, free of I/O.

`plan(config, call)` is a generator: it yields `Send(request)` and
`Sleep(seconds)` steps and receives each send's outcome (an
`httpx.Response`, or the `httpx` exception that stopped it); it returns the
parsed result or raises the SDK's error. `Leviathan` drives it with
`httpx.Client` and `time.sleep`, `AsyncLeviathan` with `httpx.AsyncClient`
and `asyncio.sleep`: one code path for retries, back-off, signing, errors.

Retries: a 429 is retried for any call (the API refuses it before doing
anything), after its Retry-After; connection errors, timeouts and 5xx only
for idempotent calls (reads, and writes that carry a `client_order_id`,
which the API deduplicates), with exponential back-off and full jitter.
"""

import json
import os
import random
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from ._base import to_json
from ._errors import APIConnectionError, ApiError, APITimeoutError
from .errors import ERRORS

DEFAULT_BASE_URL = "https://api.leviathan.global/v1"
DEFAULT_STREAM_URL = "wss://stream.leviathan.global/v1"
API_VERSION = "2026-04-01"
VERSION = "0.1.0"


@dataclass(frozen=True)
class Config:
    """A client's settings (see `Leviathan`)."""

    api_key: str
    base_url: str
    stream_url: str
    account_id: str | None = None
    timeout: float = 30.0
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    signing_key: Any = None  # an Ed25519 private key (cryptography), or None
    api_version: str = API_VERSION
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        api_key: str | None,
        base_url: str | None,
        stream_url: str | None,
        signing_key: Any,
        **options: Any,
    ) -> "Config":
        """Arguments first, then LEVIATHAN_API_KEY / LEVIATHAN_BASE_URL /
        LEVIATHAN_STREAM_URL, then the production URLs. Raises LeviathanError without a key."""
        key = api_key or os.environ.get("LEVIATHAN_API_KEY")
        if not key:
            raise ApiError(
                "No API key: pass api_key= or set LEVIATHAN_API_KEY.",
                code="unauthorized",
                status=401,
            )
        return cls(
            api_key=key,
            base_url=(base_url or os.environ.get("LEVIATHAN_BASE_URL") or DEFAULT_BASE_URL).rstrip(
                "/"
            ),
            stream_url=(
                stream_url or os.environ.get("LEVIATHAN_STREAM_URL") or DEFAULT_STREAM_URL
            ).rstrip("/"),
            signing_key=signing_key_load(signing_key),
            **options,
        )


def signing_key_load(key: Any) -> Any:
    """An Ed25519 private key from its 32-byte seed (hex or bytes), or the key itself."""
    if key is None or hasattr(key, "sign"):
        return key
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # an optional extra
        Ed25519PrivateKey,
    )

    seed = bytes.fromhex(key) if isinstance(key, str) else bytes(key)
    return Ed25519PrivateKey.from_private_bytes(seed)


@dataclass(frozen=True)
class Call:
    """One API operation to perform."""

    method: str
    path: str  # under the base URL: "/intelligence/positions"
    parse: Callable[[httpx.Response], Any]
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    idempotent: bool = False


@dataclass(frozen=True)
class Send:
    request: httpx.Request


@dataclass(frozen=True)
class Sleep:
    seconds: float


Step = Send | Sleep


def client_order_id() -> str:
    """A fresh client_order_id: generated once per call, reused by its retries."""
    return f"sdk-{uuid.uuid4().hex}"


def canonical_json(body: Any) -> str:
    """Keys sorted at every level, no whitespace (what a signature covers)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _query(params: dict[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {key: str(to_json(value)) for key, value in params.items() if value is not None}


def build_request(config: Config, call: Call) -> httpx.Request:
    """The HTTP request of `call`, freshly signed when the client signs writes."""
    headers = {
        "Authorization": f"Bearer {config.api_key}",
        "Accept": "application/json",
        "Lev-Version": config.api_version,
        "User-Agent": f"leviathan-sdk-python/{VERSION}",
        **config.headers,
    }
    content = None
    if call.body is not None:
        content = canonical_json(to_json({k: v for k, v in call.body.items() if v is not None}))
        headers["Content-Type"] = "application/json"
    if config.signing_key is not None and call.method != "GET":
        timestamp = str(time.time_ns())
        action = call.path.rstrip("/").rsplit("/", 1)[-1]
        message = f"{timestamp}{action}{content or ''}".encode()
        headers["X-Timestamp"] = timestamp
        headers["X-Signature"] = config.signing_key.sign(message).hex()
    return httpx.Request(
        call.method,
        f"{config.base_url}{call.path}",
        params=_query(call.params),
        content=content,
        headers=headers,
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from(response: httpx.Response) -> ApiError:
    """The typed error of an error answer (its code's class; ApiError for a new code)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    kind = ERRORS.get(code or "", ApiError)
    return kind(
        str(message or response.reason_phrase or "The API answered with an error."),
        code=code or f"http_{response.status_code}",
        status=response.status_code,
        retry_after=_retry_after(response),
        body=body,
    )


def backoff(config: Config, attempt: int) -> float:
    """Exponential back-off with full jitter before retry `attempt` (0 first)."""
    ceiling = min(config.backoff_max, config.backoff_base * 2**attempt)
    return random.uniform(0, ceiling)  # noqa: S311 (jitter, not secrecy)


def plan(config: Config, call: Call) -> Generator[Step, Any, Any]:
    """The steps of `call`: sends, sleeps between retries; returns the parsed answer."""
    for attempt in range(config.max_retries + 1):
        last = attempt >= config.max_retries
        outcome = yield Send(build_request(config, call))
        if isinstance(outcome, BaseException):
            timed_out = isinstance(outcome, httpx.TimeoutException)
            kind = APITimeoutError if timed_out else APIConnectionError
            if not call.idempotent or last:
                what = "timed out" if timed_out else f"failed ({type(outcome).__name__})"
                raise kind(f"{call.method} {call.path} {what}.") from outcome
            yield Sleep(backoff(config, attempt))
            continue
        response: httpx.Response = outcome
        if response.status_code < 400:
            return call.parse(response)
        error = error_from(response)
        retryable = response.status_code == 429 or (call.idempotent and response.status_code >= 500)
        if not retryable or last:
            raise error
        wait = error.retry_after if error.retry_after is not None else backoff(config, attempt)
        yield Sleep(wait)
    raise AssertionError("unreachable")  # the last attempt returns or raises


def decimal_text(value: Decimal | str | int) -> str:
    """A money amount as the API takes it: a decimal string, never a float."""
    if isinstance(value, float):
        raise TypeError("Pass money as Decimal or str, never float (it is not exact).")
    return str(Decimal(str(value)))
