"""OpenAPI for /v1 (drf-spectacular): the bearer-key scheme, the Lev-Version header, the
`{"code","message"}` error responses of every endpoint, and the exact forms the strict
input fields accept (`pattern`s of decimal strings and printable one-line text)."""

from django.conf import settings
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from portal.api.versioning import HEADER
from portal.money import decimal_pattern
from portal.validators import PRINTABLE_LINE_PATTERN

# Errors any /v1 endpoint can answer (503 service_unavailable: Redis down for a moment);
# views list the others in `error_statuses`.
COMMON_ERROR_STATUSES = (400, 401, 403, 429, 500, 503)
# And any endpoint that takes a body: 413 payload_too_large.
BODY_ERROR_STATUSES = (413,)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable: invalid_params, unauthorized, …")
    message = serializers.CharField(help_text="What went wrong, for a person.")


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "lev_live_… / lev_test_…",
            "description": "A Prime API key issued by ops after KYB. Keys with a signing "
            "key must also sign writes: X-Timestamp (ns) and X-Signature (Ed25519, hex).",
        }


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
        from portal.api.views import ApiView

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

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if not self._is_api() or direction != "response":
            return responses
        statuses = (*COMMON_ERROR_STATUSES, *getattr(self.view, "error_statuses", ()))
        if self.method in BODY_METHODS:
            statuses = (*statuses, *BODY_ERROR_STATUSES)
        for status in sorted(set(statuses)):
            responses.setdefault(
                str(status), self._get_response_for_code(ErrorSerializer, str(status))
            )
        return responses
