"""portal.processes: what the long-running processes do once started."""

import gc
import weakref

from portal.processes import startup_objects_freeze


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_start_up_objects_are_frozen_and_later_garbage_is_still_collected():
    kept = Node()  # built "at start-up": alive when the process freezes
    try:
        startup_objects_freeze()
        assert gc.get_freeze_count() > 0
        assert not any(obj is kept for obj in gc.get_objects())  # out of every collection
        first, second = Node(), Node()  # a cycle made afterwards, then dropped
        first.other, second.other = second, first
        gone = weakref.ref(first)
        del first, second
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()  # the test process goes on as before


def test_a_celery_pool_process_freezes_once_started():
    from celery.signals import worker_process_init

    try:
        worker_process_init.send(sender=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
