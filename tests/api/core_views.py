"""Views for the API core's tests (tests/api/urls_core.py): one per behaviour."""

from rest_framework.response import Response

from portal.api.views import ApiView
from portal.errors import InsufficientMargin


class PingApi(ApiView):
    required_scopes = ("intelligence", "read")
    throttle_group = "market_data"

    def get(self, request):
        return Response({"account_id": self.account_get(request).public_id})


class EchoApi(ApiView):
    required_scopes = ("intelligence", "trade")
    throttle_group = "order_management"

    def post(self, request):
        return Response({"account_id": self.account_get(request).public_id, "body": request.data})


class BoomApi(ApiView):
    def get(self, request):
        raise RuntimeError("secret internals must not leak")


class RefusedApi(ApiView):
    def get(self, request):
        raise InsufficientMargin("Order would exceed your credit facility.")
