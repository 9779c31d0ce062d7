"""OpenAPI for /v1 (drf-spectacular): the Lev-Version header, the
`{"code","message"}` error responses of every endpoint, and the exact forms the strict
input fields accept (`pattern`s of decimal strings and printable one-line text).

Error responses: an operation answers the codes its view declares (`error_codes`) plus,
for every /v1 operation, COMMON_ERRORS (and BODY_ERRORS when it takes a body). Each
status gets one response whose `code` is an enum of exactly the operation's codes of
that status, described with their default messages.
"""

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from portal.api.versioning import HEADER
from portal.api.views import ApiView
from portal.errors import ErrorCode
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
        by_status: dict[int, list[ErrorCode]] = {}
        for error in self.error_codes():
            by_status.setdefault(error.status, []).append(error)
        for status, codes in by_status.items():
            if str(status) in responses:
                raise ValueError(
                    f"{type(self.view).__name__} {self.method}: {status} is both a result "
                    f"and the error {', '.join(error.code for error in codes)}."
                )
            responses[str(status)] = self._get_response_for_code(
                OpenApiResponse(error_schema(codes), description=error_description(codes)),
                str(status),
            )
        return dict(sorted(responses.items()))
