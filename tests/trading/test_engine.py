"""The margin engine: ticks in, margin calls, snapshots and pushes out."""

import threading
import time

import orjson
import pytest
from django.core import mail
from django.core.management import call_command
from django.db import DatabaseError, connection

from accounts.services.ledger import accounts_changed_mark
from portal.redis import Leadership, redis_client, redis_key
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.conftest import FakeClock, binary_create
from tests.trading.margining import (
    borrower,
    capture_outbox_sends,
    listen,
    margin_keys_clear,
    receive,
    tick,
)
from trading.broadcasts import account_group
from trading.engine import MarginEngine
from trading.models import MarginCall, MarginSnapshot
from trading.services.margin_book import accounts_changed_pop
from trading.tasks import margin_sweep_full_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean(quote_store, monkeypatch):
    margin_keys_clear()
    capture_outbox_sends(monkeypatch)  # no liquidation task leaves the test


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def swept_engine(committed, **options) -> MarginEngine:
    engine = MarginEngine(**options)
    with committed():
        engine.sweep()
    return engine


def test_a_tick_evaluates_only_the_accounts_holding_what_moved(markets, committed):
    fed = binary_create("FED-CUT", "0.01", "kalshi")
    tick(bid="0.60")
    tick("FED-CUT@kalshi", bid="0.50")
    trump_holder = borrower(markets.trump)
    fed_holder = borrower(fed, price="0.50")
    open_account()
    engine = swept_engine(committed)
    assert engine.stats.evaluated >= 3

    with committed():
        figures = engine.process_batch(tick("FED-CUT@kalshi", bid="0.40"))
    assert figures.account_id.tolist() == [fed_holder.pk]
    with committed():
        figures = engine.process_batch(tick(bid="0.55"))
    assert figures.account_id.tolist() == [trump_holder.pk]
    with committed():
        assert engine.process_batch(tick("BTC-PERP@leviathan", bid="60000", ask="60001")) is None


def test_changed_accounts_are_picked_up_without_a_tick(markets, committed):
    tick(bid="0.60")
    account = borrower(markets.trump)
    engine = swept_engine(committed)
    with committed():
        engine.process_batch(tick(bid="0.15"))
    assert MarginCall.objects.get().status == MarginCall.Status.OPEN

    with committed():
        credit_cash(account, "100")  # repays part of the loan: health back above 1.0
    with committed():
        figures = engine.process_batch(None)
    assert figures.account_id.tolist() == [account.pk]
    assert figures.health[0] > 1.0
    assert MarginCall.objects.get().status == MarginCall.Status.RESOLVED
    with committed():
        assert engine.process_batch(None) is None


def test_changed_figures_are_pushed_to_the_account_group(markets, committed):
    tick(bid="0.60")
    account = borrower(markets.trump)
    bystander = borrower(markets.trump, quantity="10", deposit="100")
    channel = listen(account_group(account.pk))
    engine = swept_engine(committed)
    assert receive(channel, timeout=0.3) is None  # the first sweep pushes nothing

    with committed():
        engine.process_batch(tick(bid="0.15"))
    updates = []
    while (message := receive(channel, timeout=0.5)) is not None:
        updates.append(message)
    types = sorted(message["type"] for message in updates)
    assert types == ["margin.call", "margin.update"]
    pushed = next(m for m in updates if m["type"] == "margin.update")
    assert pushed["account"] == account.pk
    update = orjson.loads(pushed["text"])
    assert update["status"] == "margin_call"
    assert update["used_margin"] == "200.000000"
    assert 0.92 < float(update["health"]) < 0.93
    # The bystander's figures moved too, but no socket follows it: no update is built.
    assert (engine.stats.pushes, engine.stats.unfollowed) == (1, 1)

    with committed():
        engine.process_batch(tick(bid="0.15"))  # nothing moved
    assert receive(channel, timeout=0.3) is None
    assert bystander.pk != account.pk


def test_without_publishing_nothing_is_pushed(markets, committed):
    tick(bid="0.60")
    account = borrower(markets.trump)
    channel = listen(account_group(account.pk))
    engine = swept_engine(committed, publish=False)
    with committed():
        engine.process_batch(tick(bid="0.40"))
    assert receive(channel, timeout=0.3) is None
    assert engine.stats.pushes == 0


def test_snapshots_follow_meaningful_moves_only(markets, committed):
    tick(bid="0.60")
    account = borrower(markets.trump)
    engine = swept_engine(committed)
    assert MarginSnapshot.objects.filter(account=account).count() == 1
    with committed():
        engine.process_batch(tick(bid="0.599"))  # health moves well under 1 %
    assert MarginSnapshot.objects.filter(account=account).count() == 1
    with committed():
        engine.process_batch(tick(bid="0.15"))
    statuses = list(
        MarginSnapshot.objects.filter(account=account).order_by("ts").values_list("status")
    )
    assert statuses == [("healthy",), ("margin_call",)]


def test_the_full_sweep_task_opens_and_resolves_calls_without_the_engine(markets, committed):
    tick(bid="0.60")
    account = borrower(markets.trump)
    healthy = borrower(markets.trump, deposit="5000")
    tick(bid="0.15")
    with committed():
        first = margin_sweep_full_task.delay().get()
        second = margin_sweep_full_task.delay().get()
    assert first["calls_opened"] == 1 and second["calls_opened"] == 0
    assert first["accounts"] >= 2
    call = MarginCall.objects.get()
    assert call.account_id == account.pk
    assert len(mail.outbox) == 1

    accounts_changed_mark(account_ids=[healthy.pk])
    tick(bid="0.30")
    with committed():
        assert margin_sweep_full_task.delay().get()["calls_resolved"] == 1
    # The engine process's changes are left for it to consume.
    assert accounts_changed_pop() == [healthy.pk]
    call.refresh_from_db()
    assert call.status == MarginCall.Status.RESOLVED
    assert not MarginCall.objects.filter(account=healthy).exists()


def test_a_full_sweep_catches_what_a_missed_tick_would_have_shown(markets, committed):
    tick(bid="0.60")
    account = borrower(markets.trump)
    engine = swept_engine(committed)
    tick(bid="0.15")  # published, but this engine never received the message
    with committed():
        engine.sweep()
    assert MarginCall.objects.get().account_id == account.pk


def test_the_loop_sweeps_on_its_clock(markets):
    frozen = MarginEngine(sweep_every=60, clock=FakeClock())
    assert frozen.run(iterations=3).sweeps == 1

    class Racing(FakeClock):
        def __call__(self) -> float:
            self.now += 45.0
            return self.now

    racing = MarginEngine(sweep_every=60, clock=Racing())
    assert racing.run(iterations=3).sweeps >= 2


def test_a_failed_batch_costs_that_batch_not_the_loop(markets, monkeypatch):
    engine = MarginEngine(clock=FakeClock())
    failures = iter([DatabaseError("connection lost")])
    processed = []

    def flaky(batch):
        processed.append(batch)
        if (error := next(failures, None)) is not None:
            raise error

    monkeypatch.setattr(engine, "process_batch", flaky)
    stats = engine.run(iterations=3)
    assert stats.errors == 1 and len(processed) == 3


def test_one_engine_per_redis_a_second_stands_by(markets, monkeypatch):
    monkeypatch.setattr("trading.engine.LOCK_TTL_SECONDS", 0.6)
    with Leadership("margin engine", ttl=0.6):
        second = MarginEngine()
        thread = threading.Thread(target=second.run, kwargs={"iterations": 3})
        thread.start()
        time.sleep(1.0)
        assert second.stats.sweeps == 0 and thread.is_alive()  # standing by
    thread.join(timeout=5)  # took over when the first let go
    assert not thread.is_alive() and second.stats.sweeps == 1
    connection.close()


def test_an_engine_that_loses_its_role_takes_it_back_and_rebuilds_its_book(markets, monkeypatch):
    monkeypatch.setattr("trading.engine.LOCK_TTL_SECONDS", 0.6)
    engine = MarginEngine()
    sweeps = []
    sweep = engine.sweep

    def counting_sweep():
        sweeps.append(time.monotonic())
        if len(sweeps) == 1:  # Redis restarts empty: the lock is gone
            redis_client().delete(redis_key("lock", "margin engine"))
        return sweep()

    monkeypatch.setattr(engine, "sweep", counting_sweep)
    thread = threading.Thread(target=engine.run, kwargs={"iterations": 10_000})
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while len(sweeps) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sweeps) >= 2  # the role came back, and with it a full reload
    finally:
        engine.stop()
        thread.join(timeout=5)
        connection.close()
    assert redis_client().exists(redis_key("lock", "margin engine")) == 0  # released on stop


def test_the_command_runs_one_sweep(markets, capsys, committed):
    tick(bid="0.60")
    borrower(markets.trump)
    with committed():
        call_command("run_margin_engine", "--once")
    assert "calls opened" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_published_ticks_reach_a_running_engine_and_open_a_call(markets, monkeypatch):
    """The real path: the feed's publish → Redis pub/sub → the engine process → MarginCall."""
    tick(bid="0.60")
    account = borrower(markets.trump)
    engine = MarginEngine(sweep_every=3600)
    failures: list[BaseException] = []

    def serve() -> None:
        try:
            engine.run()
        except BaseException as exc:  # surfaced by the assertion below
            failures.append(exc)
        finally:
            connection.close()

    runner = threading.Thread(target=serve, name="margin-engine")
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while engine.stats.sweeps < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.stats.sweeps == 1
        for bid in ("0.40", "0.20", "0.15"):
            tick(bid=bid)
        deadline = time.monotonic() + 10
        while not MarginCall.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        call = MarginCall.objects.get()
        assert call.account_id == account.pk
        deadline = time.monotonic() + 5
        while not mail.outbox and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(mail.outbox) == 1
    finally:
        engine.stop()
        runner.join(timeout=10)
    assert not runner.is_alive() and failures == []
    assert engine.stats.batches >= 1 and engine.stats.calls_opened == 1
