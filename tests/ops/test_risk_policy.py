"""Risk-policy changes at /ops/risk-policy/: the preview is what the engine then does,
four eyes (the proposer cannot approve), values formatted, staff with 2FA only."""

from decimal import Decimal

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from accounts.models import Account, Approval, AuditLog
from accounts.services.approvals import approval_approve, approval_propose
from portal.errors import Forbidden, InvalidParams
from portal.redis import redis_client, redis_key
from tests.conftest import credit_cash
from tests.factories import StaffFactory, UserFactory, open_account
from tests.ops.conftest import ops_signed_in
from tests.trading.conftest import binary_create, quote_store  # noqa: F401
from tests.trading.margining import borrower, capture_outbox_sends, margin_keys_clear, tick
from trading import margin
from trading.engine import MarginEngine
from trading.enqueue import ACCOUNT_LIQUIDATE
from trading.models import MarginCall, RiskPolicy
from trading.selectors import margin_params_get, risk_policy_get
from trading.services import risk_policy
from trading.services.risk_policy import (
    risk_policy_change_check,
    risk_policy_payload,
    risk_policy_preview,
    risk_policy_preview_store,
    risk_policy_preview_stored,
    risk_policy_preview_token,
)

pytestmark = pytest.mark.django_db

URL = "/ops/risk-policy/"
# Tighter thresholds and a larger uncertainty haircut.
CHANGE = {
    "healthy_threshold": Decimal("1.7"),
    "initial_margin_threshold": Decimal("1.3"),
    "maintenance_threshold": Decimal("1.2"),
    "liquidation_threshold": Decimal("1.0"),
    "haircut_uncertainty_a": Decimal("0.35"),
}


@pytest.fixture(autouse=True)
def _no_stored_previews():
    """Previews stored by earlier tests (Redis outlives each test's database) are gone."""
    client = redis_client()
    stale = client.keys(redis_key("risk-policy-preview", "*"))
    if stale:
        client.delete(*stale)


@pytest.fixture
def book(quote_store, monkeypatch):  # noqa: F811
    """Borrowers of TRUMP-WIN at a 0.30 bid, healths ≈ 1.63 / 1.09 / 0.93 / 0.82, a
    non-borrowing account and a second market's holder; liquidation tasks captured."""
    margin_keys_clear()
    sent = capture_outbox_sends(monkeypatch)
    trump = binary_create("TRUMP-WIN")
    fed = binary_create("FED-CUT", "0.01", "kalshi")
    tick(bid="0.30")
    tick("FED-CUT@kalshi", bid="0.50")
    accounts = {
        "healthy": borrower(trump, deposit="1000"),
        "caution": borrower(trump, deposit="900"),
        "call": borrower(trump, deposit="850"),
        "liquidation": borrower(trump, deposit="800"),
        "fed": borrower(fed, deposit="1000", quantity="1000", price="0.50"),
    }
    cash_only = open_account()
    credit_cash(cash_only, "500")
    accounts["cash"] = cash_only
    return accounts, sent


def engine_counts(figures) -> list[int]:
    return np.bincount(figures.status, minlength=3).tolist()


def test_the_preview_counts_are_what_the_engine_computes_after_approval(
    book, django_capture_on_commit_callbacks
):
    accounts, sent = book
    engine = MarginEngine(publish=False)
    with django_capture_on_commit_callbacks(execute=True):
        swept = engine.sweep()
    in_call_before = set(
        MarginCall.objects.filter(status="open").values_list("account_id", flat=True)
    )
    assert in_call_before == {accounts["call"].pk, accounts["liquidation"].pk}

    preview = risk_policy_preview(CHANGE)
    before = {count.label: count.before for count in preview.counts}
    after = {count.label: count.after for count in preview.counts}
    assert preview.accounts == len(swept)
    assert engine_counts(swept) == [
        before["Healthy"],
        before["Caution"],
        before["Margin call"] + before["Liquidation"],
    ]
    assert before == {"Healthy": 3, "Caution": 1, "Margin call": 1, "Liquidation": 1}
    entering = {row.public_id for row in preview.entering_call}
    assert entering == {accounts["caution"].public_id}
    assert {row.public_id for row in preview.entering_liquidation} == {accounts["call"].public_id}
    assert preview.movers and preview.movers[0].health_after < preview.movers[0].health_before

    # Propose (one staff member), approve (another): applied, and the engine picks it up
    # in its next batch, with no tick and no sweep.
    alice, bob = StaffFactory(), StaffFactory()
    approval = approval_propose(
        kind="risk_policy", payload=risk_policy_payload(CHANGE), proposer=alice, reason="Tighter."
    )
    with pytest.raises(Forbidden):
        approval_approve(approval_id=approval.public_id, approver=alice)
    with django_capture_on_commit_callbacks(execute=True):
        approval = approval_approve(approval_id=approval.public_id, approver=bob)
    assert approval.status == Approval.Status.APPLIED, approval.result
    assert margin_params_get().maintenance == 1.2

    with django_capture_on_commit_callbacks(execute=True):
        figures = engine.process_batch(None)
    assert figures is not None and len(figures) == preview.accounts
    assert engine_counts(figures) == [
        after["Healthy"],
        after["Caution"],
        after["Margin call"] + after["Liquidation"],
    ]
    with np.errstate(invalid="ignore"):
        below = set(figures.account_id[figures.health < 1.0].tolist())
    assert below == set(preview.liquidation_after_ids)
    in_call_after = set(
        MarginCall.objects.filter(status="open").values_list("account_id", flat=True)
    )
    assert in_call_after == set(preview.call_after_ids)
    assert in_call_after == in_call_before | {accounts["caution"].pk}
    liquidations = {kwargs["account_id"] for kwargs in sent.named(ACCOUNT_LIQUIDATE)}
    assert liquidations == set(preview.liquidation_after_ids)


def test_applying_is_audited_and_idempotent():
    alice, bob = StaffFactory(), StaffFactory()
    payload = risk_policy_payload({"maintenance_threshold": Decimal("1.1")})
    assert payload == {"maintenance_threshold": "1.1"}
    approval = approval_propose(kind="risk_policy", payload=payload, proposer=alice, reason="R.")
    assert approval.summary == "Risk policy: Maintenance threshold 1.00 → 1.10"
    approval = approval_approve(approval_id=approval.public_id, approver=bob)
    assert approval.status == Approval.Status.APPLIED
    assert risk_policy_get().maintenance_threshold == Decimal("1.1")
    entry = AuditLog.objects.get(action="risk_policy_changed")
    assert entry.actor == bob
    assert entry.changes["maintenance_threshold"] == ["1.000000", "1.1"]
    assert entry.changes["approval"] == approval.public_id

    # The same values again: approved and applied, nothing written.
    again = approval_propose(kind="risk_policy", payload=payload, proposer=bob, reason="R.")
    again = approval_approve(approval_id=again.public_id, approver=alice)
    assert again.status == Approval.Status.APPLIED
    assert "nothing changed" in again.result
    assert AuditLog.objects.filter(action="risk_policy_changed").count() == 1


def test_an_invalid_change_is_refused_with_a_sentence():
    with pytest.raises(InvalidParams, match="0 < liquidation < maintenance"):
        risk_policy_change_check({"liquidation_threshold": "1.1"})
    with pytest.raises(InvalidParams, match="no setting called"):
        risk_policy_change_check({"password": "1"})
    with pytest.raises(InvalidParams, match="whole number"):
        risk_policy_change_check({"grace_period_hours": "1.5"})


# --- The page ----------------------------------------------------------------------


@pytest.fixture
def ops_client(client, staff) -> Client:
    return ops_signed_in(client, staff)


def form_data(**changes) -> dict:
    """The page's form as it stands (values as shown), with `changes`."""
    data = {
        "healthy_threshold": "1.50",
        "initial_margin_threshold": "1.20",
        "maintenance_threshold": "1.00",
        "liquidation_threshold": "0.90",
        "grace_period_hours": "24",
        "reminder_interval_hours": "4",
        "price_stale_after_seconds": "15",
        "haircut_uncertainty_a": "0.30",
        "haircut_expiry_b": "0.20",
        "haircut_tau0_days": "14",
        "haircut_max": "0.95",
        "concentration_c": "0.25",
        "interest_rate_annual": "8",
        "margin_volume_threshold": "1,000,000.00",
        "ticket_confirm_fraction": "10",
        "reason": "",
    }
    return data | changes


def test_the_page_shows_the_values_formatted(ops_client):
    assert reverse("ops_risk_policy") == URL
    page = ops_client.get(URL)
    assert page.status_code == 200
    for shown in ('value="1.50"', 'value="0.90"', 'value="8"', 'value="1,000,000.00"'):
        assertContains(page, shown)
    assertContains(page, "In force: 8%")
    assertContains(page, "In force: 1,000,000.00 USDC")
    for raw in ("0.080000", "1000000.000000", "1.500000"):
        assertNotContains(page, raw)


def test_preview_then_propose_from_the_page(
    ops_client, staff, book, django_capture_on_commit_callbacks
):
    accounts, _ = book
    data = form_data(
        healthy_threshold="1.70",
        initial_margin_threshold="1.30",
        maintenance_threshold="1.20",
        liquidation_threshold="1.00",
        haircut_uncertainty_a="0.35",
    )
    # A worker computes the preview: until it has, the page says so and where to ask.
    with django_capture_on_commit_callbacks() as sends:
        waiting = ops_client.post(URL, {**data, "action": "preview"})
    assert waiting.status_code == 200 and waiting.context["preview"] is None
    assertContains(waiting, "Computing the impact of the change")
    assertNotContains(waiting, "Propose for approval")
    status_url = waiting.context["preview_pending"]
    assert ops_client.get(status_url).json() == {"ready": False}
    (send,) = sends  # the outbox item's send: the task runs (eagerly here) and stores it
    send()
    assert ops_client.get(status_url).json() == {"ready": True}

    page = ops_client.post(URL, {**data, "action": "preview"})
    assert page.status_code == 200
    assert page.context["preview_pending"] is None
    preview = page.context["preview"]
    assert preview is not None
    assert {c.label: (c.before, c.after) for c in preview.counts} == {
        "Healthy": (3, 2),
        "Caution": (1, 1),
        "Margin call": (1, 1),
        "Liquidation": (1, 2),
    }
    assertContains(page, "Would enter a margin call (1)")
    assertContains(page, accounts["caution"].public_id)
    assertContains(page, "Propose for approval")
    assert not Approval.objects.exists()

    refused = ops_client.post(URL, {**data, "action": "propose"})
    assertContains(refused, "Give a reason")
    assert not Approval.objects.exists()

    done = ops_client.post(URL, {**data, "action": "propose", "reason": "Quarterly review."})
    assert done.status_code == 302
    approval = Approval.objects.get()
    assert (approval.kind, approval.proposed_by, approval.status) == (
        "risk_policy",
        staff,
        Approval.Status.PENDING,
    )
    assert approval.payload == {
        "healthy_threshold": "1.7",
        "initial_margin_threshold": "1.3",
        "maintenance_threshold": "1.2",
        "liquidation_threshold": "1",
        "haircut_uncertainty_a": "0.35",
    }
    assert RiskPolicy.objects.get().maintenance_threshold == Decimal("1.0")  # not yet
    assert AuditLog.objects.filter(action="approval_proposed", actor=staff).exists()
    listed = ops_client.get(URL)
    assertContains(listed, approval.public_id)
    with pytest.raises(Forbidden):
        approval_approve(approval_id=approval.public_id, approver=staff)


def test_a_stored_preview_is_the_computed_one_and_is_not_computed_twice(book, monkeypatch):
    payload = risk_policy_payload(CHANGE)
    token = risk_policy_preview_token(CHANGE)
    assert risk_policy_preview_stored(token) is None
    computed = risk_policy_preview_store(token=token, payload=payload)
    assert computed.accounts == 6 and computed.entering_call
    assert risk_policy_preview_stored(token) == computed  # every field, as computed

    def again(values):
        raise AssertionError("computed twice")

    monkeypatch.setattr(risk_policy, "risk_policy_preview", again)
    assert risk_policy_preview_store(token=token, payload=payload) == computed
    # Another proposal, or the same against another policy in force, is another preview.
    assert risk_policy_preview_token({**CHANGE, "haircut_uncertainty_a": Decimal("0.4")}) != token
    RiskPolicy.objects.filter(pk=1).update(haircut_max=Decimal("0.8"))
    assert risk_policy_preview_token(CHANGE) != token


def test_percentages_and_money_are_typed_as_shown(ops_client):
    page = ops_client.post(
        URL,
        {
            **form_data(interest_rate_annual="7.5", margin_volume_threshold="2,000,000"),
            "action": "propose",
            "reason": "Cheaper margin.",
        },
    )
    assert page.status_code == 302
    assert Approval.objects.get().payload == {
        "interest_rate_annual": "0.075",
        "margin_volume_threshold": "2000000",
    }


def test_form_errors_are_sentences(ops_client):
    page = ops_client.post(URL, {**form_data(liquidation_threshold="1.10"), "action": "preview"})
    assertContains(page, "0 &lt; liquidation &lt; maintenance")
    page = ops_client.post(URL, {**form_data(haircut_max="lots"), "action": "preview"})
    assertContains(page, "Haircut h_max: enter a number.")
    page = ops_client.post(URL, {**form_data(), "action": "preview"})
    assertContains(page, "Nothing to propose")


def test_who_may_use_the_page(client, unverified_staff_client):
    response = client.get(URL)
    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))
    status_url = reverse("ops_risk_policy_preview", args=["0" * 32])
    assert client.get(status_url).status_code == 401
    customer = Client()
    customer.force_login(UserFactory())
    assert customer.get(URL).status_code == 302
    assert unverified_staff_client.get(URL).status_code == 403
    assert unverified_staff_client.post(URL, {"action": "preview"}).status_code == 403

    viewer = StaffFactory(is_superuser=False)
    viewer_client = ops_signed_in(Client(), viewer)
    assert viewer_client.get(URL).status_code == 200
    response = viewer_client.post(
        URL, {**form_data(maintenance_threshold="1.10"), "action": "propose", "reason": "R."}
    )
    assert response.status_code == 403
    assertContains(response, "not propose", status_code=403)
    assert not Approval.objects.exists()


def test_the_engine_reads_a_changed_policy_in_its_next_batch(book):
    """No sweep needed: the engine re-evaluates every account when the parameters move."""
    engine = MarginEngine(publish=False)
    engine.sweep()
    assert engine.process_batch(None) is None  # nothing changed: nothing evaluated
    policy = RiskPolicy.objects.get(pk=1)
    policy.haircut_max = Decimal("0.5")
    policy.save()
    figures = engine.process_batch(None)
    assert figures is not None and len(figures) == Account.objects.count()
    assert engine.book.params == margin.MarginParams(h_max=0.5)
