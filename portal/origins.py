"""Which web pages may open the browser's (session-authenticated) WebSockets.

A browser sends the session cookie with a WebSocket handshake whatever page
opens it, so the handshake's Origin is the only proof that the page is ours.
Channels' AllowedHostsOriginValidator compares host names only: a page on
http://127.0.0.1:9999 (another program on the same machine) passed for the
portal on :8000. Here an origin must match scheme, host and port, as Django's
own CSRF origin check does for forms:

- the socket's own origin: `http`/`https` as the handshake came in (`ws`/`wss`;
  uvicorn sets `wss` from a trusted proxy's X-Forwarded-Proto) + its Host
  header, when that host is in ALLOWED_HOSTS; or
- settings.SITE_URL, or one of CSRF_TRUSTED_ORIGINS (`https://*.example.com`
  matches subdomains, as for CSRF).

A missing or other Origin is refused at the handshake (403, as before).
"""

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain, split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host (lower case), port


def origin_parse(value: str) -> Origin | None:
    """(scheme, host, port) of an origin or URL, default ports filled in; None if it
    is not an http(s) origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for header, value in scope.get("headers") or ():
        if header == name:
            return value.decode("latin-1")
    return None


def _own_origin(scope: Mapping[str, Any]) -> Origin | None:
    """The origin the handshake itself was made to, if its Host is one of ours."""
    host = _header(scope, b"host")
    if not host:
        return None
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]  # as Django's get_host
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, allowed_hosts):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return origin_parse(f"{scheme}://{host}")


def _trusted(origin: Origin, trusted: str) -> bool:
    """`origin` is the CSRF trusted origin `trusted` (`https://*.example.com`: a
    subdomain of example.com, or example.com itself, as Django's CSRF check)."""
    scheme, _, rest = trusted.partition("://")
    if not rest.startswith("*."):
        return origin == origin_parse(trusted)
    pattern = origin_parse(f"{scheme}://{rest[2:]}")
    return (
        pattern is not None
        and (origin[0], origin[2]) == (pattern[0], pattern[2])
        and is_same_domain(origin[1], "." + pattern[1])
    )


def origin_allowed(scope: Mapping[str, Any]) -> bool:
    """True when the handshake's Origin is the site's own (see the module docstring)."""
    value = _header(scope, b"origin")
    origin = origin_parse(value) if value else None
    if origin is None:
        return False
    if origin == _own_origin(scope) or origin == origin_parse(settings.SITE_URL):
        return True
    return any(_trusted(origin, trusted) for trusted in settings.CSRF_TRUSTED_ORIGINS)


class SiteOriginValidator:
    """ASGI middleware for the browser's WebSockets: the inner application runs only
    for a handshake whose Origin `origin_allowed`; any other is refused."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("SiteOriginValidator guards WebSocket connections only.")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
