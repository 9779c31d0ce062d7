"""Fixtures for the /v1 API: keys issued through the real service, and a client."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import httpx
import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Account, ApiKey, User
from accounts.services.api_keys import api_key_issue
from tests.factories import StaffFactory, open_account

ALL_SCOPES = tuple(ApiKey.Scope.values)


def key_issue(
    accounts: Sequence[Account],
    *,
    scopes: Sequence[str] = ALL_SCOPES,
    ip_allowlist: Sequence[str] = (),
    signing_public_key: str = "",
) -> str:
    """A key for `accounts` (all of one owner, KYB-approved here); returns the full key."""
    owner = accounts[0].owner
    if owner.kyb_status != User.KybStatus.APPROVED:
        owner.kyb_status = User.KybStatus.APPROVED
        owner.save(update_fields=["kyb_status"])
    return api_key_issue(
        owner=owner,
        accounts=list(accounts),
        scopes=scopes,
        name="test key",
        actor=StaffFactory(),
        ip_allowlist=ip_allowlist,
        signing_public_key=signing_public_key,
    ).key


def client_for(key: str | None) -> APIClient:
    """An API client that sends `key` as the bearer token (none: unauthenticated)."""
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def api_account(db) -> Account:
    """A custodial account of a KYB-approved owner."""
    return open_account(kind=Account.Kind.CUSTODIAL)


@pytest.fixture
def api_key(api_account) -> str:
    return key_issue([api_account])


@pytest.fixture
def api(api_key) -> APIClient:
    """A client authenticated with a key (all scopes) for `api_account`."""
    return client_for(api_key)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def api_server(transactional_db, settings) -> Iterator[str]:
    """The ASGI app served by uvicorn in a subprocess, on this test's database and Redis
    prefix; yields its base URL. Data must be committed (transactional_db) to be seen."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    database_url = (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_KEY_PREFIX": settings.KEY_PREFIX,
        "DB_CONN_MAX_AGE": "0",
    }
    argv = [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--lifespan", "off", "--log-level", "warning"]
    server = subprocess.Popen(  # noqa: S603 (our own interpreter, fixed arguments)
        argv,
        env=env,
        cwd=settings.BASE_DIR,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)
