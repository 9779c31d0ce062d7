"""Fixtures for the /v1 API: keys issued through the real service, and a client."""

from collections.abc import Iterator, Sequence

import pytest
from rest_framework.test import APIClient

from accounts.models import Account, ApiKey, User
from accounts.services.api_keys import api_key_issue
from tests.conftest import credit_cash
from tests.factories import StaffFactory, open_account
from tests.live_server import asgi_server
from tests.trading.conftest import binary_create, perp_create
from tests.trading.quoting import put_quote

ALL_SCOPES = tuple(ApiKey.Scope.values)


def key_issue(
    accounts: Sequence[Account],
    *,
    scopes: Sequence[str] = ALL_SCOPES,
    ip_allowlist: Sequence[str] = (),
    signing_public_key: str = "",
) -> str:
    """A key for `accounts` (all of one owner, KYB-approved here); returns the full key."""
    owner = accounts[0].owner
    if owner.kyb_status != User.KybStatus.APPROVED:
        owner.kyb_status = User.KybStatus.APPROVED
        owner.save(update_fields=["kyb_status"])
    return api_key_issue(
        owner=owner,
        accounts=list(accounts),
        scopes=scopes,
        name="test key",
        actor=StaffFactory(),
        ip_allowlist=ip_allowlist,
        signing_public_key=signing_public_key,
    ).key


def client_for(key: str | None) -> APIClient:
    """An API client that sends `key` as the bearer token (none: unauthenticated)."""
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def api_account(db) -> Account:
    """A custodial account of a KYB-approved owner."""
    return open_account(kind=Account.Kind.CUSTODIAL)


@pytest.fixture
def api_key(api_account) -> str:
    return key_issue([api_account])


@pytest.fixture
def api(api_key) -> APIClient:
    """A client authenticated with a key (all scopes) for `api_account`."""
    return client_for(api_key)


@pytest.fixture
def api_server(transactional_db) -> Iterator[str]:
    """The ASGI app served by uvicorn in a subprocess (tests.live_server); its base URL."""
    with asgi_server() as base:
        yield base


@pytest.fixture
def priced_markets(db):
    """TRUMP-WIN (YES 0.55/0.56 on kalshi and polymarket) and BTC-PERP (64,000/64,010)."""
    binary_create("TRUMP-WIN")
    perp_create("BTC-PERP", "BTC")
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRUMP-WIN@{venue}", bid="0.55", ask="0.56")
    put_quote("BTC-PERP@leviathan", bid="64000", ask="64010", binary=False)


@pytest.fixture
def funded_account(api_account, priced_markets) -> Account:
    """`api_account` with 10,000 USDC of cash, and `priced_markets`."""
    credit_cash(api_account, "10000")
    return api_account
