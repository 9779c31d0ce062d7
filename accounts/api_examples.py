"""Examples of the account, balance, transfer and transaction endpoints' bodies in the
OpenAPI document (declared on the serializers of `accounts.api_serializers`).

Values as the API writes them: money as decimal strings with USDC's 6 places, ids as
the models make them (`acct_…`, `dep_…`, `wd_…`), times ISO 8601 in UTC. The account
is seed 000's (see `trading.api_examples`): 600,000 USDC deposited, borrowing
154,398.53 USDC against its positions.
"""

from drf_spectacular.utils import OpenApiExample

from portal.api.schema import EXAMPLE_ACCOUNT_ID as ACCOUNT_ID
from portal.api.schema import error_example
from portal.errors import ErrorCode

ACCOUNT = [
    OpenApiExample(
        "Custodial account",
        value={
            "account_id": ACCOUNT_ID,
            "name": "Macro book",
            "index": 0,
            "kind": "custodial",
            "status": "active",
            "margin_enabled": True,
            "lifetime_volume": "3290530.000000",
            "created_at": "2026-03-02T16:04:11.532907Z",
        },
        response_only=True,
    )
]
BALANCES = [
    OpenApiExample(
        "Borrowing",
        summary="Cash below zero: Used Margin, nothing withdrawable",
        value={
            "account_id": ACCOUNT_ID,
            "cash": "-154398.530000",
            "deposit": "600000.000000",
            "used_margin": "154398.530000",
            "adjusted_equity": "249030.000000",
            "available_margin": "94631.470000",
            "margin_health": "1.612904",
            "margin_status": "healthy",
            "pending_withdrawals": "0.000000",
            "reserved_for_orders": "0.000000",
            "withdrawable": "0.000000",
            "as_of": "2026-04-22T15:02:11.902113Z",
        },
        response_only=True,
    )
]

DEPOSIT = {
    "id": "dep_42289880cfe12085",
    "account_id": ACCOUNT_ID,
    "amount": "250000.000000",
    "method": "bank_transfer",
    "status": "pending",
    "failure_reason": "",
    "created_at": "2026-04-17T10:12:45.864749Z",
    "confirmed_at": None,
}
CONFIRMED_DEPOSIT = DEPOSIT | {
    "status": "confirmed",
    "confirmed_at": "2026-04-17T10:14:02.117305Z",
}
CARD_DEPOSIT = {
    "id": "dep_7c0e5b19a2f34d68",
    "account_id": ACCOUNT_ID,
    "amount": "1500.000000",
    "method": "card",
    "status": "failed",
    "failure_reason": "The card was declined.",
    "created_at": "2026-04-12T18:40:03.209561Z",
    "confirmed_at": None,
}
DEPOSIT_REQUEST = [
    OpenApiExample(
        "Bank transfer",
        value={"amount": "250000.00", "method": "bank_transfer"},
        request_only=True,
    ),
    OpenApiExample(
        "Card",
        value={"amount": "1500.00", "method": "card", "card_number": "4242424242424242"},
        request_only=True,
    ),
]
DEPOSIT_OUT = [
    OpenApiExample(
        "Pending bank transfer",
        summary="Started; pending until the payment provider confirms it",
        value=DEPOSIT,
        status_codes=["201"],
        response_only=True,
    ),
    OpenApiExample(
        "Confirmed bank transfer", value=CONFIRMED_DEPOSIT, status_codes=["200"], response_only=True
    ),
]
DEPOSIT_LIST = [
    OpenApiExample(
        "Deposits",
        value={
            "account_id": ACCOUNT_ID,
            "limit": 100,
            "offset": 0,
            "next_offset": None,
            "deposits": [CONFIRMED_DEPOSIT, CARD_DEPOSIT],
        },
        response_only=True,
    )
]

WITHDRAWAL = {
    "id": "wd_d1244f051f7b013f",
    "account_id": ACCOUNT_ID,
    "amount": "5000.000000",
    "destination": "Chase business checking ****4821",
    "status": "pending",
    "rejection_reason": "",
    "failure_reason": "",
    "created_at": "2026-04-18T09:30:27.263663Z",
    "reviewed_at": None,
}
APPROVED_WITHDRAWAL = {
    "id": "wd_3f9a0c7e21b84d56",
    "account_id": ACCOUNT_ID,
    "amount": "20000.000000",
    "destination": "Chase business checking ****4821",
    "status": "approved",
    "rejection_reason": "",
    "failure_reason": "",
    "created_at": "2026-04-03T13:02:51.880214Z",
    "reviewed_at": "2026-04-03T15:47:09.412876Z",
}
WITHDRAWAL_REQUEST = [
    OpenApiExample(
        "To the bank",
        value={"amount": "5000.00", "destination": "Chase business checking ****4821"},
        request_only=True,
    )
]
WITHDRAWAL_OUT = [
    OpenApiExample(
        "Pending review", value=WITHDRAWAL, status_codes=["200", "201"], response_only=True
    )
]
WITHDRAWAL_LIST = [
    OpenApiExample(
        "Withdrawals",
        value={
            "account_id": ACCOUNT_ID,
            "limit": 100,
            "offset": 0,
            "next_offset": None,
            "withdrawals": [WITHDRAWAL, APPROVED_WITHDRAWAL],
        },
        response_only=True,
    )
]

TRANSACTION_LIST = [
    OpenApiExample(
        "Transactions",
        summary="The newest three; more on the next page",
        value={
            "account_id": ACCOUNT_ID,
            "limit": 3,
            "offset": 0,
            "next_offset": 3,
            "transactions": [
                {
                    "journal_id": 48213,
                    "kind": "interest",
                    "memo": "Interest for 2026-04-22: 0.080000 a year on Used Margin 154398.530000",
                    "amount": "-33.840774",
                    "created_at": "2026-04-23T00:05:00.318204Z",
                },
                {
                    "journal_id": 48177,
                    "kind": "trade",
                    "memo": "ord_c4a81f3e6b907d25: buy 40.000000 BTC-PERP @ 70539.50000000 "
                    "on leviathan",
                    "amount": "-284979.580000",
                    "created_at": "2026-04-22T14:30:00.407761Z",
                },
                {
                    "journal_id": 47302,
                    "kind": "trade",
                    "memo": "ord_9a7e2c4b1f8d0635: buy 800000.000000 TRUMP-WIN YES "
                    "@ 0.58618750 on polymarket",
                    "amount": "-469418.950000",
                    "created_at": "2026-04-20T09:15:00.205118Z",
                },
            ],
        },
        response_only=True,
    )
]


# ---------------------------------------------------------------------------
# Per operation (`extend_schema(examples=…)`): the cases an operation answers of its
# own, and its own words for the errors it shares with others.

_NON_CUSTODIAL = error_example(
    ErrorCode.CUSTODIAL_REQUIRED,
    "Account acct_4c7e19a2b8 is non-custodial: its deposits and withdrawals happen on the "
    "exchange directly.",
)
_WITHDRAWAL_NOT_FOUND = error_example(ErrorCode.NOT_FOUND, "No withdrawal 'wd_0c1d2e3f4a5b6c7d'.")

DEPOSITS_CREATE = [
    error_example(
        ErrorCode.INVALID_PARAMS,
        'amount must be a decimal string of ASCII digits such as "1500.00".',
    ),
    _NON_CUSTODIAL,
]
DEPOSITS_GET = [error_example(ErrorCode.NOT_FOUND, "No deposit 'dep_0a1b2c3d4e5f6a7b'.")]
WITHDRAWALS_CREATE = [
    error_example(
        ErrorCode.INVALID_PARAMS, "The amount must be between 0.000001 and 1000000 USDC."
    ),
    error_example(
        ErrorCode.INSUFFICIENT_FUNDS,
        f"Cannot withdraw 5000.000000 USDC from {ACCOUNT_ID}: 0.000000 USDC is available "
        "to withdraw.",
    ),
    _NON_CUSTODIAL,
]
WITHDRAWALS_GET = [_WITHDRAWAL_NOT_FOUND]
WITHDRAWALS_CANCEL = [
    OpenApiExample(
        "Cancelled",
        value=WITHDRAWAL | {"status": "cancelled"},
        status_codes=["200"],
        response_only=True,
    ),
    error_example(
        ErrorCode.WITHDRAWAL_NOT_PENDING, "Withdrawal wd_3f9a0c7e21b84d56 is already approved."
    ),
    _WITHDRAWAL_NOT_FOUND,
]
TRANSACTIONS_LIST = [
    error_example(ErrorCode.INVALID_PARAMS, "from must be on or before `to`."),
]
