"""Failed API key attempts are limited per client address (portal.api.throttles): after
API_KEY_FAILURE_LIMIT bad, unknown or revoked keys within the window, that address gets
429 rate_limited with Retry-After for any key, on REST and on the partner stream."""

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from accounts.api_auth import KEY_FAILURES_MESSAGE
from accounts.models import ApiKey
from accounts.services.api_keys import api_key_revoke
from portal.api import throttles
from tests.api.conftest import client_for, key_issue
from tests.factories import StaffFactory

pytestmark = [pytest.mark.urls("tests.api.urls_core")]

UNKNOWN = "lev_live_" + "x" * 40


def failing_keys(api_account) -> list[str]:
    """An unknown key, a malformed one and a revoked one."""
    revoked = key_issue([api_account])
    api_key_revoke(api_key=ApiKey.objects.get(), actor=StaffFactory())
    return [UNKNOWN, "lev_test_short", revoked]


@pytest.mark.django_db
def test_after_the_limit_an_address_is_refused_even_with_a_valid_key(api_account, settings):
    settings.API_KEY_FAILURE_LIMIT = 3
    bad = failing_keys(api_account)
    good = key_issue([api_account])
    statuses = [client_for(key).get("/v1/test/ping").status_code for key in bad]
    refused = client_for(good).get("/v1/test/ping")
    elsewhere = client_for(good).get("/v1/test/ping", REMOTE_ADDR="192.0.2.44")
    assert statuses == [401, 401, 401]
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert "failed API key attempts" in refused.json()["message"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert elsewhere.status_code == 200  # another address has its own count


@pytest.mark.django_db
def test_successful_authentications_are_not_counted(api_account, settings):
    settings.API_KEY_FAILURE_LIMIT = 2
    good = client_for(key_issue([api_account]))
    assert [good.get("/v1/test/ping").status_code for _ in range(6)] == [200] * 6
    assert client_for(UNKNOWN).get("/v1/test/ping").status_code == 401
    assert good.get("/v1/test/ping").status_code == 200


@pytest.mark.django_db
def test_the_window_slides(api_account, settings):
    settings.API_KEY_FAILURE_LIMIT = 2
    settings.API_KEY_FAILURE_WINDOW_SECONDS = 1.0
    good = client_for(key_issue([api_account]))
    for _ in range(2):
        client_for(UNKNOWN).get("/v1/test/ping")
    refused = good.get("/v1/test/ping")
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    time.sleep(1.1)
    assert good.get("/v1/test/ping").status_code == 200


@pytest.mark.django_db
def test_a_redis_outage_leaves_the_check_open_and_never_a_500(api_account, monkeypatch):
    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(throttles, "_windows_check", unreachable)
    response = client_for(UNKNOWN).get("/v1/test/ping")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


@pytest.mark.django_db
def test_a_blocked_address_learns_nothing_about_a_valid_key(api_account, settings):
    """Over the limit, every key gets the same 429 before anything that would tell a valid
    key from a wrong one: a missing scope, an IP allowlist, a missing signature, a
    malformed header."""
    settings.API_KEY_FAILURE_LIMIT = 2
    signer = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    no_scope = client_for(key_issue([api_account], scopes=["read"]))
    elsewhere_only = client_for(key_issue([api_account], ip_allowlist=["192.0.2.0/24"]))
    signing = client_for(key_issue([api_account], signing_public_key=signer))
    assert no_scope.get("/v1/test/ping").status_code == 403  # not blocked yet
    for _ in range(2):
        client_for(UNKNOWN).get("/v1/test/ping")
    answers = [
        no_scope.get("/v1/test/ping"),
        elsewhere_only.get("/v1/test/ping"),
        signing.post("/v1/test/orders", {}, format="json"),
        client_for(UNKNOWN).get("/v1/test/ping"),
        APIClient().get("/v1/test/ping", HTTP_AUTHORIZATION="Basic abc"),
    ]
    assert [
        (a.status_code, a.json()["message"].startswith(KEY_FAILURES_MESSAGE)) for a in answers
    ] == [(429, True)] * 5


@pytest.mark.django_db
def test_a_request_with_a_valid_key_checks_both_limits_in_one_redis_call(
    api_account, monkeypatch, settings
):
    """The address's failures are looked at and the key's group window counted by one
    script call; the group's limit still refuses, and a refused address is not counted."""
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "market_data": 3}
    calls = []
    check = throttles._windows_check

    def counted(*windows):
        calls.append([window.key.rsplit(":", 2)[-2] for window in windows])
        return check(*windows)

    monkeypatch.setattr(throttles, "_windows_check", counted)
    client = client_for(key_issue([api_account]))
    answers = [client.get("/v1/test/ping") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.get("X-RateLimit-Remaining") for a in answers[:3]] == ["2", "1", "0"]
    assert answers[3].json()["code"] == "rate_limited"
    assert "failed API key" not in answers[3].json()["message"]
    assert calls == [["key-failures", "market_data"]] * 4
