"""A Redis outage: the API answers 503 `service_unavailable` with Retry-After, pages a 503
page, both at once (never a 500, never a request held for seconds)."""

import time

import pytest

from tests.api.conftest import client_for, key_issue
from tests.factories import open_account
from tests.web.conftest import signed_in
from tests.web.dashboard_fixtures import TRUMP, buy, markets_open, trader

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there


@pytest.mark.parametrize(
    "path",
    ["/v1/intelligence/positions", "/v1/intelligence/margin", "/v1/intelligence/orders"],
)
def test_the_api_answers_503_with_retry_after(db, settings, path):
    api = client_for(key_issue([open_account()]))
    settings.REDIS_URL = DEAD_REDIS
    started = time.monotonic()
    response = api.get(path)
    assert response.status_code == 503
    assert response.json() == {
        "code": "service_unavailable",
        "message": "A service this request depends on is unavailable for a moment; "
        "please retry in 5 seconds.",
    }
    assert response["Retry-After"] == "5"
    assert time.monotonic() - started < 3


def test_a_write_is_refused_the_same_way_and_moves_nothing(db, settings):
    account = open_account()
    api = client_for(key_issue([account]))
    settings.REDIS_URL = DEAD_REDIS
    response = api.post(
        "/v1/intelligence/execute",
        {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "100"},
        format="json",
    )
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert not account.orders.exists()


@pytest.fixture
def markets(db):
    yield from markets_open()


def test_a_page_that_needs_prices_answers_a_503_page(markets, client, settings):
    account = trader()
    buy(account, TRUMP, "100")
    signed_in(client, account.owner)
    settings.REDIS_URL = DEAD_REDIS
    response = client.get("/dashboard/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "Temporarily unavailable" in response.content.decode()
    assert "try again in 5 seconds" in response.content.decode()
