"""Bad input on the customer pages (issue 14): a form error or a clear 4xx, never a 500,
and no money moved. Amounts take what a person types ("1,000.50", "$250", "250 USDC") but
never other scripts' digits or underscores; free text is printable; days are in range."""

from decimal import Decimal

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import Account, ApiKey, Deposit, WithdrawalRequest
from portal.money import decimal_text_parse, decimal_typed_parse
from portal.views import bad_request
from tests.accounts.test_admin import login_ops
from tests.accounts.test_admin_api_keys import issue
from tests.web.conftest import html
from tests.web.dashboard_fixtures import BTC, JSON, TRUMP, buy, signed_in, trader
from trading.models import Order

pytestmark = pytest.mark.django_db
GOOD_CARD = "4242 4242 4242 4242"


# --- The parsing rules themselves -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1500.00", Decimal("1500.00")),
        ("-0.5", Decimal("-0.5")),
        ("+3", Decimal("3")),
        (".5", Decimal("0.5")),
        ("١٢٣", None),  # Arabic-Indic digits
        ("１２３", None),  # fullwidth digits
        ("1_000", None),
        (" 5 ", None),
        ("5e2", None),
        ("NaN", None),
        ("Infinity", None),
        ("", None),
        ("-", None),
        ("1.2.3", None),
        ("1" * 65, None),
    ],
)
def test_the_api_decimal_form(text, value):
    assert decimal_text_parse(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,000.50", Decimal("1000.50")),
        ("12,345,678", Decimal("12345678")),
        ("  $250 ", Decimal("250")),
        ("250 USDC", Decimal("250")),
        ("250usdc", Decimal("250")),
        ("-$5", Decimal("-5")),
        ("1,00", None),
        ("1000,000", None),
        ("1 000", None),
        ("1_000", None),
        ("١٢٣", None),
        ("1,000.5,0", None),
    ],
)
def test_what_a_person_may_type(text, value):
    assert decimal_typed_parse(text) == value


# --- 6. Money forms ---------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["١٠٠", "1_000", "1 000", "10e2", "١,٠٠٠"])
def test_a_deposit_amount_in_other_digits_is_a_form_error(customer_client, amount):
    response = customer_client.post(
        "/deposits/", {"amount": amount, "method": "card", "card_number": GOOD_CARD}
    )
    assert response.status_code == 200
    assert "Enter an amount in ASCII digits" in html(response)
    assert not Deposit.objects.exists()


@pytest.mark.parametrize(
    ("amount", "expected"), [("1,000.50", "1000.50"), ("$250", "250"), ("75 USDC", "75")]
)
def test_a_deposit_amount_as_people_write_it_is_taken(customer_client, amount, expected):
    response = customer_client.post(
        "/deposits/", {"amount": amount, "method": "card", "card_number": GOOD_CARD}
    )
    assert response.status_code == 302, html(response)
    assert Deposit.objects.get().amount == Decimal(expected)


def test_a_withdrawal_amount_with_an_underscore_is_a_form_error(customer_client):
    response = customer_client.post("/withdrawals/", {"amount": "1_0", "destination": "Bank"})
    assert response.status_code == 200
    assert "Enter an amount in ASCII digits" in html(response)
    assert not WithdrawalRequest.objects.exists()


@pytest.mark.parametrize("notional", ["١٢٣", "1_000", "5e1"])
def test_the_order_form_refuses_other_digits(markets, notional):
    account = trader("1000")
    client = signed_in(account)
    url = reverse("order-place", args=[account.public_id])
    data = {"symbol": TRUMP, "side": "buy", "notional_usdc": notional, "client_order_id": ""}
    response = client.post(url, data, **JSON)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_params"
    assert "ASCII digits" in response.json()["message"]
    projection = client.get(
        reverse("trade-projection", args=[account.public_id]),
        {"symbol": TRUMP, "side": "buy", "notional": notional},
    )
    assert projection.status_code == 400
    assert "ASCII digits" in projection.json()["message"]
    assert not Order.objects.exists()


def test_leverage_in_other_digits_is_rejected_not_read_as_ten(markets):
    account = trader("20000")
    buy(account, BTC, "1000")
    client = signed_in(account)
    preview = client.get(
        reverse("leverage-preview", args=[account.public_id, BTC]), {"leverage": "١٠"}
    ).json()
    assert preview["rejectReason"] == "INVALID_LEVERAGE"
    response = client.post(
        reverse("leverage-apply", args=[account.public_id, BTC]), {"leverage": "١٠"}, **JSON
    )
    assert response.status_code == 422
    assert response.json()["rejectReason"] == "INVALID_LEVERAGE"
    assert response.json()["oldLeverage"] == response.json()["newLeverage"] == 5


# --- 9. Free text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "shown"),
    [("Bank\nPAID", "a newline (U+000A)"), ("Bank \u202e4321", "a bidirectional override")],
)
def test_a_withdrawal_destination_with_control_characters_is_a_form_error(
    customer_client, destination, shown
):
    response = customer_client.post("/withdrawals/", {"amount": "10", "destination": destination})
    assert response.status_code == 200
    assert f"Must be printable text on one line: it contains {shown}" in html(response)
    assert not WithdrawalRequest.objects.exists()


def test_a_linked_account_name_with_a_bidi_override_is_a_form_error(customer_client):
    data = {
        "pm-wallet": "0x0000000000000000000000000000000000000001",
        "pm-name": "Main \u202egnp.exe",
    }
    response = customer_client.post(reverse("linked-link", args=["polymarket"]), data)
    assert response.status_code == 400
    assert "it contains a bidirectional override (U+202E)" in html(response)
    assert not Account.objects.filter(kind=Account.Kind.NON_CUSTODIAL).exists()


def test_an_api_key_name_with_a_newline_is_an_admin_form_error(client, staff, customer_account):
    login_ops(client, staff)
    response = issue(client, customer_account, name="risk\ndesk")
    assert response.status_code == 200
    assert "it contains a newline (U+000A)" in html(response)
    assert not ApiKey.objects.exists()


# --- 3, 5. Ids and days -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/deposits/dep_%00/", "/reports/%00/download/", "/withdrawals/%00/cancel/"]
)
def test_a_nul_byte_in_a_page_id_is_404(customer_client, path):
    response = customer_client.get(path)
    assert response.status_code == 404


def test_a_nul_byte_in_a_form_id_is_404(markets):
    account = trader("100")
    client = signed_in(account)
    assert client.post("/accounts/switch/", {"account": "acct_\x00"}).status_code == 404
    assert client.post("/notifications/read/", {"notification": "١٢"}).status_code == 404
    projection = client.get(
        reverse("trade-projection", args=[account.public_id]),
        {"symbol": "TRUMP-WIN\x00", "side": "buy", "notional": "5"},
    )
    # The order ticket's fields: a market name with a NUL byte is a bad field (400).
    assert projection.status_code == 400
    assert projection.json()["code"] == "invalid_params" and projection.json()["message"]


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "٢٠٢٦-٠١-٠١"])
def test_a_transaction_filter_day_out_of_range_is_a_form_error(customer_client, day):
    response = customer_client.get("/transactions/", {"date_to": day})
    assert response.status_code == 200
    assert "1970-01-01 to 2999-12-31" in html(response)


def test_a_report_for_days_out_of_range_is_a_form_error(customer_client):
    data = {"type": "transactions", "date_from": "9999-12-01", "date_to": "9999-12-31"}
    response = customer_client.post("/reports/", {**data, "format": "csv"})
    assert response.status_code == 200
    assert "from 1970-01-01 to 2999-12-31" in html(response)


# --- 1. Bodies over the upload limit --------------------------------------------------------


def test_a_form_post_over_the_upload_limit_is_a_plain_413_page(customer_client):
    body = "amount=10&destination=" + "x" * 2_700_000
    response = customer_client.post(
        "/withdrawals/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert "Request too large" in html(response)
    assert "2,621,440 bytes" in html(response)
    assert not WithdrawalRequest.objects.exists()


def test_a_body_django_finds_too_large_while_reading_is_413_too():
    """A body with no declared length (chunked) is only found too large while Django reads
    it: its 400 handler answers 413 for that case."""
    for path, content_type in (("/withdrawals/", "text/html"), ("/v1/x", "application/json")):
        response = bad_request(RequestFactory().post(path), RequestDataTooBig("too big"))
        assert response.status_code == 413
        assert response["Content-Type"].startswith(content_type)
