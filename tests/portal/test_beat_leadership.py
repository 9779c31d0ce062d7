"""Celery beat with leader election (portal.beat.LeaderScheduler): of two schedulers on
one Redis only the lock holder sends due tasks; the standby takes over when the
holder's lock expires (it died) or is released (it stopped)."""

import time

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from portal import beat
from portal.beat import LeaderScheduler
from portal.celery import app as celery_app
from portal.redis import redis_client, redis_key

# The scheduler commits and closes connections as django-celery-beat does.
pytestmark = pytest.mark.django_db(transaction=True)

TTL = 0.6
ENTRY = "beat leadership test"


CREATED: list[LeaderScheduler] = []


@pytest.fixture(autouse=True)
def quick(monkeypatch, settings):
    settings.LEADER_LOCK_TTL_SECONDS = TTL
    monkeypatch.setattr(beat, "STANDBY_TICK_SECONDS", 0.05)
    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name=ENTRY, task="portal.beat_test_noop", interval=every_second)
    yield
    while CREATED:  # no save at interpreter exit, when the test database is gone
        CREATED.pop()._finalize.cancel()
    redis_client().delete(redis_key("lock", beat.LOCK_NAME))


class Recording:
    """A LeaderScheduler whose sends are recorded instead of published."""

    def __init__(self, name: str, sent: list[str]):
        self.scheduler = LeaderScheduler(app=celery_app)
        CREATED.append(self.scheduler)
        self.scheduler.__dict__["producer"] = None  # no broker connection

        def apply_entry(entry, producer=None) -> None:
            if entry.name == ENTRY:
                sent.append(name)

        self.scheduler.apply_entry = apply_entry


def tick_for(seconds: float, *schedulers: Recording) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for recording in schedulers:
            recording.scheduler.tick()
        time.sleep(0.02)


def test_only_the_holder_sends_and_the_standby_takes_over_when_its_lock_expires():
    sent: list[str] = []
    first, second = Recording("first", sent), Recording("second", sent)
    try:
        tick_for(2.5, first, second)
        assert first.scheduler.leads and not second.scheduler.leads
        assert sent and set(sent) == {"first"}  # due every second: sent, once per due time
        assert len(sent) <= 3

        # The holder dies: its renewal thread stops and it ticks no more; its lock
        # expires after the ttl and the standby takes it on a renewal turn.
        leadership = first.scheduler._leadership
        leadership._stop.set()
        leadership._thread.join()
        sent.clear()
        started = time.monotonic()
        while not second.scheduler.leads and time.monotonic() - started < 5:
            tick_for(0.05, second)
        assert second.scheduler.leads
        assert time.monotonic() - started < TTL + TTL / 3 + 1.0
        tick_for(2.0, second)
        assert sent and set(sent) == {"second"}
    finally:
        second.scheduler.close()


def test_a_holder_that_stops_releases_the_lock_to_the_standby_at_once(settings):
    # A longer lock here: the standby's next turn (a third of it) comes well before the
    # lock could expire, so taking over by then means it was released.
    settings.LEADER_LOCK_TTL_SECONDS = ttl = 3.0
    sent: list[str] = []
    first, second = Recording("first", sent), Recording("second", sent)
    try:
        tick_for(0.2, first, second)
        assert first.scheduler.leads and not second.scheduler.leads
        first.scheduler.close()  # saves its entries, then releases the lock
        assert not first.scheduler.leads
        started = time.monotonic()
        while not second.scheduler.leads and time.monotonic() - started < 2 * ttl:
            tick_for(0.05, second)
        assert second.scheduler.leads
        assert time.monotonic() - started < ttl * 5 / 6  # its turn, not the lock's expiry
        sent.clear()
        tick_for(1.5, second)
        assert set(sent) == {"second"}
    finally:
        second.scheduler.close()


def test_a_lazy_scheduler_never_contends_for_the_lock():
    # `celery beat` builds a lazy scheduler for its banner; it must not take the lock.
    CREATED.append(LeaderScheduler(app=celery_app, lazy=True))
    assert not redis_client().exists(redis_key("lock", beat.LOCK_NAME))
