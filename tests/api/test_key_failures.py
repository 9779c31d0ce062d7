"""Failed API key attempts are limited per client address (portal.api.throttles): after
API_KEY_FAILURE_LIMIT bad, unknown or revoked keys within the window, that address gets
429 rate_limited with Retry-After for any key, on REST and on the partner stream."""

import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

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

    monkeypatch.setattr(throttles, "_window_check", unreachable)
    response = client_for(UNKNOWN).get("/v1/test/ping")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"
