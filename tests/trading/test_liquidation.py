"""The liquidation engine: who is liquidated, what is sold, in what order, and the record."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Journal, Notification, Posting
from accounts.services.reconciliation import ledger_reconcile
from portal.celery import app as celery_app
from portal.errors import InvalidParams
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.threads import together
from tests.trading.conftest import binary_create
from tests.trading.quoting import put_quote
from trading.marketdata import store
from trading.marketdata.quotes import Outcome
from trading.models import Instrument, Liquidation, MarginCall, Order, Position
from trading.selectors import margin_summary_get, risk_policy_get
from trading.services.eligibility import account_margin_override_set
from trading.services.execute import order_execute, orders_reconcile
from trading.services.liquidation import account_liquidate
from trading.services.positions import binary_fill_apply
from trading.tasks import account_liquidate_task
from trading.venues.base import VenueOrder, VenueOrderStatus
from trading.venues.simulated import SimulatedVenue

BELOW = Liquidation.Reason.BELOW_THRESHOLD
GRACE = Liquidation.Reason.GRACE_EXPIRED


def borrower_open(staff, deposit: str = "1000") -> Account:
    """A custodial account ops have granted margin, funded with `deposit`."""
    account = open_account(kind=Account.Kind.CUSTODIAL)
    account_margin_override_set(
        account=account, override=Account.MarginOverride.GRANTED, actor=staff
    )
    credit_cash(account, deposit)
    return account


def buy(account: Account, instrument: Instrument, quantity: str, price: str, outcome="yes"):
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        binary_fill_apply(
            account=locked,
            instrument=instrument,
            outcome=outcome,
            side="buy",
            quantity=Decimal(quantity),
            price=Decimal(price),
        )


def quote_yes(instrument: Instrument, bid: str, *, venue: str = "kalshi", **levels) -> None:
    """Quote the YES contract at `bid` / `bid` + 0.02 (TWAP at the mid) on one venue."""
    put_quote(
        f"{instrument.symbol}@{venue}", bid=bid, ask=str(Decimal(bid) + Decimal("0.02")), **levels
    )


def health(account: Account) -> Decimal | None:
    """Margin Health recomputed from scratch, as the dashboard shows it."""
    return margin_summary_get(account=Account.objects.get(pk=account.pk)).health


def quantity(account: Account, instrument: Instrument, outcome: str = "yes") -> Decimal:
    return Position.objects.get(account=account, instrument=instrument, outcome=outcome).quantity


def open_call(account: Account, *, age: timedelta) -> MarginCall:
    """An open margin call as the margin engine records one, opened `age` ago."""
    return MarginCall.objects.create(
        account=account,
        opened_at=timezone.now() - age,
        health_at_open=Decimal("0.95"),
        lowest_health=Decimal("0.95"),
        used_margin_at_open=Decimal("1764"),
        adjusted_equity_at_open=Decimal("1675.8"),
    )


class Holdings:
    """Three markets of three events and an account borrowing against them.

    After the purchases cash is 1000 − 550 − 414 − 1800 = −1764. Valued at
    the quotes below, the contributions to Adjusted Equity rank
    ALPHA (value 500, near 50/50, heavy haircut) < BETA (value 405, near
    certain, light haircut) < GAMMA NO (value ~1,600): ALPHA has the larger
    value but contributes less than BETA.
    """

    def __init__(self, staff):
        self.alpha = binary_create("ALPHA")
        self.beta = binary_create("BETA")
        self.gamma = binary_create("GAMMA")
        self.account = borrower_open(staff)
        buy(self.account, self.gamma, "4000", "0.45", outcome="no")
        buy(self.account, self.alpha, "1000", "0.55")
        buy(self.account, self.beta, "450", "0.92")
        quote_yes(self.alpha, "0.50")
        quote_yes(self.alpha, "0.49", venue="polymarket")
        quote_yes(self.beta, "0.90")

    def gamma_yes_at(self, bid: str) -> None:
        """GAMMA YES at `bid` / `bid` + 0.02 on kalshi and `bid` ± 0.01 on polymarket,
        whose NO bid (1 − YES ask) is then the better one."""
        quote_yes(self.gamma, bid)
        put_quote(
            "GAMMA@polymarket",
            bid=str(Decimal(bid) - Decimal("0.01")),
            ask=str(Decimal(bid) + Decimal("0.01")),
        )


@pytest.fixture
def holdings(db, quote_store, staff) -> Holdings:
    return Holdings(staff)


@pytest.fixture
def below_threshold(holdings) -> Holdings:
    holdings.gamma_yes_at("0.60")
    assert health(holdings.account) < Decimal("0.9")
    return holdings


@pytest.fixture
def in_grace(holdings) -> Holdings:
    """Health below maintenance (a margin call) but above the liquidation threshold."""
    holdings.gamma_yes_at("0.56")
    assert Decimal("0.9") < health(holdings.account) < Decimal("1.0")
    return holdings


def test_sells_least_contributing_first_until_health_is_restored(below_threshold):
    holdings = below_threshold
    account = holdings.account
    before = margin_summary_get(account=Account.objects.get(pk=account.pk))
    contributions = {row.symbol: row.contribution for row in before.breakdown}
    assert contributions["ALPHA"] < contributions["BETA"] < contributions["GAMMA"]

    liquidation = account_liquidate(account_id=account.pk, reason=BELOW)

    assert liquidation.status == Liquidation.Status.COMPLETED
    assert [(s["symbol"], s["outcome"], s["venue"]) for s in liquidation.steps] == [
        ("ALPHA", "yes", "kalshi"),  # best YES bid 0.50 (polymarket's is 0.49)
        ("BETA", "yes", "kalshi"),
        ("GAMMA", "no", "polymarket"),  # best NO bid: 1 − 0.60 there, 1 − 0.62 on kalshi
    ]
    alpha, beta, gamma = liquidation.steps
    # Proceeds are the cash each sale raised: its notional less its fees (here the
    # broker's 10 bps commission).
    assert (alpha["quantity"], alpha["average_price"], alpha["proceeds"], alpha["fees"]) == (
        "1000.000000",
        "0.50000000",
        "499.500000",
        "0.500000",
    )
    assert (beta["quantity"], beta["proceeds"], beta["remaining"]) == (
        "450.000000",
        "404.595000",
        "0.000000",
    )
    # The last position is sold only as far as needed: a part of it, and health
    # lands on the initial margin requirement, not above it.
    sold = Decimal(gamma["quantity"])
    assert Decimal(0) < sold < Decimal(4000)
    assert gamma["average_price"] == "0.39000000"
    assert Decimal(gamma["remaining"]) == Decimal(4000) - sold
    assert quantity(account, holdings.alpha) == quantity(account, holdings.beta) == 0
    assert quantity(account, holdings.gamma, "no") == Decimal(4000) - sold

    after = health(account)
    assert Decimal("1.2") <= after < Decimal("1.2001")
    assert liquidation.health_after == after
    assert liquidation.health_before == before.health
    account.refresh_from_db()
    proceeds = Decimal("499.5") + Decimal("404.595") + Decimal(gamma["proceeds"])
    assert liquidation.proceeds == proceeds
    assert account.cash_balance == Decimal(-1764) + proceeds
    assert liquidation.used_margin_before == Decimal(1764)
    assert liquidation.used_margin_after == -account.cash_balance


def test_liquidation_sales_are_balanced_journals_through_the_fill_path(below_threshold):
    account = below_threshold.account
    volume_before = Account.objects.get(pk=account.pk).lifetime_volume

    liquidation = account_liquidate(account_id=account.pk, reason=BELOW)

    journals = Journal.objects.filter(kind=Journal.Kind.LIQUIDATION, account=account)
    assert sorted(str(j.pk) for j in journals) == sorted(s["journal_id"] for s in liquidation.steps)
    for journal in journals:
        assert "Liquidation (health below the liquidation threshold): Sell " in journal.memo
        assert sum(p.amount for p in journal.postings.all()) == 0
    cash_in = Posting.objects.filter(
        journal__in=journals, ledger_account__account=account
    ).values_list("amount", flat=True)
    assert sum(cash_in) == liquidation.proceeds
    sold = sum(Decimal(step["proceeds"]) + Decimal(step["fees"]) for step in liquidation.steps)
    assert Account.objects.get(pk=account.pk).lifetime_volume == volume_before + sold
    assert ledger_reconcile().ok


def test_a_second_run_does_nothing(below_threshold):
    account = below_threshold.account
    first = account_liquidate(account_id=account.pk, reason=BELOW)
    journals = Journal.objects.count()

    assert account_liquidate(account_id=account.pk, reason=BELOW) is None
    assert account_liquidate(account_id=account.pk, reason=GRACE) is None
    assert list(Liquidation.objects.all()) == [first]
    assert Journal.objects.count() == journals
    assert Notification.objects.filter(kind=Notification.Kind.LIQUIDATION).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_liquidate_once(quote_store, staff):
    holdings = Holdings(staff)
    holdings.gamma_yes_at("0.60")
    results, errors = together(
        lambda: account_liquidate(account_id=holdings.account.pk, reason=BELOW), 4
    )
    assert errors == []
    assert sum(result is not None for result in results) == 1
    assert Liquidation.objects.count() == 1
    assert Decimal("1.2") <= health(holdings.account) < Decimal("1.2001")
    assert ledger_reconcile().ok


def test_a_healthy_account_is_untouched(holdings):
    holdings.gamma_yes_at("0.40")
    before = health(holdings.account)
    assert before > Decimal("1.0")

    assert account_liquidate(account_id=holdings.account.pk, reason=BELOW) is None
    assert account_liquidate(account_id=holdings.account.pk, reason=GRACE) is None
    assert not Liquidation.objects.exists()
    assert not Journal.objects.filter(kind=Journal.Kind.LIQUIDATION).exists()
    assert quantity(holdings.account, holdings.alpha) == 1000
    assert health(holdings.account) == before


def test_an_account_that_does_not_borrow_is_untouched(db, quote_store, staff):
    market = binary_create("SOLO")
    account = borrower_open(staff)
    buy(account, market, "1000", "0.90")
    quote_yes(market, "0.01")
    assert health(account) is None

    assert account_liquidate(account_id=account.pk, reason=BELOW) is None
    assert quantity(account, market) == 1000


def test_a_margin_call_within_its_grace_period_is_not_liquidated(in_grace):
    call = open_call(in_grace.account, age=timedelta(hours=23))

    assert account_liquidate(account_id=in_grace.account.pk, reason=GRACE) is None
    assert account_liquidate(account_id=in_grace.account.pk, reason=BELOW) is None
    call.refresh_from_db()
    assert call.status == MarginCall.Status.OPEN
    assert not Liquidation.objects.exists()


def test_an_expired_call_is_not_liquidated_once_health_is_back_at_maintenance(holdings):
    """The margin engine has not resolved the call yet, but the account recovered."""
    holdings.gamma_yes_at("0.40")
    assert health(holdings.account) > Decimal("1.0")
    call = open_call(holdings.account, age=timedelta(hours=30))

    assert (
        account_liquidate(account_id=holdings.account.pk, reason=GRACE, margin_call_id=call.pk)
        is None
    )
    assert not Liquidation.objects.exists()


@pytest.mark.parametrize("requested", [GRACE, BELOW])
def test_a_margin_call_past_its_grace_period_is_liquidated(in_grace, requested):
    account = in_grace.account
    call = open_call(account, age=timedelta(hours=24, minutes=1))

    liquidation = account_liquidate(account_id=account.pk, reason=requested, margin_call_id=call.pk)

    assert liquidation.reason == GRACE  # what holds: health is above the liquidation threshold
    assert liquidation.margin_call == call
    assert liquidation.status == Liquidation.Status.COMPLETED
    assert Decimal("1.2") <= health(account) < Decimal("1.2001")
    call.refresh_from_db()
    assert call.status == MarginCall.Status.LIQUIDATED
    assert call.resolved_at >= liquidation.created_at


def test_the_grace_period_is_the_policys(in_grace):
    policy = risk_policy_get()
    policy.grace_period_hours = 2
    policy.save()
    open_call(in_grace.account, age=timedelta(hours=3))

    liquidation = account_liquidate(account_id=in_grace.account.pk, reason=GRACE)

    assert liquidation.reason == GRACE


def test_below_threshold_is_liquidated_whatever_the_call_and_links_the_open_one(below_threshold):
    account = below_threshold.account
    call = open_call(account, age=timedelta(minutes=5))

    liquidation = account_liquidate(account_id=account.pk, reason=GRACE)

    assert liquidation.reason == BELOW
    assert liquidation.margin_call == call
    call.refresh_from_db()
    assert call.status == MarginCall.Status.LIQUIDATED


def test_falls_back_to_the_next_listing_when_the_best_book_cannot_fill(db, quote_store, staff):
    market = binary_create("THIN")
    account = borrower_open(staff, deposit="100")
    buy(account, market, "1000", "0.60")
    quote_yes(market, "0.10", size="50")  # best bid, but 3 × 50 contracts deep
    quote_yes(market, "0.09", venue="polymarket")

    liquidation = account_liquidate(account_id=account.pk, reason=BELOW)

    assert [(s["venue"], s["quantity"]) for s in liquidation.steps] == [
        ("polymarket", "1000.000000")
    ]
    assert liquidation.status == Liquidation.Status.SHORTFALL


def test_sells_across_listings_when_no_single_book_can_fill(db, quote_store, staff):
    market = binary_create("SPLIT")
    account = borrower_open(staff, deposit="100")
    buy(account, market, "1000", "0.60")
    quote_yes(market, "0.10", size="200")  # 600 contracts at 0.10, 0.09, 0.08
    quote_yes(market, "0.09", venue="polymarket", size="200")

    liquidation = account_liquidate(account_id=account.pk, reason=BELOW)

    assert [(s["venue"], s["quantity"], s["average_price"]) for s in liquidation.steps] == [
        ("kalshi", "600.000000", "0.09000000"),
        ("polymarket", "400.000000", "0.08500000"),
    ]
    assert quantity(account, market) == 0


def test_a_position_without_any_order_book_is_skipped(below_threshold, quote_store):
    quote_store.hdel(store.quotes_key(), "ALPHA@kalshi", "ALPHA@polymarket")

    liquidation = account_liquidate(account_id=below_threshold.account.pk, reason=BELOW)

    assert [s["symbol"] for s in liquidation.steps] == ["BETA", "GAMMA"]
    assert quantity(below_threshold.account, below_threshold.alpha) == 1000
    assert liquidation.status == Liquidation.Status.COMPLETED


def test_shortfall_when_the_collateral_is_worthless(db, quote_store, staff):
    market = binary_create("BUST")
    account = borrower_open(staff, deposit="100")
    buy(account, market, "1000", "0.55")
    quote_yes(market, "0.01")
    call = open_call(account, age=timedelta(minutes=1))

    liquidation = account_liquidate(account_id=account.pk, reason=BELOW, margin_call_id=call.pk)

    assert liquidation.status == Liquidation.Status.SHORTFALL
    assert [(s["quantity"], s["proceeds"]) for s in liquidation.steps] == [
        ("1000.000000", "9.990000")  # 10 less the 0.01 commission
    ]
    assert quantity(account, market) == 0
    account.refresh_from_db()
    assert account.cash_balance == Decimal("-440.01")  # the account keeps the debt
    assert liquidation.used_margin_after == Decimal("440.01")
    assert liquidation.health_after == Decimal(0) == health(account)
    call.refresh_from_db()
    assert call.status == MarginCall.Status.OPEN  # still below maintenance
    assert liquidation.margin_call == call
    assert "debt remains" in Notification.objects.get(kind=Notification.Kind.LIQUIDATION).title
    assert ledger_reconcile().ok
    # Nothing left to sell: later runs record nothing more.
    assert account_liquidate(account_id=account.pk, reason=BELOW) is None
    assert Liquidation.objects.count() == 1


def test_the_report_is_readable_and_the_owner_notified_once_after_commit(
    below_threshold, django_capture_on_commit_callbacks
):
    account = below_threshold.account
    with django_capture_on_commit_callbacks() as callbacks:
        liquidation = account_liquidate(account_id=account.pk, reason=BELOW)
    assert mail.outbox == []  # nothing leaves before the transaction commits

    stored = Liquidation.objects.get(account=account)
    assert stored.pk == liquidation.pk
    assert stored.reason == BELOW
    for step in stored.steps:
        assert set(step) >= {"symbol", "outcome", "quantity", "average_price", "proceeds", "venue"}
        assert all(isinstance(value, str) for value in step.values())
    notification = Notification.objects.get(kind=Notification.Kind.LIQUIDATION)
    assert notification.user == account.owner
    assert notification.account == account
    assert notification.email
    assert notification.dedupe_key == f"liquidation:{liquidation.pk}"
    assert "1,000 ALPHA YES at 50¢ on Kalshi" in notification.body
    assert "Margin Health fell to 0.88, below the liquidation threshold of 0.90" in (
        notification.body
    )
    assert "Margin Health is now 1.20" in notification.body

    for callback in callbacks:
        callback()
    notification.refresh_from_db()
    assert notification.emailed_at is not None
    (email,) = mail.outbox
    assert email.to == [account.owner.email]
    assert "Margin Health is now 1.20" in email.body


def test_unknown_reason_is_refused(below_threshold):
    with pytest.raises(InvalidParams):
        account_liquidate(account_id=below_threshold.account.pk, reason="because")
    assert not Liquidation.objects.exists()


def test_the_task_liquidates_by_name_and_is_safe_twice(below_threshold):
    kwargs = {"account_id": below_threshold.account.pk, "reason": "below_threshold"}
    liquidation_id = celery_app.tasks["trading.account_liquidate"].delay(**kwargs).get()

    assert Liquidation.objects.get().pk == liquidation_id
    assert account_liquidate_task.delay(**kwargs).get() is None


def test_contracts_a_sell_at_the_venue_holds_are_not_sold_again(quote_store, staff, settings):
    """A sell at the venue whose answer was lost holds ~200 contracts: the liquidation
    sells only the rest, and the reconciler then books the venue's fill of that sell
    (selling them twice would leave it unbookable, `pending` for good)."""
    alpha = binary_create("ALPHA", "0.01", "kalshi")
    account = borrower_open(staff)
    buy(account, alpha, "4000", "0.45")  # cash -800
    quote_yes(alpha, "0.45")
    settings.SIMULATED_VENUE_NO_CONFIRM = "filled"
    sell = order_execute(account=account, symbol="ALPHA", side="sell", notional_usdc=Decimal("90"))
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    assert sell.status == Order.Status.PENDING and sell.reserved_quantity > 190
    quote_yes(alpha, "0.15")  # far below the debt: everything that may be sold is sold
    liquidation = account_liquidate(account_id=account.pk, reason="below_threshold")
    sold = sum(Decimal(step["quantity"]) for step in liquidation.steps)
    assert sold == 4000 - sell.reserved_quantity
    assert orders_reconcile().filled == [sell.public_id]
    held_back = sell.reserved_quantity  # the sale's worst case: it sold at most that
    sell.refresh_from_db()
    assert quantity(account, alpha) == held_back - sell.filled_quantity
    assert ledger_reconcile().ok


# --- The sales are orders at the venues ---------------------------------------------


def test_each_sale_is_an_order_placed_at_its_venue(below_threshold):
    """A sale is a sell order at the venue (the venue's record is what is booked), its
    fill a LIQUIDATION journal; the owner hears of the liquidation, not of each fill."""
    account = below_threshold.account

    liquidation = account_liquidate(account_id=account.pk, reason=BELOW)

    orders = {order.public_id: order for order in liquidation.orders.all()}
    assert [step["order_id"] for step in liquidation.steps] == sorted(
        orders, key=lambda public_id: orders[public_id].pk
    )
    for step in liquidation.steps:
        order = orders[step["order_id"]]
        assert (order.side, order.status, order.reserved_quantity) == ("sell", "filled", 0)
        listing = order.instrument.listings.get(venue=order.venue)
        placed = SimulatedVenue(order.venue.code).order_status(
            listing, client_order_id=order.public_id, outcome=Outcome(order.outcome)
        )
        assert (placed.status, str(placed.quantity)) == ("filled", step["quantity"])
        fill = order.fills.get()
        assert fill.journal.kind == Journal.Kind.LIQUIDATION
        assert str(fill.journal_id) == step["journal_id"]
    assert not Notification.objects.filter(dedupe_key__startswith="fill:").exists()
    assert Account.objects.get(pk=account.pk).orders_reserved == 0
    assert ledger_reconcile().ok


def test_a_venue_that_does_not_answer_leaves_it_selling_until_the_reconciler_books_it(
    below_threshold, settings
):
    """No second liquidation starts while one is selling: a new run resumes it. The
    reconciler books the venue's fills and finishes the report, notified once."""
    account = below_threshold.account
    settings.SIMULATED_VENUE_NO_CONFIRM = "filled"

    liquidation = account_liquidate(account_id=account.pk, reason=BELOW)

    assert liquidation.status == Liquidation.Status.SELLING and liquidation.steps == []
    sales = list(liquidation.orders.all())
    assert {order.status for order in sales} == {"pending"}
    assert all(order.reserved_quantity > 0 for order in sales)
    assert account_liquidate(account_id=account.pk, reason=BELOW) is None  # resumes it
    assert list(Liquidation.objects.all()) == [liquidation]
    assert not Notification.objects.filter(kind=Notification.Kind.LIQUIDATION).exists()

    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    celery_app.tasks["trading.orders_reconcile"].delay().get()

    liquidation.refresh_from_db()
    assert liquidation.status == Liquidation.Status.COMPLETED
    assert [step["symbol"] for step in liquidation.steps] == ["ALPHA", "BETA", "GAMMA"]
    assert Decimal("1.2") <= health(account) < Decimal("1.2001")
    assert Notification.objects.filter(kind=Notification.Kind.LIQUIDATION).count() == 1
    assert ledger_reconcile().ok


def test_a_crash_before_the_sales_are_sent_strands_nothing(below_threshold, monkeypatch):
    """The process dies after the submit commits: the sales are `submitted`, the venue
    never saw them. The reconciler sends them (a liquidation's sale is never written
    off) and finishes the report."""
    import trading.services.liquidation as liquidation_module

    account = below_threshold.account

    def crash(**kwargs):
        raise SystemExit("killed between submit and send")

    monkeypatch.setattr(liquidation_module, "order_send", crash)
    with pytest.raises(SystemExit):
        account_liquidate(account_id=account.pk, reason=BELOW)
    monkeypatch.undo()
    liquidation = Liquidation.objects.get()
    assert liquidation.status == Liquidation.Status.SELLING
    assert {order.status for order in liquidation.orders.all()} == {"submitted"}
    liquidation.orders.update(created_at=timezone.now() - timedelta(minutes=5))

    celery_app.tasks["trading.orders_reconcile"].delay().get()

    liquidation.refresh_from_db()
    assert liquidation.status == Liquidation.Status.COMPLETED
    assert {order.status for order in liquidation.orders.all()} == {"filled"}
    assert Decimal("1.2") <= health(account) < Decimal("1.2001")
    assert ledger_reconcile().ok


def test_sales_the_venues_all_refuse_are_recorded_unfilled_and_not_retried_at_once(
    below_threshold, monkeypatch
):
    account = below_threshold.account
    refused = VenueOrder(
        client_order_id="x", venue_order_id="", status=VenueOrderStatus.REJECTED, reason="halted"
    )
    monkeypatch.setattr(SimulatedVenue, "market_order_place", lambda *a, **k: refused)

    liquidation = account_liquidate(account_id=account.pk, reason=BELOW)

    assert (liquidation.status, liquidation.steps, liquidation.proceeds) == ("unfilled", [], 0)
    assert {order.status for order in liquidation.orders.all()} == {"rejected"}
    assert Account.objects.get(pk=account.pk).orders_reserved == 0
    assert quantity(account, below_threshold.alpha) == 1000
    assert not Notification.objects.filter(kind=Notification.Kind.LIQUIDATION).exists()
    # The engine asks again on the next tick: not within UNFILLED_RETRY_AFTER.
    assert account_liquidate(account_id=account.pk, reason=BELOW) is None
    Liquidation.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    monkeypatch.undo()
    again = account_liquidate(account_id=account.pk, reason=BELOW)
    assert again.status == Liquidation.Status.COMPLETED
