"""What every benchmark needs around its run: its own PostgreSQL database and Redis keys."""

import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg


def database_recreate(url: str) -> str:
    """Drop and create the benchmark database named by `url`; return its name.

    Refuses any database whose name does not start with "bench".
    """
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("bench"):
        sys.exit(f"Refusing to drop database {name!r}: DATABASE_URL must name a bench* database.")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def database_drop(url: str, name: str) -> None:
    from django.db import connections

    connections.close_all()
    maintenance = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_keys_delete() -> None:
    """Delete every Redis key under this run's prefix."""
    from django.conf import settings

    from portal.redis import redis_client

    client = redis_client()
    for key in client.scan_iter(match=f"{settings.KEY_PREFIX}*", count=1000):
        client.delete(key)
