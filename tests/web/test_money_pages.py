"""The money pages of the current account: deposits, withdrawals, transactions,
notifications, reports, API keys and the accounts overview; and the number filters."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.template import Context, Template

from accounts.models import Account, ApiKey, Deposit, Notification, WithdrawalRequest
from accounts.payments.simulated import SimulatedPaymentProvider
from accounts.services.api_keys import api_key_issue, api_key_revoke
from accounts.services.deposits import payment_webhook_handle
from accounts.services.withdrawals import withdrawal_approve, withdrawal_reject, withdrawal_request
from accounts.templatetags.portal_format import money, money_signed, percent, ratio
from tests.conftest import credit_cash
from tests.factories import StaffFactory, notifications_create, open_account
from tests.web.conftest import html, signed_in
from trading.models import Report

pytestmark = pytest.mark.django_db

GOOD_CARD = "4242 4242 4242 4242"


# --- Number formatting (portal_format) -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("12345.67"), "12,345.67 USDC"),
        (Decimal("1234567.891"), "1,234,567.89 USDC"),
        (Decimal("0.005"), "0.01 USDC"),  # half up, as statements round
        (Decimal("-1250"), "-1,250.00 USDC"),
        (Decimal("-0.001"), "0.00 USDC"),  # no "-0.00"
        ("250000", "250,000.00 USDC"),
        (7, "7.00 USDC"),
        (None, "—"),
        ("n/a", "n/a"),
    ],
)
def test_money_filter(value, expected):
    assert money(value) == expected


def test_money_filter_precision_and_sign():
    assert money(Decimal("1.234567"), 6) == "1.234567 USDC"
    assert money_signed(Decimal("1000")) == "+1,000.00 USDC"
    assert money_signed(Decimal("-25")) == "-25.00 USDC"
    assert money_signed(Decimal("0")) == "0.00 USDC"


def test_ratio_and_percent_filters():
    assert ratio(Decimal("1.5349")) == "1.53"
    assert ratio(Decimal("12")) == "12.00"
    assert ratio(None) == "∞"
    assert ratio(None, "No borrowing") == "No borrowing"
    assert percent(Decimal("0.4251")) == "42.5%"
    assert percent(None) == "—"


def test_filters_load_from_the_portal_format_library():
    template = Template(
        '{% load portal_format %}{{ a|money }} | {{ h|ratio }} | {{ n|ratio:"No borrowing" }}'
    )
    rendered = template.render(Context({"a": Decimal("12345.67"), "h": Decimal("1.2"), "n": None}))
    assert rendered == "12,345.67 USDC | 1.20 | No borrowing"


# --- Deposits ------------------------------------------------------------------------------


def confirm_by_webhook(deposit: Deposit, *, succeed: bool = True) -> None:
    body, signature = SimulatedPaymentProvider.build_event(deposit, succeed=succeed)
    payment_webhook_handle(provider="simulated", body=body, signature_header=signature)


def test_a_card_deposit_is_pending_until_the_provider_confirms_it(
    customer_client, customer_account
):
    page = customer_client.get("/deposits/")
    assert page.status_code == 200
    assert 'autocomplete="cc-number"' in html(page)

    response = customer_client.post(
        "/deposits/", {"amount": "1,000.50", "method": "card", "card_number": GOOD_CARD}
    )
    deposit = Deposit.objects.get(account=customer_account)
    assert response.status_code == 302
    assert response.url == f"/deposits/{deposit.public_id}/"
    assert deposit.amount == Decimal("1000.5")
    assert deposit.status == Deposit.Status.PENDING

    detail = html(customer_client.get(response.url))
    assert "Pending" in detail
    assert "1,000.50 USDC" in detail
    assert "data-autorefresh" in detail
    assert "stays pending until the payment provider confirms it" in detail
    assert "4242 4242" not in detail  # the card number is never shown again (nor stored)
    assert "4242424242424242" not in detail

    confirm_by_webhook(deposit)
    detail = html(customer_client.get(response.url))
    assert "Confirmed" in detail
    assert "data-autorefresh" not in detail
    listing = html(customer_client.get("/deposits/"))
    assert deposit.public_id in listing
    assert "Confirmed" in listing


def test_a_declined_card_shows_why(customer_client, customer_account):
    customer_client.post(
        "/deposits/", {"amount": "50", "method": "card", "card_number": "4000 0000 0000 0002"}
    )
    deposit = Deposit.objects.get(account=customer_account)
    confirm_by_webhook(deposit, succeed=False)
    detail = html(customer_client.get(f"/deposits/{deposit.public_id}/"))
    assert "Failed" in detail
    assert "The card issuer declined the payment." in detail
    assert "card_declined" not in detail


def test_a_bank_transfer_needs_no_card(customer_client, customer_account):
    response = customer_client.post(
        "/deposits/", {"amount": "20000", "method": "bank_transfer", "card_number": GOOD_CARD}
    )
    assert response.status_code == 302
    deposit = Deposit.objects.get(account=customer_account)
    assert deposit.method == Deposit.Method.BANK_TRANSFER
    assert "A bank transfer is confirmed when it arrives." in html(
        customer_client.get(response.url)
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": "10", "method": "card", "card_number": "4242 4242 4242 4241"}, "valid card"),
        ({"amount": "30000", "method": "card", "card_number": GOOD_CARD}, "between 1.00 USDC and"),
        ({"amount": "10", "method": "card", "card_number": ""}, "Enter the card number"),
        ({"amount": "ten", "method": "card", "card_number": GOOD_CARD}, "Enter an amount"),
        ({"amount": "1.1234567", "method": "card", "card_number": GOOD_CARD}, "6 decimal places"),
    ],
)
def test_a_refused_deposit_is_explained_on_the_form(
    customer_client, customer_account, data, message
):
    response = customer_client.post("/deposits/", data)
    assert response.status_code == 200
    assert message in html(response)
    assert 'role="alert"' in html(response)
    assert not Deposit.objects.filter(account=customer_account).exists()
    card_input = re.search(r'<input[^>]*name="card_number"[^>]*>', html(response)).group(0)
    assert "value=" not in card_input  # the typed card number is not echoed back


def test_a_frozen_account_cannot_deposit(client):
    account = open_account(status=Account.Status.FROZEN)
    signed_in(client, account.owner)
    response = client.post(
        "/deposits/", {"amount": "10", "method": "card", "card_number": GOOD_CARD}
    )
    assert f"Account {account.public_id} is frozen." in html(response)
    assert not Deposit.objects.exists()


def test_a_non_custodial_account_deposits_on_the_exchange(client):
    account = open_account(kind=Account.Kind.NON_CUSTODIAL)
    signed_in(client, account.owner)
    page = html(client.get("/deposits/"))
    assert "Non-custodial account: a tracked portfolio" in page
    assert 'name="amount"' not in page
    response = client.post(
        "/deposits/", {"amount": "10", "method": "card", "card_number": GOOD_CARD}, follow=True
    )
    assert "deposits and withdrawals happen there directly" in html(response)
    assert not Deposit.objects.exists()


# --- Withdrawals ---------------------------------------------------------------------------


def test_a_withdrawal_request_waits_for_ops_and_can_be_cancelled(customer_client, customer_account):
    page = html(customer_client.get("/withdrawals/"))
    assert "2,500.00 USDC" in page  # available to withdraw

    response = customer_client.post(
        "/withdrawals/", {"amount": "400", "destination": "Chase ****1234"}, follow=True
    )
    withdrawal = WithdrawalRequest.objects.get(account=customer_account)
    page = html(response)
    assert f"Withdrawal {withdrawal.public_id} of 400.00 USDC requested." in page
    assert "Pending review" in page
    assert "Chase ****1234" in page
    assert "2,100.00 USDC" in page  # available after the pending request
    assert f'action="/withdrawals/{withdrawal.public_id}/cancel/"' in page

    response = customer_client.post(f"/withdrawals/{withdrawal.public_id}/cancel/", follow=True)
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalRequest.Status.CANCELLED
    assert f"Withdrawal {withdrawal.public_id} cancelled: " in html(response)

    again = customer_client.post(f"/withdrawals/{withdrawal.public_id}/cancel/", follow=True)
    assert "is already cancelled" in html(again)


def test_nothing_to_withdraw_says_so_without_a_form(customer_client, customer_account):
    customer_client.post("/withdrawals/", {"amount": "2500", "destination": "Bank"})
    page = html(customer_client.get("/withdrawals/"))
    assert 'id="nothing-to-withdraw"' in page and "Deposit, or sell or close positions" in page
    assert 'name="amount"' not in page and "never borrows" not in page


def test_a_withdrawal_beyond_the_cash_is_refused_on_the_form(customer_client, customer_account):
    response = customer_client.post("/withdrawals/", {"amount": "2500.01", "destination": "Bank"})
    assert response.status_code == 200
    assert 'id="id_amount_error"' in html(response)
    assert 'aria-invalid="true"' in html(response)
    assert not WithdrawalRequest.objects.exists()


def test_withdrawals_show_the_ops_decision(customer_client, customer_account, customer_user):
    staff = StaffFactory()
    approved = withdrawal_request(
        account=customer_account,
        amount=Decimal("100"),
        destination="Bank A",
        requested_by=customer_user,
    )
    rejected = withdrawal_request(
        account=customer_account,
        amount=Decimal("50"),
        destination="Bank B",
        requested_by=customer_user,
    )
    withdrawal_approve(withdrawal=approved, actor=staff)
    withdrawal_reject(withdrawal=rejected, actor=staff, reason="Destination not on file")
    page = html(customer_client.get("/withdrawals/"))
    assert "Approved" in page
    assert "Rejected" in page
    assert "Destination not on file" in page
    assert "/cancel/" not in page  # nothing pending, nothing to cancel


def test_a_non_custodial_account_withdraws_on_the_exchange(client):
    account = open_account(kind=Account.Kind.NON_CUSTODIAL)
    signed_in(client, account.owner)
    page = html(client.get("/withdrawals/"))
    assert "Non-custodial account: a tracked portfolio" in page
    response = client.post("/withdrawals/", {"amount": "1", "destination": "x"}, follow=True)
    assert "happen there directly" in html(response)
    assert not WithdrawalRequest.objects.exists()


# --- Transactions ----------------------------------------------------------------------------


def test_transactions_are_paged_fifty_at_a_time(customer_client, customer_account):
    for n in range(1, 61):
        credit_cash(customer_account, Decimal(n), memo=f"funding #{n:02d}")
    first = html(customer_client.get("/transactions/"))
    assert first.count("<tr>") == 1 + 50  # header + 50 rows
    assert "funding #60" in first  # newest first
    assert "funding #11" in first
    assert "funding #10" not in first
    assert 'href="?page=2"' in first
    assert ">+60.00<" in first  # the header says (USDC)

    second = html(customer_client.get("/transactions/?page=2"))
    assert second.count("<tr>") == 1 + 11  # 10 more and the opening funding
    assert "funding #10" in second
    assert "opening funding" in second
    assert 'rel="next"' not in second
    assert 'href="?page=1"' in second

    assert customer_client.get("/transactions/?page=nope").status_code == 200


def test_transactions_filter_by_type_and_day(customer_client, customer_account, customer_user):
    withdrawal = withdrawal_request(
        account=customer_account,
        amount=Decimal("300"),
        destination="Bank",
        requested_by=customer_user,
    )
    withdrawal_approve(withdrawal=withdrawal, actor=StaffFactory())
    page = html(customer_client.get("/transactions/?kind=withdrawal"))
    assert ">-300.00<" in page
    assert "opening funding" not in page
    assert "Withdrawal" in page

    page = html(customer_client.get("/transactions/?date_from=2001-01-01&date_to=2001-01-02"))
    assert "No transactions match these filters." in page

    page = html(customer_client.get("/transactions/?date_from=2030-01-02&date_to=2030-01-01"))
    assert "Some filters were not valid" in page
    assert "opening funding" in page  # shown unfiltered


# --- Notifications --------------------------------------------------------------------------


def test_notifications_are_listed_and_can_be_marked_read(
    customer_client, customer_user, customer_account
):
    first = notifications_create(customer_user, customer_account)
    page = html(customer_client.get("/notifications/"))
    assert "Margin call on your account" in page
    assert "Margin Health is 1.15." in page
    assert customer_account.public_id in page
    assert page.count('class="badge badge--new"') == 2
    assert '2<span class="visually-hidden"> unread</span>' in page

    customer_client.post("/notifications/read/", {"notification": first.pk})
    first.refresh_from_db()
    assert first.read_at is not None
    page = html(customer_client.get("/notifications/"))
    assert page.count('class="badge badge--new"') == 1

    response = customer_client.post("/notifications/read/", follow=True)
    assert "All notifications marked as read." in html(response)
    assert not Notification.objects.filter(user=customer_user, read_at__isnull=True).exists()
    assert "Mark all as read" not in html(response)


# --- Reports -------------------------------------------------------------------------------


def test_a_report_is_requested_generated_and_downloaded(
    customer_client, customer_account, django_capture_on_commit_callbacks
):
    page = html(customer_client.get("/reports/"))
    assert 'name="type"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = customer_client.post(
            "/reports/",
            {
                "type": "transactions",
                "date_from": "2020-01-01",
                "date_to": "2029-12-31",
                "format": "csv",
            },
        )
    assert response.status_code == 302
    report = Report.objects.get(account=customer_account)
    assert report.status == Report.Status.READY
    page = html(customer_client.get("/reports/"))
    assert report.public_id in page
    assert "Ready" in page
    # The form remembers what was asked for last.
    assert re.search(r'<option value="transactions"[^>]*selected', page)
    assert f'href="/reports/{report.public_id}/download/"' in page

    link = customer_client.get(f"/reports/{report.public_id}/download/")
    assert link.status_code == 302
    assert link.url.startswith(f"/v1/intelligence/reports/{report.public_id}/download?token=")
    download = customer_client.get(link.url)
    assert download.status_code == 200
    content = b"".join(download.streaming_content).decode()
    assert content.startswith("time,journal_id,kind,memo,amount,balance")
    assert "opening funding" in content


def test_a_pending_report_shows_its_status_and_cannot_be_downloaded_yet(
    customer_client, customer_account
):
    response = customer_client.post(
        "/reports/",
        {
            "type": "performance",
            "date_from": "2026-04-01",
            "date_to": "2026-04-30",
            "format": "json",
        },
        follow=True,
    )
    report = Report.objects.get(account=customer_account)
    page = html(response)
    assert f"Report {report.public_id} requested." in page
    assert "Pending" in page
    assert "data-autorefresh" in page
    refused = customer_client.get(f"/reports/{report.public_id}/download/", follow=True)
    assert "not ready yet" in html(refused)


def test_a_bad_report_range_is_refused_on_the_form(customer_client, customer_account):
    response = customer_client.post(
        "/reports/",
        {"type": "positions", "date_from": "2026-05-01", "date_to": "2026-04-01", "format": "csv"},
    )
    assert "The end date must be on or after the start date." in html(response)
    response = customer_client.post(
        "/reports/",
        {"type": "positions", "date_from": "2000-01-01", "date_to": "2026-04-01", "format": "csv"},
    )
    assert "A report covers at most 3660 days." in html(response)
    assert not Report.objects.exists()


# --- API keys -------------------------------------------------------------------------------


def test_api_keys_are_listed_without_the_key(customer_client, customer_user, customer_account):
    staff = StaffFactory()
    issued = api_key_issue(
        owner=customer_user,
        accounts=[customer_account],
        scopes=["intelligence", "read"],
        name="Quant desk",
        actor=staff,
        ip_allowlist=["10.0.0.0/8"],
    )
    old = api_key_issue(
        owner=customer_user,
        accounts=[customer_account],
        scopes=["read"],
        name="Old bot",
        actor=staff,
    )
    api_key_revoke(api_key=old.api_key, actor=staff)
    page = html(customer_client.get("/api-keys/"))
    assert "Quant desk" in page
    assert f"{issued.api_key.prefix}…" in page
    assert "intelligence, read" in page
    assert customer_account.public_id in page
    assert "10.0.0.0/8" in page
    assert "Never" in page
    assert "Revoked" in page
    assert "keys for the Prime API" in page.lower() or "issued by ops" in page
    for secret in (issued.key, old.key, issued.api_key.key_hash, old.api_key.key_hash):
        assert secret not in page
    assert ApiKey.objects.count() == 2


# --- Accounts overview -----------------------------------------------------------------------


def test_the_accounts_page_shows_custodial_and_tracked_portfolios(customer_client, customer_user):
    tracked = open_account(owner=customer_user, kind=Account.Kind.NON_CUSTODIAL, name="Kalshi self")
    page = html(customer_client.get("/accounts/"))
    assert "Main account" in page
    assert ">2,500.00<" in page  # the column header says (USDC)
    assert "Kalshi self" in page
    assert "Non-custodial" in page and "non-custodial accounts never borrow" in page
    assert "Viewing now" in page
    assert f'name="account" value="{tracked.public_id}"' in page


def test_a_customer_without_accounts_is_told_so(client):
    from tests.factories import UserFactory

    user = UserFactory()
    signed_in(client, user)
    for path in ("/deposits/", "/withdrawals/", "/transactions/", "/reports/"):
        assert "No account yet" in html(client.get(path))
    assert client.get("/accounts/").status_code == 200


def test_report_dates_default_to_this_month(customer_client):
    page = html(customer_client.get("/reports/"))
    today = date.today()
    assert f'value="{today.replace(day=1).isoformat()}"' in page
