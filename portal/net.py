"""The client's address: one answer for the login lockout, API key allowlists, the
audit log and the partner stream.

uvicorn (the web process) decides it. It takes `X-Forwarded-For` (and
`X-Forwarded-Proto`) only from the peers listed in `--forwarded-allow-ips`,
which the Procfile and every other place that starts uvicorn fill from
settings.FORWARDED_ALLOW_IPS (env `FORWARDED_ALLOW_IPS`; default: empty, trust
no proxy). From any other peer those headers are ignored, and the address is
the peer's own. uvicorn writes the result into the ASGI scope's `client`, which
Django copies into `REMOTE_ADDR`. So the product reads the address only there,
never from a header: a header is whatever the client chose to send.
"""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address of the client that sent `request` ("" when the server does not
    know it, e.g. a Unix socket peer). Guaranteed to come from the connection, or
    from X-Forwarded-For only as set by a proxy in FORWARDED_ALLOW_IPS.

    Also django-axes' AXES_CLIENT_IP_CALLABLE, so lockouts count per this address.
    """
    return request.META.get("REMOTE_ADDR") or ""


def scope_client_ip(scope: Mapping[str, Any]) -> str:
    """`client_ip` for an ASGI scope (WebSocket consumers): the same address."""
    client = scope.get("client")
    return (client[0] if client else "") or ""


def uvicorn_proxy_argv(forwarded_allow_ips: str | None = None) -> list[str]:
    """uvicorn's command-line options for the trusted proxies: `forwarded_allow_ips`,
    or settings.FORWARDED_ALLOW_IPS. Always explicit, because uvicorn's own default
    (without the option and without the FORWARDED_ALLOW_IPS variable) trusts
    X-Forwarded-For from 127.0.0.1, i.e. from anyone on the machine or behind a
    local tunnel."""
    trusted = settings.FORWARDED_ALLOW_IPS if forwarded_allow_ips is None else forwarded_allow_ips
    return ["--forwarded-allow-ips", trusted]
