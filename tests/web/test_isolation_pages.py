"""No page shows or changes another customer's data.

Two customers, each with accounts, deposits, withdrawals, ledger transactions,
notifications, API keys and reports, all made through the real services. Signed
in as Alice, every page, also fed Bob's ids in paths, forms and query
parameters, answers 404 or Alice's own data, never a trace of Bob's.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest

from accounts.models import Account, Deposit, Notification, User, WithdrawalRequest
from accounts.services.api_keys import api_key_issue
from accounts.services.deposits import deposit_create
from accounts.services.notifications import notification_create
from accounts.services.withdrawals import withdrawal_request
from tests.conftest import credit_cash
from tests.factories import StaffFactory, UserFactory, open_account
from tests.web.conftest import html, signed_in
from trading.models import Report
from trading.services.reports import report_generate, report_request

pytestmark = pytest.mark.django_db


@dataclass
class Customer:
    user: User
    account: Account
    tracked: Account
    deposit: Deposit
    withdrawal: WithdrawalRequest
    notification: Notification
    report: Report
    key_prefix: str
    secrets: list[str]  # strings that identify this customer's data in a page


def customer(name: str, *, funding: str, deposit: str, withdrawal: str) -> Customer:
    user = UserFactory(email=f"{name}@example.test", full_name=f"{name.title()} Example")
    account = open_account(owner=user, kind=Account.Kind.CUSTODIAL)
    tracked = open_account(owner=user, kind=Account.Kind.NON_CUSTODIAL, name=f"{name} tracked")
    credit_cash(account, Decimal(funding), memo=f"{name} private funding")
    made_deposit = deposit_create(account=account, amount=Decimal(deposit), method="bank_transfer")
    made_withdrawal = withdrawal_request(
        account=account,
        amount=Decimal(withdrawal),
        destination=f"{name} private bank",
        requested_by=user,
    )
    notification, _ = notification_create(
        user_id=user.pk,
        account_id=account.pk,
        kind=Notification.Kind.MARGIN_CALL,
        title=f"{name} private margin call",
        body=f"{name}'s Margin Health is low.",
    )
    key = api_key_issue(
        owner=user,
        accounts=[account],
        scopes=["intelligence", "read"],
        name=f"{name} private key",
        actor=StaffFactory(),
    )
    report = report_request(
        account=account,
        type="transactions",
        date_from=date(2020, 1, 1),
        date_to=date(2029, 12, 31),
    )
    report = report_generate(report_id=report.pk)
    amounts = [f"{Decimal(value):,.2f}" for value in (funding, deposit, withdrawal)]
    return Customer(
        user=user,
        account=account,
        tracked=tracked,
        deposit=made_deposit,
        withdrawal=made_withdrawal,
        notification=notification,
        report=report,
        key_prefix=key.api_key.prefix,
        secrets=[
            user.email,
            account.public_id,
            tracked.public_id,
            made_deposit.public_id,
            made_withdrawal.public_id,
            report.public_id,
            key.api_key.prefix,
            f"{name} private",
            f"{name} tracked",
            *amounts,
        ],
    )


@pytest.fixture
def alice() -> Customer:
    return customer("alice", funding="31415.92", deposit="2718.28", withdrawal="1414.21")


@pytest.fixture
def bob() -> Customer:
    return customer("bob", funding="77777.77", deposit="4321.09", withdrawal="1234.56")


@pytest.fixture
def alice_client(client, alice, bob):
    return signed_in(client, alice.user)


def assert_nothing_of(customer: Customer, response) -> None:
    page = html(response)
    for secret in customer.secrets:
        assert secret not in page, f"{secret!r} leaked into {response.request['PATH_INFO']}"


PAGES = [
    "/accounts/",
    "/deposits/",
    "/withdrawals/",
    "/transactions/",
    "/orders/",
    "/positions/",
    "/notifications/",
    "/reports/",
    "/api-keys/",
    "/security/",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_shows_only_the_signed_in_customers_data(alice_client, alice, bob, path):
    for query in ("", "?account={b}", "?account_id={b}", "?account={b}&page=1&kind=deposit"):
        response = alice_client.get(path + query.format(b=bob.account.public_id))
        assert response.status_code == 200, path
        assert_nothing_of(bob, response)


def test_own_data_is_there(alice_client, alice):
    """The pages above are not empty: they do show Alice's own records."""
    expectations = {
        "/accounts/": [
            alice.account.public_id,
            alice.tracked.public_id,
            f"{Account.objects.get(pk=alice.account.pk).risk_cash:,.2f}",  # its cash
        ],
        "/deposits/": [alice.deposit.public_id, "2,718.28"],
        "/withdrawals/": [alice.withdrawal.public_id, "1,414.21", "alice private bank"],
        "/transactions/": ["alice private funding", "31,415.92"],
        "/notifications/": ["alice private margin call"],
        "/reports/": [alice.report.public_id, "Ready"],
        "/api-keys/": [alice.key_prefix, "alice private key"],
    }
    for path, expected in expectations.items():
        page = html(alice_client.get(path))
        for text in expected:
            assert text in page, (path, text)


def test_anothers_records_by_id_are_404(alice_client, alice, bob):
    assert alice_client.get(f"/deposits/{bob.deposit.public_id}/").status_code == 404
    assert alice_client.get(f"/reports/{bob.report.public_id}/download/").status_code == 404
    own = alice_client.get(f"/deposits/{alice.deposit.public_id}/")
    assert own.status_code == 200
    assert_nothing_of(bob, own)
    own_download = alice_client.get(f"/reports/{alice.report.public_id}/download/")
    assert own_download.status_code == 302
    assert bob.report.public_id not in own_download.url


def test_anothers_withdrawal_cannot_be_cancelled(alice_client, bob):
    response = alice_client.post(f"/withdrawals/{bob.withdrawal.public_id}/cancel/")
    assert response.status_code == 404
    bob.withdrawal.refresh_from_db()
    assert bob.withdrawal.status == WithdrawalRequest.Status.PENDING


def test_the_switcher_will_not_switch_to_anothers_account(alice_client, alice, bob):
    for account in (bob.account, bob.tracked):
        response = alice_client.post("/accounts/switch/", {"account": account.public_id})
        assert response.status_code == 404
    assert_nothing_of(bob, alice_client.get("/transactions/"))
    assert_nothing_of(bob, alice_client.get("/withdrawals/"))


def test_anothers_notification_cannot_be_marked_read(alice_client, bob):
    response = alice_client.post("/notifications/read/", {"notification": bob.notification.pk})
    assert response.status_code == 302
    alice_client.post("/notifications/read/")  # "all": Alice's all
    bob.notification.refresh_from_db()
    assert bob.notification.read_at is None


def test_forms_never_act_on_anothers_account(alice_client, alice, bob):
    before = (
        Deposit.objects.filter(account=bob.account).count(),
        WithdrawalRequest.objects.filter(account=bob.account).count(),
        Report.objects.filter(account=bob.account).count(),
    )
    extra = {"account": bob.account.public_id, "account_id": bob.account.public_id}
    alice_client.post(
        f"/deposits/?account_id={bob.account.public_id}",
        {"amount": "10", "method": "bank_transfer", **extra},
    )
    alice_client.post("/withdrawals/", {"amount": "10", "destination": "x", **extra})
    alice_client.post(
        "/reports/",
        {
            "type": "positions",
            "date_from": "2026-04-01",
            "date_to": "2026-04-02",
            "format": "csv",
            **extra,
        },
    )
    after = (
        Deposit.objects.filter(account=bob.account).count(),
        WithdrawalRequest.objects.filter(account=bob.account).count(),
        Report.objects.filter(account=bob.account).count(),
    )
    assert after == before
    # They acted on Alice's current account instead.
    assert Deposit.objects.filter(account=alice.account).count() == 2
    assert WithdrawalRequest.objects.filter(account=alice.account).count() == 2
    assert Report.objects.filter(account=alice.account).count() == 2
    bob.account.refresh_from_db()
    assert bob.account.cash_balance == Decimal("77777.77")


def test_the_header_never_lists_anothers_accounts(alice_client, alice, bob):
    page = html(alice_client.get("/accounts/"))
    assert f'value="{alice.account.public_id}"' in page
    assert f'value="{alice.tracked.public_id}"' in page
    assert_nothing_of(bob, alice_client.get("/accounts/"))
