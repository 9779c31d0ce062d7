"""`Lev-Version` header versioning: default 2026-04-01 when the header is absent; an
empty or unknown version is a 400."""

from django.conf import settings
from django.http import HttpRequest

from portal.errors import InvalidParams

HEADER = "Lev-Version"


def api_version_get(request: HttpRequest) -> str:
    """The version a request asks for (the default when absent); InvalidParams if empty
    or unknown."""
    version = request.headers.get(HEADER)
    if version is None:
        return settings.API_DEFAULT_VERSION
    version = version.strip()
    if not version:
        raise InvalidParams(
            f"{HEADER} is empty: leave the header out for the default "
            f"({settings.API_DEFAULT_VERSION}) or send a supported version: "
            f"{', '.join(sorted(settings.API_VERSIONS))}."
        )
    if version not in settings.API_VERSIONS:
        raise InvalidParams(
            f"Unknown {HEADER} {version!r}: supported {', '.join(sorted(settings.API_VERSIONS))}."
        )
    return version
