"""A key never reads or changes another account through the account, transfer,
transaction and report endpoints: not by `account_id`, not by a record's id.

Account B belongs to another customer; account A2 to the same customer as A
but is not bound to the key. Every attempt answers 404 `not_found` (another
account's record is indistinguishable from one that does not exist), names
nothing of B's, and leaves B's records as they were.
"""

from datetime import date
from decimal import Decimal

import pytest

from accounts.models import Account, Deposit, WithdrawalRequest
from accounts.services.deposits import deposit_create
from accounts.services.withdrawals import withdrawal_request
from tests.api.conftest import client_for, key_issue
from tests.conftest import credit_cash
from tests.factories import open_account
from trading.models import Report
from trading.services.reports import report_request

pytestmark = pytest.mark.django_db

REPORT_BODY = {"type": "transactions", "from": "2026-04-01", "to": "2026-04-02"}


@pytest.fixture
def a(api_account) -> Account:
    credit_cash(api_account, "1000")
    return api_account


@pytest.fixture
def b(db) -> Account:
    """Another customer's funded account, with a deposit, a withdrawal and a report."""
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "5000", memo="B's secret funding")
    deposit_create(account=account, amount=Decimal("77.13"), method="bank_transfer")
    withdrawal_request(
        account=account, amount=Decimal("10"), destination="B bank", requested_by=account.owner
    )
    report_request(
        account=account,
        type="transactions",
        date_from=date(2026, 4, 1),
        date_to=date(2026, 4, 2),
    )
    return account


@pytest.fixture
def a2(a) -> Account:
    """The same customer's second account, not bound to the key."""
    account = open_account(owner=a.owner, kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "300")
    return account


def _not_found(response, *secrets: str) -> None:
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    for secret in secrets:
        assert secret not in response.content.decode()


READS = [
    "/v1/intelligence/account",
    "/v1/intelligence/balances",
    "/v1/intelligence/account/balances",
    "/v1/intelligence/deposits",
    "/v1/intelligence/withdrawals",
    "/v1/intelligence/transactions",
    "/v1/intelligence/reports",
]


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize("victim", ["b", "a2"])
def test_reads_for_an_account_not_on_the_key_are_404(api, a, path, victim, request):
    other = request.getfixturevalue(victim)
    _not_found(api.get(path, {"account_id": other.public_id}), "5000", "300.000000")
    own = api.get(path, {"account_id": a.public_id})
    assert own.status_code == 200
    assert other.public_id not in own.content.decode()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/intelligence/deposits", {"amount": "10", "method": "bank"}),
        ("/v1/intelligence/withdrawals", {"amount": "10", "destination": "Mallory's bank"}),
        ("/v1/intelligence/reports", REPORT_BODY),
    ],
)
@pytest.mark.parametrize("where", ["body", "query"])
def test_writes_for_another_account_are_404_and_change_nothing(api, a, b, path, body, where):
    before = (
        Deposit.objects.filter(account=b).count(),
        WithdrawalRequest.objects.filter(account=b).count(),
        Report.objects.filter(account=b).count(),
    )
    if where == "body":
        response = api.post(path, {**body, "account_id": b.public_id}, format="json")
    else:
        response = api.post(f"{path}?account_id={b.public_id}", body, format="json")
    _not_found(response)
    after = (
        Deposit.objects.filter(account=b).count(),
        WithdrawalRequest.objects.filter(account=b).count(),
        Report.objects.filter(account=b).count(),
    )
    assert after == before
    b.refresh_from_db()
    assert b.cash_balance == Decimal("5000")


def test_another_accounts_records_by_id_are_404(api, a, b):
    deposit = Deposit.objects.get(account=b)
    withdrawal = WithdrawalRequest.objects.get(account=b)
    report = Report.objects.get(account=b)

    _not_found(api.get(f"/v1/intelligence/deposits/{deposit.public_id}"), "77.13")
    _not_found(api.get(f"/v1/intelligence/withdrawals/{withdrawal.public_id}"), "B bank")
    _not_found(api.get(f"/v1/intelligence/reports/{report.public_id}"))
    _not_found(
        api.get(f"/v1/intelligence/deposits/{deposit.public_id}", {"account_id": b.public_id})
    )


def test_another_accounts_withdrawal_cannot_be_cancelled(api, a, b):
    withdrawal = WithdrawalRequest.objects.get(account=b)
    _not_found(api.post(f"/v1/intelligence/withdrawals/{withdrawal.public_id}/cancel"))
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalRequest.Status.PENDING


def test_lists_never_include_another_accounts_rows(api, a, b):
    deposits = api.get("/v1/intelligence/deposits").json()["deposits"]
    withdrawals = api.get("/v1/intelligence/withdrawals").json()["withdrawals"]
    transactions = api.get("/v1/intelligence/transactions").json()["transactions"]
    reports = api.get("/v1/intelligence/reports").json()["reports"]
    assert deposits == [] and withdrawals == [] and reports == []
    assert [t["amount"] for t in transactions] == ["1000.000000"]
    assert "secret" not in str(transactions)


def test_a_key_bound_to_both_accounts_of_one_owner_reaches_each_by_id(a, a2):
    both = client_for(key_issue([a, a2]))
    withdrawal = withdrawal_request(
        account=a2, amount=Decimal("5"), destination="Bank", requested_by=a2.owner
    )
    response = both.get(f"/v1/intelligence/withdrawals/{withdrawal.public_id}")
    assert response.status_code == 200 and response.json()["account_id"] == a2.public_id
    # …and the key bound to A alone still cannot.
    _not_found(
        client_for(key_issue([a])).get(f"/v1/intelligence/withdrawals/{withdrawal.public_id}")
    )
