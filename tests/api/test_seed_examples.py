"""The seed's own examples (`requests` and curl) work as written against our server.

Only the base URL (https://api.leviathan.global/v1 → the test server's /v1) and the
placeholder key are replaced. The seed shows execute through its SDK only; its
request body (symbol, side, notional_usdc) is sent the same two ways.
"""

import ast
import json
import shutil
import subprocess
import sys
from decimal import Decimal

import pytest

from accounts.models import Account
from tests.api.conftest import key_issue
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.conftest import binary_create
from tests.trading.quoting import put_quote

SEED_BASE = "https://api.leviathan.global/v1"
SEED_KEY = "lev_live_xxxxxxxxxxxxxxxx"

# Seed 000 "Authentication", Python example, as written there (one statement a line).
SEED_PYTHON_POSITIONS = """
import requests
headers = {
    "Authorization": "Bearer lev_live_xxxxxxxxxxxxxxxx",
    "Lev-Version": "2026-04-01",
}
response = requests.get(
    "https://api.leviathan.global/v1/intelligence/positions",
    headers=headers,
)
print(response.json())
"""

# Seed 000 "Authentication", curl example.
SEED_CURL_POSITIONS = [
    "curl",
    "https://api.leviathan.global/v1/intelligence/positions",
    "-H",
    "Authorization: Bearer lev_live_xxxxxxxxxxxxxxxx",
    "-H",
    "Lev-Version: 2026-04-01",
]

PYTHON_EXECUTE = """
import requests
headers = {
    "Authorization": "Bearer lev_live_xxxxxxxxxxxxxxxx",
    "Lev-Version": "2026-04-01",
}
response = requests.post(
    "https://api.leviathan.global/v1/intelligence/execute",
    headers=headers,
    json={"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "50000"},
)
print(response.json())
"""


def as_written(text: str, base: str, key: str) -> str:
    return text.replace(SEED_BASE, f"{base}/v1").replace(SEED_KEY, key)


def run_python(code: str) -> dict:
    out = subprocess.run(  # noqa: S603 (our interpreter, the seed's code)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return ast.literal_eval(out.stdout.strip())


def run_curl(argv: list[str]) -> dict:
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)  # noqa: S603
    return json.loads(out.stdout)


@pytest.fixture
def funded(transactional_db):
    """A custodial account with 100k USDC, TRUMP-WIN quoted on both venues, and its key."""
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "100000")
    binary_create("TRUMP-WIN")
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRUMP-WIN@{venue}", bid="0.55", ask="0.56")
    return account, key_issue([account])


def test_the_python_examples_work_as_written(api_server, funded):
    account, key = funded
    trade = run_python(as_written(PYTHON_EXECUTE, api_server, key))
    assert trade["status"] == "filled", trade
    positions = run_python(as_written(SEED_PYTHON_POSITIONS, api_server, key))
    assert positions["account_id"] == account.public_id
    (position,) = positions["positions"]
    assert position["symbol"] == "TRUMP-WIN" and position["side"] == "long"
    assert Decimal(position["notional"]) > 0


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_examples_work_as_written(api_server, funded):
    account, key = funded
    execute_argv = [
        "curl",
        f"{api_server}/v1/intelligence/execute",
        "-H",
        f"Authorization: Bearer {key}",
        "-H",
        "Lev-Version: 2026-04-01",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "50000"}',
    ]
    assert run_curl(execute_argv)["status"] == "filled"
    positions = run_curl([as_written(part, api_server, key) for part in SEED_CURL_POSITIONS])
    assert positions["account_id"] == account.public_id
    assert [p["symbol"] for p in positions["positions"]] == ["TRUMP-WIN"]
