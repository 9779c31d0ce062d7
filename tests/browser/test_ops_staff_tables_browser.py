"""The staff area at 1280 px in a real browser: the admin's lists (audit log, API keys,
accounts, withdrawals, risk policy) and the risk-policy page fit the window; the API
key form reloads the owner's accounts; the one-time key is copied with a "Copied"
status; a risk-policy preview a worker is still computing shows once stored."""

from decimal import Decimal

import pytest
from django.db import transaction

from accounts import outbox
from accounts.models import ApiKey
from accounts.services.withdrawals import withdrawal_request
from portal.redis import redis_client, redis_key
from tests.browser.conftest import ARTIFACTS
from tests.browser.ops_helpers import ops_sign_in
from tests.conftest import credit_cash
from tests.factories import StaffFactory, UserFactory, open_account
from trading.enqueue import risk_policy_preview_enqueue
from trading.services.risk_policy import (
    risk_policy_payload,
    risk_policy_preview_store,
    risk_policy_preview_token,
)

pytestmark = pytest.mark.browser

PAGES = (
    "/admin/accounts/auditlog/",
    "/admin/accounts/apikey/",
    "/admin/accounts/account/",
    "/admin/accounts/withdrawalrequest/",
    "/admin/trading/riskpolicy/",
    "/ops/risk-policy/",
)


def too_wide(page) -> list[str]:
    """The page, or any table wider than its box (cut off or scrolled sideways)."""
    return page.evaluate(
        """() => {
          const out = [];
          const root = document.documentElement;
          if (root.scrollWidth > root.clientWidth) out.push("page " + root.scrollWidth);
          document.querySelectorAll("table").forEach((table, i) => {
            const box = table.parentElement;
            if (table.scrollWidth > box.clientWidth + 1)
              out.push(`table ${table.id || i} ${table.scrollWidth}>${box.clientWidth}`);
          });
          return out;
        }"""
    )


def test_staff_tables_fit_1280_and_keys_are_issued_and_copied(portal, page, transactional_db):
    staff = StaffFactory(email="ops@example.test")
    alice = UserFactory(email="alice.long.name@customer-company.example.test")
    mine = open_account(owner=alice)
    other = open_account(owner=UserFactory(email="bob@example.test"))
    credit_cash(mine, "123456.78")
    withdrawal_request(
        account=mine, amount=Decimal("1000"), destination="Bank ****4321", requested_by=alice
    )
    ops_sign_in(page, portal, staff, "/admin/accounts/apikey/add/")

    # The issue form: the owner first, then only their accounts.
    page.select_option("select[name=owner]", str(alice.pk))
    page.wait_for_selector(f"select[name=accounts] option[value='{mine.pk}']")
    offered = page.eval_on_selector_all(
        "select[name=accounts] option", "options => options.map(o => o.value)"
    )
    assert offered == [str(mine.pk)] and str(other.pk) not in offered
    assert "account" in page.inner_text("[data-accounts-status]")
    page.select_option("select[name=accounts]", str(mine.pk))
    page.fill("input[name=name]", "risk desk")
    page.click("input[type=submit][value='Issue key']")
    page.wait_for_selector("#api-key")
    key = page.inner_text("#api-key").strip()
    assert ApiKey.objects.get().prefix in key

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=portal)
    page.click("[data-copy-target=api-key]")
    page.wait_for_selector("[data-copy-status]:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == key

    ARTIFACTS.mkdir(exist_ok=True)
    for path in PAGES:
        page.goto(f"{portal}{path}")
        name = path.strip("/").replace("/", "_")
        page.screenshot(path=str(ARTIFACTS / f"staff_{name}.png"), full_page=True)
        assert too_wide(page) == [], path

    # The risk-policy preview's tables fit too.
    page.fill("input[name=maintenance_threshold]", "1.10")
    page.click("button[value=preview]")
    page.wait_for_selector("#risk-policy-counts")
    assert "Propose for approval" in page.inner_text(".submit-row")
    page.screenshot(path=str(ARTIFACTS / "staff_ops_risk-policy_preview.png"), full_page=True)
    assert too_wide(page) == []


def test_a_preview_a_worker_is_computing_shows_once_it_is_stored(
    portal, page, transactional_db, monkeypatch
):
    """The risk-policy page while a worker computes the preview: it says so, its script
    asks until the preview is stored, then shows it."""
    change = {"maintenance_threshold": Decimal("1.05")}
    token = risk_policy_preview_token(change)
    payload = risk_policy_payload(change)
    redis_client().delete(redis_key("risk-policy-preview", token))  # none stored before
    # The worker's outbox item is made and never sent: the page joins it and waits.
    monkeypatch.setattr(outbox, "_send", lambda *args: None)
    with transaction.atomic():
        risk_policy_preview_enqueue(token=token, payload=payload)
    ops_sign_in(page, portal, StaffFactory(email="ops@example.test"), "/ops/risk-policy/")
    page.fill("input[name=maintenance_threshold]", "1.05")
    page.click("button[value=preview]")
    page.wait_for_selector("#risk-policy-pending")
    assert "Computing the impact" in page.inner_text("#risk-policy-pending")
    assert page.query_selector("#risk-policy-counts") is None

    risk_policy_preview_store(token=token, payload=payload)  # the worker's run
    page.wait_for_selector("#risk-policy-counts", timeout=15_000)
    assert page.query_selector("#risk-policy-pending") is None
    assert page.input_value("input[name=maintenance_threshold]") == "1.05"
    assert "Propose for approval" in page.inner_text(".submit-row")
