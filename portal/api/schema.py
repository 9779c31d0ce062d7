"""OpenAPI for /v1 (drf-spectacular): the bearer-key scheme, the Lev-Version header and
the `{"code","message"}` error responses of every endpoint."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from portal.api.versioning import HEADER

# Errors any /v1 endpoint can answer; views list the others in `error_statuses`.
COMMON_ERROR_STATUSES = (400, 401, 403, 429, 500)


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
        for status in sorted(set(statuses)):
            responses.setdefault(
                str(status), self._get_response_for_code(ErrorSerializer, str(status))
            )
        return responses
