"""Ops console for venues, events, instruments, listings and prices."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from accounts.models import AuditLog
from tests.accounts.test_admin import login_ops
from trading.models import EventGroup, Instrument, Listing, PriceTick, Venue

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
