"""Margin engine shards (portal.shards, trading.engine): a stable, complete partition of
accounts; every shard hears every tick and acts for its own accounts only; N=1 as before."""

import threading
import time

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Account
from accounts.services.ledger import accounts_changed_key, accounts_changed_mark
from portal.health import MarginEngineCheck
from portal.heartbeats import engine_heartbeat_name, heartbeat_beat, heartbeat_key, heartbeat_read
from portal.redis import Leadership, redis_client, redis_key
from portal.shards import Shard, shard_of, shards_of
from tests.trading.margining import borrower, capture_outbox_sends, margin_keys_clear, tick
from trading.engine import MarginEngine, margin_sweep_full
from trading.models import MarginCall
from trading.services.margin_book import accounts_changed_pop

pytestmark = pytest.mark.django_db


def _keys_clear() -> None:
    client = redis_client()
    client.delete(*(accounts_changed_key(i) for i in range(4)), redis_key("accounts", "changed"))
    client.delete(heartbeat_key("engine"), *(heartbeat_key(f"engine-{i}") for i in range(4)))


@pytest.fixture(autouse=True)
def _clean(quote_store, monkeypatch):
    margin_keys_clear()
    _keys_clear()  # heartbeats other tests' engines left
    capture_outbox_sends(monkeypatch)
    yield
    _keys_clear()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def two_shards(settings):
    settings.ENGINE_SHARDS = 2
    return 2


def borrowers_in_each_shard(instrument, count: int, per_shard: int = 2) -> dict[int, list[int]]:
    """Borrowers until every shard of `count` has `per_shard` of them: {shard: [ids]}
    (a shard may get more: the account ids, and so their shards, come from the
    database's sequence, which earlier tests moved)."""
    owned: dict[int, list[int]] = {index: [] for index in range(count)}
    while min(len(ids) for ids in owned.values()) < per_shard:
        account = borrower(instrument)
        owned[shard_of(account.pk, count)].append(account.pk)
    return owned


# --- The partition ------------------------------------------------------------------


def test_the_partition_is_stable_and_complete():
    # Pinned: a change of the hash would move every account between shards.
    assert [shard_of(account_id, 4) for account_id in range(1, 13)] == [
        3, 2, 2, 1, 1, 0, 0, 3, 3, 2, 2, 1,
    ]  # fmt: skip
    ids = np.arange(1, 200_001, dtype=np.int64)
    for count in (1, 2, 3, 4, 7):
        shards = shards_of(ids, count)
        assert shards.min() >= 0 and shards.max() < count
        assert [shard_of(int(i), count) for i in ids[:500]] == shards[:500].tolist()
        masks = [Shard(index, count).mask(ids) for index in range(count)]
        assert (np.sum(masks, axis=0) == 1).all()  # every account in exactly one shard
        sizes = np.bincount(shards, minlength=count)
        assert sizes.min() > 0.95 * ids.size / count  # balanced on consecutive ids
    huge = 2**62 + 12345  # beyond the fold: still a shard, same in Python and NumPy
    assert shard_of(huge, 4) == int(shards_of(np.array([huge]), 4)[0])


def test_the_sql_filter_agrees_with_python(markets):
    accounts = [borrower(markets.trump).pk for _ in range(12)]
    everything = set(Account.objects.values_list("pk", flat=True))
    assert set(accounts) <= everything
    seen: list[int] = []
    for index in range(3):
        shard = Shard(index, 3)
        ids = list(shard.filter(Account.objects.all()).values_list("pk", flat=True))
        assert all(shard.owns(pk) for pk in ids)
        seen += ids
    assert sorted(seen) == sorted(everything)  # complete, and no account twice


def test_a_shard_index_is_checked_and_standbys_wrap(settings):
    settings.ENGINE_SHARDS = 3
    settings.ENGINE_SHARD_INDEX = 1
    assert Shard.configured() == Shard(1, 3)
    assert Shard.configured(4) == Shard(1, 3)  # pod 4 of a StatefulSet of 6: shard 1's standby
    with pytest.raises(ValueError):
        Shard.configured(-1)
    with pytest.raises(ValueError):
        Shard(3, 3)


# --- One shard is exactly as before ----------------------------------------------------


def test_one_shard_is_the_engine_of_old(markets, committed):
    assert Shard.configured() == Shard() and Shard().whole
    queryset = Account.objects.all()
    assert Shard().filter(queryset) is queryset  # nothing filtered
    assert accounts_changed_key() == redis_key("accounts", "changed")
    engine = MarginEngine()
    assert engine.lock_name == "margin engine" and engine.lock_ttl == 30.0
    assert engine_heartbeat_name() == "engine"
    tick(bid="0.60")
    account = borrower(markets.trump)
    with committed():
        engine.sweep()
        engine.process_batch(tick(bid="0.15"))
    assert MarginCall.objects.get().account_id == account.pk
    engine._beat()
    beat = heartbeat_read("engine")
    assert beat.detail["shard"] == 0 and beat.detail["shards"] == 1


# --- Shards ---------------------------------------------------------------------------


def test_changed_accounts_are_marked_in_their_shard(two_shards):
    ids = list(range(100, 140))
    accounts_changed_mark(account_ids=ids)
    taken = [accounts_changed_pop(index) for index in range(2)]
    assert sorted(taken[0] + taken[1]) == ids
    for index in range(2):
        assert taken[index] and all(shard_of(pk, 2) == index for pk in taken[index])
    assert redis_client().scard(redis_key("accounts", "changed")) == 0


def test_each_shard_opens_margin_calls_for_its_accounts_only(markets, committed, two_shards):
    tick(bid="0.60")
    owned = borrowers_in_each_shard(markets.trump, 2)
    engines = [MarginEngine(shard=Shard(index, 2)) for index in range(2)]
    with committed():
        for engine in engines:
            engine.sweep()
    for index, engine in enumerate(engines):
        assert sorted(engine.book.account_ids.tolist()) == sorted(
            pk for pk in Account.objects.values_list("pk", flat=True) if shard_of(pk, 2) == index
        )

    batch = tick(bid="0.15")
    with committed():
        engines[0].process_batch(batch)
    assert sorted(MarginCall.objects.values_list("account_id", flat=True)) == sorted(owned[0])
    assert engines[0].stats.calls_opened == len(owned[0])
    with committed():
        engines[1].process_batch(batch)
    assert sorted(MarginCall.objects.values_list("account_id", flat=True)) == sorted(
        owned[0] + owned[1]
    )
    assert engines[1].stats.calls_opened == len(owned[1])


def test_an_account_opened_later_lands_in_its_shard(markets, committed, two_shards):
    tick(bid="0.60")
    engines = [MarginEngine(shard=Shard(index, 2)) for index in range(2)]
    with committed():
        for engine in engines:
            engine.sweep()
    with committed():
        late = borrower(markets.trump)  # its deposit and fill mark it changed
    mine = shard_of(late.pk, 2)
    with committed():
        for engine in engines:
            engine.process_batch(None)
    assert late.pk in engines[mine].book and late.pk not in engines[1 - mine].book
    with committed():
        for engine in engines:
            engine.process_batch(tick(bid="0.15"))
    assert MarginCall.objects.get().account_id == late.pk
    assert engines[mine].stats.calls_opened == 1 and engines[1 - mine].stats.calls_opened == 0


def test_the_full_sweep_covers_every_account_exactly_once(markets, committed, settings):
    settings.ENGINE_SHARDS = 3
    tick(bid="0.60")
    owned = borrowers_in_each_shard(markets.trump, 3, per_shard=1)
    tick(bid="0.15")
    with committed():
        accounts, stats = margin_sweep_full()
    assert accounts == stats.evaluated == Account.objects.count()
    assert stats.sweeps == 3
    assert stats.calls_opened == sum(len(ids) for ids in owned.values())
    with committed():
        assert margin_sweep_full()[1].calls_opened == 0  # safe twice


def test_the_command_runs_its_shard(markets, capsys, committed, two_shards, monkeypatch):
    ran = []
    monkeypatch.setattr(MarginEngine, "run", lambda self: ran.append(self.shard) or self.stats)
    call_command("run_margin_engine", "--shard-index", "3")
    assert ran == [Shard(1, 2)]
    assert "shard 1 of 2" in capsys.readouterr().out


def run_engine(engine: MarginEngine, failures: list) -> threading.Thread:
    def serve() -> None:
        try:
            engine.run()
        except BaseException as exc:  # surfaced by the callers' assertions
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=serve, name=f"engine-{engine.shard.index}")
    thread.start()
    return thread


def wait_for(probe, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.django_db(transaction=True)
def test_a_published_tick_reaches_every_shard(markets, two_shards):
    """The real path: one publish → Redis pub/sub → both shard engines → each its calls."""
    redis_client().delete(heartbeat_key("engine"))  # an unsharded engine's, from other tests
    tick(bid="0.60")
    owned = borrowers_in_each_shard(markets.trump, 2)
    engines = [MarginEngine(sweep_every=3600, shard=Shard(index, 2)) for index in range(2)]
    failures: list[BaseException] = []
    threads = [run_engine(engine, failures) for engine in engines]
    try:
        assert wait_for(lambda: all(engine.stats.sweeps == 1 for engine in engines))
        tick(bid="0.15")
        # A shard may own more than two: ids fall where the sequence puts them.
        total = sum(len(ids) for ids in owned.values())
        assert wait_for(lambda: sum(engine.stats.calls_opened for engine in engines) == total)
        for index, engine in enumerate(engines):
            assert engine.stats.batches >= 1  # each heard the tick
            assert engine.stats.calls_opened == len(owned[index])  # for its own accounts
            assert wait_for(lambda index=index: heartbeat_read(f"engine-{index}"))
            beat = heartbeat_read(f"engine-{index}")
            assert beat.detail["shard"] == index and beat.detail["subscribed"]
        assert heartbeat_read("engine") is None
    finally:
        for engine in engines:
            engine.stop()
        for thread in threads:
            thread.join(timeout=10)
    assert failures == []
    assert sorted(MarginCall.objects.values_list("account_id", flat=True)) == sorted(
        owned[0] + owned[1]
    )


@pytest.mark.django_db(transaction=True)
def test_a_standby_waits_on_its_own_shards_lock_only(markets, two_shards, settings):
    settings.ENGINE_LOCK_TTL_SECONDS = 0.6
    tick(bid="0.60")
    engines = [MarginEngine(sweep_every=3600, shard=Shard(index, 2)) for index in range(2)]
    assert engines[1].lock_name == "margin engine shard 1 of 2"
    failures: list[BaseException] = []
    threads = []
    try:
        with Leadership("margin engine shard 1 of 2", ttl=0.6):  # another shard-1 engine
            threads = [run_engine(engine, failures) for engine in engines]
            assert wait_for(lambda: engines[0].stats.sweeps == 1)
            time.sleep(0.5)
            assert engines[1].stats.sweeps == 0  # standing by for shard 1 only
        assert wait_for(lambda: engines[1].stats.sweeps == 1)  # took over when released
    finally:
        for engine in engines:
            engine.stop()
        for thread in threads:
            thread.join(timeout=10)
    assert failures == []


def test_ready_checks_every_shards_heartbeat(two_shards):
    heartbeat_beat("engine-0", subscribed=True, calls_deferred_stale=1)
    check = MarginEngineCheck()
    with pytest.raises(Exception, match="shard 1 of 2 has not reported"):
        check.run()
    heartbeat_beat("engine-1", subscribed=True, calls_deferred_stale=2)
    check = MarginEngineCheck()
    check.run()
    assert set(check.detail["shards"]) == {"engine-0", "engine-1"}
    assert check.detail["calls_deferred_stale"] == 3
    heartbeat_beat("engine-1", subscribed=False)
    with pytest.raises(Exception, match="shard 1 of 2 lost its tick subscription"):
        MarginEngineCheck().run()
