"""No venue call under a transaction (SPEC §6; ARCHITECTURE "Where logic lives" 2).

`tests/conftest.py` wraps every venue adapter's calls for the whole suite: a call
made while the calling thread's connection is inside a transaction that the code
under test opened (deeper than the test's own wrapping transaction) fails the
test. The adapters' calls are network round trips for real venues (and Redis
reads for the simulated one): none may hold an account lock or a pooled
connection while it waits.
"""

import threading

from django.db import connection

from trading.venues.base import VenueAdapter

# The adapter methods that reach a venue (or its stand-in's store).
VENUE_CALLS = (
    "quote",
    "order_book",
    "fill_market",
    "market_order_place",
    "order_status",
    "positions",
    "balance",
)


class VenueCallInTransaction(AssertionError):
    """A venue adapter was called inside a transaction of the code under test."""


class Guard:
    def __init__(self) -> None:
        self.main_thread: int | None = None
        self.baseline = 0  # the test's own atomic blocks, on the main thread

    def depth_allowed(self) -> int:
        return self.baseline if threading.get_ident() == self.main_thread else 0

    def check(self, adapter: VenueAdapter, name: str) -> None:
        if self.main_thread is None:
            return
        if len(connection.atomic_blocks) > self.depth_allowed():
            raise VenueCallInTransaction(
                f"{type(adapter).__name__}.{name} was called inside a transaction: "
                "reserve under the lock, commit, then call the venue."
            )


GUARD = Guard()


def _adapter_classes() -> list[type]:
    found, todo = [], [VenueAdapter]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _guarded(name: str, method):
    def call(self, *args, **kwargs):
        GUARD.check(self, name)
        return method(self, *args, **kwargs)

    call.venue_guarded = True
    return call


def venue_calls_guard() -> None:
    """Wrap every adapter class's own venue-call methods (idempotent)."""
    for cls in _adapter_classes():
        for name in VENUE_CALLS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "venue_guarded", False):
                setattr(cls, name, _guarded(name, method))
