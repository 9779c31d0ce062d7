"""What the bad-input tests share (their fixtures, `funded_account` and `priced_markets`,
are in tests/api/conftest.py): the error of a response, and the money state a refused
request must leave unchanged."""

from accounts.models import Account, Deposit, Journal, WithdrawalRequest
from trading.models import Fill, Order

BASE = "/v1/intelligence/"


def error_of(response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"code", "message"}, body
    return response.status_code, body["code"]


def money_state(account: Account) -> tuple:
    """What a refused request must leave as it was."""
    account.refresh_from_db()
    return (
        account.cash_balance,
        Order.objects.count(),
        Fill.objects.count(),
        Journal.objects.count(),
        Deposit.objects.count(),
        WithdrawalRequest.objects.count(),
    )
