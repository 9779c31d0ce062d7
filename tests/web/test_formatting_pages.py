"""Every page outside the dashboard, orders and positions speaks to people: no raw
machine output in the text a person reads (issue 18, the one formatting layer).

A seeded account (deposits confirmed and declined, withdrawals pending and rejected,
a fill with a fractional quantity at an 8-decimal price, notifications, an API key,
reports ready and failed, a linked exchange whose sync failed) and rows written the
old way (a decline reason and a sync error that start with a machine code) are
rendered; the visible text of each page (not attributes, scripts or styles) must hold
no 6- or 8-decimal numbers, no `snake_case:` codes and no ISO timestamps.
"""

import re
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Account, ApiKey, Deposit, LinkedCredential
from accounts.services.api_keys import api_key_issue
from accounts.services.withdrawals import withdrawal_reject, withdrawal_request
from tests.factories import StaffFactory, notifications_create, open_account
from tests.trading.conftest import binary_create
from tests.web.conftest import html
from tests.web.test_money_pages import GOOD_CARD, confirm_by_webhook
from trading.models import Report
from trading.services.positions import Side, binary_fill_apply

pytestmark = pytest.mark.django_db

MACHINE_OUTPUT = {
    "a 6- or 8-decimal number": re.compile(r"\d+\.\d{5,}"),
    "a machine code": re.compile(r"\b[a-z]+_[a-z_]+:"),
    "an ISO timestamp": re.compile(r"\d{4}-\d\d-\d\dT"),
    "a raw date-time": re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d"),
}
PAGES = [
    "/deposits/",
    "/withdrawals/",
    "/transactions/",
    "/transactions/?kind=trade",
    "/notifications/",
    "/api-keys/",
    "/security/",
    "/reports/",
    "/linked/",
]
ANONYMOUS_PAGES = ["/login/", "/password-reset/"]


class _VisibleText(HTMLParser):
    """The text a person reads: text nodes outside script, style and template."""

    HIDDEN = {"script", "style", "template"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _VisibleText()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


def machine_output(text: str) -> list[str]:
    """What in `text` is machine output, with a little context for the failure message."""
    found = []
    for what, pattern in MACHINE_OUTPUT.items():
        for match in pattern.finditer(text):
            context = text[max(0, match.start() - 40) : match.end() + 40]
            found.append(f"{what}: …{context}…")
    return found


def test_the_scan_finds_machine_output():
    page = (
        '<p title="2026-12-07T09:03:00">Bought 1086.956521 at 0.46000000</p>'
        "<p>card_declined: the issuer said no</p><p>2026-12-07T09:03:00+00:00</p>"
        "<script>var x = '2026-12-07T09:03:00';</script>"
    )
    text = visible_text(page)
    assert "title" not in text and "var x" not in text
    kinds = {line.split(":")[0] for line in machine_output(text)}
    assert kinds == {"a 6- or 8-decimal number", "a machine code", "an ISO timestamp"}
    assert machine_output(visible_text('<time datetime="2026-12-07T09:03:00Z">7 Dec</time>')) == []


@pytest.fixture
def seeded(customer_client, customer_account, customer_user, django_capture_on_commit_callbacks):
    """The customer's account with something on every page, some of it written the old way."""
    account, user = customer_account, customer_user
    # Deposits: confirmed, declined by the provider, and an old row whose reason kept the code.
    customer_client.post(
        "/deposits/", {"amount": "1,000.50", "method": "card", "card_number": GOOD_CARD}
    )
    customer_client.post(
        "/deposits/", {"amount": "50", "method": "card", "card_number": "4000 0000 0000 0002"}
    )
    confirmed, declined = Deposit.objects.filter(account=account).order_by("id")
    confirm_by_webhook(confirmed)
    confirm_by_webhook(declined, succeed=False)
    Deposit.objects.create(
        account=account,
        amount=Decimal("75.123456"),
        method=Deposit.Method.CARD,
        provider="simulated",
        provider_reference="old-row",
        status=Deposit.Status.FAILED,
        failure_reason="card_declined: the card issuer declined the payment.",
    )
    # A trade at an 8-decimal price for a fractional quantity (its memo is on Transactions).
    instrument = binary_create("TRUMP-WIN")
    binary_fill_apply(
        account=account,
        instrument=instrument,
        outcome="yes",
        side=Side.BUY,
        quantity=Decimal("1086.956521"),
        price=Decimal("0.46000000"),
    )
    # Withdrawals: one pending, one refused by ops.
    withdrawal_request(
        account=account, amount=Decimal("100.123456"), destination="Bank", requested_by=user
    )
    refused = withdrawal_request(
        account=account, amount=Decimal("20"), destination="Bank", requested_by=user
    )
    withdrawal_reject(
        withdrawal=refused, actor=StaffFactory(), reason="The destination is unknown."
    )
    notifications_create(user, account)
    api_key_issue(
        owner=user,
        accounts=[account],
        scopes=[ApiKey.Scope.values[0]],
        name="Bot",
        actor=StaffFactory(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        customer_client.post(
            "/reports/",
            {
                "type": "transactions",
                "date_from": "2020-01-01",
                "date_to": "2029-12-31",
                "format": "csv",
            },
        )
    Report.objects.create(
        account=account,
        type=Report.Type.TRANSACTIONS,
        date_from=date(2026, 1, 1),
        date_to=date(2026, 1, 31),
        status=Report.Status.FAILED,
        error="internal_error: the report could not be written..",
    )
    # A linked exchange whose last sync failed, its error stored the old way.
    linked = open_account(owner=user, kind=Account.Kind.NON_CUSTODIAL)
    now = timezone.now()
    LinkedCredential.objects.create(
        account=linked,
        venue=LinkedCredential.Venue.KALSHI,
        environment=LinkedCredential.Environment.DEMO,
        identity="key-0123456789",
        status=LinkedCredential.Status.FAILING,
        cash_balance=Decimal("1250.123456"),
        last_synced_at=now - timedelta(hours=1),
        last_sync_attempt_at=now,
        next_sync_at=now + timedelta(minutes=2),
        consecutive_failures=1,
        last_error="venue_auth_failed: Kalshi refused the API key: key revoked..",
    )
    return customer_client


@pytest.mark.parametrize("path", PAGES)
def test_pages_show_no_machine_output(seeded: Client, path):
    seeded.cookies["tz"] = "Europe/Paris"
    response = seeded.get(path)
    assert response.status_code == 200, path
    text = visible_text(html(response))
    assert machine_output(text) == [], path


@pytest.mark.parametrize("path", ANONYMOUS_PAGES)
def test_sign_in_pages_show_no_machine_output(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    assert machine_output(visible_text(html(response))) == [], path


def test_what_the_pages_say_instead(seeded: Client):
    seeded.cookies["tz"] = "Europe/Paris"
    transactions = visible_text(html(seeded.get("/transactions/")))
    assert "Buy 1,086.96 TRUMP-WIN YES at 46¢" in transactions
    assert "Amount (USDC)" in transactions
    assert re.search(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d CET", transactions)  # the reader's zone
    assert "UTC day" in transactions  # the filter says which days it means

    deposits = visible_text(html(seeded.get("/deposits/")))
    assert "The card issuer declined the payment." in deposits
    assert "75.12" in deposits

    linked = visible_text(html(seeded.get("/linked/")))
    assert "Kalshi refused the API key: key revoked." in linked
    assert "key revoked.." not in linked

    reports = visible_text(html(seeded.get("/reports/")))
    assert "The report could not be written." in reports
    assert "1 Jan 2026 – 31 Jan 2026" in reports


def test_a_refused_withdrawal_says_the_amounts_as_people_write_them(seeded: Client):
    response = seeded.post("/withdrawals/", {"amount": "1000000", "destination": "Bank"})
    text = visible_text(html(response))
    assert "Cannot withdraw 1,000,000.00 USDC from" in text
    # Never overstated: 2,900.376544 can be withdrawn, so 2,900.37 (not .38) is offered.
    assert "2,900.37 USDC is available to withdraw." in text
    assert "Available to withdraw 2,900.37 USDC" in text
    assert machine_output(text) == []


def test_date_inputs_say_their_format_and_zone(seeded: Client):
    page = html(seeded.get("/transactions/?date_from=2026-12-01"))
    assert 'type="date"' in page
    assert 'value="2026-12-01"' in page  # what the widget sends comes back as it was
    assert 'placeholder="YYYY-MM-DD"' in page
    assert "From (UTC day)" in page
    reports = html(seeded.get("/reports/"))
    assert "whole days in UTC" in reports
