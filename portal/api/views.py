"""The base of every /v1 view: key auth, scopes, rate limits, version, errors, JSON.

Views are thin (ARCHITECTURE "APIs are thin"): an input serializer validates,
a service or selector decides, an output serializer renders. The account a
request acts on is resolved here, from the key's own accounts only.
"""

from typing import Any, NamedTuple, Protocol

from django.db.models import Model
from django.http import HttpRequest, HttpResponse, QueryDict
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.parsers import JsonParser
from portal.api.renderers import OrjsonRenderer
from portal.api.throttles import GroupRateThrottle
from portal.api.versioning import HEADER, api_version_get
from portal.errors import ErrorCode

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_SCOPES = ("intelligence", "read")
TRADE_SCOPES = ("intelligence", "trade")


class ApiIdentity(Protocol):
    """`request.auth` of an authenticated /v1 request, as the configured authentication
    (settings.REST_FRAMEWORK: API keys, `accounts.api_auth`) sets it: the key's scopes
    and the accounts it may act on."""

    scopes: frozenset[str]

    def account_get(self, public_id: str | None) -> Model:
        """The account named by `public_id` among the key's own (None: the key's only
        account). Raises InvalidParams or NotFound."""
        ...


class ApiResponse(HttpResponse):
    """A /v1 answer, already rendered: the body, status and headers of DRF's Response,
    whose `data` it keeps for in-process callers and tests."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.content, status=response.status_code, headers=response.headers)
        self.data = response.data


class ApiView(APIView):
    """A /v1 endpoint. Subclasses set `required_scopes`, `throttle_group` and
    `error_codes`: the ErrorCode members its operations can answer beyond the ones every
    operation can (`portal.api.schema.COMMON_ERRORS`); the OpenAPI document lists
    exactly these, and `tests/api/test_error_codes.py` fails on one it does not list.

    Groups (settings.API_RATE_LIMITS): "market_data" (reads), "order_management"
    (orders, leverage, transfers, reports), "execute".
    """

    # Authentication and the scope check are settings.REST_FRAMEWORK's defaults (API
    # keys: `accounts.api_auth`), so this base knows no app.
    throttle_classes = [GroupRateThrottle]
    renderer_classes = [OrjsonRenderer]
    parser_classes = [JsonParser]  # also the stream's commands: they run these views
    required_scopes: tuple[str, ...] = ("intelligence", "read")
    throttle_group = "market_data"
    error_codes: tuple[ErrorCode, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "error_statuses" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: declare `error_codes` (ErrorCode members).")

    def determine_version(self, request: Request, *args, **kwargs) -> tuple[str, None]:
        # The Lev-Version header, checked before authentication (DRF's order).
        return api_version_get(request), None

    def finalize_response(self, request: Request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response[HEADER] = getattr(request, "version", None) or response.get(HEADER, "")
        rate_limit = getattr(request, "rate_limit", None)
        if rate_limit is not None:
            response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"] = map(str, rate_limit)
        if not isinstance(response, Response):
            return response  # a file or stream of the view's own
        # Rendered here, in the view's thread: under ASGI, Django renders a template
        # response (which DRF's is) through two more thread hand-offs of its own.
        return ApiResponse(response.render())

    def account_get(self, request: Request) -> Any:
        """The account this request acts on: `account_id` (query string, or body for
        writes), which must be one of the key's; optional when the key has one account.

        Raises InvalidParams (missing with several accounts) or NotFound (not the key's:
        another customer's account is indistinguishable from one that does not exist).
        """
        public_id = request.query_params.get("account_id")
        if public_id is None and request.method not in SAFE_METHODS:
            data = request.data
            public_id = data.get("account_id") if isinstance(data, dict) else None
        identity: ApiIdentity = request.auth
        return identity.account_get(public_id)


class Policy(NamedTuple):
    scopes: tuple[str, ...]
    throttle_group: str
    error_codes: tuple[ErrorCode, ...]


class MethodPolicyApi(ApiView):
    """A path that answers several methods, each with its own scopes, rate-limit
    group and error codes (`policies`, by HTTP method; HEAD is GET)."""

    policies: dict[str, Policy] = {}

    def _policy(self) -> Policy:
        request = getattr(self, "request", None)
        method = getattr(request, "method", None) or "GET"
        if method == "HEAD":
            method = "GET"
        return self.policies.get(method) or next(iter(self.policies.values()))

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return self._policy().scopes

    @property
    def throttle_group(self) -> str:
        return self._policy().throttle_group

    @property
    def error_codes(self) -> tuple[ErrorCode, ...]:
        return self._policy().error_codes


def validated(serializer_class, data) -> dict[str, Any]:
    """`data` validated by `serializer_class` (ValidationError → 400 invalid_params).

    A query string is read as what it says: `?status=` is an empty status (refused
    like any other bad value, as the schema documents), not an absent one (DRF's
    reading of HTML form input)."""
    if isinstance(data, QueryDict):
        data = data.dict()
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith("/v1/")
