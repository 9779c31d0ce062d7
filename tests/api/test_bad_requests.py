"""Requests /v1 cannot take are a 4xx `{"code", "message"}`, never a 500, and move no
money (issue 14): bodies over the upload limit (413), JSON nested 10,000 deep, more query
parameters than Django reads, NUL bytes in path ids, an empty Lev-Version."""

import io
import json
import time

import pytest

from accounts.api_auth import signing_message
from portal.api.parsers import JSON_MAX_DEPTH, JsonParser, json_loads
from portal.errors import DomainError, ErrorCode, InvalidParams
from tests.api.conftest import client_for, key_issue
from tests.api.refusals import BASE, error_of, money_state
from tests.api.test_core import signer  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
TOO_BIG = 2_621_440 + 1  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), plus one byte


# --- 1. Bodies over the upload limit: 413 ------------------------------------------------


def test_a_body_over_the_upload_limit_is_413_payload_too_large(api, funded_account):
    before = money_state(funded_account)
    body = {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "10", "pad": "x" * TOO_BIG}
    response = api.post(BASE + "execute", body, format="json")
    assert error_of(response) == (413, "payload_too_large")
    assert "2,621,440 bytes" in response.json()["message"]
    assert money_state(funded_account) == before


def test_the_json_parser_reads_no_more_than_the_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    assert JsonParser().parse(io.BytesIO(b'{"a": "' + b"x" * 90 + b'"}')) == {"a": "x" * 90}
    with pytest.raises(DomainError) as info:  # e.g. a chunked body that declared no length
        JsonParser().parse(io.BytesIO(b'{"a": "' + b"x" * 200 + b'"}'))
    assert info.value.error is ErrorCode.PAYLOAD_TOO_LARGE


def test_too_many_query_parameters_are_400_not_500(api, funded_account):
    query = "&".join(f"p{n}=1" for n in range(1100))  # Django's limit: 1,000 fields
    response = api.get(f"{BASE}orders?{query}")
    assert error_of(response) == (400, "invalid_params")
    assert response.json()["message"] == "Too many parameters: at most 1,000 query or form fields."


# --- 2. Deeply nested JSON: 400 -----------------------------------------------------------


def test_json_nested_10000_deep_is_400_nested_too_deeply(api, funded_account):
    before = money_state(funded_account)
    for body in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
        response = api.post(BASE + "execute", body, content_type="application/json")
        assert error_of(response) == (400, "invalid_params")
        assert "JSON nested too deeply" in response.json()["message"]
    assert money_state(funded_account) == before


def test_the_depth_limit_is_32_levels_of_objects_and_arrays():
    assert json_loads("[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH) is not None
    with pytest.raises(InvalidParams, match="at most 32 levels"):
        json_loads("[" * (JSON_MAX_DEPTH + 1) + "]" * (JSON_MAX_DEPTH + 1))
    with pytest.raises(InvalidParams, match="at most 32 levels"):
        json_loads(json.dumps({"a": [{"b": [[{"c": []}]]}] * 2, "deep": _nested(40)}))
    # Many brackets, little depth: fine.
    assert len(json_loads(json.dumps([[1]] * 5000))) == 5000


def _nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = {"x": value}
    return value


def test_a_signed_key_with_a_deeply_nested_body_is_400(api_account, signer):  # noqa: F811
    private, public = signer
    client = client_for(key_issue([api_account], signing_public_key=public))
    raw = ("[" * 5000 + "]" * 5000).encode()
    timestamp = str(time.time_ns())
    signature = private.sign(
        signing_message(timestamp=timestamp, path=BASE + "execute", body=b"")
    ).hex()
    response = client.post(
        BASE + "execute",
        raw,
        content_type="application/json",
        HTTP_X_TIMESTAMP=timestamp,
        HTTP_X_SIGNATURE=signature,
    )
    assert error_of(response) == (400, "invalid_params")
    assert "nested too deeply" in response.json()["message"]


# --- 3. NUL bytes in path ids: 404 --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "deposits/dep_%00"),
        ("get", "withdrawals/%00"),
        ("post", "withdrawals/wd%00x/cancel"),
        ("get", "reports/rpt_%00"),
        ("get", "reports/%00/download?token=x"),
        ("get", "orders/ord_%00"),
        ("patch", "orders/%00"),
        ("delete", "orders/%00"),
        ("get", "orders/by-client-id/a%00b"),
        ("delete", "orders/by-client-id/%00"),
        ("get", "markets/TRUMP-WIN%00"),
        ("get", "markets/%00/orderbook"),
        ("get", "markets/%1b%5b31m"),  # an escape sequence
    ],
)
def test_a_nul_byte_in_a_path_id_is_404_not_found(api, funded_account, method, path):
    response = getattr(api, method)(BASE + path, {}, format="json")
    assert error_of(response) == (404, "not_found")
    assert "control character" in response.json()["message"]


# --- 8. Lev-Version -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_lev_version_is_400(api, funded_account, value):
    response = api.get(BASE + "account", HTTP_LEV_VERSION=value)
    assert error_of(response) == (400, "invalid_params")
    assert "Lev-Version is empty" in response.json()["message"]


def test_no_lev_version_means_the_default(api, funded_account):
    response = api.get(BASE + "account")
    assert response.status_code == 200
    assert response["Lev-Version"] == "2026-04-01"
