"""One feed, one margin engine per Redis: the renewed singleton lock."""

import time

import pytest

from portal.redis import AlreadyRunning, redis_client, redis_key, singleton_lock


def test_lock_is_renewed_past_its_ttl_and_released_on_exit():
    with singleton_lock("test-process", ttl=0.6):
        time.sleep(1.5)  # longer than the ttl: only renewal keeps it
        with (
            pytest.raises(AlreadyRunning, match="Another test-process"),
            singleton_lock("test-process", ttl=0.6),
        ):
            pass
    with singleton_lock("test-process", ttl=0.6):
        pass


def test_losing_the_lock_tells_the_holder():
    lost = []
    with singleton_lock("test-losing", ttl=0.6, on_lost=lambda: lost.append(True)):
        redis_client().delete(redis_key("lock", "test-losing"))
        deadline = time.monotonic() + 3
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
    assert lost == [True]
