"""Reachability of the services a command needs, with advice when one is missing.

`python -m portal.services_check` (run by `make test`) exits 2 with a plain
explanation when PostgreSQL or Redis cannot be reached.
"""

import os
import socket
import sys
from urllib.parse import urlparse

TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal"
TEST_REDIS_URL = "redis://127.0.0.1:6379/15"


def tcp_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server at `url` answers PING."""
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def postgres_problem(url: str) -> str | None:
    import psycopg

    parsed = urlparse(url)
    try:
        psycopg.connect(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def main() -> int:
    database_url = os.environ.get("DATABASE_URL", TEST_DATABASE_URL)
    redis_url = os.environ.get("REDIS_URL", TEST_REDIS_URL)
    missing = []
    problem = postgres_problem(database_url)
    if problem:
        missing.append(
            f"PostgreSQL is not reachable at {database_url} ({problem}).\n"
            "  The tests need a real PostgreSQL server whose user may create databases.\n"
            "  Start the local one (e.g. `pg_ctlcluster 15 main start`) or point\n"
            "  DATABASE_URL at one: DATABASE_URL=postgres://USER:PASS@HOST:5432/portal make test"
        )
    if not redis_answers(redis_url):
        missing.append(
            f"Redis is not reachable at {redis_url}.\n"
            "  The tests need a real Redis server (cache, throttles, channel layer).\n"
            "  Start one (e.g. `redis-server --daemonize yes --port 6379`) or point\n"
            "  REDIS_URL at one: REDIS_URL=redis://HOST:6379/15 make test"
        )
    if missing:
        print("Cannot run the test suite:\n\n" + "\n\n".join(missing), file=sys.stderr)  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
