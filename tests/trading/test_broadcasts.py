"""Pushes to `account.<id>` groups: after commit, serialized once, never raising."""

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from django.db import transaction

from tests.factories import open_account
from tests.trading.margining import listen, receive
from trading import broadcasts
from trading.broadcasts import (
    MarginUpdate,
    account_group,
    margin_calls_broadcast,
    margin_updates_broadcast,
)
from trading.models import MarginCall

pytestmark = pytest.mark.django_db

AT = datetime(2026, 1, 1, 12, tzinfo=UTC)


def update(account_id: int, **changes) -> MarginUpdate:
    fields = {
        "account_id": account_id,
        "cash": Decimal("-200.000000"),
        "used_margin": Decimal("200.000000"),
        "adjusted_equity": Decimal("185.301234"),
        "available_margin": Decimal("-14.698766"),
        "health": Decimal("0.926506"),
        "utilization": Decimal("1.079323"),
        "status": "margin_call",
        "at": AT,
    } | changes
    return MarginUpdate(**fields)


def test_group_names_are_per_account():
    assert account_group(42) == "account.42"


def test_a_margin_update_reaches_its_account_group_only(django_capture_on_commit_callbacks):
    mine, theirs = listen(account_group(101)), listen(account_group(102))
    with django_capture_on_commit_callbacks(execute=True):
        margin_updates_broadcast(updates=[update(101)])

    message = receive(mine)
    assert message["type"] == "margin.update"
    assert orjson.loads(message["text"]) == {
        "type": "margin",
        "account_id": 101,
        "ts": "2026-01-01T12:00:00+00:00",
        "status": "margin_call",
        "health": "0.926506",
        "utilization": "1.079323",
        "cash": "-200.000000",
        "used_margin": "200.000000",
        "adjusted_equity": "185.301234",
        "available_margin": "-14.698766",
    }
    assert receive(theirs, timeout=0.3) is None


def test_unbounded_health_is_null(django_capture_on_commit_callbacks):
    channel = listen(account_group(103))
    with django_capture_on_commit_callbacks(execute=True):
        margin_updates_broadcast(updates=[update(103, health=None, utilization=Decimal(0))])
    payload = orjson.loads(receive(channel)["text"])
    assert payload["health"] is None
    assert payload["utilization"] == "0"


def test_nothing_is_pushed_before_commit_and_nothing_after_a_rollback(
    django_capture_on_commit_callbacks,
):
    channel = listen(account_group(104))
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        margin_updates_broadcast(updates=[update(104)])
    assert receive(channel, timeout=0.3) is None
    for callback in callbacks:
        callback()
    assert receive(channel)["type"] == "margin.update"

    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                margin_updates_broadcast(updates=[update(104)])
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    assert callbacks == []


def test_a_margin_call_push_says_what_happened(django_capture_on_commit_callbacks):
    account = open_account()
    call = MarginCall.objects.create(
        account=account,
        opened_at=AT,
        health_at_open=Decimal("0.93"),
        lowest_health=Decimal("0.93"),
        used_margin_at_open=Decimal("200"),
        adjusted_equity_at_open=Decimal("186"),
    )
    channel = listen(account_group(account.pk))
    with django_capture_on_commit_callbacks(execute=True):
        margin_calls_broadcast(calls=[(call, Decimal("0.930000"))])
    message = receive(channel)
    assert message["type"] == "margin.call"
    assert orjson.loads(message["text"]) == {
        "type": "margin_call",
        "account_id": account.pk,
        "margin_call_id": call.pk,
        "status": "open",
        "health": "0.930000",
        "opened_at": "2026-01-01T12:00:00+00:00",
        "resolved_at": None,
    }


def test_a_failing_channel_layer_is_logged_not_raised(
    monkeypatch, caplog, django_capture_on_commit_callbacks
):
    class Broken:
        async def group_send(self, group, message):
            raise ConnectionError("redis is down")

    monkeypatch.setattr(broadcasts, "get_channel_layer", Broken)
    with django_capture_on_commit_callbacks(execute=True):
        margin_updates_broadcast(updates=[update(105), update(106)])
    assert "could not push 2 messages" in caplog.text
