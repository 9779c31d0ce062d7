#!/usr/bin/env python
"""Container health check for every role of the image (Dockerfile HEALTHCHECK,
deploy/compose.yaml, the exec probes in deploy/k8s/).

    healthcheck.py [ROLE] [--live]

- web: GET /ready/ on this container's uvicorn (with --live: /health/, which
  asks nothing else). 200 is healthy.
- feed, engine, worker: the heartbeat of that kind of process in Redis
  (portal.heartbeats: `<REDIS_KEY_PREFIX>:heartbeat:<name>`) is younger than
  the same limits /ready/ uses (READY_*_MAX_AGE_SECONDS); the engine's must
  also say it holds its tick subscription (with ENGINE_SHARDS > 1: the heartbeat
  of its shard, `engine-<ENGINE_SHARD_INDEX mod ENGINE_SHARDS>`).
- beat: beat has no heartbeat of its own; the workers' heartbeat comes from
  the outbox dispatcher, which only beat schedules, so a fresh one shows beat
  is scheduling.

A heartbeat belongs to a kind, not to one process: with a standby feed or
engine (leader election through portal.redis.Leadership), the standby is
healthy while the leader beats, which is what matters for the role.

--live is for liveness probes, where a failure restarts the container: a
dependency being down (Redis unreachable, web not answering Redis) is not a
reason to restart this process, so only a fresh answer that the process kind
is stuck counts as failure, with a limit LIVE_FACTOR times the readiness one.

No Django: it runs every few seconds, so it starts in ~100 ms from the
environment alone (REDIS_URL, REDIS_KEY_PREFIX, WEB_PORT, DJANGO_ALLOWED_HOSTS).
Exit 0 healthy, 1 not, with one line saying why.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROLES = ("web", "worker", "beat", "feed", "engine")
ALIASES = {"marketdata": "feed", "risk": "engine"}
# role -> (heartbeat name, settings/env name of its age limit, its default: portal/settings/base.py)
HEARTBEATS = {
    "feed": ("marketdata", "READY_FEED_MAX_AGE_SECONDS", 10.0),
    "engine": ("engine", "READY_ENGINE_MAX_AGE_SECONDS", 15.0),
    "worker": ("worker", "READY_WORKER_MAX_AGE_SECONDS", 60.0),
    "beat": ("worker", "READY_WORKER_MAX_AGE_SECONDS", 60.0),
}
LIVE_FACTOR = 4.0
TIMEOUT_SECONDS = 4.0


def role_of_container() -> str:
    """The role this container runs: PORTAL_ROLE, else the command PID 1 (tini) started."""
    role = os.environ.get("PORTAL_ROLE", "")
    if not role:
        try:
            argv = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
        except OSError:
            argv = []
        role = next((arg for arg in argv if arg in ROLES or arg in ALIASES), "web")
    return ALIASES.get(role, role)


def probe_host() -> str:
    """A Host header Django accepts: the first non-wildcard DJANGO_ALLOWED_HOSTS entry."""
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(","):
        host = host.strip().lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def check_web(*, live: bool) -> tuple[bool, str]:
    path = "/health/" if live else "/ready/"
    port = os.environ.get("WEB_PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        headers={"Host": probe_host(), "X-Forwarded-Proto": "https"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status == 200, f"{path} answered {response.status}"
    except urllib.error.HTTPError as exc:
        body = exc.read(300).decode(errors="replace")
        return False, f"{path} answered {exc.code}: {body}"
    except OSError as exc:
        return False, f"{path} did not answer: {exc}"


def check_heartbeat(role: str, *, live: bool) -> tuple[bool, str]:
    import redis

    name, limit_env, default = HEARTBEATS[role]
    shards = int(os.environ.get("ENGINE_SHARDS", "1"))
    if role == "engine" and shards > 1:  # this container's shard (portal.heartbeats)
        name = f"engine-{int(os.environ.get('ENGINE_SHARD_INDEX', '0')) % shards}"
    limit = float(os.environ.get(limit_env, default)) * (LIVE_FACTOR if live else 1.0)
    prefix = os.environ.get("REDIS_KEY_PREFIX", "portal")
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT_SECONDS / 2, socket_timeout=TIMEOUT_SECONDS / 2
        )
        raw = client.get(f"{prefix}:heartbeat:{name}")
    except redis.RedisError as exc:
        # Liveness: Redis being down is no reason to restart this process.
        return live, f"Redis unreachable, heartbeat {name!r} not read: {exc}"
    if raw is None:
        return False, f"no heartbeat {name!r} in the last hour"
    beat = json.loads(raw)
    age = max(0.0, time.time() - float(beat["at"]))
    if age > limit:
        return False, f"heartbeat {name!r} is {age:.0f} s old (limit {limit:g} s)"
    if role == "engine" and not beat.get("subscribed", True):
        return False, "the margin engine lost its tick subscription"
    return True, f"heartbeat {name!r} is {age:.1f} s old"


def main(argv: list[str]) -> int:
    live = "--live" in argv
    args = [arg for arg in argv if arg != "--live"]
    role = ALIASES.get(args[0], args[0]) if args else role_of_container()
    if role not in ROLES:
        print(f"healthcheck: unknown role {role!r}; one of {', '.join(ROLES)}")  # noqa: T201
        return 2
    healthy, why = check_web(live=live) if role == "web" else check_heartbeat(role, live=live)
    print(f"{role}: {'healthy' if healthy else 'unhealthy'}: {why}")  # noqa: T201
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
