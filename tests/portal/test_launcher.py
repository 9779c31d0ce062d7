"""make run's building blocks: a private Redis when none runs, clear service errors."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from queue import Empty, Queue

import pytest
import redis
from django.conf import settings

from portal import launcher, services_check


def test_private_redis_starts_answers_and_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "VAR_DIR", tmp_path)
    process, url = launcher.start_private_redis()
    try:
        client = redis.Redis.from_url(url)
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert url.startswith("redis://127.0.0.1:")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert not services_check.redis_answers(url, timeout=0.2)


def test_services_check_names_what_is_missing(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/portal")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert services_check.main() == 2
    err = capsys.readouterr().err
    assert "PostgreSQL is not reachable at postgres://postgres@127.0.0.1:1/portal" in err
    assert "Redis is not reachable at redis://127.0.0.1:1/0" in err
    assert "DATABASE_URL=" in err and "REDIS_URL=" in err


def test_services_check_passes_on_this_machine(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert services_check.main() == 0


# --- Stopping `make run` by a signal ----------------------------------------------------

# The launcher's main with a fast fake of its set-up steps and a Procfile of one sleeper
# process (the real steps migrate and load demo data: slow, and not what is tested).
FAKE_MAIN = """
import sys
from pathlib import Path
from portal import launcher
launcher.VAR_DIR = Path(sys.argv[1])
launcher.PROCFILE = Path(sys.argv[2])
launcher._manage = lambda env, *args: None
sys.exit(launcher.main())
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def launch(tmp_path):
    """Start the fake launcher (`launch(procfile)` → process, output queue), forced to
    start a private Redis (PRIVATE_REDIS, although this machine's Redis answers on 6379).
    Whatever a failing test leaves running (`pids`) is stopped at the end."""
    started: list[subprocess.Popen] = []
    pids: list[int] = []

    def start(procfile: str) -> tuple[subprocess.Popen, Queue]:
        (tmp_path / "Procfile").write_text(procfile)
        drop = ("REDIS_URL", "FORWARDED_ALLOW_IPS")
        env = {name: value for name, value in os.environ.items() if name not in drop}
        env |= {"PRIVATE_REDIS": "1", "WEB_PORT": str(free_port()), "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(  # noqa: S603 (our interpreter, our code)
            [sys.executable, "-c", FAKE_MAIN, str(tmp_path), str(tmp_path / "Procfile")],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(process)
        lines: Queue = Queue()

        def pump() -> None:
            for line in process.stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        return process, lines

    start.pids = pids
    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def wait_for(lines: Queue, pattern: str, seen: list[str]) -> re.Match:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except Empty:
            continue
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


REDIS_LINE = r"private Redis at redis://127\.0\.0\.1:(\d+)/0 \(pid (\d+)\)"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_stops_the_processes_and_then_the_private_redis(launch, signum):
    """Sent to the launcher alone (a service manager, `timeout`, a closed terminal), not to
    its process group as a terminal's Ctrl-C would be."""
    launcher_process, lines = launch("sleeper: exec python -c 'import time; time.sleep(600)'\n")
    seen: list[str] = []
    redis = wait_for(lines, REDIS_LINE, seen)
    port, redis_pid = int(redis.group(1)), int(redis.group(2))
    launch.pids.append(redis_pid)
    sleeper_pid = int(wait_for(lines, r"sleeper\.1 started \(pid=(\d+)\)", seen).group(1))
    launch.pids.append(sleeper_pid)
    assert services_check.redis_answers(f"redis://127.0.0.1:{port}/0")
    launcher_process.send_signal(signum)
    assert launcher_process.wait(timeout=15) == 0
    assert not alive(sleeper_pid)
    assert not alive(redis_pid)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass


def test_a_process_that_fails_stops_everything_with_its_exit_code(launch):
    launcher_process, lines = launch(
        "crasher: exec python -c 'import time, sys; time.sleep(1); sys.exit(3)'\n"
    )
    redis_pid = int(wait_for(lines, REDIS_LINE, []).group(2))
    launch.pids.append(redis_pid)
    assert launcher_process.wait(timeout=15) == 3
    assert not alive(redis_pid)
