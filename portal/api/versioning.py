"""`Lev-Version` header versioning: default 2026-04-01, an unknown version is a 400."""

from django.conf import settings
from rest_framework.versioning import BaseVersioning

from portal.errors import InvalidParams

HEADER = "Lev-Version"


class LevVersioning(BaseVersioning):
    def determine_version(self, request, *args, **kwargs) -> str:
        version = request.headers.get(HEADER, "").strip()
        if not version:
            return settings.API_DEFAULT_VERSION
        if version not in settings.API_VERSIONS:
            raise InvalidParams(
                f"Unknown {HEADER} {version!r}: supported "
                f"{', '.join(sorted(settings.API_VERSIONS))}."
            )
        return version
