"""OpenAPI for /v1 (drf-spectacular): the Lev-Version header, the
`{"code","message"}` error responses of every endpoint, their examples, and the exact
forms the strict input fields accept (`pattern`s of decimal strings and printable
one-line text).

Error responses: an operation answers the codes its view declares (`error_codes`) plus,
for every /v1 operation, COMMON_ERRORS (and BODY_ERRORS when it takes a body). Each
status gets one response whose `code` is an enum of exactly the operation's codes of
that status, described with their default messages.

Examples: every request and response body of the document carries at least one
(`tests/api/test_schema_examples.py` validates each against its schema).
- Errors: generated here, one per code an operation answers, with what the API says in
  a typical case (`example_message`). An operation shows its own case of a code with
  `error_example(ErrorCode.X, "…")` in its `extend_schema(examples=[…])`: it stands in
  for the generated one.
- Resources: declared once on the serializer that documents them
  (`extend_schema_serializer(examples=[…])`, values in each app's `api_examples`), and
  per operation in `extend_schema(examples=[…])` where one answers a case of its own
  (execute's 202, a cancelled order). Unlike drf-spectacular's default, where an
  operation with any example of its own loses all of its serializers', an operation's
  examples replace the serializer's only for the bodies they apply to (same direction,
  media type and status).
"""

import copy

from django.conf import settings
from drf_spectacular.drainage import get_override
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_list_serializer
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from portal.api.errors import error_body
from portal.api.parsers import payload_too_large_message
from portal.api.versioning import HEADER
from portal.api.views import ApiView
from portal.errors import ErrorCode, ServiceUnavailable
from portal.money import decimal_pattern
from portal.validators import PRINTABLE_LINE_PATTERN

# What any /v1 operation can answer, whatever it does: a malformed query or Lev-Version,
# no or a bad key (or signature), a missing scope or an address outside the key's IP
# allowlist, an Accept that is not JSON, a rate limit, a bug, Redis or the database away
# for a moment. Views declare the others in `error_codes`.
COMMON_ERRORS = (
    ErrorCode.INVALID_PARAMS,
    ErrorCode.UNAUTHORIZED,
    ErrorCode.FORBIDDEN,
    ErrorCode.NOT_ACCEPTABLE,
    ErrorCode.RATE_LIMITED,
    ErrorCode.INTERNAL_ERROR,
    ErrorCode.SERVICE_UNAVAILABLE,
)
# And any operation that takes a body: too large, or not JSON.
BODY_ERRORS = (ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_schema(codes: list[ErrorCode]) -> dict:
    """The `{"code", "message"}` body whose code is one of `codes`."""
    return {
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "enum": [error.code for error in codes],
                "description": "Machine-readable; see the response's description.",
            },
            "message": {"type": "string", "description": "What went wrong, for a person."},
        },
        "required": ["code", "message"],
    }


def error_description(codes: list[ErrorCode]) -> str:
    return "\n".join(f"- `{error.code}`: {error.message}" for error in codes)


# The account the examples act on, as the API writes an account id (also the apps'
# `api_examples`), and one that is not the key's.
EXAMPLE_ACCOUNT_ID = "acct_9f3a2bc0d1"
EXAMPLE_OTHER_ACCOUNT_ID = "acct_5b8e0f7c21"


def example_message(error: ErrorCode) -> str:
    """What the API says for `error` in a typical case, as it words it (the generated
    error examples); the code's default message when no case is typical enough."""
    versions = ", ".join(sorted(settings.API_VERSIONS))
    account = EXAMPLE_ACCOUNT_ID
    messages = {
        # Any operation: a Lev-Version it does not know (portal.api.versioning).
        ErrorCode.INVALID_PARAMS: f"Unknown {HEADER} '2025-01-01': supported {versions}.",
        ErrorCode.NOT_FOUND: f"No account '{EXAMPLE_OTHER_ACCOUNT_ID}' for this key.",
        ErrorCode.NOT_ACCEPTABLE: "Could not satisfy the request Accept header.",
        ErrorCode.PAYLOAD_TOO_LARGE: payload_too_large_message(),
        ErrorCode.UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type "text/plain" in request.',
        ErrorCode.RATE_LIMITED: "Request was throttled. Expected available in 12 seconds.",
        ErrorCode.SERVICE_UNAVAILABLE: "A service this request depends on is unavailable for "
        f"a moment; please retry in {ServiceUnavailable.retry_after} seconds.",
        ErrorCode.KYB_REQUIRED: "KYB approval is required before moving money.",
        ErrorCode.ACCOUNT_NOT_ACTIVE: f"Account {account} is frozen.",
        ErrorCode.INSUFFICIENT_LIQUIDITY: "Not enough liquidity: no venue's order book can "
        "buy 2500000.000000 USDC of TRUMP-WIN right now.",
        ErrorCode.DUPLICATE_ORDER: "client_order_id 'rebalance-2026-04-22-001' was already "
        f"used for a different order (ord_5e0c3a9b7d2f4e61) in account {account}.",
        ErrorCode.ORDER_NOT_ACTIVE: "Order ord_b71f0c2e9a4d6385 is filled: only active "
        "orders change.",
        ErrorCode.MARKET_CLOSED: "The TRUMP-WIN market is halted: it cannot be traded now.",
        ErrorCode.SLIPPAGE_EXCEEDED: "The fill would average 0.61373626, 61.3 bps from the "
        "best price 0.61: more than the 50 bps allowed.",
        ErrorCode.MARKET_DATA_UNAVAILABLE: "No live prices for TRUMP-WIN right now.",
        ErrorCode.MARKET_DATA_STALE: "Prices for TRUMP-WIN on polymarket are delayed: the "
        "last quote is from 15:01:42 UTC, 29 s ago (the limit is 15 s). Orders resume when "
        "the market-data feed catches up.",
        ErrorCode.INSUFFICIENT_MARGIN: "Insufficient margin: after this buy Margin Health "
        "would be 1.07 (Adjusted Equity 326,722.10 USDC / Used Margin 304,548.53 USDC), "
        "below the initial margin requirement of 1.2. Available Margin is 94,631.47 USDC "
        "now; deposit at least 32,280.11 USDC or reduce the size.",
        ErrorCode.WITHDRAWAL_NOT_PENDING: "Withdrawal wd_3f9a0c7e21b84d56 is already approved.",
        ErrorCode.VENUE_UNAVAILABLE: "Kalshi GET /trade-api/v2/markets/KXPRES-2028-TRUMPEND "
        "timed out (3 attempts).",
        ErrorCode.VENUE_AUTH_FAILED: "Kalshi refused the API key: token authentication failed.",
        ErrorCode.VENUE_BAD_RESPONSE: "Kalshi GET /trade-api/v2/markets/KXPRES-2028-TRUMPEND "
        "answered something other than JSON.",
        ErrorCode.VENUE_NOT_FOUND: "Kalshi GET /trade-api/v2/markets/KXPRES-2028-TRUMPEND: "
        "not found.",
    }
    return messages.get(error, error.message)


def error_example(error: ErrorCode, message: str, *, name: str | None = None) -> OpenApiExample:
    """An operation's own example of `error` (for its `extend_schema(examples=[…])`),
    in place of the generated one of that code; `name` tells two of one code apart."""
    return OpenApiExample(
        name or error.code,
        value=error_body(error, message),
        status_codes=[str(error.status)],
        response_only=True,
    )


class DecimalInputSchema(OpenApiSerializerFieldExtension):
    """A decimal input: a string in exactly the form `portal.money.decimal_text_parse` reads."""

    target_class = "portal.api.fields.DecimalInputField"

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        field = self.target
        schema["pattern"] = decimal_pattern(
            max_digits=field.max_digits, decimal_places=field.decimal_places
        )
        return schema


class TextInputSchema(OpenApiSerializerFieldExtension):
    """Free text: printable, on one line (`portal.validators`)."""

    target_class = "portal.api.fields.TextField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        schema["pattern"] = PRINTABLE_LINE_PATTERN
        return schema


class ApiAutoSchema(AutoSchema):
    def _is_api(self) -> bool:
        return isinstance(self.view, ApiView)

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if not self._is_api():
            return parameters
        return [
            *parameters,
            OpenApiParameter(
                HEADER,
                str,
                OpenApiParameter.HEADER,
                required=False,
                enum=sorted(settings.API_VERSIONS),
                description=f"API version; {settings.API_DEFAULT_VERSION} when omitted.",
            ),
        ]

    def _error_message(self, error: ErrorCode) -> str:
        if error is ErrorCode.FORBIDDEN and self._is_api():
            # accounts.api_auth.ScopePermission's words, for the scope this operation needs.
            return f"This key lacks the {self.view.required_scopes[-1]} scope."
        return example_message(error)

    def _own_error_examples(self, codes: list[ErrorCode]) -> set[tuple[str, str]]:
        """(status, code) of the error examples the operation declares itself."""
        own = set()
        for example in self.get_examples():
            value = example.value
            if not (isinstance(value, dict) and set(value) == {"code", "message"}):
                continue
            for status in example.status_codes or ():
                if not any(e.code == value["code"] and e.status == int(status) for e in codes):
                    raise ValueError(
                        f"{type(self.view).__name__} {self.method}: example {example.name!r} "
                        f"is a {status} {value['code']}, which the operation does not answer."
                    )
                own.add((str(status), value["code"]))
        return own

    def _get_examples(self, serializer, direction, media_type, status_code=None, extras=None):
        examples = super()._get_examples(serializer, direction, media_type, status_code, extras)
        if examples or not self.get_examples():
            return examples
        # The operation has examples, none for this body: drf-spectacular would then drop
        # the serializer's; use them (with drf-spectacular's defaults made explicit, as
        # `extras` would otherwise take this body's media type and status).
        target = serializer.child if is_list_serializer(serializer) else serializer
        fallback = []
        for example in get_override(target, "examples", []):
            example = copy.copy(example)
            example.media_type = example.media_type or "application/json"
            example.status_codes = example.status_codes or ["200", "201"]
            fallback.append(example)
        if not fallback:
            return examples
        return super()._get_examples(serializer, direction, media_type, status_code, fallback)

    def error_codes(self) -> list[ErrorCode]:
        """The codes this operation can answer, by status then code."""
        codes = set(getattr(self.view, "error_codes", ()))
        if self._is_api():
            codes.update(COMMON_ERRORS)
            if self.method in BODY_METHODS:
                codes.update(BODY_ERRORS)
        return sorted(codes, key=lambda error: (error.status, error.code))

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        answered = self.error_codes()
        own = self._own_error_examples(answered)
        by_status: dict[int, list[ErrorCode]] = {}
        for error in answered:
            by_status.setdefault(error.status, []).append(error)
        for status, codes in by_status.items():
            if str(status) in responses:
                raise ValueError(
                    f"{type(self.view).__name__} {self.method}: {status} is both a result "
                    f"and the error {', '.join(error.code for error in codes)}."
                )
            examples = [
                error_example(error, self._error_message(error))
                for error in codes
                if (str(status), error.code) not in own
            ]
            responses[str(status)] = self._get_response_for_code(
                OpenApiResponse(
                    error_schema(codes), description=error_description(codes), examples=examples
                ),
                str(status),
            )
        return dict(sorted(responses.items()))
