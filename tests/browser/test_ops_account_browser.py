"""The ops account view in a real browser at 1280 px: staff open an account from the
admin's "View in ops" link, nothing overflows sideways, and freezing goes through
the reason and the confirmation page."""

import pytest

from accounts.models import Account
from tests.browser.conftest import ARTIFACTS
from tests.browser.ops_helpers import borrowing_account, ops_sign_in, overflow
from tests.factories import StaffFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def bob(transactional_db) -> Account:
    return borrowing_account("bob@example.test", "1200")


def test_the_account_view_fits_and_freezes_after_confirmation(portal, page, bob):
    staff = StaffFactory(email="ops@example.test")
    ops_sign_in(page, portal, staff, f"/admin/accounts/account/{bob.pk}/change/")

    page.click("a.ops-view-link")
    page.wait_for_url(f"{portal}/ops/accounts/{bob.public_id}/")
    assert page.locator("#ops-positions tr").count() == 1
    wider = overflow(page)
    assert wider <= 0, f"the page is {wider}px wider than the window"

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
