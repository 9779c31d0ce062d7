"""Helpers for the long-running processes of the Procfile (web, feed, margin engine)."""

import gc
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call `stop` on SIGINT or SIGTERM while the block runs; restore the handlers after."""
    previous = {
        signum: signal.signal(signum, lambda *_: stop())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def startup_objects_freeze() -> None:
    """Take what the process built while starting (modules, settings, the app registry,
    URL patterns: ~200,000 objects in a web worker) out of the garbage collector's
    sight for good (`gc.freeze`), after one last collection. They live as long as the
    process anyway, and every full collection walked them all: 120–240 ms stalls on 2
    busy CPUs, in the middle of a tick's fan-out (bench/ws_fanout.py). Call once, when
    start-up is done."""
    gc.collect()
    gc.freeze()
