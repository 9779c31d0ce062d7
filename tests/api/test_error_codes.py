"""One error vocabulary (`portal.errors.ErrorCode`), and an OpenAPI document that lists
every code each /v1 operation can answer.

Two checks keep the document honest, because neither alone sees everything:

- Dynamic, in every test of the suite: the autouse fixture `_error_codes_declared`
  (tests/conftest.py) records each error response a DRF view gives — REST calls, the
  partner stream's commands (they run the same views), schemathesis' requests — and
  fails the test if the (status, code) is not in that operation's responses in the
  schema document. It sees what the tests reach, whatever path the error took (a
  venue adapter's exception, a DRF throttle, a serializer).
- Static, here: from each view method's source, every function of ours it calls by
  name (transitively) and the DomainError subclasses they raise with their `code=`,
  less what an `except` on the way swallows (`tests/error_codes.codes_raised`). It
  sees raise sites no test reaches, but not calls through objects (venue adapters).

`test_the_recorder_catches_an_undeclared_code` shows the dynamic check can fail.
"""

import ast
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.urls import get_resolver

from accounts.api import WithdrawalCancelApi
from portal.api.schema import BODY_ERRORS, COMMON_ERRORS
from portal.errors import DomainError, ErrorCode, Forbidden, InvalidParams, NotFound
from tests.error_codes import ErrorRecorder, codes_raised, schema_operations
from trading.api_markets import MarketListApi

# Codes a view can reach in the source but never answers by design: a journal's
# idempotency key is derived from the row being booked under its lock, so the ledger
# refusing a repeat (`already_posted`) is a bug surfacing, not an answer to document.
NEVER_ANSWERED = frozenset({ErrorCode.ALREADY_POSTED})


def declared(operation) -> set[ErrorCode]:
    return {ErrorCode.from_code(code) for _, code in operation.declared}


def test_each_code_has_one_wire_name_a_status_and_a_message():
    assert len({error.code for error in ErrorCode}) == len(ErrorCode)
    for error in ErrorCode:
        assert error.code == error.name.lower()
        assert 400 <= error.status < 600 and error.message.endswith(".")
    assert ErrorCode.INSUFFICIENT_LIQUIDITY.code == "insufficient_liquidity"
    assert ErrorCode.CUSTODIAL_REQUIRED.status == 403
    assert ErrorCode.from_code("slippage_exceeded") is ErrorCode.SLIPPAGE_EXCEEDED
    with pytest.raises(ValueError, match="non_custodial_account"):
        ErrorCode.from_code("non_custodial_account")  # one code for it: custodial_required


def test_an_error_carries_its_member_and_answers_its_code_and_status():
    error = Forbidden("KYB first.", code=ErrorCode.KYB_REQUIRED)
    assert (error.error, error.code, error.status) == (ErrorCode.KYB_REQUIRED, "kyb_required", 403)
    assert error.as_dict() == {"code": "kyb_required", "message": "KYB first."}
    assert NotFound().as_dict() == {"code": "not_found", "message": "Not found."}
    plain = DomainError(code=ErrorCode.SLIPPAGE_EXCEEDED)
    assert (plain.status, plain.message) == (422, ErrorCode.SLIPPAGE_EXCEEDED.message)


def test_a_string_code_is_refused():
    with pytest.raises(TypeError, match="ErrorCode member"):
        InvalidParams("Not enough liquidity.", code="insufficient_liquidity")
    with pytest.raises(TypeError, match="needs code="):
        DomainError("Which code?")
    with pytest.raises(TypeError, match="Forbidden is a 403"):
        Forbidden("No such order.", code=ErrorCode.NOT_FOUND)
    with pytest.raises(TypeError, match="not `code`"):
        type("LegacyError", (DomainError,), {"code": "legacy"})


def _subclasses(kind: type) -> set[type]:
    found = set(kind.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_no_string_code_is_left_at_a_raise_site():
    """Every `SomeError(…, code=…)` in accounts, portal and trading names a member (a
    string is a TypeError when raised; this finds one on a path no test takes)."""
    get_resolver().url_patterns  # noqa: B018 (imports every view and what it uses)
    names = {kind.__name__ for kind in _subclasses(DomainError)} | {"DomainError"}
    assert {"InvalidParams", "VenueRateLimited", "MarketDataStale"} <= names
    found = []
    for package in ("accounts", "portal", "trading"):
        for path in sorted((settings.BASE_DIR / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(settings.BASE_DIR).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name not in names:
                    continue
                found.extend(
                    f"{module}:{node.lineno} code={keyword.value.value!r}"
                    for keyword in node.keywords
                    if keyword.arg == "code" and isinstance(keyword.value, ast.Constant)
                )
    assert found == []


def test_each_status_of_an_operation_lists_exactly_its_codes(client, db):
    schema = client.get("/v1/openapi.json").json()
    execute = schema["paths"]["/v1/intelligence/execute"]["post"]["responses"]
    codes = {
        status: response["content"]["application/json"]["schema"]["properties"]["code"]["enum"]
        for status, response in execute.items()
        if int(status) >= 400
    }
    assert codes["403"] == ["account_not_active", "custodial_required", "forbidden", "kyb_required"]
    assert codes["409"] == ["duplicate_order", "market_closed"]
    assert codes["422"] == [
        "insufficient_funds",
        "insufficient_margin",
        "slippage_exceeded",
        "venue_auth_failed",
    ]
    assert codes["413"] == ["payload_too_large"]
    assert "`custodial_required`: " in execute["403"]["description"]
    # A read declares only what reads answer: no body, no trading refusals.
    markets = schema["paths"]["/v1/intelligence/markets"]["get"]["responses"]
    statuses = sorted(status for status in markets if int(status) >= 400)
    assert statuses == ["400", "401", "403", "406", "429", "500", "503"]
    # The download link is not a keyed operation: its own codes only.
    download = schema["paths"]["/v1/intelligence/reports/{report_id}/download"]["get"]
    assert sorted(s for s in download["responses"] if int(s) >= 400) == ["403", "404", "500", "503"]


def test_every_operation_declares_the_common_codes():
    for (_, method), operations in schema_operations().items():
        for operation in operations:
            if operation.operation_id == "reports_download":
                continue
            expected = set(COMMON_ERRORS) | (set(BODY_ERRORS) if method != "GET" else set())
            assert expected <= declared(operation), operation.operation_id


def test_every_code_a_view_can_raise_is_in_its_schema():
    missing = []
    for (view_class, method), operations in schema_operations().items():
        handler = getattr(view_class, method.lower())
        raised = codes_raised(handler, owner=view_class) - NEVER_ANSWERED
        for operation in operations:
            for error in sorted(raised - declared(operation), key=lambda e: e.code):
                missing.append(f"{operation.operation_id}: {error.status} {error.code}")
    assert missing == []


def _lookup():
    raise NotFound("No such thing.")


def _refuse():
    raise Forbidden("KYB first.", code=ErrorCode.KYB_REQUIRED)


def _swallowed():
    try:
        _refuse()
    except Forbidden:
        return None


def _passed_on():
    try:
        _refuse()
    except Forbidden:
        raise


class _View:
    def get(self):
        self._helper()
        _swallowed()

    def _helper(self):
        _lookup()


class _ChildView(_View):
    def get(self):
        return super().get()


def test_the_static_reading_follows_calls_and_sees_what_an_except_swallows():
    assert codes_raised(_ChildView.get, owner=_ChildView) == {ErrorCode.NOT_FOUND}
    assert codes_raised(_passed_on) == {ErrorCode.KYB_REQUIRED}
    cancel = codes_raised(WithdrawalCancelApi.post, owner=WithdrawalCancelApi)
    assert {ErrorCode.NOT_FOUND, ErrorCode.WITHDRAWAL_NOT_PENDING} <= cancel


def test_the_recorder_catches_an_undeclared_code():
    recorder = ErrorRecorder()
    view = MarketListApi()
    request = SimpleNamespace(method="GET")
    recorder.record(view, request, SimpleNamespace(status_code=200, data={"markets": []}))
    recorder.record(view, request, SimpleNamespace(status_code=429, data={"code": "rate_limited"}))
    assert recorder.undeclared() == []
    recorder.record(view, request, SimpleNamespace(status_code=404, data={"code": "not_found"}))
    (problem,) = recorder.undeclared()
    assert problem.startswith("markets_list (GET /v1/intelligence/markets) answered 404")
