"""The account, balance, transfer and transaction endpoints under /v1/intelligence/.

Thin views (ARCHITECTURE "APIs are thin"): an input serializer validates, a
selector reads or a service decides, an output serializer renders. Reads need
the `intelligence` and `read` scopes and count against the market-data rate
limit; writes (deposits, withdrawal requests and cancellations) need
`intelligence` and `trade` and count against order management. The account is
the key's (`account_id`, optional for a one-account key); a deposit or
withdrawal id is looked up among the key's accounts only, so another
customer's id answers 404 like one that does not exist.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import api_examples as examples
from accounts import selectors
from accounts.api_serializers import (
    AccountOutputSerializer,
    AccountQuerySerializer,
    BalancesOutputSerializer,
    DepositCreateSerializer,
    DepositListOutputSerializer,
    DepositListQuerySerializer,
    DepositOutputSerializer,
    TransactionListOutputSerializer,
    TransactionListQuerySerializer,
    WithdrawalCreateSerializer,
    WithdrawalListOutputSerializer,
    WithdrawalListQuerySerializer,
    WithdrawalOutputSerializer,
    page_data,
)
from accounts.services.deposits import deposit_create
from accounts.services.withdrawals import withdrawal_cancel, withdrawal_request
from portal.api.views import (
    READ_SCOPES,
    TRADE_SCOPES,
    ApiView,
    MethodPolicyApi,
    Policy,
    validated,
)
from portal.errors import CANNOT_TRANSACT, ErrorCode


class AccountApi(ApiView):
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="account_get",
        summary="The account: kind, status, margin eligibility, lifetime volume",
        parameters=[AccountQuerySerializer],
        responses=AccountOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        account = self.account_get(request)
        return Response(AccountOutputSerializer(account).data)


class BalancesApi(ApiView):
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        summary="Cash, net deposits, Used Margin, Adjusted Equity, Available Margin",
        parameters=[AccountQuerySerializer],
        responses=BalancesOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        account = self.account_get(request)
        balances = selectors.account_balances_get(account=account)
        return Response(BalancesOutputSerializer(balances).data)


class DepositsApi(MethodPolicyApi):
    policies = {
        "GET": Policy(READ_SCOPES, "market_data", (ErrorCode.NOT_FOUND,)),
        "POST": Policy(TRADE_SCOPES, "order_management", (ErrorCode.NOT_FOUND, *CANNOT_TRANSACT)),
    }

    @extend_schema(
        operation_id="deposits_list",
        summary="The account's deposits, newest first",
        parameters=[DepositListQuerySerializer],
        responses=DepositListOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        query = validated(DepositListQuerySerializer, request.query_params)
        account = self.account_get(request)
        page = selectors.deposit_list(
            account=account,
            status=query.get("status"),
            limit=query["limit"],
            offset=query["offset"],
        )
        data = page_data(account_id=account.public_id, page=page, name="deposits")
        return Response(DepositListOutputSerializer(data).data)

    @extend_schema(
        operation_id="deposits_create",
        examples=examples.DEPOSITS_CREATE,
        summary="Start a deposit (card or bank transfer); it stays pending until the "
        "payment provider confirms it",
        request=DepositCreateSerializer,
        responses={201: DepositOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        body = validated(DepositCreateSerializer, request.data)
        account = self.account_get(request)
        deposit = deposit_create(
            account=account,
            amount=body["amount"],
            method=body["method"],
            card_number=body.get("card_number", ""),
        )
        return Response(DepositOutputSerializer(deposit).data, status=status.HTTP_201_CREATED)


class DepositDetailApi(ApiView):
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="deposits_get",
        summary="One deposit",
        responses=DepositOutputSerializer,
        examples=examples.DEPOSITS_GET,
    )
    def get(self, request: Request, deposit_id: str) -> Response:
        deposit = selectors.deposit_get(account_ids=request.auth.account_ids, public_id=deposit_id)
        return Response(DepositOutputSerializer(deposit).data)


class WithdrawalsApi(MethodPolicyApi):
    policies = {
        "GET": Policy(READ_SCOPES, "market_data", (ErrorCode.NOT_FOUND,)),
        "POST": Policy(
            TRADE_SCOPES,
            "order_management",
            (
                ErrorCode.NOT_FOUND,
                *CANNOT_TRANSACT,
                ErrorCode.INSUFFICIENT_FUNDS,
                ErrorCode.INSUFFICIENT_MARGIN,
            ),
        ),
    }

    @extend_schema(
        operation_id="withdrawals_list",
        summary="The account's withdrawal requests, newest first",
        parameters=[WithdrawalListQuerySerializer],
        responses=WithdrawalListOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        query = validated(WithdrawalListQuerySerializer, request.query_params)
        account = self.account_get(request)
        page = selectors.withdrawal_list(
            account=account,
            status=query.get("status"),
            limit=query["limit"],
            offset=query["offset"],
        )
        data = page_data(account_id=account.public_id, page=page, name="withdrawals")
        return Response(WithdrawalListOutputSerializer(data).data)

    @extend_schema(
        operation_id="withdrawals_create",
        examples=examples.WITHDRAWALS_CREATE,
        summary="Request a withdrawal; ops review it. 422 insufficient_funds beyond what "
        "the account may withdraw",
        request=WithdrawalCreateSerializer,
        responses={201: WithdrawalOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        body = validated(WithdrawalCreateSerializer, request.data)
        account = self.account_get(request)
        withdrawal = withdrawal_request(
            account=account,
            amount=body["amount"],
            destination=body["destination"],
            requested_by=request.user.owner,
        )
        return Response(WithdrawalOutputSerializer(withdrawal).data, status=status.HTTP_201_CREATED)


class WithdrawalDetailApi(ApiView):
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="withdrawals_get",
        examples=examples.WITHDRAWALS_GET,
        summary="One withdrawal request",
        responses=WithdrawalOutputSerializer,
    )
    def get(self, request: Request, withdrawal_id: str) -> Response:
        withdrawal = selectors.withdrawal_get(
            account_ids=request.auth.account_ids, public_id=withdrawal_id
        )
        return Response(WithdrawalOutputSerializer(withdrawal).data)


class WithdrawalCancelApi(ApiView):
    required_scopes = TRADE_SCOPES
    throttle_group = "order_management"
    error_codes = (ErrorCode.NOT_FOUND, ErrorCode.WITHDRAWAL_NOT_PENDING)

    @extend_schema(
        operation_id="withdrawals_cancel",
        examples=examples.WITHDRAWALS_CANCEL,
        summary="Cancel a pending withdrawal request (409 withdrawal_not_pending otherwise)",
        request=None,
        responses=WithdrawalOutputSerializer,
    )
    def post(self, request: Request, withdrawal_id: str) -> Response:
        withdrawal = selectors.withdrawal_get(
            account_ids=request.auth.account_ids, public_id=withdrawal_id
        )
        cancelled = withdrawal_cancel(withdrawal=withdrawal, user=request.user.owner)
        return Response(WithdrawalOutputSerializer(cancelled).data)


class TransactionListApi(ApiView):
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="transactions_list",
        examples=examples.TRANSACTIONS_LIST,
        summary="The ledger journals that moved the account's cash, newest first",
        parameters=[TransactionListQuerySerializer],
        responses=TransactionListOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        query = validated(TransactionListQuerySerializer, request.query_params)
        account = self.account_get(request)
        page = selectors.transaction_list(
            account=account,
            kind=query.get("kind"),
            date_from=query.get("from"),
            date_to=query.get("to"),
            limit=query["limit"],
            offset=query["offset"],
        )
        data = page_data(account_id=account.public_id, page=page, name="transactions")
        return Response(TransactionListOutputSerializer(data).data)
