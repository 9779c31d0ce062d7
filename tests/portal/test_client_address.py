"""The client's address over real uvicorn processes started by the Procfile's own `web`
command: X-Forwarded-For counts only from a proxy in FORWARDED_ALLOW_IPS, and then the
login lockout, API key allowlists (REST and stream) and the audit log all see the
forwarded address; from anyone else it is ignored (portal.net)."""

import asyncio
import json
import re

import httpx
import pytest
import websockets
from axes.models import AccessAttempt
from django.conf import settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Account, ApiKey, AuditLog
from tests.api.conftest import key_issue
from tests.factories import DEFAULT_PASSWORD, StaffFactory, UserFactory, open_account
from tests.live_server import asgi_server

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWLISTED = "10.9.8.7"  # inside the key's 10.0.0.0/8 (a header value, never a target)


def form_post(client: httpx.Client, path: str, data: dict, forwarded_for: str) -> httpx.Response:
    """GET the form (CSRF cookie and token), then POST it, both with X-Forwarded-For."""
    headers = {"X-Forwarded-For": forwarded_for}
    page = client.get(path, headers=headers)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return client.post(path, data={**data, "csrfmiddlewaretoken": token}, headers=headers)


def login(client: httpx.Client, email: str, password: str, forwarded_for: str) -> int:
    """The status of a portal sign-in: 302 in, 200 wrong password, 429 locked out."""
    data = {"email": email, "password": password}
    return form_post(client, "/login/", data, forwarded_for).status_code


def allowlisted_key() -> str:
    account = open_account(kind=Account.Kind.CUSTODIAL)
    return key_issue([account], ip_allowlist=["10.0.0.0/8"])


def rest_status(base: str, key: str, forwarded_for: str) -> int:
    headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": forwarded_for}
    return httpx.get(f"{base}/v1/intelligence/account", headers=headers, timeout=10).status_code


def stream_auth(base: str, key: str, forwarded_for: str) -> dict:
    """The reply to a stream auth sent with X-Forwarded-For on the handshake."""

    async def body() -> dict:
        url = base.replace("http://", "ws://") + "/v1/stream"
        headers = {"X-Forwarded-For": forwarded_for}
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"op": "auth", "key": key}))
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    return asyncio.run(body())


def test_forwarded_for_from_an_untrusted_peer_does_not_escape_the_login_lockout():
    """30 wrong passwords with a new X-Forwarded-For each used to lock nothing out."""
    user = UserFactory()
    limit = settings.AXES_FAILURE_LIMIT
    with asgi_server(procfile=True) as base, httpx.Client(base_url=base, timeout=10) as client:
        statuses = [login(client, user.email, "wrong", f"203.0.113.{n}") for n in range(limit)]
        right_password_elsewhere = login(client, user.email, DEFAULT_PASSWORD, "198.51.100.7")
    assert statuses == [200] * (limit - 1) + [429]
    assert right_password_elsewhere == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_an_allowlisted_key_is_refused_from_loopback_with_a_faked_forwarded_for():
    key = allowlisted_key()
    with asgi_server(procfile=True) as base:
        rest = rest_status(base, key, ALLOWLISTED)
        stream = stream_auth(base, key, ALLOWLISTED)
    assert rest == 403
    assert stream["code"] == "forbidden"
    assert stream["message"] == "This key may not be used from 127.0.0.1."


def test_a_trusted_proxy_forwards_the_address_to_allowlists_lockout_and_audit_log():
    key = allowlisted_key()
    user = UserFactory()
    staff = StaffFactory()
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    limit = settings.AXES_FAILURE_LIMIT
    with (
        asgi_server(procfile=True, forwarded_allow_ips="127.0.0.1") as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        rest = rest_status(base, key, ALLOWLISTED)
        outside = rest_status(base, key, "192.0.2.1")
        stream = stream_auth(base, key, ALLOWLISTED)
        wrong = [login(client, user.email, "wrong", "203.0.113.9") for _ in range(limit)]
        locked_there = login(client, user.email, DEFAULT_PASSWORD, "203.0.113.9")
        elsewhere = login(httpx.Client(base_url=base), user.email, DEFAULT_PASSWORD, "198.51.100.7")
        ops = form_post(
            httpx.Client(base_url=base, timeout=10),
            "/admin/login/",
            {"username": staff.email, "password": DEFAULT_PASSWORD, "otp_token": code},
            "198.51.100.20",
        )
    assert (rest, outside) == (200, 403)
    assert stream["type"] == "authenticated"
    assert ApiKey.objects.get().last_used_ip == ALLOWLISTED
    # The lockout is per email + forwarded address: that address only.
    assert wrong[-1] == 429 and locked_there == 429 and elsewhere == 302
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["203.0.113.9"]
    assert ops.status_code == 302, ops.text
    assert AuditLog.objects.get(action="login", actor=staff).ip_address == "198.51.100.20"
