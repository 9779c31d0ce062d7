"""The ops risk desk in a real browser: staff sign in to the admin with a one-time
code, open /ops/, and watch an account enter margin call without reloading.

Headless Chromium (Debian's) through Playwright against uvicorn and the margin
engine in subprocesses (tests/browser/conftest.py); prices are published to the
Redis the engine listens to, as the dashboard's browser tests do.
"""

import pytest

from accounts.models import Account, User
from tests.browser.ops_helpers import borrowing_account, ops_sign_in, quote
from tests.factories import StaffFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def alice(transactional_db) -> Account:
    """A margin account with 1,000 USDC that has borrowed to hold TRUMP-WIN."""
    return borrowing_account("alice@example.test", "1500")


@pytest.fixture
def ops_user(transactional_db) -> User:
    return StaffFactory(email="ops@example.test")


def counter(page, key: str) -> str:
    return page.inner_text(f"[data-counter={key}] .ops-counter-value")


def test_the_desk_shows_a_new_margin_call_without_a_reload(portal, page, alice, ops_user):
    ops_sign_in(page, portal, ops_user, "/ops/")
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
