"""The margin dashboard page and its JSON snapshot: the figures are the API's."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from tests.api.conftest import client_for, key_issue
from tests.factories import open_account
from tests.trading.quoting import put_quote
from tests.web.dashboard_fixtures import (
    BTC,
    TRUMP,
    borrower,
    page_fields,
    row_values,
    signed_in,
    trader,
)
from trading.models import MarginCall, MarginSnapshot
from trading.selectors import margin_summary_get

pytestmark = pytest.mark.django_db


SUMMARY_FIELDS = (
    "deposit",
    "cash",
    "used_margin",
    "adjusted_equity",
    "available_margin",
    "health",
    "margin_utilization",
    "collateral_value",
    "diversification",
)


def api_margin(account: Account) -> dict:
    response = client_for(key_issue([account])).get("/v1/intelligence/margin")
    assert response.status_code == 200
    return response.json()


def test_the_dashboard_needs_a_signed_in_user(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert "next=/dashboard/" in response["Location"]


def test_the_page_shows_the_apis_figures(markets):
    account = borrower()
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    api = api_margin(account)

    shown = page_fields(html)
    for name in SUMMARY_FIELDS:
        assert shown[name] == api[name]
    assert Decimal(api["used_margin"]) > 0  # the scenario borrows
    assert shown["status"] == api["status"] == "healthy"
    # The four headline figures are written as people read them, too.
    assert f">{Decimal(api['adjusted_equity']).quantize(Decimal('0.01')):,} USDC<" in html

    rows = row_values(html, "breakdown-rows")
    assert [row["contribution"] for row in rows] == [
        row["contribution"] for row in api["breakdown"]
    ]
    contributions = [Decimal(row["contribution"]) for row in rows]
    assert contributions == sorted(contributions, reverse=True)  # largest first
    assert [row["value"] for row in rows] == [row["value"] for row in api["breakdown"]]
    assert [row["haircut"] for row in rows] == [row["haircut"] for row in api["breakdown"]]


def test_the_page_lists_the_perp_with_its_leverage_margin_and_liquidation_price(markets):
    account = borrower()
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    (perp,) = row_values(html, "perp-rows")
    positions = client_for(key_issue([account])).get("/v1/intelligence/positions").json()
    api = next(p for p in positions["positions"] if p["symbol"] == BTC)
    assert perp["side"] == api["side"] == "long"
    assert perp["quantity"] == api["quantity"]
    assert perp["leverage"] == str(api["leverage"]) == "5"
    assert perp["isolated_margin"] == api["isolated_margin"]
    assert perp["liquidation_price"] == api["liquidation_price"]
    assert perp["pnl"] == api["pnl"]


def test_the_snapshot_is_the_apis_margin_and_the_selectors(markets):
    account = borrower()
    snapshot = signed_in(account).get(reverse("dashboard-snapshot", args=[account.public_id]))
    assert snapshot.status_code == 200
    assert (
        snapshot["Cache-Control"].startswith("no-store") or "no-cache" in snapshot["Cache-Control"]
    )
    body = snapshot.json()
    api = api_margin(account)
    for name in SUMMARY_FIELDS:
        assert body["summary"][name] == api[name]
    summary = margin_summary_get(account=Account.objects.get(pk=account.pk))
    assert Decimal(body["summary"]["adjusted_equity"]) == summary.adjusted_equity
    assert Decimal(body["summary"]["used_margin"]) == summary.used_margin
    assert Decimal(body["summary"]["health"]) == summary.health
    assert [row["position_id"] for row in body["breakdown"]] == [
        row.position_id for row in summary.breakdown
    ]
    assert {row["symbol"] for row in body["breakdown"]} == {TRUMP, "FED-CUT:NO"}
    assert [perp["symbol"] for perp in body["perps"]] == [BTC]
    assert body["thresholds"] == {
        "healthy": "1.5",
        "initial": "1.2",
        "maintenance": "1.0",
        "liquidation": "0.9",
    }
    assert body["margin_call"] is None
    assert body["account"]["id"] == account.public_id


def test_without_borrowing_health_is_unbounded_and_says_so(markets):
    account = trader("1000")
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    shown = page_fields(html)
    assert shown["used_margin"] == "0.000000"
    assert shown["health"] == ""  # unbounded: the API's null
    assert "No borrowing" in html
    assert 'data-borrowing="false"' in html


def test_a_non_custodial_account_gets_the_risk_view_without_trading(markets):
    account = open_account(kind=Account.Kind.NON_CUSTODIAL)
    client = signed_in(account)
    html = client.get(reverse("dashboard")).content.decode()
    assert 'id="position-breakdown"' in html
    assert "<h1>Portfolio risk</h1>" in html and "Available Margin" not in html
    assert 'id="order-form"' not in html and 'id="leverage"' not in html
    body = client.get(reverse("dashboard-snapshot", args=[account.public_id])).json()
    assert body["account"]["custodial"] is False
    assert body["summary"]["borrowing"] is False
    assert body["summary"]["health"] is None


def test_the_snapshot_of_another_users_account_is_not_found(markets):
    mine, theirs = trader("10"), trader("20")
    client = signed_in(mine)
    for account_id in (theirs.public_id, "acct_unknown"):
        response = client.get(reverse("dashboard-snapshot", args=[account_id]))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert "20.000000" not in response.content.decode()


def test_the_snapshot_needs_a_session(client, markets):
    account = trader("10")
    response = client.get(reverse("dashboard-snapshot", args=[account.public_id]))
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_the_page_shows_the_account_chosen_with_the_switcher(markets):
    first = trader("100")
    second = trader("200", owner=first.owner)
    client = signed_in(first)
    session = client.session
    session["account_public_id"] = second.public_id
    session.save()
    html = client.get(reverse("dashboard")).content.decode()
    assert f'data-account-id="{second.public_id}"' in html
    assert page_fields(html)["cash"] == "200.000000"
    assert f"/ws/dashboard/{second.public_id}/" in html


def test_an_open_margin_call_shows_the_banner(markets):
    account = borrower()
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    assert 'data-margin-call="none"' in html
    MarginCall.objects.create(
        account=account,
        health_at_open=Decimal("0.95"),
        lowest_health=Decimal("0.95"),
        used_margin_at_open=Decimal("100"),
        adjusted_equity_at_open=Decimal("95"),
    )
    client = signed_in(account)
    html = client.get(reverse("dashboard")).content.decode()
    assert 'data-margin-call="open"' in html
    banner = html.split('id="margin-call-banner"', 1)[1].split("</div>", 1)[0]
    assert "hidden" not in banner.split(">", 1)[0]
    body = client.get(reverse("dashboard-snapshot", args=[account.public_id])).json()
    assert body["margin_call"]["status"] == "open"
    assert body["margin_call"]["health_at_open"] == "0.950000"


def test_the_health_history_is_the_accounts_snapshots_oldest_first(markets):
    account = trader("100")
    other = trader("100")
    now = timezone.now()
    for minutes, health in ((30, "2.5"), (10, "1.4"), (20, None)):
        MarginSnapshot.objects.create(
            account=account,
            ts=now - timedelta(minutes=minutes),
            cash=Decimal("-10"),
            used_margin=Decimal("10"),
            adjusted_equity=Decimal("14"),
            health=None if health is None else Decimal(health),
            status="healthy",
        )
    MarginSnapshot.objects.create(
        account=other,
        ts=now,
        cash=Decimal(0),
        used_margin=Decimal(0),
        adjusted_equity=Decimal(0),
        status="healthy",
    )
    MarginSnapshot.objects.create(  # older than the chart's window
        account=account,
        ts=now - timedelta(days=45),
        cash=Decimal(0),
        used_margin=Decimal(0),
        adjusted_equity=Decimal(0),
        status="healthy",
    )
    client = signed_in(account)
    history = client.get(reverse("dashboard-snapshot", args=[account.public_id])).json()["history"]
    assert [point["health"] for point in history] == ["2.500000", None, "1.400000"]
    html = client.get(reverse("dashboard")).content.decode()
    assert 'id="health-chart"' in html and 'data-points="3"' in html


def test_the_page_carries_what_its_script_needs(markets):
    account = trader("100")
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    assert 'id="live-status"' in html and 'data-socket="connecting"' in html
    assert 'id="dashboard-config"' in html and 'id="dashboard-snapshot"' in html
    assert "/static/js/dashboard.js" in html and "/static/js/trading-forms.js" in html
    assert "csrfmiddlewaretoken" in html
    assert 'id="margin-call-banner"' in html


def test_a_user_without_accounts_sees_a_message(client, db):
    from tests.factories import UserFactory

    user = UserFactory()
    client.force_login(user)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert "no account" in response.content.decode().lower()


def test_delayed_prices_show_a_banner_and_the_snapshot_says_since_when(markets):
    account = borrower()
    client = signed_in(account)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'id="prices-banner"' in page and 'data-stale="false"' in page
    body = client.get(reverse("dashboard-snapshot", args=[account.public_id])).json()
    assert body["prices"] == {
        "stale": False,
        "stale_since": None,
        "stale_after_seconds": 15,
        "symbols": [],
    }

    # The feed stopped 20 s ago: every quote is as old.
    put_quote(f"{TRUMP}@kalshi", bid="0.59", ask="0.60", age=20)
    put_quote(f"{TRUMP}@polymarket", bid="0.60", ask="0.61", age=20)
    put_quote("FED-CUT@kalshi", bid="0.29", ask="0.30", age=20)
    put_quote(f"{BTC}@leviathan", bid="50000", ask="50001", binary=False, step="1", age=20)
    body = client.get(reverse("dashboard-snapshot", args=[account.public_id])).json()
    assert body["prices"]["stale"] is True
    assert body["prices"]["symbols"] == [BTC, "FED-CUT:NO", TRUMP]
    since = timezone.now() - datetime.fromisoformat(body["prices"]["stale_since"])
    assert timedelta(seconds=20) <= since < timedelta(seconds=25)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'data-stale="true"' in page
    assert "Prices delayed" in page and "BTC-PERP, FED-CUT:NO, TRUMP-WIN" in page
