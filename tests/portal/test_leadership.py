"""One feed, one margin engine per Redis: the role (`Leadership`), kept through outages."""

import threading
import time

from portal.redis import Leadership, redis_client, redis_key


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_the_role_is_renewed_past_its_ttl_and_released_on_exit():
    with Leadership("test-process", ttl=0.6) as first:
        assert first.held
        time.sleep(1.5)  # longer than the ttl: only renewal keeps it
        with Leadership("test-process", ttl=0.6) as second:
            time.sleep(0.5)
            assert first.held and not second.held  # standing by, not running
    with Leadership("test-process", ttl=0.6) as third:
        assert third.held


def test_a_second_one_stands_by_and_takes_over_when_the_first_stops():
    stop_first = threading.Event()

    def first_process() -> None:
        with Leadership("test-takeover", ttl=0.6):
            stop_first.wait(5)

    thread = threading.Thread(target=first_process)
    thread.start()
    assert wait_until(lambda: redis_client().exists(redis_key("lock", "test-takeover")))
    with Leadership("test-takeover", ttl=0.6) as second:
        assert not second.held
        stop_first.set()
        thread.join()
        assert second.wait(2.0)  # within about a third of the ttl


def test_a_lock_redis_forgot_is_taken_again_at_once():
    with Leadership("test-forgotten", ttl=0.6) as leader:
        changes = leader.changes
        redis_client().delete(redis_key("lock", "test-forgotten"))  # a restart without data
        assert wait_until(lambda: leader.changes >= changes + 2)  # lost, then taken again
        assert leader.held
        assert redis_client().exists(redis_key("lock", "test-forgotten"))


def test_losing_the_lock_to_another_live_holder_means_standing_by():
    key = redis_key("lock", "test-usurped")
    with Leadership("test-usurped", ttl=0.6) as leader:
        redis_client().set(key, "another-process-token", px=60_000)
        assert wait_until(lambda: not leader.held)
        time.sleep(0.5)
        assert not leader.held  # it does not fight a live holder
        redis_client().delete(key)  # that one stopped
        assert leader.wait(2.0)
