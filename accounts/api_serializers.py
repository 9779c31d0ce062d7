"""Input and output serializers of the account, balance, transfer and transaction
endpoints under /v1/intelligence/ (accounts.api).

Inputs check types and shapes only (`portal.api.fields`: strict decimals, free
text, days); the services decide (limits, funds, account kind). Money is a
decimal string with USDC's 6 places, in and out.
"""

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from accounts import api_examples as examples
from accounts.models import Account, Deposit, Journal, WithdrawalRequest
from portal.api.fields import DayField, TextField, money_field, money_input
from portal.api.pagination import PageQuerySerializer as _PageQuerySerializer

# The API's deposit methods; "bank" is accepted for a bank transfer.
DEPOSIT_METHOD_ALIASES = {"bank": Deposit.Method.BANK_TRANSFER}


class AccountIdField(TextField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            "The account to act on (e.g. acct_9f3a2bc0d1); optional when the key is bound "
            "to one account.",
        )
        super().__init__(max_length=32, **kwargs)


# --- Inputs ------------------------------------------------------------------------------


class AccountQuerySerializer(serializers.Serializer):
    account_id = AccountIdField()


class PageQuerySerializer(AccountQuerySerializer, _PageQuerySerializer):
    """`account_id`, `limit`, `offset`."""


class DepositListQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=Deposit.Status.choices, required=False)


class WithdrawalListQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=WithdrawalRequest.Status.choices, required=False)


class TransactionListQuerySerializer(PageQuerySerializer):
    kind = serializers.ChoiceField(choices=Journal.Kind.choices, required=False)

    def get_fields(self):
        fields = super().get_fields()
        # `from` is a Python keyword: declared here rather than as class attributes.
        fields["from"] = DayField(
            required=False, help_text="First UTC day included (ISO 8601, e.g. 2026-04-01)."
        )
        fields["to"] = DayField(required=False, help_text="Last UTC day included (ISO 8601).")
        return fields

    def validate(self, attrs):
        if "from" in attrs and "to" in attrs and attrs["from"] > attrs["to"]:
            raise serializers.ValidationError({"from": "Must be on or before `to`."})
        return attrs


@extend_schema_serializer(examples=examples.DEPOSIT_REQUEST)
class DepositCreateSerializer(serializers.Serializer):
    account_id = AccountIdField()
    amount = money_input()
    method = serializers.ChoiceField(
        choices=[*Deposit.Method.values, *DEPOSIT_METHOD_ALIASES],
        help_text="card, or bank_transfer (also accepted: bank).",
    )
    card_number = TextField(
        required=False,
        allow_blank=True,
        write_only=True,
        max_length=32,
        help_text="Card deposits only. Passed to the payment provider, never stored.",
    )

    def validate_method(self, value: str) -> str:
        return DEPOSIT_METHOD_ALIASES.get(value, value)


@extend_schema_serializer(examples=examples.WITHDRAWAL_REQUEST)
class WithdrawalCreateSerializer(serializers.Serializer):
    account_id = AccountIdField()
    amount = money_input()
    destination = TextField(
        max_length=120,
        help_text="Where the money goes, e.g. the bank account's label: printable text on "
        "one line.",
    )


# --- Outputs -----------------------------------------------------------------------------


@extend_schema_serializer(examples=examples.ACCOUNT)
class AccountOutputSerializer(serializers.Serializer):
    account_id = serializers.CharField(source="public_id")
    name = serializers.CharField()
    index = serializers.IntegerField(help_text="0 is the main account; 1–9 sub-accounts.")
    kind = serializers.ChoiceField(choices=Account.Kind.values)
    status = serializers.ChoiceField(choices=Account.Status.values)
    margin_enabled = serializers.BooleanField()
    lifetime_volume = money_field()
    created_at = serializers.DateTimeField()


@extend_schema_serializer(examples=examples.BALANCES)
class BalancesOutputSerializer(serializers.Serializer):
    account_id = serializers.CharField()
    cash = money_field(help_text="The sum of the account's cash postings (negative: a loan).")
    deposit = money_field(help_text="Net deposits: deposits − withdrawals.")
    used_margin = money_field()
    adjusted_equity = money_field()
    available_margin = money_field()
    margin_health = serializers.DecimalField(
        max_digits=18,
        decimal_places=6,
        allow_null=True,
        help_text="Adjusted Equity / Used Margin; null when nothing is borrowed.",
    )
    margin_status = serializers.CharField(help_text="healthy, caution or margin_call.")
    pending_withdrawals = money_field(help_text="Claimed by withdrawals waiting for review.")
    reserved_for_orders = money_field(
        help_text="Held by orders sent to a venue whose fills are not booked yet (their "
        "worst-case cost); released as they fill or end."
    )
    withdrawable = money_field(help_text="What a new withdrawal request may take now.")
    as_of = serializers.DateTimeField(source="at")


@extend_schema_serializer(examples=examples.DEPOSIT_OUT)
class DepositOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    account_id = serializers.CharField(source="account.public_id")
    amount = money_field()
    method = serializers.ChoiceField(choices=Deposit.Method.values)
    status = serializers.ChoiceField(
        choices=Deposit.Status.values,
        help_text="pending until the payment provider confirms (confirmed) or declines "
        "(failed) it.",
    )
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    confirmed_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(examples=examples.WITHDRAWAL_OUT)
class WithdrawalOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    account_id = serializers.CharField(source="account.public_id")
    amount = money_field()
    destination = serializers.CharField()
    status = serializers.ChoiceField(
        choices=WithdrawalRequest.Status.values,
        help_text="pending until ops review it: approved (paid out) or rejected; "
        "cancelled by the customer; failed when the payment provider refused the approved "
        "payout (the amount is back in cash; `failure_reason` says why).",
    )
    rejection_reason = serializers.CharField()
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    reviewed_at = serializers.DateTimeField(allow_null=True)


class TransactionOutputSerializer(serializers.Serializer):
    journal_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Journal.Kind.values)
    memo = serializers.CharField()
    amount = money_field(help_text="Signed: positive credits the account's cash.")
    created_at = serializers.DateTimeField()


class _PageOutputSerializer(serializers.Serializer):
    account_id = serializers.CharField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next_offset = serializers.IntegerField(
        allow_null=True, help_text="The offset of the next page; null on the last page."
    )


@extend_schema_serializer(examples=examples.DEPOSIT_LIST)
class DepositListOutputSerializer(_PageOutputSerializer):
    deposits = DepositOutputSerializer(many=True)


@extend_schema_serializer(examples=examples.WITHDRAWAL_LIST)
class WithdrawalListOutputSerializer(_PageOutputSerializer):
    withdrawals = WithdrawalOutputSerializer(many=True)


@extend_schema_serializer(examples=examples.TRANSACTION_LIST)
class TransactionListOutputSerializer(_PageOutputSerializer):
    transactions = TransactionOutputSerializer(many=True)


def page_data(*, account_id: str, page, name: str) -> dict:
    """The list envelope's fields for `page` (its items under `name`)."""
    return {
        "account_id": account_id,
        name: page.items,
        "limit": page.limit,
        "offset": page.offset,
        "next_offset": page.next_offset,
    }
