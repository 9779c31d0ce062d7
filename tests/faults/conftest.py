"""The whole product under fault: markets, a funded account with an API key, the default
schedules, a private Redis and the Procfile's processes on them (`tests/fault_harness.py`)."""

import pytest

from accounts.models import Account
from portal.schedules import schedules_install
from tests.api.conftest import key_issue
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.fault_harness import PrivateRedis, Stack
from tests.trading.conftest import binary_create, perp_create

PROCESSES = ("web", "worker", "beat", "marketdata", "risk")
RECOVERY_SECONDS = 30


@pytest.fixture
def product(settings):
    """(stack, redis server, account, key): every process of the Procfile but the fake
    venues, on TRUMP-WIN and BTC-PERP, for an account holding 10,000 USDC."""
    binary_create("TRUMP-WIN")
    perp_create("BTC-PERP", "BTC")
    schedules_install()
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "10000")
    key = key_issue([account])
    with PrivateRedis() as redis_server:
        settings.REDIS_URL = redis_server.url  # the test reads the product's Redis too
        with Stack(redis_url=redis_server.url) as stack:
            stack.start(*PROCESSES)
            yield stack, redis_server, account, key
