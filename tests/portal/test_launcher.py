"""make run's building blocks: a private Redis when none runs, clear service errors."""

import redis

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
