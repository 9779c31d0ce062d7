"""Margin calls: one per episode, verified under the account lock, notified exactly once."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Notification, OutboxItem
from accounts.outbox import outbox_dispatch
from tests.conftest import credit_cash
from tests.trading.margining import borrower, capture_outbox_sends, margin_keys_clear, tick
from trading.engine import MarginEngine
from trading.enqueue import ACCOUNT_LIQUIDATE
from trading.models import MarginCall
from trading.services.margin_calls import (
    margin_call_notify,
    margin_calls_remind,
    margin_calls_sync,
)
from trading.tasks import margin_calls_notify_task, margin_calls_remind_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean(quote_store):
    margin_keys_clear()


@pytest.fixture
def sent(monkeypatch):
    return capture_outbox_sends(monkeypatch)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run the block's on-commit callbacks (tasks are eager in tests) as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def kinds() -> list[str]:
    return list(Notification.objects.order_by("pk").values_list("kind", flat=True))


def test_a_price_path_below_maintenance_opens_one_call_notifies_once_and_resolves(
    markets, sent, committed
):
    tick(bid="0.60")
    account = borrower(markets.trump)
    engine = MarginEngine()
    with committed():
        engine.sweep()
    assert not MarginCall.objects.exists()

    with committed():
        for bid in ("0.30", "0.15", "0.147", "0.15"):
            engine.process_batch(tick(bid=bid))
    call = MarginCall.objects.get()
    assert call.account_id == account.pk and call.status == MarginCall.Status.OPEN
    assert Decimal("0.92") < call.health_at_open < Decimal("0.93")
    assert Decimal("0.90") < call.lowest_health < Decimal("0.915")
    assert call.used_margin_at_open == Decimal("200.000000")
    assert call.notified_at is not None
    assert kinds() == [Notification.Kind.MARGIN_CALL]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [account.owner.email]
    assert mail.outbox[0].subject == f"Margin call on account {account.public_id}"
    assert "Deposit at least 14.71 USDC" in mail.outbox[0].body

    # The task, run again (a retry, a duplicate delivery): still one notification.
    with committed():
        assert margin_calls_notify_task.delay(margin_call_ids=[call.pk]).get() == 0
        assert margin_calls_notify_task.delay(margin_call_ids=[call.pk]).get() == 0
    assert kinds() == [Notification.Kind.MARGIN_CALL]
    assert len(mail.outbox) == 1

    with committed():
        engine.process_batch(tick(bid="0.30"))
        engine.process_batch(tick(bid="0.31"))
    call.refresh_from_db()
    assert call.status == MarginCall.Status.RESOLVED and call.resolved_at is not None
    assert kinds() == [Notification.Kind.MARGIN_CALL, Notification.Kind.MARGIN_CALL_RESOLVED]
    assert mail.outbox[1].subject == f"Margin call on {account.public_id} resolved"

    # A new episode is a new call.
    with committed():
        engine.process_batch(tick(bid="0.15"))
    assert MarginCall.objects.filter(status=MarginCall.Status.OPEN).count() == 1
    assert MarginCall.objects.count() == 2
    assert sent.named(ACCOUNT_LIQUIDATE) == []


def test_the_call_and_its_notification_commit_together_and_tasks_wait_for_the_commit(
    markets, django_capture_on_commit_callbacks
):
    tick(bid="0.60")
    account = borrower(markets.trump)
    tick(bid="0.15")
    with django_capture_on_commit_callbacks() as callbacks:
        (state,) = margin_calls_sync(account_ids=[account.pk])
    assert state.opened and state.health < 1.0
    call = MarginCall.objects.get()
    assert Notification.objects.get().dedupe_key == f"margin_call:{call.pk}:opened"
    assert call.notified_at is None and mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    call.refresh_from_db()
    assert call.notified_at is not None
    assert len(mail.outbox) == 1


def test_a_rolled_back_sync_leaves_neither_call_nor_notification(
    markets, django_capture_on_commit_callbacks
):
    tick(bid="0.60")
    account = borrower(markets.trump)
    tick(bid="0.15")
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        margin_calls_sync(account_ids=[account.pk])
        raise RuntimeError("rolled back")
    assert callbacks == []
    assert not MarginCall.objects.exists() and not Notification.objects.exists()


def test_syncing_again_changes_nothing_but_the_lowest_health(markets, committed):
    tick(bid="0.60")
    account = borrower(markets.trump)
    tick(bid="0.15")
    with committed():
        (first,) = margin_calls_sync(account_ids=[account.pk])
        (again,) = margin_calls_sync(account_ids=[account.pk, account.pk])
    assert first.opened and not again.opened
    assert again.open_call.pk == first.open_call.pk
    tick(bid="0.147")
    with committed():
        (deeper,) = margin_calls_sync(account_ids=[account.pk])
    assert deeper.open_call.lowest_health < first.open_call.lowest_health
    assert MarginCall.objects.count() == 1
    assert kinds() == [Notification.Kind.MARGIN_CALL]
    assert len(mail.outbox) == 1


def test_the_book_is_never_trusted_alone(markets, committed):
    """A deposit the engine has not seen yet: the book says below 1.0, the database not."""
    tick(bid="0.60")
    account = borrower(markets.trump)
    engine = MarginEngine()
    with committed():
        engine.sweep()
    credit_cash(account, "500")  # its "accounts changed" mark waits for a commit
    with committed():
        figures = engine.process_batch(tick(bid="0.15"))
    assert figures.health[figures.account_id == account.pk][0] < 1.0
    assert not MarginCall.objects.exists()
    assert mail.outbox == []


def test_non_custodial_accounts_are_evaluated_but_never_called(markets, committed):
    tick(bid="0.60")
    watcher = borrower(markets.trump, kind=Account.Kind.NON_CUSTODIAL, deposit="1500")
    engine = MarginEngine()
    with committed():
        engine.sweep()
        figures = engine.process_batch(tick(bid="0.02"))
    assert figures.account_id.tolist() == [watcher.pk]
    assert figures.used_margin[0] == 0.0
    assert margin_calls_sync(account_ids=[watcher.pk]) == []
    assert not MarginCall.objects.exists()


def test_below_the_liquidation_threshold_liquidation_is_requested_once(markets, sent, committed):
    tick(bid="0.60")
    account = borrower(markets.trump)
    engine = MarginEngine()
    with committed():
        engine.sweep()
        engine.process_batch(tick(bid="0.10"))
        engine.process_batch(tick(bid="0.09"))
        margin_calls_sync(account_ids=[account.pk])
    call = MarginCall.objects.get()
    assert sent.named(ACCOUNT_LIQUIDATE) == [
        {"account_id": account.pk, "reason": "below_threshold", "margin_call_id": call.pk}
    ]
    assert engine.stats.calls_opened == 1


def open_call_at(markets, committed, *, opened_at):
    tick(bid="0.60")
    account = borrower(markets.trump)
    tick(bid="0.15")
    with committed():
        (state,) = margin_calls_sync(account_ids=[account.pk], now=opened_at)
    mail.outbox.clear()
    return account, state.open_call


def test_reminders_escalate_once_per_interval_then_the_grace_period_ends(markets, sent, committed):
    opened = timezone.now()
    account, call = open_call_at(markets, committed, opened_at=opened)

    def remind(hours: float):
        with committed():
            return margin_calls_remind(now=opened + timedelta(hours=hours))

    assert remind(1).reminded == []
    assert remind(4).reminded == [call.pk]
    assert remind(4.5).reminded == []  # a second run in the same slot
    with committed():
        margin_calls_remind_task.delay().get()
    assert remind(8).reminded == [call.pk]
    assert remind(20).reminded == [call.pk]
    titles = list(
        Notification.objects.filter(kind=Notification.Kind.MARGIN_CALL_REMINDER)
        .order_by("pk")
        .values_list("title", flat=True)
    )
    assert titles == [
        f"Reminder: margin call on {account.public_id} still open",
        f"Urgent: margin call on {account.public_id} still open",
        f"Final notice: margin call on {account.public_id} still open",
    ]
    assert [m.subject for m in mail.outbox] == titles
    call.refresh_from_db()
    assert call.reminders_sent == 3
    assert sent.named(ACCOUNT_LIQUIDATE) == []

    summary = remind(24)
    assert summary.grace_expired == [call.pk] and summary.reminded == []
    assert sent.named(ACCOUNT_LIQUIDATE) == [
        {"account_id": account.pk, "reason": "grace_expired", "margin_call_id": call.pk}
    ]


def test_a_recovered_account_is_resolved_not_reminded(markets, committed):
    opened = timezone.now()
    account, call = open_call_at(markets, committed, opened_at=opened)
    with committed():
        credit_cash(account, "100")
        summary = margin_calls_remind(now=opened + timedelta(hours=4))
    assert summary.resolved == [call.pk] and summary.reminded == []
    assert Notification.Kind.MARGIN_CALL_REMINDER not in kinds()


def test_a_call_whose_notification_task_was_lost_is_notified_by_the_outbox(
    markets, django_capture_on_commit_callbacks, committed
):
    tick(bid="0.60")
    account = borrower(markets.trump)
    tick(bid="0.15")
    opened = timezone.now()
    with django_capture_on_commit_callbacks():  # the process died before sending
        margin_calls_sync(account_ids=[account.pk], now=opened)
    call = MarginCall.objects.get()
    item = OutboxItem.objects.get(task="trading.margin_calls_notify")
    assert item.kwargs == {"margin_call_ids": [call.pk]}
    with committed():
        assert outbox_dispatch(now=item.due_at) >= 1
    call.refresh_from_db()
    assert call.notified_at is not None
    assert len(mail.outbox) == 1
    assert margin_call_notify(margin_call_id=call.pk) is False
