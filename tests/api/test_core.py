"""The API core: key auth, scopes, IP allowlists, signing, versions, errors, rate limits."""

import json
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from accounts.api_auth import signing_message
from accounts.models import Account, ApiKey, AuditLog
from accounts.services.api_keys import api_key_issue, api_key_revoke
from portal.errors import Forbidden, InvalidParams
from tests.api.conftest import client_for, key_issue
from tests.factories import StaffFactory, UserFactory, open_account

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls_core")]


def error_of(response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["message"]
    return response.status_code, body["code"]


# --- Keys ------------------------------------------------------------------------


def test_a_key_is_shown_once_and_stored_hashed(api_account):
    issued = api_key_issue(
        owner=api_account.owner,
        accounts=[api_account],
        scopes=["intelligence", "read"],
        name="desk",
        actor=StaffFactory(),
    )
    assert issued.key.startswith("lev_live_") and len(issued.key) == 49
    row = ApiKey.objects.get(pk=issued.api_key.pk)
    assert issued.key not in str(row.__dict__)  # only the hash and a prefix are kept
    assert issued.key.startswith(row.prefix) and len(row.prefix) == len("lev_live_") + 8
    assert AuditLog.objects.filter(action="api_key_issued", object_id=str(row.pk)).exists()


def test_keys_are_issued_only_by_staff_after_kyb_for_the_owners_accounts(api_account):
    staff = StaffFactory()
    with pytest.raises(Forbidden):
        api_key_issue(
            owner=api_account.owner,
            accounts=[api_account],
            scopes=["read"],
            name="x",
            actor=UserFactory(),
        )
    pending = open_account(owner=UserFactory(kyb_status="pending"))
    with pytest.raises(Forbidden):
        api_key_issue(
            owner=pending.owner, accounts=[pending], scopes=["read"], name="x", actor=staff
        )
    other = open_account()
    with pytest.raises(InvalidParams):
        api_key_issue(
            owner=api_account.owner, accounts=[other], scopes=["read"], name="x", actor=staff
        )
    with pytest.raises(InvalidParams):
        api_key_issue(
            owner=api_account.owner,
            accounts=[api_account],
            scopes=["admin"],
            name="x",
            actor=staff,
        )
    with pytest.raises(InvalidParams):
        api_key_issue(
            owner=api_account.owner,
            accounts=[api_account],
            scopes=["read"],
            name="x",
            actor=staff,
            ip_allowlist=["not-an-ip"],
        )


# --- Authentication --------------------------------------------------------------


def test_no_key_bad_scheme_and_unknown_key_are_401(api_account):
    for client in (
        client_for(None),
        client_for("lev_live_" + "x" * 40),
        client_for("sk_live_nope"),
    ):
        response = client.get("/v1/test/ping")
        assert error_of(response) == (401, "unauthorized")
        assert response["WWW-Authenticate"].startswith("Bearer")
    basic = client_for(None)
    basic.credentials(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert error_of(basic.get("/v1/test/ping")) == (401, "unauthorized")


def test_a_valid_key_reaches_its_account(api, api_account):
    response = api.get("/v1/test/ping")
    assert response.status_code == 200
    assert response.json() == {"account_id": api_account.public_id}
    assert response["Lev-Version"] == "2026-04-01"


def test_a_revoked_key_is_refused_at_once(api_account):
    key = key_issue([api_account])
    client = client_for(key)
    assert client.get("/v1/test/ping").status_code == 200
    api_key_revoke(api_key=ApiKey.objects.get(owner=api_account.owner), actor=StaffFactory())
    assert error_of(client.get("/v1/test/ping")) == (401, "unauthorized")


def test_last_use_is_recorded(api, api_account):
    api.get("/v1/test/ping", REMOTE_ADDR="127.0.0.9")
    row = ApiKey.objects.get(owner=api_account.owner)
    assert row.last_used_at is not None and row.last_used_ip == "127.0.0.9"


def test_a_key_without_the_scope_is_403(api_account):
    reader = client_for(key_issue([api_account], scopes=["intelligence", "read"]))
    assert reader.get("/v1/test/ping").status_code == 200
    assert error_of(reader.post("/v1/test/orders", {}, format="json")) == (403, "forbidden")
    no_intelligence = client_for(key_issue([api_account], scopes=["read", "trade"]))
    assert error_of(no_intelligence.get("/v1/test/ping")) == (403, "forbidden")


def test_the_ip_allowlist_applies(api_account):
    client = client_for(key_issue([api_account], ip_allowlist=["10.1.0.0/16", "::1"]))
    assert error_of(client.get("/v1/test/ping", REMOTE_ADDR="127.0.0.1")) == (403, "forbidden")
    assert client.get("/v1/test/ping", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/v1/test/ping", REMOTE_ADDR="::1").status_code == 200


def test_an_account_of_another_customer_is_not_found(api, api_account):
    other = open_account()
    response = api.get("/v1/test/ping", {"account_id": other.public_id})
    assert error_of(response) == (404, "not_found")
    response = api.post("/v1/test/orders", {"account_id": other.public_id}, format="json")
    assert error_of(response) == (404, "not_found")


def test_a_key_on_several_accounts_must_name_one(api_account):
    second = open_account(owner=api_account.owner)
    client = client_for(key_issue([api_account, second]))
    assert error_of(client.get("/v1/test/ping")) == (400, "invalid_params")
    response = client.get("/v1/test/ping", {"account_id": second.public_id})
    assert response.json() == {"account_id": second.public_id}


# --- Signing (seed 004) ----------------------------------------------------------


@pytest.fixture
def signer():
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    return private, public


def signed_post(client, private, path, body, *, timestamp=None, tamper=None):
    raw = json.dumps(body)
    timestamp = str(timestamp or time.time_ns())
    signature = private.sign(
        signing_message(timestamp=timestamp, path=path, body=raw.encode())
    ).hex()
    return client.post(
        path,
        tamper if tamper is not None else raw,
        content_type="application/json",
        HTTP_X_TIMESTAMP=timestamp,
        HTTP_X_SIGNATURE=signature,
    )


def test_signed_keys_must_sign_writes_once_and_on_time(api_account, signer):
    private, public = signer
    client = client_for(key_issue([api_account], signing_public_key=public))
    body = {"b": [2, {"z": 1, "a": 0}], "a": "1"}
    assert client.get("/v1/test/ping").status_code == 200  # reads need no signature
    assert error_of(client.post("/v1/test/orders", body, format="json")) == (401, "unauthorized")
    first = signed_post(client, private, "/v1/test/orders", body)
    assert first.status_code == 200, first.json()
    assert first.json()["body"] == body
    replay = client.post(
        "/v1/test/orders",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_TIMESTAMP=first.wsgi_request.headers["X-Timestamp"],
        HTTP_X_SIGNATURE=first.wsgi_request.headers["X-Signature"],
    )
    assert error_of(replay) == (401, "unauthorized")
    tampered = signed_post(client, private, "/v1/test/orders", body, tamper='{"a":"2"}')
    assert error_of(tampered) == (401, "unauthorized")
    stale = signed_post(
        client, private, "/v1/test/orders", body, timestamp=time.time_ns() - 31 * 10**9
    )
    assert error_of(stale) == (401, "unauthorized")
    millis = signed_post(
        client, private, "/v1/test/orders", body, timestamp=int(time.time() * 1000)
    )
    assert error_of(millis) == (401, "unauthorized")
    other = Ed25519PrivateKey.generate()
    assert error_of(signed_post(client, other, "/v1/test/orders", body)) == (401, "unauthorized")


def test_the_signature_covers_canonical_json():
    message = signing_message(
        timestamp="1", path="/v1/intelligence/execute", body=b'{"b":1, "a":2}'
    )
    assert message == b'1execute{"a":2,"b":1}'


# --- Versions and errors ---------------------------------------------------------


def test_lev_version(api):
    assert api.get("/v1/test/ping", HTTP_LEV_VERSION="2026-04-01").status_code == 200
    response = api.get("/v1/test/ping", HTTP_LEV_VERSION="2019-01-01")
    assert error_of(response) == (400, "invalid_params")
    assert "2026-04-01" in response.json()["message"]


def test_unknown_paths_and_methods_answer_json(api):
    assert error_of(api.get("/v1/intelligence/nope")) == (404, "not_found")
    assert error_of(api.get("/v1/")) == (404, "not_found")
    assert error_of(api.delete("/v1/test/ping")) == (405, "method_not_allowed")


def test_a_server_error_is_internal_error_without_a_trace(api_account, caplog):
    client = client_for(key_issue([api_account]))
    client.raise_request_exception = False
    response = client.get("/v1/test/boom")
    assert error_of(response) == (500, "internal_error")
    assert "secret internals" not in response.content.decode()
    assert "secret internals" in caplog.text  # logged for us, not shown to them


def test_domain_errors_keep_their_code(api):
    assert error_of(api.get("/v1/test/refused")) == (422, "insufficient_margin")


def test_malformed_json_is_invalid_params(api):
    response = api.post("/v1/test/orders", "{not json", content_type="application/json")
    assert error_of(response) == (400, "invalid_params")


# --- Rate limits -----------------------------------------------------------------


def test_a_group_limit_gives_429_with_retry_after(api, settings):
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "market_data": 3}
    statuses = [api.get("/v1/test/ping").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = api.get("/v1/test/ping")
    assert error_of(refused) == (429, "rate_limited")
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Another group of the same key has its own budget.
    assert api.post("/v1/test/orders", {}, format="json").status_code == 200


def test_limits_are_per_key(api_account, settings):
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "market_data": 1}
    first, second = client_for(key_issue([api_account])), client_for(key_issue([api_account]))
    assert first.get("/v1/test/ping").status_code == 200
    assert first.get("/v1/test/ping").status_code == 429
    assert second.get("/v1/test/ping").status_code == 200


def test_the_limit_is_shared_with_another_process(api, api_account, settings):
    """Another process (a second server) spends the key's budget: this one sees it."""
    limit = 5
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "market_data": limit}
    key_pk = ApiKey.objects.get(owner=api_account.owner).pk
    spend = (
        "import django, os; django.setup(); "
        "from portal.api.throttles import Window, _windows_check, rate_window_key; "
        f"window = Window(rate_window_key('market_data', {key_pk}), {limit}); "
        f"print([_windows_check(window).allowed for _ in range({limit - 1})])"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "REDIS_KEY_PREFIX": settings.KEY_PREFIX,
        "REDIS_URL": settings.REDIS_URL,
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(  # noqa: S603 (our own interpreter and code)
        [sys.executable, "-c", spend],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
    )
    assert out.stdout.strip() == str([True] * (limit - 1))
    assert api.get("/v1/test/ping").status_code == 200  # the last one of the window
    refused = api.get("/v1/test/ping")
    assert error_of(refused) == (429, "rate_limited") and int(refused["Retry-After"]) >= 1


def test_rate_limit_headers(api, settings):
    response = api.get("/v1/test/ping")
    assert response["X-RateLimit-Limit"] == str(settings.API_RATE_LIMITS["market_data"])
    assert int(response["X-RateLimit-Remaining"]) == settings.API_RATE_LIMITS["market_data"] - 1


def test_non_custodial_accounts_can_hold_keys_too():
    account = open_account(kind=Account.Kind.NON_CUSTODIAL)
    client = client_for(key_issue([account], scopes=["intelligence", "read"]))
    assert client.get("/v1/test/ping").json() == {"account_id": account.public_id}
