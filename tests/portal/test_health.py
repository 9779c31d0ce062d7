"""`/health/` (liveness) and `/ready/` (readiness, one JSON entry per check)."""

import time

import pytest
from django.test import Client

from portal.heartbeats import heartbeat_beat, heartbeat_key
from portal.redis import redis_client

pytestmark = pytest.mark.django_db


def beat_all(**engine) -> None:
    heartbeat_beat("marketdata", listings=3, interval=1.0)
    heartbeat_beat("engine", subscribed=True, accounts=2, **engine)
    heartbeat_beat("worker", outbox={"unfinished": 0, "failing": 0, "stuck": 0})


@pytest.fixture(autouse=True)
def _no_heartbeats():
    for name in ("marketdata", "engine", "worker"):
        redis_client().delete(heartbeat_key(name))


def test_liveness_asks_nothing_else():
    response = Client().get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_ready_when_every_part_works():
    beat_all()
    response = Client().get("/ready/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "marketdata", "engine", "worker"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert body["checks"]["marketdata"]["age_seconds"] < 5
    assert body["checks"]["worker"]["outbox"] == {"unfinished": 0, "failing": 0, "stuck": 0}


def test_a_silent_feed_makes_the_product_not_ready(settings):
    beat_all()
    settings.READY_FEED_MAX_AGE_SECONDS = 0.2
    time.sleep(0.4)
    heartbeat_beat("engine", subscribed=True)
    heartbeat_beat("worker", outbox={})
    response = Client().get("/ready/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    feed = response.json()["checks"]["marketdata"]
    assert feed["status"] == "unavailable"
    assert feed["message"].startswith("The market-data feed last reported")
    assert response.json()["checks"]["engine"]["status"] == "ok"


def test_a_process_that_never_reported_and_an_engine_without_ticks_are_named():
    heartbeat_beat("marketdata")
    heartbeat_beat("engine", subscribed=False)
    body = Client().get("/ready/").json()
    assert body["status"] == "unavailable"
    assert body["checks"]["engine"]["message"] == "The margin engine lost its tick subscription."
    assert body["checks"]["worker"]["message"] == (
        "The Celery worker (outbox dispatcher) has not reported in the last hour."
    )


def test_a_redis_outage_is_a_503_naming_redis_not_a_500(settings):
    beat_all()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = Client().get("/ready/")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["status"] == "unavailable"
    assert checks["database"]["status"] == "ok"
    assert checks["marketdata"]["message"] == "Redis is unreachable: no heartbeat can be read."
    assert Client().get("/health/").status_code == 200
