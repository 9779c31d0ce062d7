"""Pushes to `account.<id>` groups: after commit, serialized once, never raising."""

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from django.db import transaction

from accounts.models import Account
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.conftest import binary_create, perp_create
from tests.trading.margining import listen, receive
from tests.trading.quoting import put_quote
from trading import broadcasts
from trading.broadcasts import (
    MarginUpdate,
    account_group,
    margin_calls_broadcast,
    margin_updates_broadcast,
)
from trading.marketdata import store
from trading.models import MarginCall
from trading.presenters import fill_present, order_present, position_present
from trading.selectors import fill_list, order_get, position_book_get
from trading.services.orders import order_cancel, order_place
from trading.services.perps import leverage_set

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
    assert message["type"] == "margin.update" and message["account"] == 101
    # GET margin's names and formats (`margin_headline_present`), the type first.
    assert message["text"].startswith('{"type":"margin",')
    assert orjson.loads(message["text"]) == {
        "type": "margin",
        "cash": "-200.000000",
        "used_margin": "200.000000",
        "adjusted_equity": "185.301234",
        "available_margin": "-14.698766",
        "health": "0.926506",
        "margin_utilization": "1.079323",
        "status": "margin_call",
        "available_credit": "-14.698766",
        "as_of": "2026-01-01T12:00:00.000000+00:00",
        "stale": False,
        "stale_since": None,
    }
    assert receive(theirs, timeout=0.3) is None


def test_unbounded_health_is_null(django_capture_on_commit_callbacks):
    channel = listen(account_group(103))
    with django_capture_on_commit_callbacks(execute=True):
        margin_updates_broadcast(updates=[update(103, health=None, utilization=Decimal(0))])
    payload = orjson.loads(receive(channel)["text"])
    assert payload["health"] is None
    assert payload["margin_utilization"] == "0"


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
    assert message["type"] == "margin.call" and message["account"] == account.pk
    assert orjson.loads(message["text"]) == {
        "type": "margin_call",
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


def drain(channel) -> list[dict]:
    messages = []
    while (message := receive(channel, timeout=0.5)) is not None:
        messages.append(message)
    return messages


def test_orders_fills_positions_and_leverage_are_pushed_after_commit(
    django_capture_on_commit_callbacks,
):
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "1000")
    binary_create("PUSH-MKT")
    put_quote("PUSH-MKT@kalshi", bid="0.55", ask="0.56")
    perp_create("ETH-PERP", "ETH")
    channel = listen(account_group(account.pk))
    trades = store.redis_client().pubsub()
    trades.subscribe(store.trades_channel())
    assert trades.get_message(timeout=5)["type"] == "subscribe"

    with django_capture_on_commit_callbacks(execute=True):
        filled = order_place(
            account=account, symbol="PUSH-MKT", side="buy", quantity="10", price="0.56"
        )
        resting = order_place(
            account=account, symbol="PUSH-MKT", side="buy", quantity="5", price="0.40"
        )
        order_cancel(account=account, order_id=resting.public_id)
        leverage_set(account=account, symbol="ETH-PERP", leverage=3)
    messages = drain(channel)
    assert [m["type"] for m in messages] == [
        "order.update",  # submitted: sent to the venue
        "fill.update",
        "position.update",
        "order.update",
        "order.update",
        "order.update",
        "leverage.update",
    ]
    assert {m["account"] for m in messages} == {account.pk}
    submitted, fill, position, order, opened, cancelled, leverage = (
        orjson.loads(m["text"]) for m in messages
    )
    assert (submitted["id"], submitted["status"]) == (filled.public_id, "submitted")
    # Each push is `{"type": <kind>}` and the resource exactly as the REST API shows it.
    assert [fill.pop("type"), position.pop("type"), order.pop("type")] == [
        "fill",
        "position",
        "order",
    ]
    (rest_fill,) = fill_list(account=account).map(fill_present).items
    assert fill == rest_fill
    assert (fill["order_id"], fill["quantity"], fill["price"]) == (
        filled.public_id,
        "10.000000",
        "0.56000000",
    )
    (rest_position,) = [
        position_present(view) for view in position_book_get(account=account).positions
    ]
    assert position == rest_position
    assert (position["symbol"], position["quantity"]) == ("PUSH-MKT", "10.000000")
    assert order == order_present(order_get(account=account, order_id=filled.public_id))
    assert (order["id"], order["status"], order["average_price"]) == (
        filled.public_id,
        "filled",
        "0.56000000",
    )
    assert (opened["id"], opened["status"]) == (resting.public_id, "open")
    assert (cancelled["id"], cancelled["status"]) == (resting.public_id, "cancelled")
    assert leverage == {
        "type": "leverage",
        "symbol": "ETH-PERP",
        "leverage": 3,
        "oldLeverage": 5,
        "newLeverage": 3,
        "status": "APPLIED",
        "cancelledOrderIds": [],
    }
    (message,) = [m for m in iter(lambda: trades.get_message(timeout=0.5), None)]
    trades.close()
    (trade,) = orjson.loads(message["data"])["trades"]
    assert trade["id"] == fill["id"] and trade["key"] == "PUSH-MKT@kalshi"
    assert (trade["side"], trade["price"], trade["size"]) == ("buy", "0.56000000", "10")


def test_a_closed_position_is_pushed_with_quantity_zero(django_capture_on_commit_callbacks):
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "1000")
    binary_create("CLOSE-MKT")
    put_quote("CLOSE-MKT@kalshi", bid="0.55", ask="0.56")
    channel = listen(account_group(account.pk))

    with django_capture_on_commit_callbacks(execute=True):
        order_place(account=account, symbol="CLOSE-MKT", side="buy", quantity="10", price="0.56")
        order_place(account=account, symbol="CLOSE-MKT", side="sell", quantity="10", price="0.55")
    positions = [orjson.loads(m["text"]) for m in drain(channel) if m["type"] == "position.update"]
    assert [(p["quantity"], p["side"]) for p in positions] == [
        ("10.000000", "long"),
        ("0.000000", "long"),
    ]
    closed = positions[-1]
    assert closed["symbol"] == "CLOSE-MKT" and closed["notional"] == "0.000000"
    assert closed["realized_pnl"] == "-0.100000"  # sold 10 at 0.55 what cost 0.56
    assert position_book_get(account=account).positions == []  # GET positions: gone
