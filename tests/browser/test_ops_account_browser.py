"""The ops account view in a real browser at 1280 px: staff open an account from the
admin's "View in ops" link, nothing overflows sideways, and freezing goes through
the reason and the confirmation page."""

from decimal import Decimal

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Account
from tests.browser.conftest import ARTIFACTS
from tests.conftest import credit_cash
from tests.factories import DEFAULT_PASSWORD, StaffFactory, UserFactory, open_account
from tests.ops.conftest import totp_code
from tests.trading.conftest import binary_create
from tests.trading.quoting import put_quote
from trading.services.execute import order_execute

pytestmark = pytest.mark.browser


@pytest.fixture
def bob(transactional_db):
    account = open_account(
        owner=UserFactory(email="bob@example.test"), margin_enabled=True, margin_override="granted"
    )
    credit_cash(account, "1000")
    binary_create("TRUMP-WIN")
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRUMP-WIN@{venue}", bid="0.60", ask="0.61")
    order_execute(account=account, symbol="TRUMP-WIN", side="buy", notional_usdc=Decimal("1200"))
    return account


def test_the_account_view_fits_and_freezes_after_confirmation(portal, page, bob):
    staff = StaffFactory(email="ops@example.test")
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    change = f"/admin/accounts/account/{bob.pk}/change/"
    page.goto(f"{portal}/admin/login/?next={change}")
    page.fill("input[name=username]", staff.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.fill("input[name=otp_token]", totp_code(device))
    page.click("input[type=submit]")
    page.wait_for_url(f"{portal}{change}")

    page.click("a.ops-view-link")
    page.wait_for_url(f"{portal}/ops/accounts/{bob.public_id}/")
    assert page.locator("#ops-positions tr").count() == 1
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than the window"

    page.fill("form[data-action=freeze] textarea[name=reason]", "Card fraud report.")
    page.click("form[data-action=freeze] input[type=submit]")
    page.wait_for_selector("#ops-confirm-summary")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ops_account_freeze_confirm.png"), full_page=True)
    bob.refresh_from_db()
    assert bob.status == Account.Status.ACTIVE  # not before the confirmation
    page.click("input[type=submit][value=Freeze]")
    page.wait_for_selector("[data-field=account_status][data-value=frozen]")
    assert "is now frozen" in page.inner_text(".messagelist")
    bob.refresh_from_db()
    assert bob.status == Account.Status.FROZEN
