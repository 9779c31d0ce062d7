"""Celery beat with leader election: any number of beat processes, one schedules.

`LeaderScheduler` is django-celery-beat's DatabaseScheduler that sends due tasks
only while it holds the Redis lock `<prefix>:lock:celery beat`
(`portal.redis.Leadership`, as the feed and the margin engine do). A second beat
process stands by: its `tick` sends nothing and asks to be called again in
STANDBY_TICK_SECONDS; when the holder dies its lock expires (LEADER_LOCK_TTL_SECONDS)
and the standby takes it at its next renewal turn (every ttl/3), re-reads the
schedule from the database (where the holder saves an entry's last run right
after sending it, not every 3 minutes as DatabaseScheduler does) and carries on.
A holder that stops cleanly (SIGTERM) releases the lock at once.

What a hand-over can cost: an entry the old holder sent but died before saving
(a window of milliseconds) is sent again. Periodic tasks are idempotent (by key
or by state), so that would be repeated work, not wrong books.

Used by the Procfile's `beat` line (`--scheduler portal.beat:LeaderScheduler`)
and CELERY_BEAT_SCHEDULER.
"""

import logging

from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

from portal.redis import Leadership

logger = logging.getLogger(__name__)

LOCK_NAME = "celery beat"
STANDBY_TICK_SECONDS = 1.0  # how often a standby's tick looks whether it now leads


class LeaderScheduler(DatabaseScheduler):
    """DatabaseScheduler that sends due tasks only while holding the beat lock."""

    _leadership: Leadership | None = None
    _changes_seen = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sync_every_tasks = 1  # save each entry's last run as soon as it is sent

    @property
    def leads(self) -> bool:
        """Whether this scheduler holds the lock (taken on its first tick)."""
        return self._leadership is not None and self._leadership.held

    def tick(self, *args, **kwargs) -> float:
        # The lock is taken on the first tick, not in __init__: `celery beat` also builds
        # a lazy scheduler just to print its banner, which must not contend for it.
        if self._leadership is None:
            leadership = Leadership(LOCK_NAME, ttl=settings.LEADER_LOCK_TTL_SECONDS)
            self._leadership = leadership.__enter__()
        if not self._leadership.held:
            return min(STANDBY_TICK_SECONDS, self.max_interval)
        if self._leadership.changes != self._changes_seen:
            self._changes_seen = self._leadership.changes
            self._reload()
        return super().tick(*args, **kwargs)

    def _reload(self) -> None:
        """Just became the holder: save what this process sent, then take every entry's
        last run from the database (another holder may have sent it since)."""
        logger.info("celery beat: leads; reading the schedule from the database")
        self.sync()
        self._schedule = self.all_as_schedule()
        self._heap = None  # rebuilt from the new entries on this tick

    def close(self) -> None:
        """Save the entries while still the holder, then release the lock."""
        try:
            super().close()
        finally:
            if self._leadership is not None:
                self._leadership.__exit__(None, None, None)
                self._leadership = None
