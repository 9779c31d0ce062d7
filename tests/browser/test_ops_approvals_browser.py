"""Withdrawal review and the approvals queue in a real browser at 1280 px: a large
withdrawal is proposed (reason, confirmation page), waits in the queue for a second
staff member, and nothing overflows sideways."""

from decimal import Decimal

import pytest

from accounts.models import Approval
from accounts.models import WithdrawalRequest as Withdrawal
from accounts.services.withdrawals import withdrawal_request
from tests.browser.conftest import ARTIFACTS
from tests.browser.ops_helpers import ops_sign_in, overflow
from tests.conftest import credit_cash
from tests.factories import StaffFactory, UserFactory, open_account

pytestmark = pytest.mark.browser


@pytest.fixture
def large_withdrawal(transactional_db) -> Withdrawal:
    account = open_account(owner=UserFactory(email="carol@example.test"))
    credit_cash(account, "20000")
    return withdrawal_request(
        account=account,
        amount=Decimal("15000"),  # above the default four-eyes threshold, 10,000 USDC
        destination="Bank ****4321",
        requested_by=account.owner,
    )


def test_a_large_withdrawal_is_proposed_and_waits_for_a_second_approver(
    portal, page, large_withdrawal
):
    staff = StaffFactory(email="ops@example.test")
    ops_sign_in(page, portal, staff, f"/ops/withdrawals/{large_withdrawal.public_id}/")
    assert page.locator("#withdrawal-effect-table tbody tr").count() == 6
    assert overflow(page) <= 0, "the review page is wider than the window"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ops_withdrawal_review.png"), full_page=True)

    page.fill("textarea[name=reason]", "Customer confirmed by phone.")
    page.click("button[value=approve]")
    page.wait_for_selector("#ops-confirm")
    assert "another staff member must approve it" in page.inner_text("#ops-confirm")
    assert not Approval.objects.exists()  # not before the confirmation
    page.click("input[type=submit][value='Propose for approval']")
    page.wait_for_selector("[data-approval-status=pending]")
    approval = Approval.objects.get()
    assert approval.proposed_by == staff

    page.goto(f"{portal}/ops/approvals/")
    row = page.locator(f"tr[data-approval={approval.public_id}]")
    assert "Waiting for another staff member." in row.inner_text()
    assert row.locator("button[value=approve]").count() == 0
    assert overflow(page) <= 0, "the approvals page is wider than the window"
    page.screenshot(path=str(ARTIFACTS / "ops_approvals_queue.png"), full_page=True)
    large_withdrawal.refresh_from_db()
    assert large_withdrawal.status == Withdrawal.Status.PENDING
