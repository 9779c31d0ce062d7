"""Trading events tell their owner: order fills (one notification per fill event, not per
book level), linked-account syncs (once per failing episode, and when they recover) and
margin events, in words through portal.format, in the event's transaction."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.enqueue import NOTIFICATION_EMAILS_SEND
from accounts.models import Notification, OutboxItem
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.executing import market, no_commission, trader
from tests.trading.margining import borrower, capture_outbox_sends, margin_keys_clear, tick
from tests.trading.quoting import put_quote
from tests.trading.test_linked_accounts import fake, link, owner, seeded  # noqa: F401
from trading.models import Fill, Order
from trading.services.execute import order_execute, orders_reconcile
from trading.services.linked_accounts import linked_account_sync
from trading.services.margin_calls import margin_calls_sync
from trading.services.notices import fills_notify
from trading.services.orders import order_place, orders_match
from trading.tasks import orders_reconcile_task

pytestmark = pytest.mark.django_db
D = Decimal
KEY = "TRUMP-WIN@kalshi"
# A time as portal.format writes it: "7 Dec 2026, 09:03 UTC".
WHEN = re.compile(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC")


def emailed(note: Notification) -> bool:
    return any(
        note.pk in item.kwargs["notification_ids"]
        for item in OutboxItem.objects.filter(task=NOTIFICATION_EMAILS_SEND)
    )


def fills_told(account=None) -> list[Notification]:
    told = Notification.objects.filter(kind=Notification.Kind.TRADE)
    if account is not None:
        told = told.filter(account=account)
    return list(told.order_by("pk"))


# --- Fills ------------------------------------------------------------------------------


@pytest.fixture
def elect(quote_store):
    no_commission()
    return market()


def test_an_executed_order_is_told_once_in_app(elect):
    account = trader("1000")
    bystander = trader("1000")
    order = order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    (note,) = fills_told()
    assert note.user == account.owner and note.account == account
    assert note.title == "Order filled: bought 100 ELECT YES"
    fill = Fill.objects.get(order=order)
    fees = fill.venue_fee + fill.commission
    assert note.body.startswith(
        f"Filled: bought 100 ELECT YES at 60¢ (60.00 USDC, fees {fees:.2f} USDC)."
    )
    assert order.public_id in note.body and account.public_id in note.body
    assert "0.60000000" not in note.body and "100.000000" not in note.body
    assert not note.email and not emailed(note)  # the customer is looking at the answer
    assert not Notification.objects.filter(user=bystander.owner).exists()


def test_a_fill_the_venue_confirms_late_is_told_once_and_emailed(elect, settings):
    account = trader("1000")
    settings.SIMULATED_VENUE_NO_CONFIRM = "filled"
    order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    assert not fills_told()  # pending: nothing filled yet
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    orders_reconcile()
    orders_reconcile_task()  # the task again: no second notification
    (note,) = fills_told()
    assert note.email and emailed(note)


@pytest.fixture
def book(markets, quote_store):
    markets.trump.listings.exclude(venue__code="kalshi").update(is_active=False)
    put_quote(KEY, bid="0.40", ask="0.42", size="100")  # asks: 100 at 42¢, 43¢, 44¢
    return markets.trump


def test_an_order_taking_several_levels_is_one_notification(book):
    account = open_account()
    credit_cash(account, "1000")
    order = order_place(
        account=account, symbol="TRUMP-WIN", side="buy", quantity=D("150"), price=D("0.43")
    )
    # One venue fill at its average: 100 at 42¢ and 50 at 43¢.
    assert Fill.objects.filter(order=order).count() == 1
    (note,) = fills_told()
    assert note.title == "Order filled: bought 150 TRUMP-WIN YES"
    assert note.body.startswith("Filled: bought 150 TRUMP-WIN YES at 42.33¢ (63.50 USDC, fees ")
    assert note.dedupe_key == f"fill:{order.public_id}:150"
    # A booking run twice (a retried task) tells once.
    again = fills_notify(order=order, fills=list(Fill.objects.filter(order=order)))
    assert again.pk == note.pk and len(fills_told()) == 1


def test_a_resting_order_tells_each_fill_event_and_emails_them(
    book, django_capture_on_commit_callbacks
):
    def match():  # the tick sends the crossing order; the outbox task books the venue's fill
        with django_capture_on_commit_callbacks(execute=True):
            orders_match(instrument_ids=[book.pk])

    account = open_account()
    credit_cash(account, "1000")
    order = order_place(
        account=account, symbol="TRUMP-WIN", side="buy", quantity=D("150"), price=D("0.35")
    )
    assert not fills_told()  # resting: nothing filled
    put_quote(KEY, bid="0.33", ask="0.35", size="100")
    match()
    (partly,) = fills_told()
    assert partly.title == "Order partly filled: bought 100 TRUMP-WIN YES"
    assert partly.body.startswith("Partly filled: bought 100 of 150 TRUMP-WIN YES at 35¢")
    assert "In all 100 of 150 have filled so far." in partly.body
    assert partly.email and emailed(partly)  # a resting order: the customer was not watching
    put_quote(KEY, bid="0.32", ask="0.34", size="100")
    match()
    match()  # the matcher again: the order is filled, no more
    order.refresh_from_db()
    assert order.status == Order.Status.FILLED
    titles = [note.title for note in fills_told()]
    assert titles == [
        "Order partly filled: bought 100 TRUMP-WIN YES",
        "Order filled: bought 50 TRUMP-WIN YES",
    ]


def test_a_take_profit_fill_says_which_order_it_closed(book, django_capture_on_commit_callbacks):
    account = open_account()
    credit_cash(account, "1000")
    parent = order_place(
        account=account,
        symbol="TRUMP-WIN",
        side="buy",
        quantity=D("50"),
        price=D("0.42"),
        take_profit=D("0.50"),
    )
    put_quote(KEY, bid="0.50", ask="0.52", size="100")
    with django_capture_on_commit_callbacks(execute=True):  # the child goes to the venue
        orders_match(instrument_ids=[book.pk])
    child = Order.objects.get(parent=parent)
    note = Notification.objects.get(dedupe_key=f"fill:{child.public_id}:50")
    assert note.title == "Order filled: sold 50 TRUMP-WIN YES"
    assert f"closed the position of order {parent.public_id}" in note.body
    assert note.email


# --- Linked account syncs ---------------------------------------------------------------


def synced(credential, **kwargs):
    return linked_account_sync(credential_id=credential.pk, **kwargs)


def sync_told(account) -> list[Notification]:
    return list(
        Notification.objects.filter(kind=Notification.Kind.LINKED_SYNC, account=account).order_by(
            "pk"
        )
    )


def test_a_failing_sync_is_told_once_per_episode_and_its_recovery(owner, fake, seeded):  # noqa: F811
    credential = link(owner, seeded)
    assert synced(credential).ok
    fake.outage(True)
    now = timezone.now()
    synced(credential, now=now)
    synced(credential, now=now + timedelta(minutes=2))  # still failing: nothing new
    (failing,) = sync_told(credential.account)
    assert failing.user == owner
    assert failing.title == f"Kalshi account {credential.account.public_id} is not syncing"
    assert "Kalshi could not be reached; we keep trying." in failing.body
    assert "venue_unavailable" not in failing.body
    assert WHEN.search(failing.body)
    assert failing.email and emailed(failing)

    fake.outage(False)
    assert synced(credential).ok
    assert synced(credential).ok  # healthy again: nothing more
    _, recovered = sync_told(credential.account)
    assert recovered.title == f"Kalshi account {credential.account.public_id} is syncing again"
    assert "after 2 failed attempts" in recovered.body
    assert emailed(recovered)

    fake.outage(True)  # a new episode: told again
    synced(credential, now=timezone.now() + timedelta(hours=1))
    assert len(sync_told(credential.account)) == 3


def test_a_revoked_key_says_to_replace_it(owner, fake, seeded):  # noqa: F811
    credential = link(owner, seeded)
    synced(credential)
    fake.key_remove(seeded.key_id)
    synced(credential)
    (note,) = sync_told(credential.account)
    assert "Kalshi refused the credential" in note.body
    assert "Replace it on the Linked exchanges page." in note.body
    assert "venue_auth_failed" not in note.body


# --- Margin events ----------------------------------------------------------------------


def test_margin_call_texts_use_the_formatting_layer(markets, quote_store, monkeypatch):
    margin_keys_clear()
    capture_outbox_sends(monkeypatch)  # no liquidation task leaves the test
    tick(bid="0.60")
    account = borrower(markets.trump)
    tick(bid="0.15")  # health about 0.93: a margin call
    margin_calls_sync(account_ids=[account.pk])
    note = Notification.objects.get(kind=Notification.Kind.MARGIN_CALL, account=account)
    assert "fell to 0.92, below the maintenance requirement of 1.00" in note.body
    assert "Used Margin 200.00 USDC" in note.body
    assert WHEN.search(note.body) and not re.search(r"\d{4}-\d{2}-\d{2}", note.body)
    tick(bid="0.60")
    margin_calls_sync(account_ids=[account.pk])
    resolved = Notification.objects.get(kind=Notification.Kind.MARGIN_CALL_RESOLVED)
    assert "is back at 3." in resolved.body and WHEN.search(resolved.body)
