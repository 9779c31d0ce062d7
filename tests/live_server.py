"""The ASGI app served by uvicorn in a subprocess, on the running test's database and
Redis prefix (for tests that need real HTTP and WebSockets: seed examples, browsers)."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
from django.conf import settings
from django.db import connection

from portal.net import uvicorn_proxy_argv


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def procfile_commands() -> dict[str, str]:
    """The Procfile's processes: name → shell command (as honcho runs them)."""
    lines = (Path(settings.BASE_DIR) / "Procfile").read_text().splitlines()
    return {
        name.strip(): command.strip()
        for name, _, command in (line.partition(":") for line in lines)
        if command
    }


@contextmanager
def asgi_server(
    *,
    margin_engine: bool = False,
    forwarded_allow_ips: str | None = None,
    procfile: bool = False,
    log: IO[bytes] | None = None,
    port: int | None = None,
) -> Iterator[str]:
    """Serve portal.asgi with uvicorn; yield its base URL. The test's data must be
    committed (transactional_db) for the server to see it. With `margin_engine`, the
    margin engine runs too (`run_margin_engine`): price ticks then reach pages. With
    `log`, the server's output (stdout and stderr) goes there.

    `forwarded_allow_ips`: the reverse proxies whose X-Forwarded-For the server believes
    (None: settings.FORWARDED_ALLOW_IPS, by default none). With `procfile`, the server
    is the Procfile's own `web` command, run by a shell as honcho runs it, with
    FORWARDED_ALLOW_IPS in its environment (None: the variable unset, as on a fresh
    deployment). `port`: serve on this one (a test restarting the server), else a free one."""
    database_url = live_database_url()
    port = port or _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_KEY_PREFIX": settings.KEY_PREFIX,
        "DB_CONN_MAX_AGE": "0",
    }
    if procfile:
        env |= {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(port),
        }
        env.pop("FORWARDED_ALLOW_IPS", None)
        if forwarded_allow_ips is not None:
            env["FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
        argv = ["/bin/sh", "-c", f"exec {procfile_commands()['web']}"]
    else:
        argv = [sys.executable, "-m", "uvicorn", "portal.asgi:application"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"]
        argv += ["--log-level", "warning", *uvicorn_proxy_argv(forwarded_allow_ips)]
    output = {} if log is None else {"stdout": log, "stderr": log}
    processes = [subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR, **output)]  # noqa: S603
    if margin_engine:
        engine = [sys.executable, "manage.py", "run_margin_engine"]
        processes.append(subprocess.Popen(engine, env=env, cwd=settings.BASE_DIR))  # noqa: S603
    server = processes[0]
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
                raise RuntimeError("the test server did not start")
            time.sleep(0.1)
        yield base
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def live_database_url() -> str:
    """DATABASE_URL of the test database, for the processes a test starts."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def python_run(code: str, env: dict[str, str], *, timeout: float = 120) -> str:
    """Run `code` in a fresh interpreter of ours (from the project's root) with `env`;
    its standard output. Fails the test, with the error output, if it does not exit 0."""
    done = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
