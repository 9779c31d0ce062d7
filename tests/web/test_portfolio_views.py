"""Issue 18 (helper D): the non-custodial "Portfolio risk" view, link status wherever an
account is named, the accounts overview and its totals, the gauge's off-scale markers,
the equity series, the dashboard tables' formats and the Linked page's "Sync now" status."""

import json
import re
import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, LinkedCredential, OutboxItem
from portal import format as fmt
from tests.conftest import credit_cash
from tests.factories import UserFactory, open_account
from tests.web.dashboard_fixtures import (
    TRUMP,
    borrower,
    buy,
    page_fields,
    row_values,
    signed_in,
    trader,
)
from trading.enqueue import linked_account_sync_key
from trading.models import MarginSnapshot, Position
from trading.selectors import margin_summary_get
from trading.web.figures import gauge_out, history_get

pytestmark = pytest.mark.django_db
D = Decimal


def wallet(owner=None, *, status="active", cash=None, error="") -> Account:
    """A linked Polymarket wallet (non-custodial) holding 1,000 TRUMP-WIN YES."""
    account = open_account(owner=owner, kind=Account.Kind.NON_CUSTODIAL, name="PM wallet")
    LinkedCredential.objects.create(
        account=account,
        venue=LinkedCredential.Venue.POLYMARKET,
        identity="0x" + "ab" * 20,
        status=status,
        cash_balance=cash,
        last_error=error,
        last_synced_at=timezone.now() - timedelta(minutes=5),
    )
    Position.objects.create(
        account=account,
        instrument=markets_instrument(TRUMP),
        outcome="yes",
        quantity=D("1000"),
        average_price=D("0.50"),
    )
    return account


def markets_instrument(symbol):
    from trading.models import Instrument

    return Instrument.objects.get(symbol=symbol)


def visible(html: str) -> str:
    """The page's own content (after the header and menu) without its scripts' JSON:
    the words a person reads about the account."""
    main = html.split("</header>", 1)[-1]
    return re.sub(r"<script[^>]*>.*?</script>", "", main, flags=re.S)


# --- Portfolio risk ---------------------------------------------------------------------


def test_a_linked_wallet_gets_portfolio_risk_words_not_margin_words(markets):
    account = wallet(status="failing", error="Polymarket did not answer.")
    client = signed_in(account)
    html = client.get(reverse("dashboard")).content.decode()
    text = visible(html)
    assert "<title>Portfolio risk" in html and "<h1>Portfolio risk</h1>" in text
    for word in (
        "Margin dashboard",
        "Available Margin",
        "Used Margin",
        "Add funds",
        "Margin Health",
        "borrow",
        "Deposit",
        "margin call",
    ):
        assert word.lower() not in text.lower(), word
    # Venue cash is unknown for a wallet without CLOB keys: said so, never "0.00".
    assert "not reported by the venue" in text
    fields = page_fields(html)
    assert fields["venue_cash"] == ""
    summary = margin_summary_get(account=account)
    assert fields["collateral_value"] == f"{summary.collateral_value:.6f}"
    assert D(fields["collateral_value"]) > 0
    # The link's status in the header, as the Linked page shows it.
    assert 'data-link-status="failing"' in text and ">Failing<" in text
    assert "Polymarket did not answer." in text
    # No gauge, so infinite health is never drawn as 3.
    assert 'id="health-gauge"' not in html and 'id="health-chart"' not in html
    assert 'id="equity-chart"' in html


def test_a_custodial_account_keeps_the_margin_dashboard(markets):
    account = trader("1000")
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    assert "<h1>Margin dashboard</h1>" in html and "Available Margin" in html
    assert 'id="health-gauge"' in html and 'id="equity-chart"' in html


# --- The gauge ----------------------------------------------------------------------------


def test_the_gauge_marks_unbounded_health_and_health_above_its_scale(markets):
    cash_only = trader("1000")
    html = signed_in(cash_only).get(reverse("dashboard")).content.decode()
    assert re.search(r'id="margin-health"[^>]*data-gauge="unbounded"', html)
    assert 'data-field="gauge_marker" data-value="unbounded"' in html
    assert "∞ — no borrowing" in visible(html)

    small_loan = trader("1000")
    buy(small_loan, TRUMP, "1050")  # borrows ~50 against ~1,000 of collateral
    health = margin_summary_get(account=small_loan).health
    assert health is not None and health >= 3
    html = signed_in(small_loan).get(reverse("dashboard")).content.decode()
    assert re.search(r'id="margin-health"[^>]*data-gauge="above"', html)
    assert 'data-field="gauge_marker" data-value="above"' in html
    assert "≥ 3.0" in visible(html)


def test_gauge_states():
    assert gauge_out(health=None, borrowing=False)["state"] == "unbounded"
    assert gauge_out(health=D("3.8"), borrowing=False)["state"] == "unbounded"
    assert gauge_out(health=D("3.8"), borrowing=True) == {
        "state": "above",
        "marker": "≥ 3.0",
        "max": "3",
    }
    assert gauge_out(health=D("3"), borrowing=True)["state"] == "above"
    assert gauge_out(health=D("1.4"), borrowing=True)["state"] == "scale"


# --- Tables -----------------------------------------------------------------------------


def test_the_tables_show_cents_signed_pnl_and_no_currency_in_cells(markets):
    account = borrower()
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    body = html.split('id="breakdown-rows"', 1)[1].split("</tbody>", 1)[0]
    assert "USDC" not in body
    assert re.search(r'data-field="collateral_price"[^>]*>\d+(\.\d+)?¢<', body)
    assert re.search(r'data-field="side" data-value="no">NO<', body)
    pnl = re.findall(
        r'class="num pnl sign-(\w+)" data-field="pnl" data-value="([^"]*)">([^<]*)<', body
    )
    assert pnl
    for sign, value, text in pnl:
        expected = "zero" if D(value) == 0 else "positive" if D(value) > 0 else "negative"
        assert sign == expected
        assert text.startswith("-" if D(value) < 0 else "+") or sign == "zero"
    assert "Value (USDC)" in html and "P&amp;L (USDC)" in html
    perps = html.split('id="perp-rows"', 1)[1].split("</tbody>", 1)[0]
    assert "USDC" not in perps
    assert [row["side"] for row in row_values(html, "perp-rows")] == ["long"]


# --- Equity and P&L series ----------------------------------------------------------------


def test_equity_change_over_time_does_not_count_a_deposit_as_a_gain(markets):
    account = trader("1000")  # the opening deposit, before the chart's first point

    def point(equity: str) -> None:  # a snapshot now (the ledger's times are real)
        MarginSnapshot.objects.create(
            account=account,
            ts=timezone.now(),
            cash=D(equity),
            used_margin=0,
            adjusted_equity=D(equity),
            health=None,
            status="healthy",
        )

    point("1000")
    point("1010")  # +10 from the market
    credit_cash(account, "500")  # a deposit between the points
    point("1515")  # after the deposit: +15 from the market in all
    history = history_get(account=account)
    assert [p["net_deposits"] for p in history] == ["1000.000000", "1000.000000", "1500.000000"]
    assert [p["equity_change"] for p in history] == ["0.000000", "10.000000", "15.000000"]


def test_a_linked_account_has_no_deposit_based_change(markets):
    account = wallet()
    MarginSnapshot.objects.create(
        account=account, cash=0, used_margin=0, adjusted_equity=D("400"), status="healthy"
    )
    (only,) = history_get(account=account)
    assert only["equity_change"] is None and only["net_deposits"] is None


# --- Accounts overview and link status ---------------------------------------------------


def test_the_accounts_page_totals_are_the_sum_of_each_accounts_figures(markets):
    main = borrower()
    owner = main.owner
    second = trader("250", owner=owner)
    linked = wallet(owner, status="failing", cash=D("75.5"), error="Polymarket did not answer.")
    stranger = trader("999", owner=UserFactory())
    client = Client()
    client.force_login(owner)
    html = client.get(reverse("account_list")).content.decode()
    assert stranger.public_id not in html  # another user's account is never shown

    def row(account):
        chunk = html.split(f'data-account-id="{account.public_id}"', 1)[1].split("</tr>", 1)[0]
        return chunk, {
            m[1]: m[2] for m in re.finditer(r'data-field="(\w+)" data-value="([^"]*)"', chunk)
        }

    summaries = {a.pk: margin_summary_get(account=a) for a in (main, second, linked)}
    equity = sum(s.adjusted_equity for s in summaries.values())
    rows = {a.pk: row(a) for a in (main, second, linked)}
    for account in (main, second, linked):
        _, values = rows[account.pk]
        assert D(values["adjusted_equity"]) == summaries[account.pk].adjusted_equity
    totals = page_fields(html.split("<tfoot>", 1)[1])
    assert D(totals["total_adjusted_equity"]) == equity
    assert D(totals["total_positions_value"]) == sum(
        D(rows[a.pk][1]["positions_value"]) for a in (main, second, linked)
    )
    assert D(totals["total_cash"]) == (
        summaries[main.pk].cash + summaries[second.pk].cash + D("75.5")
    )
    assert D(totals["total_available_margin"]) == (
        summaries[main.pk].available_margin + summaries[second.pk].available_margin
    )
    # The linked account: its link's status (as the Linked page says), not "Active" only.
    chunk, values = rows[linked.pk]
    assert 'data-link-status="failing"' in html
    assert "badge--failing" in chunk and "Failing" in chunk
    assert values["available_margin"] == "" and values["cash"] == "75.500000"
    # Each row switches to its account (the switcher's POST), then the dashboard.
    assert (
        chunk.count(reverse("account_switch")) == 1 and 'name="next" value="/dashboard/"' in chunk
    )
    # The header's switcher says the link is failing too.
    switcher = html.split('id="account-switcher"', 1)[1].split("</select>", 1)[0]
    assert re.search(rf"{linked.public_id} · tracked · link failing", switcher)


def test_switching_from_the_overview_opens_that_accounts_view(markets):
    main = trader("100")
    linked = wallet(main.owner)
    client = Client()
    client.force_login(main.owner)
    response = client.post(
        reverse("account_switch"), {"account": linked.public_id, "next": "/dashboard/"}
    )
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert "<h1>Portfolio risk</h1>" in client.get("/dashboard/").content.decode()


# --- Linked page: Sync now --------------------------------------------------------------


def test_sync_status_endpoint_reports_a_queued_sync_and_its_outcome(markets):
    account = wallet(cash=D("12"))
    credential = account.linked_credential
    client = signed_in(account)
    url = reverse("linked-status", args=[account.public_id])
    status = client.get(url).json()
    assert status["status"] == "active" and status["syncing"] is False
    assert status["cash"] == "12.000000" and status["account_id"] == account.public_id
    # A queued (or running) sync: the endpoint and the page say so.
    OutboxItem.objects.create(
        task="trading.linked_account_sync",
        kwargs={"credential_id": credential.pk},
        key=linked_account_sync_key(credential.pk),
        lease_seconds=60,
        due_at=timezone.now() + timedelta(seconds=60),
    )
    assert client.get(url).json()["syncing"] is True
    page = client.get(reverse("linked-list")).content.decode()
    assert 'data-syncing="true"' in page and "Syncing…" in page
    assert "/static/js/linked.js" in page
    # Someone else, or no one: never this account's status.
    assert Client().get(url).status_code == 401
    intruder = Client()
    intruder.force_login(UserFactory())
    response = intruder.get(url)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_sync_now_answers_json_for_the_pages_script(markets, django_capture_on_commit_callbacks):
    account = wallet()
    client = signed_in(account)
    url = reverse("linked-sync", args=[account.public_id])
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url, {}, HTTP_ACCEPT="application/json")
    assert response.status_code == 202
    body = response.json()
    assert body["status_url"] == reverse("linked-status", args=[account.public_id])
    assert body["requested_at"] and body["syncing"] is True  # queued, not run yet
    # A plain form post still works (no script): back to the page with a message.
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url, {})
    assert response.status_code == 302
    other = Client()
    other.force_login(UserFactory())
    assert other.post(url, {}, HTTP_ACCEPT="application/json").status_code == 404


def test_unlinked_sync_is_refused_as_json(markets):
    account = wallet(status="unlinked")
    response = signed_in(account).post(
        reverse("linked-sync", args=[account.public_id]), {}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert "unlinked" in response.json()["message"]


# --- format.js: the table-cell amounts match the server's -----------------------------------


@pytest.mark.skipif(shutil.which("node") is None, reason="Node is not installed")
def test_table_cell_amounts_format_as_the_server_does():
    values = ["1234.565", "-0.004", "0", "-25", "1000000.5", None, "12.3456789"]
    script = Path(settings.BASE_DIR) / "static" / "js" / "format.js"
    program = (
        "global.window = {}; global.document = {cookie: ''};"
        f"require({json.dumps(str(script))});"
        f"const values = {json.dumps(values)};"
        "console.log(JSON.stringify(values.map(v => [window.PortalFormat.amount(v),"
        " window.PortalFormat.amountSigned(v)])));"
    )
    out = subprocess.run(  # noqa: S603 (our own program, no shell)
        [shutil.which("node"), "-e", program], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == [[fmt.amount(v), fmt.amount_signed(v)] for v in values]
