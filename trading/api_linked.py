"""A linked (non-custodial) account's sync status, and "Sync now", under /v1/intelligence/.

The credential itself never appears: only the venue, its masked identity,
scopes, status, the venue cash of the last sync and the last error.
"""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Account, LinkedCredential
from portal.api.fields import money_field
from portal.api.views import ApiView
from portal.errors import ErrorCode, NotFound
from trading import api_examples as examples
from trading.services.linked_accounts import linked_account_sync_request


@extend_schema_serializer(examples=examples.LINKED_ACCOUNT)
class LinkedAccountOutputSerializer(serializers.Serializer):
    account_id = serializers.CharField(source="account.public_id")
    venue = serializers.ChoiceField(choices=LinkedCredential.Venue.values)
    environment = serializers.CharField(help_text="Kalshi: production or demo; else empty.")
    identity = serializers.CharField(
        source="identity_masked", help_text="Masked key id or wallet address."
    )
    scopes = serializers.CharField()
    warning = serializers.CharField()
    status = serializers.ChoiceField(choices=LinkedCredential.Status.values)
    cash = money_field(source="cash_balance", allow_null=True)
    last_synced_at = serializers.DateTimeField(allow_null=True)
    last_sync_attempt_at = serializers.DateTimeField(allow_null=True)
    next_sync_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()


def _credential(view: ApiView, request: Request) -> LinkedCredential:
    account: Account = view.account_get(request)
    credential = LinkedCredential.objects.filter(account=account).first()
    if credential is None:
        raise NotFound(f"Account {account.public_id} is not a linked exchange account.")
    return credential


class LinkedAccountApi(ApiView):
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="linked_account_get",
        examples=examples.LINKED_ACCOUNT_ANY,
        summary="A linked exchange account's sync status",
        responses=LinkedAccountOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        return Response(LinkedAccountOutputSerializer(_credential(self, request)).data)


class LinkedAccountSyncApi(ApiView):
    # Each sync reads the venue: counted with the writes (30 a minute), read scope enough.
    throttle_group = "order_management"
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="linked_account_sync",
        examples=examples.LINKED_ACCOUNT_ANY,
        summary='Sync a linked exchange account now ("Sync now"); the sync runs in the '
        "background: poll the status for its outcome",
        request=None,
        responses={202: LinkedAccountOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        credential = _credential(self, request)
        linked_account_sync_request(credential=credential, actor=credential.account.owner)
        return Response(
            LinkedAccountOutputSerializer(credential).data, status=status.HTTP_202_ACCEPTED
        )
