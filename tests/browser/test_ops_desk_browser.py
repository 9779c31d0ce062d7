"""The ops risk desk in a real browser: staff sign in to the admin with a one-time
code, open /ops/, and watch an account enter margin call without reloading.

Headless Chromium (Debian's) through Playwright against uvicorn and the margin
engine in subprocesses (tests/browser/conftest.py); prices are published to the
Redis the engine listens to, as the dashboard's browser tests do.
"""

from decimal import Decimal

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import credit_cash
from tests.factories import DEFAULT_PASSWORD, StaffFactory, UserFactory, open_account
from tests.ops.conftest import totp_code
from tests.trading.conftest import binary_create
from tests.trading.quoting import put_quote
from trading.services.execute import order_execute

pytestmark = pytest.mark.browser


def quote(bid: str, ask: str) -> None:
    """TRUMP-WIN's price on both venues (a tick the margin engine sees)."""
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRUMP-WIN@{venue}", bid=bid, ask=ask)


@pytest.fixture
def alice(transactional_db):
    """A margin account with 1,000 USDC that has borrowed to hold TRUMP-WIN."""
    account = open_account(
        owner=UserFactory(email="alice@example.test"),
        margin_enabled=True,
        margin_override="granted",
    )
    credit_cash(account, "1000")
    binary_create("TRUMP-WIN")
    quote("0.60", "0.61")
    order_execute(account=account, symbol="TRUMP-WIN", side="buy", notional_usdc=Decimal("1500"))
    return account


@pytest.fixture
def ops_user(transactional_db):
    staff = StaffFactory(email="ops@example.test")
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    return staff, device


def ops_log_in(page, portal: str, staff, device) -> None:
    page.goto(f"{portal}/admin/login/?next=/ops/")
    page.fill("input[name=username]", staff.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.fill("input[name=otp_token]", totp_code(device))
    page.click("input[type=submit]")
    page.wait_for_url(f"{portal}/ops/")


def counter(page, key: str) -> str:
    return page.inner_text(f"[data-counter={key}] .ops-counter-value")


def test_the_desk_shows_a_new_margin_call_without_a_reload(portal, page, alice, ops_user):
    ops_log_in(page, portal, *ops_user)
    page.wait_for_selector("#ops-desk[data-desk-live=yes]")  # the socket is open
    assert counter(page, "margin_calls") == "0"
    rows = page.locator(f"[data-section=health] tr[data-key={alice.public_id}]")
    assert rows.count() == 1  # borrowing: listed by health
    page.evaluate("window.__sameDocument = true")

    quote("0.05", "0.06")  # collateral collapses: health falls below maintenance

    page.wait_for_selector(f"[data-section=margin_calls] tr[data-key={alice.public_id}]")
    assert page.evaluate("window.__sameDocument") is True  # updated in place
    assert counter(page, "margin_calls") == "1"
    row = page.locator(f"[data-section=margin_calls] tr[data-key={alice.public_id}]")
    assert "alice@example.test" in row.inner_text()
    assert row.locator("a").get_attribute("href")  # its action
    health_row = page.locator(f"[data-section=health] tr[data-key={alice.public_id}]")
    assert "Margin call" in health_row.inner_text()
    # Fits 1280 px: no horizontal scroll.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
