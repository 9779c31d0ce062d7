"""A margin engine shard killed (-9): its standby takes the shard's lock within seconds,
and margin calls still open for that shard's accounts; the other shard never stops."""

import time

import pytest

from portal.heartbeats import heartbeat_read
from portal.shards import shard_of
from tests.fault_harness import PrivateRedis, Stack
from tests.trading.conftest import binary_create
from tests.trading.margining import LISTING, borrower, tick
from trading.models import MarginCall

pytestmark = pytest.mark.django_db(transaction=True)

SHARDS = 2
LOCK_TTL_SECONDS = 3  # the standby takes over within 4/3 of it after the holder dies
TAKEOVER_BOUND_SECONDS = 15  # the lock's TTL, the standby's next try, its first full sweep
ENGINE = "python manage.py run_margin_engine --shard-index {index}"
PROCESSES = {"shard-0": 0, "shard-1": 1, "shard-1-standby": 3}  # 3 mod 2: shard 1's standby


@pytest.fixture
def engines(settings):
    """(stack, {shard: [account ids]}): two borrowers in each of 2 shards, an engine per
    shard and a standby for shard 1, on a private Redis (no feed: the test ticks)."""
    settings.ENGINE_SHARDS = SHARDS
    trump = binary_create("TRUMP-WIN")
    with PrivateRedis() as redis_server:
        settings.REDIS_URL = redis_server.url
        tick(LISTING, bid="0.60")
        owned: dict[int, list[int]] = {0: [], 1: []}
        while min(len(ids) for ids in owned.values()) < 2:
            account = borrower(trump)
            owned[shard_of(account.pk, SHARDS)].append(account.pk)
        with Stack(
            redis_url=redis_server.url,
            ENGINE_SHARDS=str(SHARDS),
            ENGINE_LOCK_TTL_SECONDS=str(LOCK_TTL_SECONDS),
        ) as stack:
            for name, index in PROCESSES.items():
                stack.commands[name] = ENGINE.format(index=index)
            yield stack, owned


def open_calls(account_ids: list[int]) -> set[int]:
    return set(
        MarginCall.objects.filter(
            account_id__in=account_ids, status=MarginCall.Status.OPEN
        ).values_list("account_id", flat=True)
    )


def test_a_killed_shard_is_taken_over_and_its_calls_still_open(engines):
    stack, owned = engines
    stack.start("shard-0", "shard-1")
    for index in range(SHARDS):
        stack.wait_until(
            lambda index=index: heartbeat_read(f"engine-{index}"),
            timeout=60,
            what=f"shard {index} beats",
        )
    stack.start("shard-1-standby")  # shard 1's lock is held: it stands by
    stack.wait_until(
        lambda: "standing by" in stack.log("shard-1-standby"),
        timeout=60,
        what="the second shard-1 engine stands by",
    )

    # Both shards hear the tick; each opens its own accounts' calls.
    tick(LISTING, bid="0.15")
    stack.wait_until(
        lambda: open_calls(owned[0] + owned[1]) == set(owned[0] + owned[1]),
        timeout=30,
        what="margin calls open in both shards",
    )
    tick(LISTING, bid="0.60")
    stack.wait_until(
        lambda: not open_calls(owned[0] + owned[1]), timeout=30, what="the calls resolved"
    )

    stack.kill("shard-1")  # -9: no release, its lock expires
    killed_at = time.monotonic()
    tick(LISTING, bid="0.15")
    stack.wait_until(
        lambda: open_calls(owned[0]) == set(owned[0]),
        timeout=30,
        what="shard 0 opens its calls meanwhile",
    )
    stack.wait_until(
        lambda: open_calls(owned[1]) == set(owned[1]),
        timeout=TAKEOVER_BOUND_SECONDS,
        what="shard 1's standby takes over and opens its accounts' calls",
    )
    took = time.monotonic() - killed_at
    assert took < TAKEOVER_BOUND_SECONDS
    assert "holds its lock; running" in stack.log("shard-1-standby")
    assert stack.alive("shard-0") and stack.alive("shard-1-standby")
    # A later tick reaches the new holder too: calls resolve in both shards.
    tick(LISTING, bid="0.60")
    stack.wait_until(
        lambda: not open_calls(owned[0] + owned[1]),
        timeout=30,
        what="both shards resolve after the hand-over",
    )
    beat = heartbeat_read("engine-1")
    assert beat is not None and beat.detail["subscribed"] and beat.age() < 5
