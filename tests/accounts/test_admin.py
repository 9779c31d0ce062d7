"""The ops console: two-factor login, lockout, audited changes, KYB, accounts,
the read-only ledger and withdrawal review, driven through the real admin login."""

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django.asserts import assertContains, assertNotContains

from accounts.admin_site import NO_DEVICE_MESSAGE
from accounts.models import (
    Account,
    AuditLog,
    Journal,
    LedgerAccount,
    Notification,
    Posting,
    User,
)
from accounts.models import WithdrawalRequest as Withdrawal
from accounts.outbox import outbox_enqueue, outbox_item_failed
from accounts.services.withdrawals import withdrawal_reject, withdrawal_request
from tests.conftest import credit_cash
from tests.factories import DEFAULT_PASSWORD, StaffFactory, UserFactory, open_account

pytestmark = pytest.mark.django_db

LOCKOUT_TEXT = "too many login attempts"


def enrol_totp(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def current_code(device: TOTPDevice) -> str:
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{code:0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    """A code valid at no step the device tolerates around now."""
    accepted = {
        totp(device.bin_key, device.step, device.t0, device.digits, drift)
        for drift in range(device.drift - device.tolerance, device.drift + device.tolerance + 1)
    }
    return next(f"{n:06d}" for n in range(10) if n not in accepted)


def admin_login(client, email: str, password: str = DEFAULT_PASSWORD, code: str = ""):
    return client.post(
        reverse("admin:login"),
        {
            "username": email,
            "password": password,
            "otp_token": code,
            "next": reverse("admin:index"),
        },
    )


def login_ops(client, user: User) -> None:
    device = TOTPDevice.objects.filter(user=user).first() or enrol_totp(user)
    response = admin_login(client, user.email, code=current_code(device))
    assert response.status_code == 302, response.content.decode()


def assert_outside(client) -> None:
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def run_action(client, changelist: str, action: str, objects, **data):
    return client.post(
        reverse(changelist),
        {"action": action, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects], "index": 0, **data},
        follow=True,
    )


@pytest.fixture
def ops_client(client, staff):
    login_ops(client, staff)
    return client


# --- Getting in --------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_the_login(client):
    assert_outside(client)


def test_non_staff_user_cannot_enter_even_with_a_device(client, user):
    device = enrol_totp(user)
    response = admin_login(client, user.email, code=current_code(device))
    assertContains(response, "for a staff account")
    assert_outside(client)


def test_staff_without_a_device_is_told_to_ask_for_enrolment(client, staff):
    response = admin_login(client, staff.email, code="123456")
    assertContains(response, NO_DEVICE_MESSAGE)
    assertContains(response, "Ask an administrator to enrol one")
    assert_outside(client)


def test_staff_signed_in_with_password_only_is_not_let_in(client, staff):
    enrol_totp(staff)
    client.force_login(staff)  # e.g. a portal session: no second factor
    assert_outside(client)


def test_staff_with_a_wrong_code_cannot_enter(client, staff):
    device = enrol_totp(staff)
    response = admin_login(client, staff.email, code=wrong_code(device))
    assertContains(response, "That authentication code is not valid")
    assertNotContains(response, DEFAULT_PASSWORD)  # the password is not echoed into the page
    assert_outside(client)


def test_staff_with_the_right_code_enters_and_the_login_is_audited(client, staff):
    device = enrol_totp(staff)
    response = admin_login(client, staff.email, code=current_code(device))
    assert response.status_code == 302
    index = client.get(reverse("admin:index"))
    assertContains(index, "Prime Portal ops console")
    assertContains(index, "Withdrawal requests")
    entry = AuditLog.objects.get(action="login")
    assert entry.actor == staff
    assert entry.ip_address == "127.0.0.1"


def test_staff_can_enter_with_a_backup_code(client, staff):
    backup = StaticDevice.objects.create(user=staff, name="backup codes", confirmed=True)
    backup.token_set.create(token="k7q2mx4z")
    enrol_totp(staff)
    response = admin_login(client, staff.email, code="k7q2mx4z")
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200
    assert not backup.token_set.exists()  # a backup code works once


def test_five_bad_passwords_lock_the_email_out(client, staff):
    device = enrol_totp(staff)
    for _ in range(4):
        response = admin_login(client, staff.email, password="wrong-password")
        assertContains(response, "Please enter the correct email address and password")
    locked = admin_login(client, staff.email, password="wrong-password")
    assert locked.status_code == 429
    assert LOCKOUT_TEXT in locked.content.decode()

    # Locked out: even the right password and code are refused.
    response = admin_login(client, staff.email, code=current_code(device))
    assert response.status_code == 429
    assert LOCKOUT_TEXT in response.content.decode()
    assert_outside(client)


def test_wrong_codes_count_towards_the_lockout(client, staff):
    device = enrol_totp(staff)
    for _ in range(4):
        assert admin_login(client, staff.email, code=wrong_code(device)).status_code == 200
    response = admin_login(client, staff.email, code=wrong_code(device))
    assert response.status_code == 429
    assert_outside(client)


def test_totp_code_command_prints_a_code_that_signs_in(client, staff, settings):
    enrol_totp(staff)
    settings.DEBUG = True
    out = StringIO()
    call_command("totp_code", staff.email, stdout=out)
    response = admin_login(client, staff.email, code=out.getvalue().strip())
    assert response.status_code == 302


def test_totp_code_command_refuses_without_debug(staff, settings):
    enrol_totp(staff)
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("totp_code", staff.email)


# --- Users and KYB -----------------------------------------------------------


def test_kyb_is_decided_on_the_review_screen_not_by_bulk_actions(ops_client):
    # The decisions (reason, confirmation, audit, notification): tests/ops/test_kyb_review.py.
    applicant = UserFactory(kyb_status=User.KybStatus.PENDING)
    review = reverse("ops_kyb_review", args=[applicant.pk])
    response = run_action(ops_client, "admin:accounts_user_changelist", "approve_kyb", [applicant])
    assertContains(response, f'href="{review}"')
    applicant.refresh_from_db()
    assert applicant.kyb_status == User.KybStatus.PENDING
    assert not AuditLog.objects.filter(action__startswith="kyb_").exists()


def test_kyb_status_is_not_editable_in_the_change_form(ops_client, staff):
    applicant = UserFactory(kyb_status=User.KybStatus.PENDING, full_name="Ada")
    response = ops_client.post(
        reverse("admin:accounts_user_change", args=[applicant.pk]),
        {
            "email": applicant.email,
            "full_name": "Ada Lovelace",
            "is_active": "on",
            "kyb_status": "approved",
        },
    )
    assert response.status_code == 302
    applicant.refresh_from_db()
    assert applicant.full_name == "Ada Lovelace"
    assert applicant.kyb_status == User.KybStatus.PENDING
    entry = AuditLog.objects.get(action="change", object_type="accounts.User")
    assert entry.actor == staff
    assert entry.changes == {"full_name": ["Ada", "Ada Lovelace"]}


def test_create_user_with_email_and_password(ops_client):
    response = ops_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "New.Trader@Example.TEST",
            "password1": "a-long-new-secret-9",
            "password2": "a-long-new-secret-9",
        },
    )
    assert response.status_code == 302
    created = User.objects.get(email="new.trader@example.test")
    assert created.check_password("a-long-new-secret-9")
    entry = AuditLog.objects.get(action="add", object_type="accounts.User")
    assert entry.changes["email"] == [None, "new.trader@example.test"]
    assert "a-long-new-secret-9" not in json.dumps(entry.changes)


def test_password_change_is_audited_with_the_secret_masked(ops_client, user):
    response = ops_client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": "another-long-secret-7", "password2": "another-long-secret-7"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("another-long-secret-7")
    entry = AuditLog.objects.get(action="password_change", object_id=str(user.pk))
    assert entry.changes == {"password": ["***", "***"]}


def test_staff_who_is_not_superuser_cannot_grant_themselves_superuser(client):
    ops = StaffFactory(is_superuser=False)
    ops.user_permissions.set(Permission.objects.filter(codename__in=["view_user", "change_user"]))
    login_ops(client, ops)
    response = client.post(
        reverse("admin:accounts_user_change", args=[ops.pk]),
        {
            "email": ops.email,
            "full_name": "Me",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
        },
    )
    assert response.status_code == 302
    ops.refresh_from_db()
    assert ops.full_name == "Me"
    assert not ops.is_superuser


# --- Accounts ----------------------------------------------------------------


def account_change(client, account: Account, **data):
    fields = {"name": account.name, **data}
    return client.post(reverse("admin:accounts_account_change", args=[account.pk]), fields)


def test_margin_eligibility_is_changed_through_the_service_and_audited_once(
    ops_client, staff, custodial_account
):
    response = account_change(ops_client, custodial_account, margin_override="granted")
    assert response.status_code == 302
    custodial_account.refresh_from_db()
    assert custodial_account.margin_override == Account.MarginOverride.GRANTED
    assert custodial_account.margin_enabled
    entry = AuditLog.objects.get(action="margin_override_granted")
    assert (entry.actor, entry.object_id) == (staff, str(custodial_account.pk))
    assert entry.ip_address == "127.0.0.1"
    assert entry.changes == {"margin_enabled": [False, True], "margin_override": ["", "granted"]}
    # The service's entry says what changed; the form adds no second "change" entry.
    assert not AuditLog.objects.filter(action="change", object_type="accounts.Account").exists()


def test_other_fields_edited_with_the_eligibility_are_audited_apart(
    ops_client, staff, custodial_account
):
    response = account_change(
        ops_client, custodial_account, name="Hedging", margin_override="revoked"
    )
    assert response.status_code == 302
    custodial_account.refresh_from_db()
    assert (custodial_account.name, custodial_account.margin_override) == ("Hedging", "revoked")
    entries = AuditLog.objects.filter(
        object_type="accounts.Account", action__in=["change", "margin_override_revoked"]
    )
    assert {entry.action: entry.changes for entry in entries} == {
        "change": {"name": ["", "Hedging"]},
        "margin_override_revoked": {"margin_override": ["", "revoked"]},
    }


def test_margin_enabled_is_read_only_in_the_form(ops_client, custodial_account):
    page = ops_client.get(reverse("admin:accounts_account_change", args=[custodial_account.pk]))
    assertContains(page, 'name="margin_override"')
    assertNotContains(page, 'name="margin_enabled"')
    response = account_change(ops_client, custodial_account, margin_enabled="on")
    assert response.status_code == 302
    custodial_account.refresh_from_db()
    assert not custodial_account.margin_enabled
    assert not AuditLog.objects.filter(object_type="accounts.Account").exists()


def test_cash_balance_cannot_be_edited(ops_client, custodial_account):
    credit_cash(custodial_account, "100")
    response = account_change(
        ops_client, custodial_account, cash_balance="1000000", lifetime_volume="5"
    )
    assert response.status_code == 302
    custodial_account.refresh_from_db()
    assert custodial_account.cash_balance == Decimal("100")
    assert custodial_account.lifetime_volume == 0


def test_margin_is_refused_for_a_non_custodial_account_in_the_form(
    ops_client, non_custodial_account
):
    response = account_change(ops_client, non_custodial_account, margin_override="granted")
    assertContains(response, "Margin is available to custodial accounts only.")
    non_custodial_account.refresh_from_db()
    assert non_custodial_account.margin_override == Account.MarginOverride.AUTOMATIC
    assert not non_custodial_account.margin_enabled


def test_freeze_and_unfreeze_actions_are_audited(ops_client, staff, custodial_account):
    changelist = "admin:accounts_account_changelist"
    assertContains(
        run_action(ops_client, changelist, "freeze", [custodial_account]), "Frozen: 1 account."
    )
    custodial_account.refresh_from_db()
    assert custodial_account.status == Account.Status.FROZEN
    entry = AuditLog.objects.get(action="account_freeze")
    assert (entry.actor, entry.changes) == (staff, {"status": ["active", "frozen"]})

    run_action(ops_client, changelist, "unfreeze", [custodial_account])
    custodial_account.refresh_from_db()
    assert custodial_account.status == Account.Status.ACTIVE


def test_grant_margin_action_reports_each_refusal(
    ops_client, staff, custodial_account, non_custodial_account
):
    response = run_action(
        ops_client,
        "admin:accounts_account_changelist",
        "grant_margin",
        [custodial_account, non_custodial_account],
    )
    assertContains(response, "Margin granted: 1 account.")
    assertContains(response, f"{non_custodial_account.public_id} (Non-custodial")
    assertContains(response, "Only custodial accounts can borrow on margin.")
    custodial_account.refresh_from_db()
    non_custodial_account.refresh_from_db()
    assert custodial_account.margin_enabled
    assert custodial_account.margin_override == Account.MarginOverride.GRANTED
    assert not non_custodial_account.margin_enabled
    assert non_custodial_account.margin_override == Account.MarginOverride.AUTOMATIC
    entry = AuditLog.objects.get(action="margin_override_granted")
    assert (entry.actor, entry.object_id) == (staff, str(custodial_account.pk))
    assert entry.changes == {"margin_enabled": [False, True], "margin_override": ["", "granted"]}
    selected = AuditLog.objects.get(action="action:grant_margin").changes["selected"]
    assert sorted(selected) == sorted([str(custodial_account.pk), str(non_custodial_account.pk)])


def test_revoke_then_automatic_hands_margin_back_to_the_volume_rule(ops_client):
    changelist = "admin:accounts_account_changelist"
    trader = open_account(lifetime_volume=Decimal("1500000"), margin_enabled=True)
    newcomer = open_account(
        lifetime_volume=Decimal("20000"), margin_enabled=True, margin_override="granted"
    )

    assertContains(
        run_action(ops_client, changelist, "revoke_margin", [trader, newcomer]),
        "Margin revoked: 2 accounts.",
    )
    trader.refresh_from_db()
    newcomer.refresh_from_db()
    assert not trader.margin_enabled and not newcomer.margin_enabled
    assert trader.margin_override == newcomer.margin_override == Account.MarginOverride.REVOKED

    assertContains(
        run_action(ops_client, changelist, "automatic_margin", [trader, newcomer]),
        "Margin set to automatic: 2 accounts.",
    )
    trader.refresh_from_db()
    newcomer.refresh_from_db()
    # Over the policy's $1M of lifetime volume margin comes back; under it, it stays off.
    assert trader.margin_enabled and not newcomer.margin_enabled
    assert trader.margin_override == newcomer.margin_override == Account.MarginOverride.AUTOMATIC
    back = AuditLog.objects.get(action="margin_override_automatic", object_id=str(trader.pk))
    assert back.changes == {"margin_enabled": [False, True], "margin_override": ["revoked", ""]}


def test_accounts_filter_by_margin_eligibility(ops_client, custodial_account):
    granted = open_account(margin_enabled=True, margin_override="granted")
    result = (
        ops_client.get(
            reverse("admin:accounts_account_changelist"), {"margin_override__exact": "granted"}
        )
        .context["cl"]
        .result_list
    )
    assert list(result) == [granted]


def test_accounts_are_opened_through_the_service(ops_client, user):
    open_account(owner=user)
    response = ops_client.post(
        reverse("admin:accounts_account_add"),
        {"owner": user.pk, "kind": Account.Kind.CUSTODIAL, "name": "Hedging"},
    )
    assert response.status_code == 302
    opened = Account.objects.get(owner=user, name="Hedging")
    assert opened.index == 1
    assert LedgerAccount.objects.filter(account=opened, purpose=LedgerAccount.Purpose.CASH).exists()
    assert AuditLog.objects.filter(action="add", object_id=str(opened.pk)).exists()


# --- Ledger, deposits and the audit log are read-only -----------------------


@pytest.mark.parametrize("model", [Journal, Posting, LedgerAccount])
def test_ledger_is_read_only_even_for_superusers(ops_client, staff, custodial_account, model):
    assert staff.is_superuser
    credit_cash(custodial_account, "100")
    obj = model.objects.order_by("id").first()
    name = f"admin:accounts_{model._meta.model_name}"

    changelist = ops_client.get(reverse(f"{name}_changelist"))
    assert changelist.status_code == 200
    assertNotContains(changelist, reverse(f"{name}_add"))
    assert ops_client.get(reverse(f"{name}_add")).status_code == 403

    change_url = reverse(f"{name}_change", args=[obj.pk])
    page = ops_client.get(change_url)
    assert page.status_code == 200
    assertNotContains(page, 'name="_save"')
    assert ops_client.post(change_url, {"memo": "edited", "amount": "1"}).status_code == 403
    assert (
        ops_client.post(reverse(f"{name}_delete", args=[obj.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert model.objects.filter(pk=obj.pk).exists()


def test_journal_page_shows_its_postings(ops_client, custodial_account):
    journal = credit_cash(custodial_account, "100")
    page = ops_client.get(reverse("admin:accounts_journal_change", args=[journal.pk]))
    assertContains(page, f"cash:{custodial_account.public_id}")
    assertContains(page, "-100.00")


def test_deposits_cannot_be_created_by_hand(ops_client):
    assert ops_client.get(reverse("admin:accounts_deposit_changelist")).status_code == 200
    assert ops_client.get(reverse("admin:accounts_deposit_add")).status_code == 403


def test_audit_log_is_read_only_and_searchable(ops_client, staff):
    entry = AuditLog.objects.get(action="login")
    changelist = reverse("admin:accounts_auditlog_changelist")
    found = ops_client.get(changelist, {"q": staff.email}).context["cl"].result_list
    assert list(found) == [entry]
    assert not ops_client.get(changelist, {"q": "nobody@example.test"}).context["cl"].result_list
    assert not ops_client.get(changelist, {"action": "kyb_approved"}).context["cl"].result_list
    assert ops_client.get(reverse("admin:accounts_auditlog_add")).status_code == 403
    change_url = reverse("admin:accounts_auditlog_change", args=[entry.pk])
    assert ops_client.post(change_url, {"action": "nothing"}).status_code == 403
    entry.refresh_from_db()
    assert entry.action == "login"


# --- Notifications -------------------------------------------------------------


def test_notifications_are_listed_read_only(ops_client, custodial_account):
    notification = Notification.objects.create(
        user=custodial_account.owner,
        account=custodial_account,
        kind=Notification.Kind.DEPOSIT,
        title="Deposit confirmed",
        body="100 USDC arrived.",
    )
    changelist = reverse("admin:accounts_notification_changelist")
    assert list(ops_client.get(changelist).context["cl"].result_list) == [notification]
    by_kind = ops_client.get(changelist, {"kind__exact": "margin_call"}).context["cl"]
    assert not by_kind.result_list
    found = ops_client.get(changelist, {"q": custodial_account.owner.email}).context["cl"]
    assert list(found.result_list) == [notification]
    assert ops_client.get(reverse("admin:accounts_notification_add")).status_code == 403
    change_url = reverse("admin:accounts_notification_change", args=[notification.pk])
    assert ops_client.get(change_url).status_code == 200
    assert ops_client.post(change_url, {"title": "Edited"}).status_code == 403
    delete_url = reverse("admin:accounts_notification_delete", args=[notification.pk])
    assert ops_client.post(delete_url, {"post": "yes"}).status_code == 403
    notification.refresh_from_db()
    assert notification.title == "Deposit confirmed"


# --- Withdrawals -------------------------------------------------------------


def withdrawal_for(account: Account, amount: str) -> Withdrawal:
    return withdrawal_request(
        account=account,
        amount=Decimal(amount),
        destination="Bank ****1234",
        requested_by=account.owner,
    )


def test_withdrawals_are_approved_on_the_review_screen_not_in_bulk(ops_client, custodial_account):
    # Approval (effect on health, margin check, four-eyes): tests/ops/test_withdrawal_review.py.
    credit_cash(custodial_account, "100")
    withdrawal = withdrawal_for(custodial_account, "80")
    response = run_action(
        ops_client, "admin:accounts_withdrawalrequest_changelist", "approve", [withdrawal]
    )
    assertContains(response, reverse("ops_withdrawal_review", args=[withdrawal.public_id]))
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING
    assert not AuditLog.objects.filter(action="withdrawal_approved").exists()


def test_reject_asks_for_a_reason_first(ops_client, staff, custodial_account):
    credit_cash(custodial_account, "100")
    withdrawal = withdrawal_for(custodial_account, "80")
    changelist = "admin:accounts_withdrawalrequest_changelist"

    page = run_action(ops_client, changelist, "reject", [withdrawal])
    assertContains(page, "will be rejected with the reason below")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING

    blank = ops_client.post(
        reverse(changelist),
        {"action": "reject", ACTION_CHECKBOX_NAME: [withdrawal.pk], "reason": "  "},
    )
    assertContains(blank, "This field is required.")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING
    assert not AuditLog.objects.filter(action="action:reject").exists()

    done = ops_client.post(
        reverse(changelist),
        {
            "action": "reject",
            ACTION_CHECKBOX_NAME: [withdrawal.pk],
            "reason": "Destination not verified",
        },
        follow=True,
    )
    assertContains(done, "Rejected: 1 withdrawal request.")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REJECTED
    assert withdrawal.rejection_reason == "Destination not verified"
    assert AuditLog.objects.get(action="withdrawal_rejected").actor == staff
    assert AuditLog.objects.filter(action="action:reject").count() == 1


def test_withdrawals_list_pending_first(ops_client, staff, custodial_account):
    credit_cash(custodial_account, "100")
    older_pending = withdrawal_for(custodial_account, "10")
    newer_rejected = withdrawal_for(custodial_account, "20")
    withdrawal_reject(withdrawal=newer_rejected, actor=staff, reason="Duplicate")
    newest_pending = withdrawal_for(custodial_account, "30")
    response = ops_client.get(reverse("admin:accounts_withdrawalrequest_changelist"))
    listed = [w.public_id for w in response.context["cl"].result_list]
    assert listed == [newest_pending.public_id, older_pending.public_id, newer_rejected.public_id]


def test_withdrawals_cannot_be_edited_by_hand(ops_client, custodial_account):
    credit_cash(custodial_account, "100")
    withdrawal = withdrawal_for(custodial_account, "10")
    url = reverse("admin:accounts_withdrawalrequest_change", args=[withdrawal.pk])
    assert ops_client.post(url, {"status": "approved", "amount": "10"}).status_code == 403
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING


# --- Other apps' admins are audited too ----------------------------------------


def test_device_enrolment_is_audited_with_the_seed_masked(ops_client, staff, user):
    key = "0123456789abcdef0123456789abcdef01234567"
    response = ops_client.post(
        reverse("admin:otp_totp_totpdevice_add"),
        {
            "user": user.pk,
            "name": "phone",
            "confirmed": "on",
            "key": key,
            "step": 30,
            "t0": 0,
            "digits": 6,
            "tolerance": 1,
            "drift": 0,
            "throttling_failure_count": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()
    device = TOTPDevice.objects.get(user=user)
    entry = AuditLog.objects.get(action="add", object_type="otp_totp.TOTPDevice")
    assert entry.object_id == str(device.pk)
    assert entry.actor == staff
    assert entry.changes["key"] == ["***", "***"]
    assert entry.changes["user"] == [None, user.email]
    assert key not in json.dumps(entry.changes)


def test_third_party_admin_actions_are_audited(ops_client, staff):
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    task = PeriodicTask.objects.create(
        name="reconcile", task="accounts.ledger_reconcile", interval=every_minute, enabled=False
    )
    run_action(
        ops_client, "admin:django_celery_beat_periodictask_changelist", "enable_tasks", [task]
    )
    task.refresh_from_db()
    assert task.enabled
    entry = AuditLog.objects.get(action="action:enable_tasks")
    assert entry.actor == staff
    assert entry.object_type == "django_celery_beat.PeriodicTask"
    assert entry.changes == {"selected": [str(task.pk)]}


def test_ops_see_failing_outbox_items_with_their_error_and_cannot_edit_them(ops_client):
    failing = outbox_enqueue(task="accounts.withdrawal_payout", kwargs={"withdrawal_id": 1})
    outbox_item_failed(item_id=failing.pk, error="HTTPStatusError: 503 from the provider")
    outbox_enqueue(task="accounts.notification_emails_send", kwargs={"notification_ids": [1]})
    url = reverse("admin:accounts_outboxitem_changelist")
    page = ops_client.get(url, {"state": "failing"})
    assert page.status_code == 200
    assert [item.pk for item in page.context["cl"].result_list] == [failing.pk]
    assert "503 from the provider" in page.content.decode()
    change = ops_client.post(
        reverse("admin:accounts_outboxitem_change", args=[failing.pk]), {"task": "x"}
    )
    assert change.status_code == 403
