"""The account, balance, transfer and transaction endpoints of /v1/intelligence/,
exercised over HTTP with keys issued through the real service."""

from decimal import Decimal

import pytest
from django.db import transaction

from accounts.models import Account, Deposit, Journal, WithdrawalRequest
from accounts.payments.simulated import SimulatedPaymentProvider
from accounts.services.deposits import payment_webhook_handle
from accounts.services.withdrawals import withdrawal_approve
from tests.api.conftest import client_for, key_issue
from tests.conftest import credit_cash
from tests.factories import StaffFactory, open_account
from tests.trading.conftest import quote_store  # noqa: F401 (a fixture)
from tests.trading.executing import market, no_commission
from trading.services.execute import order_execute

pytestmark = pytest.mark.django_db

D = Decimal
GOOD_CARD = "4242 4242 4242 4242"
READ_ONLY = ("intelligence", "read")


def confirm(deposit_id: str) -> None:
    """The payment provider's signed webhook for a deposit lands (in-process)."""
    deposit = Deposit.objects.get(public_id=deposit_id)
    body, signature = SimulatedPaymentProvider.build_event(deposit)
    with transaction.atomic():
        payment_webhook_handle(provider="simulated", body=body, signature_header=signature)


# --- Account and balances --------------------------------------------------------------


def test_account_describes_the_keys_account(api, api_account):
    response = api.get("/v1/intelligence/account")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "account_id": api_account.public_id,
        "name": "",
        "index": 0,
        "kind": "custodial",
        "status": "active",
        "margin_enabled": False,
        "lifetime_volume": "0.000000",
        "created_at": body["created_at"],
    }
    assert body["created_at"].startswith(str(api_account.created_at.date()))
    assert response["X-RateLimit-Limit"] == "300"  # reads: the market-data group


def test_a_key_for_several_accounts_must_name_one(api_account):
    other = open_account(owner=api_account.owner, kind=Account.Kind.NON_CUSTODIAL)
    api = client_for(key_issue([api_account, other]))

    missing = api.get("/v1/intelligence/account")
    assert missing.status_code == 400 and missing.json()["code"] == "invalid_params"
    named = api.get("/v1/intelligence/account", {"account_id": other.public_id})
    assert named.status_code == 200
    assert named.json()["kind"] == "non_custodial"


def test_no_key_is_401_and_a_key_without_read_is_403(api_account):
    assert client_for(None).get("/v1/intelligence/balances").status_code == 401
    trade_only = client_for(key_issue([api_account], scopes=("intelligence", "trade")))
    response = trade_only.get("/v1/intelligence/balances")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "read" in response.json()["message"]


def test_balances_show_cash_deposit_margin_figures_and_what_can_be_withdrawn(api, api_account):
    credit_cash(api_account, "1000")
    api.post(
        "/v1/intelligence/withdrawals",
        {"amount": "300", "destination": "Bank ****1234"},
        format="json",
    )

    response = api.get("/v1/intelligence/balances")

    assert response.status_code == 200
    body = response.json()
    assert body["account_id"] == api_account.public_id
    assert body["cash"] == "1000.000000"
    assert body["deposit"] == "1000.000000"
    assert body["used_margin"] == "0.000000"
    # The pending withdrawal holds its 300: the margin figures count it as gone.
    assert body["adjusted_equity"] == "700.000000"
    assert body["available_margin"] == "700.000000"
    assert body["margin_health"] is None  # nothing borrowed: unbounded
    assert body["margin_status"] == "healthy"
    assert body["pending_withdrawals"] == "300.000000"
    assert body["withdrawable"] == "700.000000"
    assert api.get("/v1/intelligence/account/balances").json()["cash"] == "1000.000000"


@pytest.mark.usefixtures("quote_store")
def test_balances_follow_a_trade(api, api_account):
    no_commission()
    market("ELECT", kalshi_ask="0.60")
    credit_cash(api_account, "1000")
    order_execute(account=api_account, symbol="ELECT", side="buy", notional_usdc=D("600"))

    body = api.get("/v1/intelligence/balances").json()

    assert body["cash"] == "400.000000"
    assert body["deposit"] == "1000.000000"  # a trade is not a deposit
    assert body["used_margin"] == "0.000000"
    assert D("400") < D(body["adjusted_equity"]) < D("1000")  # haircut collateral
    assert body["withdrawable"] == "400.000000"


# --- Deposits ------------------------------------------------------------------------------


def test_card_deposit_is_created_pending_then_confirmed_by_the_provider(api, api_account):
    response = api.post(
        "/v1/intelligence/deposits",
        {"amount": "250.50", "method": "card", "card_number": GOOD_CARD},
        format="json",
    )

    assert response.status_code == 201
    created = response.json()
    assert created["id"].startswith("dep_")
    assert created["status"] == "pending"
    assert created["amount"] == "250.500000"
    assert created["method"] == "card"
    assert created["account_id"] == api_account.public_id
    assert created["confirmed_at"] is None
    assert "card_number" not in created and "4242" not in response.content.decode()
    assert response["X-RateLimit-Limit"] == "60"  # writes: the order-management group
    assert api.get("/v1/intelligence/balances").json()["cash"] == "0.000000"

    confirm(created["id"])

    detail = api.get(f"/v1/intelligence/deposits/{created['id']}").json()
    assert detail["status"] == "confirmed" and detail["confirmed_at"] is not None
    assert api.get("/v1/intelligence/balances").json()["cash"] == "250.500000"


def test_bank_deposit_and_the_list_newest_first_with_pages(api):
    ids = []
    for amount in ("10", "20", "30"):
        response = api.post(
            "/v1/intelligence/deposits", {"amount": amount, "method": "bank"}, format="json"
        )
        assert response.status_code == 201
        assert response.json()["method"] == "bank_transfer"
        ids.append(response.json()["id"])

    first = api.get("/v1/intelligence/deposits", {"limit": 2}).json()
    assert [d["id"] for d in first["deposits"]] == [ids[2], ids[1]]
    assert (first["limit"], first["offset"], first["next_offset"]) == (2, 0, 2)
    second = api.get("/v1/intelligence/deposits", {"limit": 2, "offset": 2}).json()
    assert [d["id"] for d in second["deposits"]] == [ids[0]]
    assert second["next_offset"] is None

    confirm(ids[0])
    confirmed = api.get("/v1/intelligence/deposits", {"status": "confirmed"}).json()
    assert [d["id"] for d in confirmed["deposits"]] == [ids[0]]


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 100.5, "method": "bank_transfer"},  # a JSON number: a float
        {"amount": "abc", "method": "bank_transfer"},
        {"amount": "1.0000001", "method": "bank_transfer"},  # beyond USDC precision
        {"amount": "100", "method": "cheque"},
        {"method": "card", "card_number": GOOD_CARD},
        {"amount": "100", "method": "card", "card_number": "4242 4242 4242 4241"},  # Luhn
        {"amount": "100", "method": "card"},  # no card number
        {"amount": "30000", "method": "card", "card_number": GOOD_CARD},  # over the limit
        {"amount": "-5", "method": "bank_transfer"},
    ],
)
def test_bad_deposits_are_400_and_create_nothing(api, body):
    response = api.post("/v1/intelligence/deposits", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_params"
    assert not Deposit.objects.exists()


def test_deposit_needs_the_trade_scope_and_a_custodial_account(api_account):
    read_only = client_for(key_issue([api_account], scopes=READ_ONLY))
    response = read_only.post(
        "/v1/intelligence/deposits", {"amount": "10", "method": "bank"}, format="json"
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden"

    tracked = open_account(kind=Account.Kind.NON_CUSTODIAL)
    response = client_for(key_issue([tracked])).post(
        "/v1/intelligence/deposits", {"amount": "10", "method": "bank"}, format="json"
    )
    assert response.status_code == 403 and response.json()["code"] == "custodial_required"
    assert not Deposit.objects.exists()


def test_unknown_deposit_is_404(api):
    response = api.get("/v1/intelligence/deposits/dep_0000000000000000")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


# --- Withdrawals -----------------------------------------------------------------------------


def test_withdrawal_request_review_and_listing(api, api_account):
    credit_cash(api_account, "1000")
    response = api.post(
        "/v1/intelligence/withdrawals",
        {"amount": "400", "destination": "Chase ****6789"},
        format="json",
    )
    assert response.status_code == 201
    created = response.json()
    assert created["id"].startswith("wd_")
    assert (created["status"], created["amount"], created["destination"]) == (
        "pending",
        "400.000000",
        "Chase ****6789",
    )
    assert response["X-RateLimit-Limit"] == "60"

    withdrawal_approve(
        withdrawal=WithdrawalRequest.objects.get(public_id=created["id"]), actor=StaffFactory()
    )

    detail = api.get(f"/v1/intelligence/withdrawals/{created['id']}").json()
    assert detail["status"] == "approved" and detail["reviewed_at"] is not None
    listed = api.get("/v1/intelligence/withdrawals").json()
    assert [w["id"] for w in listed["withdrawals"]] == [created["id"]]
    assert api.get("/v1/intelligence/balances").json()["cash"] == "600.000000"


def test_withdrawing_more_than_the_cash_is_422_insufficient_funds(api, api_account):
    credit_cash(api_account, "100")
    too_much = api.post(
        "/v1/intelligence/withdrawals",
        {"amount": "100.000001", "destination": "Bank ****1234"},
        format="json",
    )
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "insufficient_funds"
    assert "100.00 USDC is available" in too_much.json()["message"]

    # Pending requests reserve their amount: the second cannot claim it again.
    first = api.post(
        "/v1/intelligence/withdrawals",
        {"amount": "60", "destination": "Bank ****1234"},
        format="json",
    )
    assert first.status_code == 201
    second = api.post(
        "/v1/intelligence/withdrawals",
        {"amount": "41", "destination": "Bank ****1234"},
        format="json",
    )
    assert second.status_code == 422 and second.json()["code"] == "insufficient_funds"
    assert WithdrawalRequest.objects.count() == 1


def test_withdrawal_input_errors_are_400(api, api_account):
    credit_cash(api_account, "100")
    for body in (
        {"amount": "10"},
        {"amount": "10", "destination": ""},
        {"amount": "10", "destination": "x" * 121},
        {"amount": 10.5, "destination": "Bank"},
        {"amount": "0", "destination": "Bank"},
    ):
        response = api.post("/v1/intelligence/withdrawals", body, format="json")
        assert response.status_code == 400, body
        assert response.json()["code"] == "invalid_params"
    assert not WithdrawalRequest.objects.exists()


def test_cancel_a_pending_withdrawal_once(api, api_account):
    credit_cash(api_account, "100")
    created = api.post(
        "/v1/intelligence/withdrawals",
        {"amount": "50", "destination": "Bank ****1234"},
        format="json",
    ).json()

    cancelled = api.post(f"/v1/intelligence/withdrawals/{created['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert api.get("/v1/intelligence/balances").json()["withdrawable"] == "100.000000"

    again = api.post(f"/v1/intelligence/withdrawals/{created['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "withdrawal_not_pending"


def test_withdrawal_writes_need_the_trade_scope(api_account):
    credit_cash(api_account, "100")
    read_only = client_for(key_issue([api_account], scopes=READ_ONLY))
    response = read_only.post(
        "/v1/intelligence/withdrawals", {"amount": "10", "destination": "Bank"}, format="json"
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert read_only.get("/v1/intelligence/withdrawals").status_code == 200
    assert not WithdrawalRequest.objects.exists()


def test_unknown_withdrawal_is_404_to_read_and_to_cancel(api):
    assert api.get("/v1/intelligence/withdrawals/wd_nope").status_code == 404
    response = api.post("/v1/intelligence/withdrawals/wd_nope/cancel")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


# --- Transactions ------------------------------------------------------------------------------


@pytest.mark.usefixtures("quote_store")
def test_transactions_list_the_journals_on_the_accounts_cash(api, api_account):
    no_commission()
    market("ELECT", kalshi_ask="0.60")
    deposit = api.post(
        "/v1/intelligence/deposits", {"amount": "1000", "method": "bank"}, format="json"
    ).json()
    confirm(deposit["id"])
    order_execute(account=api_account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    withdrawal = api.post(
        "/v1/intelligence/withdrawals", {"amount": "100", "destination": "Bank"}, format="json"
    ).json()
    withdrawal_approve(
        withdrawal=WithdrawalRequest.objects.get(public_id=withdrawal["id"]), actor=StaffFactory()
    )

    body = api.get("/v1/intelligence/transactions").json()

    rows = [(t["kind"], t["amount"]) for t in body["transactions"]]
    assert rows == [
        ("withdrawal", "-100.000000"),
        ("trade", "-60.000000"),
        ("deposit", "1000.000000"),
    ]
    assert deposit["id"] in body["transactions"][2]["memo"]
    journal_ids = {t["journal_id"] for t in body["transactions"]}
    assert journal_ids == set(
        Journal.objects.filter(account=api_account).values_list("id", flat=True)
    )
    assert body["next_offset"] is None

    trades = api.get("/v1/intelligence/transactions", {"kind": "trade"}).json()
    assert [t["kind"] for t in trades["transactions"]] == ["trade"]
    paged = api.get("/v1/intelligence/transactions", {"limit": 1, "offset": 1}).json()
    assert [t["kind"] for t in paged["transactions"]] == ["trade"]
    assert paged["next_offset"] == 2


def test_transactions_filter_by_utc_days(api, api_account):
    credit_cash(api_account, "5")
    journal = Journal.objects.get(account=api_account)
    today = journal.created_at.date()
    day_before = today.fromordinal(today.toordinal() - 1).isoformat()

    inside = api.get("/v1/intelligence/transactions", {"from": today, "to": today}).json()
    assert len(inside["transactions"]) == 1
    before = api.get("/v1/intelligence/transactions", {"to": day_before}).json()
    assert before["transactions"] == []


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-13-01"},
        {"to": "yesterday"},
        {"from": "2026-04-02", "to": "2026-04-01"},
        {"kind": "gift"},
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
    ],
)
def test_bad_transaction_queries_are_400(api, query):
    response = api.get("/v1/intelligence/transactions", query)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_params"
