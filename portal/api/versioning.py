"""`Lev-Version` header versioning: default 2026-04-01, an unknown version is a 400."""

from django.conf import settings
from django.http import HttpRequest

from portal.errors import InvalidParams

HEADER = "Lev-Version"


def api_version_get(request: HttpRequest) -> str:
    """The version a request asks for (the default when absent); InvalidParams if unknown."""
    version = request.headers.get(HEADER, "").strip()
    if not version:
        return settings.API_DEFAULT_VERSION
    if version not in settings.API_VERSIONS:
        raise InvalidParams(
            f"Unknown {HEADER} {version!r}: supported {', '.join(sorted(settings.API_VERSIONS))}."
        )
    return version
