"""The ops account view (GET /ops/accounts/<public_id>/, `ops_account`) and its staff
actions (`ops_account_action`): who may see it, that its figures are the customer's
dashboard's, that a linked secret never shows, and that every action asks for a
reason and a confirmation and is audited; force-close is a four-eyes change applied
through `position_close`, once."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Account, Approval, AuditLog, LinkedCredential
from accounts.services.approvals import approval_apply, approval_approve
from accounts.services.notifications import notification_create
from portal.errors import AccountNotActive, Conflict, Forbidden, NotFound
from tests.factories import StaffFactory, UserFactory, open_account
from tests.ops.conftest import ops_signed_in
from tests.web.dashboard_fixtures import FED, TRUMP, borrower, page_fields, quotes_put
from trading.models import InstrumentHaircut, Order, Position
from trading.services.force_close import (
    force_close_apply,
    force_close_check,
    force_close_client_order_id,
)
from trading.services.orders import order_place, position_close
from trading.web import figures

pytestmark = pytest.mark.django_db

D = Decimal
CANARY = "canary-private-key-0c9e41"
KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
SUMMARY_FIELDS = (
    "health",
    "deposit",
    "cash",
    "used_margin",
    "adjusted_equity",
    "available_margin",
    "available_credit",
    "margin_utilization",
    "collateral_value",
    "diversification",
)


def page_url(account: Account) -> str:
    return reverse("ops_account", args=[account.public_id])


def action_url(account: Account, action: str) -> str:
    return reverse("ops_account_action", args=[account.public_id, action])


def act(client: Client, account: Account, action: str, *, confirmed: bool = True, **data):
    """Post an action's form; with `confirmed`, the confirmation page's post."""
    if confirmed:
        data["confirmed"] = "yes"
    return client.post(action_url(account, action), data)


def held(account: Account, instrument, outcome: str = "yes") -> Decimal:
    row = Position.objects.filter(account=account, instrument=instrument, outcome=outcome).first()
    return D(0) if row is None else row.quantity


def audited(action: str) -> AuditLog:
    return AuditLog.objects.filter(action=action).latest("id")


# --- Who may see it ------------------------------------------------------------------


def test_anonymous_and_non_staff_are_sent_to_the_admin_login(client, custodial_account):
    for visitor in (client, Client()):
        if visitor is not client:
            visitor.force_login(UserFactory())
        response = visitor.get(page_url(custodial_account))
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
        response = visitor.post(action_url(custodial_account, "freeze"), {"reason": "x"})
        assert response.status_code == 302
    custodial_account.refresh_from_db()
    assert custodial_account.status == Account.Status.ACTIVE


def test_staff_without_two_factor_are_refused(unverified_staff_client, custodial_account):
    response = unverified_staff_client.get(page_url(custodial_account))
    assert response.status_code == 403
    assert "two-factor sign-in" in response.content.decode()
    response = act(unverified_staff_client, custodial_account, "freeze", reason="Fraud check.")
    assert response.status_code == 403
    custodial_account.refresh_from_db()
    assert custodial_account.status == Account.Status.ACTIVE
    assert not AuditLog.objects.filter(action="account_freeze").exists()


def test_verified_staff_see_the_page_and_an_unknown_account_is_404(ops_client, custodial_account):
    response = ops_client.get(page_url(custodial_account))
    assert response.status_code == 200
    html = response.content.decode()
    assert custodial_account.public_id in html
    assert custodial_account.owner.email in html
    assert ops_client.get(reverse("ops_account", args=["acct_nope"])).status_code == 404
    assert ops_client.get(action_url(custodial_account, "nope")).status_code == 404


def test_staff_without_the_change_permission_see_but_cannot_act(client, custodial_account):
    viewer = StaffFactory(is_superuser=False)
    ops_signed_in(client, viewer)
    response = client.get(page_url(custodial_account))
    assert response.status_code == 200
    assert "but not change it" in response.content.decode()
    response = act(client, custodial_account, "freeze", reason="Fraud check.")
    assert response.status_code == 403
    custodial_account.refresh_from_db()
    assert custodial_account.status == Account.Status.ACTIVE


def test_the_admin_account_page_links_to_the_ops_view(ops_client, custodial_account):
    response = ops_client.get(reverse("admin:accounts_account_change", args=[custodial_account.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "View in ops" in html and page_url(custodial_account) in html


# --- What it shows --------------------------------------------------------------------


def test_figures_are_the_customers_dashboard_numbers(ops_client, markets):
    account = borrower()
    notification_create(
        user_id=account.owner_id,
        account_id=account.pk,
        kind="margin_call",
        title="Margin call on your account",
        body="Margin Health is 1.15.",
    )
    quotes_put()
    response = ops_client.get(page_url(account))
    assert response.status_code == 200
    html = response.content.decode()
    account.refresh_from_db()
    expected = figures.dashboard_snapshot(account=account, history=False)["summary"]
    shown = page_fields(html)
    assert {name: shown[name] for name in SUMMARY_FIELDS} == {
        name: "" if expected[name] is None else str(expected[name]) for name in SUMMARY_FIELDS
    }
    assert response.context["snapshot"]["summary"]["used_margin"] == expected["used_margin"]
    # Its positions, orders, ledger and notifications.
    for label in ("TRUMP-WIN YES", "FED-CUT NO", "BTC-PERP"):
        assert label in html
    assert html.count('data-field="order_status"') == Order.objects.filter(account=account).count()
    assert "Margin call on your account" in html
    postings = response.context["postings"]
    assert postings and all(p.ledger_account.account_id == account.pk for p in postings)
    admin_list = ops_client.get(response.context["postings_url"])
    assert admin_list.status_code == 200
    assert "?e=1" not in admin_list.get("Location", "")


def test_a_linked_credentials_secret_never_shows(ops_client):
    account = open_account(kind=Account.Kind.NON_CUSTODIAL)
    credential = LinkedCredential(
        account=account,
        venue=LinkedCredential.Venue.KALSHI,
        environment=LinkedCredential.Environment.PRODUCTION,
        identity=KEY_ID,
        scopes="read",
        last_error="auth_failed: the venue refused the key",
        status=LinkedCredential.Status.FAILING,
    )
    credential.secrets_set({"private_key_pem": CANARY})
    credential.save()
    sealed = LinkedCredential.objects.values_list("sealed_secret", flat=True).get()
    response = ops_client.get(page_url(account))
    assert response.status_code == 200
    html = response.content.decode()
    assert CANARY not in html and sealed not in html and KEY_ID not in html
    assert credential.identity_masked in html
    assert 'data-field="link_status" data-value="failing"' in html
    assert "The venue refused the key" in html  # no machine code
    assert "auth_failed" not in html
    assert "Force-close…" not in html  # non-custodial positions live at the venue


# --- Actions: reason, confirmation, audit ---------------------------------------------


def test_freeze_asks_for_a_reason_and_a_confirmation_is_audited_and_blocks_orders(
    ops_client, staff, markets
):
    account = borrower()
    # No reason: refused with the form's message.
    response = act(ops_client, account, "freeze", reason="  ")
    assert response.status_code == 400
    assert "Give a reason" in response.content.decode()
    # The first post shows what it will do and changes nothing.
    response = act(ops_client, account, "freeze", confirmed=False, reason="Card fraud report.")
    assert response.status_code == 200
    html = response.content.decode()
    assert "new orders, deposits and withdrawals are refused" in html
    assert 'name="confirmed" value="yes"' in html and "Card fraud report." in html
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE
    # Confirmed: frozen, audited with the reason and the actor.
    response = act(ops_client, account, "freeze", reason="Card fraud report.")
    assert response.status_code == 302
    assert response.url == page_url(account) + "#actions"
    account.refresh_from_db()
    assert account.status == Account.Status.FROZEN
    entry = audited("account_freeze")
    assert entry.actor == staff and entry.object_id == str(account.pk)
    assert entry.changes == {"status": ["active", "frozen"], "reason": "Card fraud report."}
    assert entry.ip_address == "127.0.0.1"
    # Orders are refused while frozen, and the page shows it with its audit entry.
    quotes_put()
    with pytest.raises(AccountNotActive):
        order_place(account=account, symbol=TRUMP, side="buy", quantity="10", price="0.60")
    html = ops_client.get(page_url(account)).content.decode()
    assert 'data-field="account_status" data-value="frozen"' in html
    assert "Trading frozen" in html and "Card fraud report." in html
    # Unfreeze the same way.
    act(ops_client, account, "unfreeze", reason="Cleared by compliance.")
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE
    assert audited("account_unfreeze").changes["reason"] == "Cleared by compliance."


def test_margin_override_is_audited_with_its_reason(ops_client, staff, custodial_account):
    response = act(
        ops_client, custodial_account, "margin", confirmed=False, override="granted", reason="VIP."
    )
    assert "Granted by ops" in response.content.decode()
    response = act(ops_client, custodial_account, "margin", override="granted", reason="VIP.")
    assert response.status_code == 302
    custodial_account.refresh_from_db()
    assert (custodial_account.margin_override, custodial_account.margin_enabled) == (
        "granted",
        True,
    )
    entry = audited("margin_override_granted")
    assert entry.actor == staff
    assert entry.changes["reason"] == "VIP."
    assert entry.changes["margin_enabled"] == [False, True]


def test_a_haircut_add_on_is_per_instrument_and_audited(ops_client, staff, markets):
    account = borrower()
    html = ops_client.get(page_url(account)).content.decode()
    assert action_url(account, "haircut") + f"?symbol={TRUMP}" in html
    form = ops_client.get(action_url(account, "haircut"), {"symbol": TRUMP})
    assert form.status_code == 200
    data = {"symbol": TRUMP, "addon": "0.05", "note": "Thin book", "reason": "Dispute risk."}
    response = act(ops_client, account, "haircut", confirmed=False, **data)
    text = response.content.decode()
    assert "every account" in text and "5.00%" in text
    assert not InstrumentHaircut.objects.exists()
    assert act(ops_client, account, "haircut", **data).status_code == 302
    row = InstrumentHaircut.objects.get(instrument=markets[TRUMP])
    assert (row.addon, row.note) == (D("0.05"), "Thin book")
    entry = audited("haircut_addon_set")
    assert entry.actor == staff and entry.object_type == "trading.Instrument"
    assert entry.changes["reason"] == "Dispute risk."
    assert entry.changes["account"] == account.public_id
    assert entry.changes["haircut_addon"] == [None, "0.05"]
    # Out of range: refused, nothing changed.
    response = act(ops_client, account, "haircut", **{**data, "addon": "1.5"})
    assert response.status_code == 400
    row.refresh_from_db()
    assert row.addon == D("0.05")
    # The account's audit trail shows it.
    assert "Haircut add-on set" in ops_client.get(page_url(account)).content.decode()


# --- Force-close: four eyes, through position_close, once ------------------------------


def propose_close(client: Client, account: Account, **data) -> Approval:
    response = act(client, account, "force-close", reason="Customer unreachable.", **data)
    assert response.status_code == 302, response.content.decode()
    return Approval.objects.filter(account=account).latest("id")


def test_force_close_is_proposed_then_approved_by_another_and_closes_once(
    ops_client, staff, markets
):
    account = borrower()
    before = held(account, markets[TRUMP])
    response = act(
        ops_client, account, "force-close", confirmed=False, symbol=TRUMP, reason="Unreachable."
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "Force-close all" in text and "four-eyes" in text
    assert not Approval.objects.exists()

    approval = propose_close(ops_client, account, symbol=TRUMP)
    assert approval.kind == "force_close" and approval.status == Approval.Status.PENDING
    assert approval.payload == {"account": account.public_id, "symbol": TRUMP, "quantity": "all"}
    assert approval.proposed_by == staff and approval.reason == "Customer unreachable."
    assert audited("approval_proposed").changes["reason"] == "Customer unreachable."
    assert held(account, markets[TRUMP]) == before  # nothing sold yet
    assert not Order.objects.filter(client_order_id__startswith="ops-close-").exists()

    # The proposer cannot approve their own.
    with pytest.raises(Forbidden):
        approval_approve(approval_id=approval.public_id, approver=staff)

    # Another staff member approves: position_close sells it all, under the derived id.
    quotes_put()
    approval = approval_approve(approval_id=approval.public_id, approver=StaffFactory())
    assert approval.status == Approval.Status.APPLIED, approval.result
    client_order_id = force_close_client_order_id(approval.public_id)
    order = Order.objects.get(account=account, client_order_id=client_order_id)
    assert (order.side, order.time_in_force, order.status) == ("sell", "IOC", "filled")
    assert order.filled_quantity == before
    assert held(account, markets[TRUMP]) == 0
    assert order.public_id in approval.result and "closed as proposed" in approval.result

    # Applying again (a crash after the order, a retry) places no second order.
    again = force_close_apply(approval)
    assert again == approval.result
    Approval.objects.filter(pk=approval.pk).update(status=Approval.Status.APPROVED)
    assert approval_apply(approval_id=approval.public_id).status == Approval.Status.APPLIED
    assert Order.objects.filter(account=account, client_order_id=client_order_id).count() == 1
    assert (
        Order.objects.filter(account=account, side="sell", instrument=markets[TRUMP]).count() == 1
    )

    # The account page lists the approval and its audit entries.
    html = ops_client.get(page_url(account)).content.decode()
    assert approval.public_id in html and "Change applied" in html


def test_a_partial_force_close_sells_the_quantity_proposed(ops_client, markets):
    account = borrower()
    before = held(account, markets[FED], "no")
    approval = propose_close(ops_client, account, symbol=f"{FED}:NO", quantity="100")
    assert approval.payload["quantity"] == "100"
    quotes_put()
    approval = approval_approve(approval_id=approval.public_id, approver=StaffFactory())
    assert approval.status == Approval.Status.APPLIED, approval.result
    assert held(account, markets[FED], "no") == before - 100


def test_a_frozen_account_is_force_closed_while_the_customer_cannot_trade(ops_client, markets):
    account = borrower()
    before = held(account, markets[FED], "no")
    approval = propose_close(ops_client, account, symbol=f"{FED}:NO", quantity="100")
    Account.objects.filter(pk=account.pk).update(status=Account.Status.FROZEN)
    account.refresh_from_db()
    with pytest.raises(AccountNotActive):  # the customer's own close is refused
        position_close(account=account, symbol=f"{FED}:NO", quantity="100")
    quotes_put()
    approval = approval_approve(approval_id=approval.public_id, approver=StaffFactory())
    assert approval.status == Approval.Status.APPLIED, approval.result
    assert held(account, markets[FED], "no") == before - 100


def test_force_close_check_refuses_what_the_order_path_would(ops_client, staff, markets):
    account = borrower()
    # No such position (FED-CUT YES is not held): refused on the page, no approval.
    with pytest.raises(NotFound):
        force_close_check({"account": account.public_id, "symbol": FED, "quantity": "all"})
    response = act(ops_client, account, "force-close", symbol=FED, reason="Test.")
    assert response.status_code == 409
    assert "No open FED-CUT YES position" in response.content.decode()
    response = act(ops_client, account, "force-close", symbol=TRUMP, quantity="999999", reason="x")
    assert response.status_code == 409
    assert "more than the position" in response.content.decode()
    assert not Approval.objects.exists()
    # A proposal whose position is gone by the time it is approved is not approved.
    approval = propose_close(ops_client, account, symbol=TRUMP)
    Position.objects.filter(account=account, instrument=markets[TRUMP]).update(quantity=0)
    with pytest.raises(NotFound):
        approval_approve(approval_id=approval.public_id, approver=StaffFactory())
    assert Approval.objects.get(pk=approval.pk).status == Approval.Status.PENDING
    # A closed account has nothing to close.
    closed = borrower()
    Account.objects.filter(pk=closed.pk).update(status=Account.Status.CLOSED)
    with pytest.raises(AccountNotActive):
        force_close_check({"account": closed.public_id, "symbol": TRUMP, "quantity": "all"})
    # A halted market: position_close would refuse, so the check does.
    markets[FED].status = "halted"
    markets[FED].save(update_fields=["status"])
    with pytest.raises(Conflict, match="halted"):
        force_close_check({"account": account.public_id, "symbol": f"{FED}:NO", "quantity": "all"})
