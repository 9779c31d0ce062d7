"""Ops console for venues, events, instruments (and resolving them), listings, prices,
orders and fills, the fee policy, perps and the Margin Portfolio."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from accounts.models import AuditLog
from tests.accounts.test_admin import login_ops, run_action
from tests.trading.executing import market, no_commission, trader
from tests.trading.margining import borrower, capture_outbox_sends, margin_keys_clear, tick
from trading.engine import MarginEngine
from trading.models import (
    EventGroup,
    FeePolicy,
    Fill,
    FundingPayment,
    Instrument,
    InstrumentHaircut,
    LeverageSetting,
    Liquidation,
    Listing,
    MarginCall,
    MarginSnapshot,
    Order,
    Position,
    PriceTick,
    RiskPolicy,
    Venue,
    VenueFeeSchedule,
)
from trading.selectors import margin_params_get, risk_policy_get
from trading.services.execute import order_execute
from trading.services.fees import fee_policy_get
from trading.services.liquidation import account_liquidate
from trading.services.margin_calls import margin_calls_sync

pytestmark = pytest.mark.django_db

EXPIRY = datetime(2028, 11, 7, tzinfo=UTC)


@pytest.fixture
def ops_client(client, staff):
    login_ops(client, staff)
    return client


@pytest.fixture
def kalshi(db) -> Venue:
    return Venue.objects.create(code="kalshi", name="Kalshi", kind=Venue.Kind.PREDICTION)


@pytest.fixture
def election(db) -> EventGroup:
    return EventGroup.objects.create(code="pres-2028", title="US presidential election 2028")


def binary(symbol: str, event: EventGroup, **fields) -> Instrument:
    return Instrument.objects.create(
        symbol=symbol,
        title=symbol.title(),
        kind=Instrument.Kind.BINARY,
        tick_size=Decimal("0.01"),
        event=event,
        expires_at=EXPIRY,
        **fields,
    )


def instrument_form(**fields) -> dict:
    """A binary instrument's change-form data, with an empty Listing inline."""
    return {
        "symbol": "TRUMP-WIN",
        "title": "Trump wins 2028",
        "kind": Instrument.Kind.BINARY,
        "status": Instrument.Status.OPEN,
        "tick_size": "0.01",
        "expires_at_0": "2028-11-07",
        "expires_at_1": "00:00:00",
        "listings-TOTAL_FORMS": 0,
        "listings-INITIAL_FORMS": 0,
        **fields,
    }


def test_instrument_added_with_a_listing_is_audited(ops_client, staff, kalshi, election):
    response = ops_client.post(
        reverse("admin:trading_instrument_add"),
        instrument_form(
            event=election.pk,
            **{
                "listings-TOTAL_FORMS": 1,
                "listings-0-venue": kalshi.pk,
                "listings-0-venue_symbol": "KXPRES-28-TRUMP",
                "listings-0-is_active": "on",
            },
        ),
    )
    assert response.status_code == 302, response.content.decode()
    instrument = Instrument.objects.get(symbol="TRUMP-WIN")
    listing = Listing.objects.get(instrument=instrument, venue=kalshi)
    assert listing.venue_symbol == "KXPRES-28-TRUMP"

    added = AuditLog.objects.get(action="add", object_type="trading.Instrument")
    assert added.actor == staff
    assert added.changes["event"] == [None, "pres-2028"]
    assert added.changes["symbol"] == [None, "TRUMP-WIN"]
    listed = AuditLog.objects.get(action="add", object_type="trading.Listing")
    assert listed.object_id == str(listing.pk)
    assert listed.changes["venue_symbol"] == [None, "KXPRES-28-TRUMP"]


def test_changing_an_instruments_event_logs_both_events(ops_client, election):
    fed = EventGroup.objects.create(code="fed-dec-2026", title="Fed decision")
    instrument = binary("TRUMP-WIN", election)
    response = ops_client.post(
        reverse("admin:trading_instrument_change", args=[instrument.pk]),
        instrument_form(event=fed.pk, title=instrument.title),
    )
    assert response.status_code == 302, response.content.decode()
    entry = AuditLog.objects.get(action="change", object_type="trading.Instrument")
    assert entry.changes == {"event": ["pres-2028", "fed-dec-2026"]}


def test_a_market_cannot_be_resolved_by_editing_it(ops_client, election):
    instrument = binary("TRUMP-WIN", election)
    url = reverse("admin:trading_instrument_change", args=[instrument.pk])
    page = ops_client.get(url)
    assertContains(page, 'value="halted"')
    assertNotContains(page, 'value="resolved"')

    response = ops_client.post(url, instrument_form(event=election.pk, status="resolved"))
    assertContains(response, "Select a valid choice.")
    instrument.refresh_from_db()
    assert instrument.status == Instrument.Status.OPEN


def test_invalid_instrument_is_a_form_error_not_a_crash(ops_client):
    response = ops_client.post(reverse("admin:trading_instrument_add"), instrument_form())
    assert response.status_code == 200
    assertContains(response, "instrument_binary_fields")
    assert not Instrument.objects.exists()


def test_instruments_filter_by_kind_and_status(ops_client, election):
    binary("TRUMP-WIN", election)
    binary("NEWSOM-WIN", election, status=Instrument.Status.HALTED)
    Instrument.objects.create(
        symbol="BTC-PERP",
        title="Bitcoin perpetual",
        kind=Instrument.Kind.PERPETUAL,
        tick_size=Decimal("0.5"),
        base_asset="BTC",
        max_leverage=20,
        default_leverage=5,
        maintenance_margin_fraction=Decimal("0.03"),
        funding_interval_hours=8,
    )
    changelist = reverse("admin:trading_instrument_changelist")

    def symbols(**query) -> list[str]:
        result = ops_client.get(changelist, query).context["cl"].result_list
        return [instrument.symbol for instrument in result]

    assert symbols(kind__exact="perpetual") == ["BTC-PERP"]
    assert symbols(kind__exact="binary", status__exact="open") == ["TRUMP-WIN"]
    assert symbols(q="newsom") == ["NEWSOM-WIN"]


def test_price_history_is_read_only_and_recent_first(ops_client, kalshi, election):
    listing = Listing.objects.create(
        instrument=binary("TRUMP-WIN", election), venue=kalshi, venue_symbol="KX"
    )
    prices = {"bid": Decimal("0.40"), "ask": Decimal("0.42"), "twap": Decimal("0.41")}
    older = PriceTick.objects.create(
        listing=listing,
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        is_binary=True,
        mark=Decimal("0.41"),
        **prices,
    )
    newer = PriceTick.objects.create(
        listing=listing,
        ts=datetime(2026, 1, 2, tzinfo=UTC),
        is_binary=True,
        mark=Decimal("0.41"),
        **prices,
    )
    response = ops_client.get(reverse("admin:trading_pricetick_changelist"))
    assert list(response.context["cl"].result_list) == [newer, older]
    assert ops_client.get(reverse("admin:trading_pricetick_add")).status_code == 403
    change_url = reverse("admin:trading_pricetick_change", args=[older.pk])
    assert ops_client.post(change_url, {"mark": "0.9"}).status_code == 403
    older.refresh_from_db()
    assert older.mark == Decimal("0.41")


def test_deleting_is_audited_with_the_values_deleted(ops_client, staff):
    event = EventGroup.objects.create(code="nba-2027", title="NBA Finals 2027")
    response = ops_client.post(
        reverse("admin:trading_eventgroup_delete", args=[event.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not EventGroup.objects.exists()
    entry = AuditLog.objects.get(action="delete", object_type="trading.EventGroup")
    assert entry.actor == staff
    assert entry.object_id == str(event.pk)
    assert entry.changes["code"] == ["nba-2027", None]
    assert entry.changes["title"] == ["NBA Finals 2027", None]


# --- Risk policy ----------------------------------------------------------------


def policy_form(policy: RiskPolicy, *, haircuts: list[dict] | None = None, **fields) -> dict:
    """The policy's change-form data as it stands, with `fields` changed."""
    data = {
        name: str(getattr(policy, name))
        for name in (
            "healthy_threshold",
            "initial_margin_threshold",
            "maintenance_threshold",
            "liquidation_threshold",
            "grace_period_hours",
            "reminder_interval_hours",
            "haircut_uncertainty_a",
            "haircut_expiry_b",
            "haircut_tau0_days",
            "haircut_max",
            "concentration_c",
            "interest_rate_annual",
            "margin_volume_threshold",
            "price_stale_after_seconds",
            "ticket_confirm_fraction",
        )
    }
    existing = list(policy.haircuts.order_by("pk")) if policy.pk else []
    rows = [
        {
            "id": addon.pk,
            "instrument": addon.instrument_id,
            "addon": addon.addon,
            "note": addon.note,
        }
        for addon in existing
    ] + (haircuts or [])
    data |= {
        "haircuts-TOTAL_FORMS": len(rows),
        "haircuts-INITIAL_FORMS": len(existing),
        "haircuts-MIN_NUM_FORMS": 0,
        "haircuts-MAX_NUM_FORMS": 1000,
    }
    for i, row in enumerate(rows):
        data |= {f"haircuts-{i}-{name}": value for name, value in row.items() if value is not None}
    return data | fields


def policy_change(client, policy: RiskPolicy, **kwargs):
    url = reverse("admin:trading_riskpolicy_change", args=[policy.pk])
    return client.post(url, policy_form(policy, **kwargs))


def test_the_risk_policy_list_is_the_one_policy(ops_client):
    policy = risk_policy_get()
    response = ops_client.get(reverse("admin:trading_riskpolicy_changelist"))
    assert response.status_code == 302
    assert response.url == reverse("admin:trading_riskpolicy_change", args=[policy.pk])
    page = ops_client.get(response.url)
    assertContains(page, "Margin Health thresholds")
    assertContains(page, "Instrument haircut add-ons")
    # One policy: no second one, and it cannot be deleted.
    assertNotContains(page, reverse("admin:trading_riskpolicy_delete", args=[policy.pk]))
    assert ops_client.get(reverse("admin:trading_riskpolicy_add")).status_code == 403
    delete = reverse("admin:trading_riskpolicy_delete", args=[policy.pk])
    assert ops_client.post(delete, {"post": "yes"}).status_code == 403
    assert RiskPolicy.objects.count() == 1


def test_without_a_policy_the_list_shows_the_defaults(ops_client):
    assert not RiskPolicy.objects.exists()
    response = ops_client.get(reverse("admin:trading_riskpolicy_changelist"))
    policy = RiskPolicy.objects.get()
    assert response.url == reverse("admin:trading_riskpolicy_change", args=[policy.pk])
    assert ops_client.get(reverse("admin:trading_riskpolicy_add")).status_code == 403


def test_the_policy_is_read_only_here_with_a_link_to_propose_a_change(ops_client):
    """Changes go through /ops/risk-policy/ (preview, then four eyes): the admin's
    form shows the values, formatted, and saving it changes none of them."""
    policy = risk_policy_get()
    url = reverse("admin:trading_riskpolicy_change", args=[policy.pk])
    page = ops_client.get(url)
    assertContains(page, "Propose a change")
    assertContains(page, f'href="{reverse("ops_risk_policy")}"')
    text = page.content.decode()
    for shown in ("1.50", "0.90", "8%", "1,000,000.00 USDC", "10%", "24 hours"):
        assert shown in text, shown
    for raw in ("1.500000", "0.080000", "1000000.000000"):
        assert raw not in text, raw
    assertNotContains(page, 'name="healthy_threshold"')

    response = policy_change(ops_client, policy, haircut_max="0.90", grace_period_hours="12")
    assert response.status_code == 302, response.content.decode()
    fresh = RiskPolicy.objects.get()
    assert (fresh.haircut_max, fresh.grace_period_hours) == (Decimal("0.95"), 24)
    assert margin_params_get().h_max == 0.95
    assert not AuditLog.objects.filter(object_type="trading.RiskPolicy").exists()


def test_an_unchanged_policy_save_writes_no_audit_entry(ops_client):
    policy = risk_policy_get()
    assert policy_change(ops_client, policy).status_code == 302
    assert not AuditLog.objects.filter(object_type="trading.RiskPolicy").exists()


def test_instrument_haircut_add_ons_are_edited_inline_and_audited(ops_client, staff, election):
    policy = risk_policy_get()
    instrument = binary("TRUMP-WIN", election)
    response = policy_change(
        ops_client,
        policy,
        haircuts=[{"instrument": instrument.pk, "addon": "0.05", "note": "Thin book"}],
    )
    assert response.status_code == 302, response.content.decode()
    addon = InstrumentHaircut.objects.get(instrument=instrument)
    assert (addon.policy, addon.addon, addon.note) == (policy, Decimal("0.05"), "Thin book")
    added = AuditLog.objects.get(action="add", object_type="trading.InstrumentHaircut")
    assert added.actor == staff
    assert added.changes["addon"] == [None, "0.05"]
    assert added.changes["instrument"] == [None, "TRUMP-WIN"]

    form = policy_form(policy)
    form["haircuts-0-addon"] = "0.08"
    url = reverse("admin:trading_riskpolicy_change", args=[policy.pk])
    assert ops_client.post(url, form).status_code == 302
    changed = AuditLog.objects.get(action="change", object_type="trading.InstrumentHaircut")
    assert changed.changes == {"addon": ["0.050000", "0.08"]}

    form = policy_form(policy)
    form["haircuts-0-DELETE"] = "on"
    assert ops_client.post(url, form).status_code == 302
    assert not InstrumentHaircut.objects.exists()
    deleted = AuditLog.objects.get(action="delete", object_type="trading.InstrumentHaircut")
    assert deleted.changes["addon"] == ["0.080000", None]


def test_an_add_on_above_one_is_refused(ops_client, election):
    policy = risk_policy_get()
    instrument = binary("TRUMP-WIN", election)
    response = policy_change(
        ops_client, policy, haircuts=[{"instrument": instrument.pk, "addon": "1.5"}]
    )
    assert response.status_code == 200
    assertContains(response, "A haircut add-on lies between 0 and 1.")
    assert not InstrumentHaircut.objects.exists()


# --- Margin records are read-only ------------------------------------------------


@pytest.fixture
def liquidated(markets, quote_store, monkeypatch):
    """A borrower whose margin call opened at health ≈ 0.93, then liquidated at ≈ 0.65,
    all through the real services; the engine's sweep stored its snapshot."""
    margin_keys_clear()
    capture_outbox_sends(monkeypatch)
    tick(bid="0.60")
    account = borrower(markets.trump)
    MarginEngine(publish=False).sweep()
    tick(bid="0.15")
    (state,) = margin_calls_sync(account_ids=[account.pk])
    tick(bid="0.10")
    liquidation = account_liquidate(
        account_id=account.pk,
        reason=Liquidation.Reason.BELOW_THRESHOLD,
        margin_call_id=state.open_call.pk,
    )
    assert liquidation is not None and liquidation.steps
    return liquidation


@pytest.mark.parametrize("model", [Position, MarginSnapshot, MarginCall, Liquidation])
def test_margin_records_are_read_only_even_for_superusers(ops_client, staff, liquidated, model):
    assert staff.is_superuser
    obj = model.objects.filter(account=liquidated.account).order_by("pk").first()
    name = f"admin:trading_{model._meta.model_name}"
    changelist = ops_client.get(reverse(f"{name}_changelist"))
    assert changelist.status_code == 200
    assert obj in changelist.context["cl"].result_list
    assertNotContains(changelist, reverse(f"{name}_add"))
    assert ops_client.get(reverse(f"{name}_add")).status_code == 403
    change_url = reverse(f"{name}_change", args=[obj.pk])
    page = ops_client.get(change_url)
    assert page.status_code == 200
    assertNotContains(page, 'name="_save"')
    assert ops_client.post(change_url, {"status": "resolved"}).status_code == 403
    assert (
        ops_client.post(reverse(f"{name}_delete", args=[obj.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert model.objects.filter(pk=obj.pk).exists()


def test_a_liquidation_shows_its_sales_as_a_table(ops_client, liquidated):
    page = ops_client.get(reverse("admin:trading_liquidation_change", args=[liquidated.pk]))
    (step,) = liquidated.steps
    journal_url = reverse("admin:accounts_journal_change", args=[step["journal_id"]])
    assertContains(page, "<th>Quantity sold</th>", html=True)
    assertContains(
        page,
        f"<tr><td>TRUMP-WIN YES</td><td>{step['venue']}</td><td>{step['order_id']}</td>"
        f"<td>{step['quantity']}</td><td>{step['average_price']}</td><td>{step['proceeds']}</td>"
        f"<td>{step['fees']}</td><td>{step['remaining']}</td>"
        f'<td><a href="{journal_url}">J{step["journal_id"]}</a></td></tr>',
        html=True,
    )


def test_a_margin_call_lists_its_liquidations(ops_client, liquidated):
    call = liquidated.margin_call
    page = ops_client.get(reverse("admin:trading_margincall_change", args=[call.pk]))
    assertContains(page, reverse("admin:trading_liquidation_change", args=[liquidated.pk]))
    assertContains(page, "Health below the liquidation threshold")


def test_margin_calls_filter_by_status_and_search_by_account(ops_client, liquidated):
    changelist = reverse("admin:trading_margincall_changelist")
    status = liquidated.margin_call.status

    def listed(**query) -> list[MarginCall]:
        return list(ops_client.get(changelist, query).context["cl"].result_list)

    assert listed(status__exact=status) == [liquidated.margin_call]
    other = "open" if status != "open" else "resolved"
    assert listed(status__exact=other) == []
    assert listed(q=liquidated.account.public_id) == [liquidated.margin_call]
    assert listed(q="acct_nobody") == []


def test_positions_filter_open_or_closed(ops_client, liquidated, markets):
    changelist = reverse("admin:trading_position_changelist")
    position = Position.objects.get(account=liquidated.account)
    remaining = Decimal(liquidated.steps[-1]["remaining"])

    def listed(**query) -> list[Position]:
        return list(ops_client.get(changelist, query).context["cl"].result_list)

    assert listed(open="yes" if remaining else "no") == [position]
    assert listed(open="no" if remaining else "yes") == []
    assert listed(q="TRUMP-WIN", instrument__kind__exact="binary") == [position]
    assert listed(instrument__kind__exact="perpetual") == []


# --- Orders and fills are read-only ----------------------------------------------


@pytest.fixture
def executed(quote_store) -> Order:
    """A filled market order on ELECT, through the real execute service."""
    no_commission()
    market()
    account = trader("1000")
    order = order_execute(
        account=account,
        symbol="ELECT",
        side="buy",
        notional_usdc=Decimal("60"),
        client_order_id="c-1",
    )
    assert order.status == Order.Status.FILLED
    return order


@pytest.mark.parametrize("model", [Order, Fill])
def test_orders_and_fills_are_listed_and_read_only(ops_client, executed, model):
    obj = executed if model is Order else executed.fills.get()
    name = f"admin:trading_{model._meta.model_name}"
    changelist = ops_client.get(reverse(f"{name}_changelist"))
    assert changelist.status_code == 200
    assert list(changelist.context["cl"].result_list) == [obj]
    assertContains(changelist, obj.public_id)
    assertNotContains(changelist, reverse(f"{name}_add"))
    assert ops_client.get(reverse(f"{name}_add")).status_code == 403
    assert ops_client.post(reverse(f"{name}_add"), {"side": "sell"}).status_code == 403
    change_url = reverse(f"{name}_change", args=[obj.pk])
    page = ops_client.get(change_url)
    assert page.status_code == 200
    assertNotContains(page, 'name="_save"')
    assert ops_client.post(change_url, {"side": "sell"}).status_code == 403
    delete_url = reverse(f"{name}_delete", args=[obj.pk])
    assert ops_client.post(delete_url, {"post": "yes"}).status_code == 403
    obj.refresh_from_db()
    assert obj.side == "buy"


def test_orders_filter_and_search(ops_client, executed):
    changelist = reverse("admin:trading_order_changelist")

    def listed(**query) -> list[Order]:
        response = ops_client.get(changelist, query)
        assert response.status_code == 200
        return list(response.context["cl"].result_list)

    venue = executed.venue
    assert listed(status__exact="filled", order_type__exact="market") == [executed]
    assert listed(venue__id__exact=venue.pk) == [executed]
    assert listed(status__exact="open") == []
    assert listed(q=executed.public_id) == [executed]
    assert listed(q="c-1") == [executed]
    assert listed(q=executed.account.public_id) == [executed]
    assert listed(q=executed.account.owner.email) == [executed]
    assert listed(q="nobody@example.com") == []

    fills = reverse("admin:trading_fill_changelist")
    fill = executed.fills.get()
    found = ops_client.get(fills, {"q": executed.public_id}).context["cl"].result_list
    assert list(found) == [fill]


@pytest.mark.parametrize("name", ["order", "fill"])
def test_order_and_fill_lists_do_not_query_per_row(ops_client, executed, name):
    changelist = reverse(f"admin:trading_{name}_changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert ops_client.get(changelist).status_code == 200
        return len(captured)

    one = queries()
    for _ in range(3):
        order_execute(
            account=trader("1000"), symbol="ELECT", side="buy", notional_usdc=Decimal("6")
        )
    assert queries() == one


# --- Fee policy ---------------------------------------------------------------------


def fee_policy_form(policy: FeePolicy, *, schedules: list[dict] | None = None, **fields) -> dict:
    existing = list(policy.venue_fees.order_by("pk"))
    rows = [
        {
            "id": schedule.pk,
            "venue": schedule.venue_id,
            "model": schedule.model,
            "kalshi_rate": schedule.kalshi_rate,
            "taker_bps": schedule.taker_bps,
            "maker_bps": schedule.maker_bps,
        }
        for schedule in existing
    ] + (schedules or [])
    data = {
        "broker_commission_bps": str(policy.broker_commission_bps),
        "venue_fees-TOTAL_FORMS": len(rows),
        "venue_fees-INITIAL_FORMS": len(existing),
        "venue_fees-MIN_NUM_FORMS": 0,
        "venue_fees-MAX_NUM_FORMS": 1000,
    }
    for i, row in enumerate(rows):
        data |= {f"venue_fees-{i}-{key}": value for key, value in row.items()}
    return data | fields


def test_the_fee_policy_list_is_the_one_policy_created_on_first_visit(ops_client):
    FeePolicy.objects.all().delete()
    response = ops_client.get(reverse("admin:trading_feepolicy_changelist"))
    policy = FeePolicy.objects.get()
    assert (policy.pk, policy.broker_commission_bps) == (1, Decimal(10))
    assert response.url == reverse("admin:trading_feepolicy_change", args=[policy.pk])
    page = ops_client.get(response.url)
    assertContains(page, "Venue fee schedules")
    assertNotContains(page, reverse("admin:trading_feepolicy_delete", args=[policy.pk]))
    assert ops_client.get(reverse("admin:trading_feepolicy_add")).status_code == 403
    delete = reverse("admin:trading_feepolicy_delete", args=[policy.pk])
    assert ops_client.post(delete, {"post": "yes"}).status_code == 403
    assert ops_client.get(reverse("admin:trading_feepolicy_changelist")).status_code == 302
    assert FeePolicy.objects.count() == 1


def test_fee_policy_edits_and_venue_schedules_are_audited(ops_client, staff, kalshi):
    policy = fee_policy_get()
    url = reverse("admin:trading_feepolicy_change", args=[policy.pk])
    response = ops_client.post(
        url,
        fee_policy_form(
            policy,
            broker_commission_bps="25",
            schedules=[
                {
                    "venue": kalshi.pk,
                    "model": VenueFeeSchedule.Model.KALSHI,
                    "kalshi_rate": "0.07",
                    "taker_bps": "0",
                    "maker_bps": "0",
                }
            ],
        ),
    )
    assert response.status_code == 302, response.content.decode()
    policy.refresh_from_db()
    assert policy.broker_commission_bps == Decimal(25)
    schedule = VenueFeeSchedule.objects.get(venue=kalshi)
    assert (schedule.policy, schedule.model) == (policy, VenueFeeSchedule.Model.KALSHI)

    changed = AuditLog.objects.get(action="change", object_type="trading.FeePolicy")
    assert changed.actor == staff
    assert set(changed.changes) == {"broker_commission_bps"}
    assert Decimal(changed.changes["broker_commission_bps"][0]) == 10
    assert Decimal(changed.changes["broker_commission_bps"][1]) == 25
    added = AuditLog.objects.get(action="add", object_type="trading.VenueFeeSchedule")
    assert added.changes["venue"] == [None, "kalshi"]
    assert added.changes["model"] == [None, "kalshi"]

    form = fee_policy_form(policy)
    form["venue_fees-0-model"] = VenueFeeSchedule.Model.BPS
    form["venue_fees-0-taker_bps"] = "12"
    assert ops_client.post(url, form).status_code == 302
    edited = AuditLog.objects.get(action="change", object_type="trading.VenueFeeSchedule")
    assert set(edited.changes) == {"model", "taker_bps"}
    assert not AuditLog.objects.filter(action="change", object_type="trading.FeePolicy").exclude(
        pk=changed.pk
    )


def test_a_negative_venue_fee_is_refused(ops_client, kalshi):
    policy = fee_policy_get()
    url = reverse("admin:trading_feepolicy_change", args=[policy.pk])
    bad = {"venue": kalshi.pk, "model": "bps", "kalshi_rate": "0.07", "taker_bps": "-1"}
    response = ops_client.post(url, fee_policy_form(policy, schedules=[bad | {"maker_bps": "0"}]))
    assert response.status_code == 200
    assert not VenueFeeSchedule.objects.exists()


# --- Perps: leverage settings and funding payments are read-only ----------------------


@pytest.mark.parametrize("model", [LeverageSetting, FundingPayment])
def test_perp_records_are_read_only(ops_client, markets, model):
    name = f"admin:trading_{model._meta.model_name}"
    setting = LeverageSetting.objects.create(
        account=trader("100"), instrument=markets.btc, leverage=3
    )
    response = ops_client.get(reverse(f"{name}_changelist"))
    assert response.status_code == 200
    if model is LeverageSetting:
        assert list(response.context["cl"].result_list) == [setting]
        change_url = reverse(f"{name}_change", args=[setting.pk])
        assert ops_client.get(change_url).status_code == 200
        assert ops_client.post(change_url, {"leverage": "10"}).status_code == 403
        setting.refresh_from_db()
        assert setting.leverage == 3
    assert ops_client.get(reverse(f"{name}_add")).status_code == 403


# --- Resolving a market -------------------------------------------------------------


def resolve(client, instruments, **data):
    return client.post(
        reverse("admin:trading_instrument_changelist"),
        {
            "action": "resolve_market",
            ACTION_CHECKBOX_NAME: [instrument.pk for instrument in instruments],
            **data,
        },
        follow=True,
    )


def test_resolving_a_market_confirms_then_settles_once(
    ops_client, staff, election, monkeypatch, django_capture_on_commit_callbacks
):
    sent = capture_outbox_sends(monkeypatch)
    instrument = binary("TRUMP-WIN", election)

    page = run_action(
        ops_client, "admin:trading_instrument_changelist", "resolve_market", [instrument]
    )
    assertContains(page, "This market will resolve with the outcome chosen below")
    assertContains(page, 'value="void"')
    instrument.refresh_from_db()
    assert instrument.status == Instrument.Status.OPEN

    unconfirmed = resolve(ops_client, [instrument], resolve="yes", resolution="yes")
    assertContains(unconfirmed, "This field is required.")
    instrument.refresh_from_db()
    assert instrument.status == Instrument.Status.OPEN
    assert not AuditLog.objects.filter(action="instrument.resolve").exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = resolve(ops_client, [instrument], resolve="yes", resolution="yes", confirm="on")
    assertContains(done, "TRUMP-WIN resolved YES")
    assertContains(done, "settlement is queued")
    instrument.refresh_from_db()
    assert instrument.status == Instrument.Status.RESOLVED
    assert instrument.resolution == Instrument.Resolution.YES
    assert instrument.resolved_at is not None
    entry = AuditLog.objects.get(action="instrument.resolve")
    assert entry.actor == staff
    assert entry.object_id == str(instrument.pk)
    assert entry.changes["resolution"] == ["", "yes"]
    assert sent.named("trading.market_settle") == [{"instrument_id": instrument.pk}]

    again = resolve(ops_client, [instrument], resolve="yes", resolution="no", confirm="on")
    assert again.status_code == 200
    assertContains(again, "TRUMP-WIN has already resolved YES.")
    instrument.refresh_from_db()
    assert instrument.resolution == Instrument.Resolution.YES
    assert AuditLog.objects.filter(action="instrument.resolve").count() == 1


def test_perpetuals_and_several_markets_are_refused(ops_client, markets, election):
    refused = resolve(ops_client, [markets.btc])
    assertContains(refused, "BTC-PERP is a perpetual: only binary markets resolve.")
    assertNotContains(refused, "This market will resolve")
    confirmed = resolve(ops_client, [markets.btc], resolve="yes", resolution="yes", confirm="on")
    assertContains(confirmed, "only binary markets resolve")

    other = binary("NEWSOM-WIN", election)
    several = resolve(ops_client, [markets.trump, other])
    assertContains(several, "Select exactly one market to resolve")
    assert not Instrument.objects.filter(status=Instrument.Status.RESOLVED).exists()
    assert not AuditLog.objects.filter(action="instrument.resolve").exists()
