"""Liveness (`/health/`) and readiness (`/ready/`) of the product, for load balancers and ops.

`/health/` answers 200 whenever this web process serves requests: nothing it
depends on is asked, so a database or Redis outage never gets a healthy web
process restarted. `/ready/` asks what the product needs to do its job
(django-health-check runs the checks concurrently, each within its timeout):

- `database`: PostgreSQL (SQLite under `make run`) does not answer `SELECT 1`;
- `redis`: Redis does not answer PING;
- `marketdata`: the feed has not published for READY_FEED_MAX_AGE_SECONDS;
- `engine`: the margin engine (each shard's, when ENGINE_SHARDS > 1) has not
  beaten for READY_ENGINE_MAX_AGE_SECONDS, or has lost its tick subscription
  (it also shows how many accounts have margin calls deferred because their
  prices are stale);
- `worker`: no Celery worker has run the outbox dispatcher for
  READY_WORKER_MAX_AGE_SECONDS (beat, broker or workers down; it also shows
  how many outbox items are overdue).

The body is JSON, one entry per check with its status, message and what it
measured (`{"status": "ok" | "unavailable", "checks": {...}}`); any failure
answers 503 with Retry-After.
"""

import asyncio
import dataclasses
import datetime

import redis.asyncio
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.cache import add_never_cache_headers
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

from portal.heartbeats import Heartbeat, engine_heartbeats, heartbeat_read

RETRY_AFTER_SECONDS = 5
CHECK_TIMEOUT = datetime.timedelta(seconds=3)


def health(request: HttpRequest) -> JsonResponse:
    """Liveness: this process serves requests (nothing else is asked)."""
    response = JsonResponse({"status": "ok"})
    add_never_cache_headers(response)
    return response


def _redis_client() -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
    )


@dataclasses.dataclass
class _HeartbeatCheck(HealthCheck):
    """A process's heartbeat (portal.heartbeats) is younger than its limit."""

    name = ""
    label = ""
    max_age_setting = ""  # the settings name of the beat's age limit, in seconds
    timeout = CHECK_TIMEOUT

    def __post_init__(self) -> None:
        self.detail: dict = {}

    def judge(self, beat: Heartbeat) -> None:
        """Raise ServiceUnavailable if the beat, though fresh, says the process is not working."""

    def run(self) -> None:
        limit = getattr(settings, self.max_age_setting)
        self.detail["max_age_seconds"] = limit
        try:
            beat = heartbeat_read(self.name)
        except redis.RedisError as exc:
            raise ServiceUnavailable("Redis is unreachable: no heartbeat can be read.") from exc
        if beat is None:
            raise ServiceUnavailable(f"The {self.label} has not reported in the last hour.")
        age = beat.age()
        self.detail.update(beat.detail, age_seconds=round(age, 3))
        if age > limit:
            raise ServiceUnavailable(f"The {self.label} last reported {age:.0f} s ago.")
        self.judge(beat)


@dataclasses.dataclass
class MarketDataFeedCheck(_HeartbeatCheck):
    name = "marketdata"
    label = "market-data feed"
    max_age_setting = "READY_FEED_MAX_AGE_SECONDS"


@dataclasses.dataclass
class MarginEngineCheck(_HeartbeatCheck):
    name = "engine"
    label = "margin engine"
    max_age_setting = "READY_ENGINE_MAX_AGE_SECONDS"

    def judge(self, beat: Heartbeat) -> None:
        if not beat.detail.get("subscribed", True):
            raise ServiceUnavailable("The margin engine lost its tick subscription.")

    def run(self) -> None:
        """One heartbeat per shard when ENGINE_SHARDS > 1: every shard must be fresh
        and subscribed; the detail has each shard's own (`shards`)."""
        beats = engine_heartbeats()
        if len(beats) == 1:
            super().run()
            return
        self.detail["max_age_seconds"] = limit = settings.READY_ENGINE_MAX_AGE_SECONDS
        shards, failures = {}, []
        for name, label in beats:
            try:
                beat = heartbeat_read(name)
            except redis.RedisError as exc:
                raise ServiceUnavailable("Redis is unreachable: no heartbeat can be read.") from exc
            if beat is None:
                failures.append(f"{label} has not reported in the last hour")
                continue
            age = beat.age()
            shards[name] = {**beat.detail, "age_seconds": round(age, 3)}
            if age > limit:
                failures.append(f"{label} last reported {age:.0f} s ago")
            elif not beat.detail.get("subscribed", True):
                failures.append(f"{label} lost its tick subscription")
        self.detail["shards"] = shards
        self.detail["calls_deferred_stale"] = sum(
            int(beat.get("calls_deferred_stale", 0)) for beat in shards.values()
        )
        if failures:
            raise ServiceUnavailable("; ".join(failures) + ".")


@dataclasses.dataclass
class WorkerCheck(_HeartbeatCheck):
    name = "worker"
    label = "Celery worker (outbox dispatcher)"
    max_age_setting = "READY_WORKER_MAX_AGE_SECONDS"


CHECKS = {
    "database": (Database, {}),
    "redis": (Redis, {"client_factory": _redis_client}),
    "marketdata": (MarketDataFeedCheck, {}),
    "engine": (MarginEngineCheck, {}),
    "worker": (WorkerCheck, {}),
}


class ReadinessView(HealthCheckView):
    """`/ready/`: every check of CHECKS, as JSON (see the module docstring)."""

    checks = tuple(CHECKS.values())

    async def get(self, request, *args, **kwargs):
        with self.get_executor() as executor:
            self.results = await asyncio.gather(
                *(check.get_result(executor) for check in self.get_checks())
            )
        body = {}
        for name, result in zip(CHECKS, self.results, strict=True):
            entry = {
                "status": "ok" if result.error is None else "unavailable",
                "time_ms": round(result.time_taken * 1000, 1),
                **getattr(result.check, "detail", {}),
            }
            if result.error is not None:
                entry["message"] = result.error.message
            body[name] = entry
        ready = all(result.error is None for result in self.results)
        response = JsonResponse(
            {"status": "ok" if ready else "unavailable", "checks": body},
            status=200 if ready else 503,
        )
        if not ready:
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


ready = ReadinessView.as_view()
