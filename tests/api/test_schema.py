"""Schemathesis against the served OpenAPI schema: no server error, no schema violation.

Every operation of /v1/openapi.json is exercised through the WSGI app, on a
funded account with live quotes, authenticated with a key of all scopes: the
schema's examples, its boundary values (coverage phase: each minimum, maximum,
pattern and enum, and just past them) and `SCHEMATHESIS_MAX_EXAMPLES` generated
requests (fuzzing phase; 8 by default, 50 in `make test` and `make fuzz`), both
valid and schema-violating ones, derandomized (the same requests every run).
Checks: never a 5xx, every status code documented, content type and body as the
schema says, and a request the schema forbids (a decimal as a JSON number,
control characters in text, an offset past its maximum, …) is refused with a 4xx.
"""

import os
import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Account
from tests.api.conftest import key_issue
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.conftest import binary_create, perp_create
from tests.trading.quoting import put_quote

schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", get_wsgi_application())
# Unknown query parameters are ignored (a cache-buster must not fail a read), so requests
# that only add some are not negative examples.
schema.config.generation.update(allow_extra_parameters=False)

CHECKS = [
    not_a_server_error,
    negative_data_rejection,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Django's WSGI handler closes old connections around each request, which would
    close the test's own (transaction-wrapped) connection; Django's test client
    disconnects the same handlers."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def key(db, settings, wsgi_keeps_the_test_connection) -> str:
    settings.API_RATE_LIMITS = {group: 10_000 for group in settings.API_RATE_LIMITS}
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "100000")
    binary_create("TRUMP-WIN")
    perp_create("BTC-PERP", "BTC")
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRUMP-WIN@{venue}", bid="0.55", ask="0.56")
    put_quote("BTC-PERP@leviathan", bid="64000", ask="64010", binary=False)
    return key_issue([account])


def test_the_schema_is_valid_openapi():
    raw = schema.raw_schema
    assert raw["openapi"].startswith("3.")
    assert "ApiKey" in raw["components"]["securitySchemes"]
    operations = [
        (method, path)
        for path, item in raw["paths"].items()
        for method in item
        if method != "parameters"
    ]
    assert len(operations) >= 15, operations


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8")),
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms(case, key):
    case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)


def test_the_schema_and_interactive_docs_are_served(client, db):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200 and response.json()["info"]["version"] == "2026-04-01"
    docs = client.get("/v1/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "swagger-ui" in page and 'src="/v1/docs/?script="' in page
    # Its set-up script is a file of its own (no inline script under the CSP).
    script = client.get("/v1/docs/?script=").content.decode()
    assert "/v1/openapi.json" in script
    # Served from our own static files (sidecar), no CDN: every src and href is ours.
    # (A bare "cdn" could be in the page's random CSRF token.)
    assert re.findall(r'(?:src|href)="(?:https?:)?//', page + script) == []
    assert not re.search(r"https?://[^\s\"']*cdn", (page + script).lower())
