"""Signing in and out of the portal: password, lockout (django-axes), optional TOTP,
password reset by email, the KYB-pending page and the account switcher."""

import re
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core import mail
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Account, AuditLog, User
from accounts.web import SESSION_ACCOUNT
from tests.factories import DEFAULT_PASSWORD, StaffFactory, UserFactory, open_account
from tests.web.conftest import code_at, html, login, signed_in, wrong_code

pytestmark = pytest.mark.django_db

LOCKOUT_TEXT = "Too many failed sign-in attempts"


def is_signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- Home, login, logout ---------------------------------------------------------------


def test_home_shows_sign_in_to_visitors_and_sends_customers_to_the_dashboard(client, customer_user):
    response = client.get("/")
    assert response.status_code == 200
    assert 'href="/login/"' in html(response)
    signed_in(client, customer_user)
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == "/dashboard/"


def test_pages_need_a_sign_in(client):
    response = client.get("/deposits/")
    assert response.status_code == 302
    assert response.url == "/login/?next=/deposits/"


def test_login_with_the_right_password_goes_to_the_dashboard(client, customer_user):
    page = client.get("/login/")
    assert page.status_code == 200
    assert 'autocomplete="current-password"' in html(page)
    response = login(client, customer_user.email)
    assert response.status_code == 302
    assert response.url == "/dashboard/"
    assert is_signed_in(client)


def test_login_email_is_case_insensitive_and_next_is_followed_when_safe(client, customer_user):
    response = login(client, customer_user.email.upper(), next="/withdrawals/")
    assert response.url == "/withdrawals/"
    client.post("/logout/")
    response = login(client, customer_user.email, next="https://evil.example/steal")
    assert response.url == "/dashboard/"


def test_wrong_password_is_refused_with_a_message(client, customer_user):
    response = login(client, customer_user.email, password="not-the-password")
    assert response.status_code == 200
    assert "The email address or password is not correct." in html(response)
    assert 'role="alert"' in html(response)
    assert "not-the-password" not in html(response)
    assert not is_signed_in(client)


def test_unknown_email_gets_the_same_message(client, db):
    response = login(client, "nobody@example.test")
    assert "The email address or password is not correct." in html(response)


def test_repeated_failures_lock_the_email_out_even_with_the_right_password(client, customer_user):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = login(client, customer_user.email, password="wrong-password")
        assert response.status_code == 200
    locked = login(client, customer_user.email, password="wrong-password")
    assert locked.status_code == 429
    assert LOCKOUT_TEXT in html(locked)
    assert "Sign-in paused" in html(locked)  # the portal's page, not the ops console's
    assert f"{round(settings.AXES_COOLOFF_TIME * 60)} minutes" in html(locked)

    refused = login(client, customer_user.email)  # the right password now
    assert refused.status_code == 429
    assert LOCKOUT_TEXT in html(refused)
    assert not is_signed_in(client)
    assert client.get("/deposits/").status_code == 302


def test_spelling_the_email_differently_does_not_escape_the_lockout(client, customer_user):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        email = customer_user.email.upper() if attempt % 2 else customer_user.email
        login(client, email, password="wrong-password")
    assert login(client, customer_user.email.title()).status_code == 429
    assert AccessAttempt.objects.filter(username=customer_user.email).count() == 1


def test_a_successful_login_resets_the_failure_count(client, customer_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, customer_user.email, password="wrong-password")
    signed_in(client, customer_user)
    client.post("/logout/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, customer_user.email, password="wrong-password").status_code == 200
    assert login(client, customer_user.email).status_code == 302


def test_logout_is_a_post_and_ends_the_session(customer_client):
    confirm = customer_client.get("/logout/")
    assert confirm.status_code == 200
    assert is_signed_in(customer_client)  # a GET (a link, a prefetch) signs nobody out
    response = customer_client.post("/logout/")
    assert response.status_code == 302
    assert response.url == "/login/"
    assert not is_signed_in(customer_client)
    assert "You are signed out." in html(customer_client.get("/login/"))


def test_the_header_shows_the_navigation_to_signed_in_customers(customer_client):
    page = html(customer_client.get("/accounts/"))
    for label, href in [
        ("Dashboard", "/dashboard/"),
        ("Deposits", "/deposits/"),
        ("Withdrawals", "/withdrawals/"),
        ("Transactions", "/transactions/"),
        ("Reports", "/reports/"),
        ("Notifications", "/notifications/"),
        ("API keys", "/api-keys/"),
        ("Security", "/security/"),
    ]:
        assert f'<a href="{href}"' in page, label
        assert label in page
    assert 'action="/logout/"' in page
    assert 'class="skip-link" href="#main"' in page
    assert 'aria-live="polite"' in page
    assert '<a href="/accounts/" aria-current="page">Accounts</a>' in page


def test_every_nav_entry_is_marked_on_its_own_page(customer_client):
    linked = html(customer_client.get("/linked/"))
    assert 'href="/linked/" aria-current="page">Linked exchanges</a>' in linked
    assert linked.count('aria-current="page"') == 1


def test_the_site_has_an_icon(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 301 and icon["Location"].endswith("favicon.svg")
    assert 'rel="icon"' in html(client.get("/login/"))


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def test_the_state_colours_read_on_white_at_wcag_aa():
    """The dashboard's state colours are text too (the gauge's value): 4.5:1 on white.
    (Light mode's :root in portal.css; tests/web/test_colours.py checks every pair.)"""
    css = (Path(settings.BASE_DIR) / "static" / "css" / "portal.css").read_text()
    light = css[css.index(":root {") : css.index("}", css.index(":root {"))]
    colours = dict(re.findall(r"--(green|yellow|orange|red): (#[0-9a-f]{6})", light))
    assert set(colours) == {"green", "yellow", "orange", "red"}
    for name, colour in colours.items():
        ratio = (1.0 + 0.05) / (_luminance(colour) + 0.05)
        assert ratio >= 4.5, f"--{name} {colour} is {ratio:.2f}:1 on white"


# --- Two-factor (TOTP) --------------------------------------------------------------------


def test_enrolling_an_authenticator_shows_a_qr_code_and_needs_a_code(
    customer_client, customer_user
):
    page = html(customer_client.get("/security/"))
    assert "Set up two-factor authentication" in page

    customer_client.post("/security/two-factor/start/")
    device = TOTPDevice.objects.get(user=customer_user)
    assert not device.confirmed
    page = customer_client.get("/security/")
    assert page["Cache-Control"].startswith("max-age=0")
    assert 'src="data:image/svg+xml;base64,' in html(page)
    assert re.search(r'<code class="secret">[A-Z2-7 ]{32,}</code>', html(page))

    wrong = customer_client.post("/security/two-factor/confirm/", {"code": wrong_code(device)})
    assert "That code is not valid." in html(wrong)
    device.refresh_from_db()
    assert not device.confirmed

    device.throttle_reset()
    response = customer_client.post("/security/two-factor/confirm/", {"code": code_at(device)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert AuditLog.objects.filter(actor=customer_user, action="two_factor_enabled").exists()
    page = html(customer_client.get("/security/"))
    assert "Two-factor authentication is on." in page
    assert "Turn off two-factor authentication" in page

    # Signing in now takes the second step; a code from the next time step is accepted
    # (the current one was just used, and a TOTP code works once).
    customer_client.post("/logout/")
    first = login(customer_client, customer_user.email)
    assert first.url == "/login/verify/"
    assert not is_signed_in(customer_client)
    second = customer_client.post("/login/verify/", {"code": code_at(device, 1)})
    assert second.status_code == 302
    assert second.url == "/dashboard/"
    assert is_signed_in(customer_client)


@pytest.fixture
def two_factor_user(customer_user) -> tuple[User, TOTPDevice]:
    return customer_user, TOTPDevice.objects.create(
        user=customer_user, name="phone", confirmed=True
    )


def test_a_user_with_two_factor_must_give_the_code(client, two_factor_user):
    user, device = two_factor_user
    response = login(client, user.email, next="/reports/")
    assert response.status_code == 302
    assert response.url == "/login/verify/"
    assert not is_signed_in(client)
    assert client.get("/reports/").status_code == 302  # not in yet

    page = client.get("/login/verify/")
    assert 'autocomplete="one-time-code"' in html(page)
    response = client.post("/login/verify/", {"code": code_at(device)})
    assert response.status_code == 302
    assert response.url == "/reports/"
    assert is_signed_in(client)
    assert client.session["otp_device_id"] == device.persistent_id


def test_a_wrong_code_is_refused(client, two_factor_user):
    user, device = two_factor_user
    login(client, user.email)
    response = client.post("/login/verify/", {"code": wrong_code(device)})
    assert response.status_code == 200
    assert "That code is not valid." in html(response)
    assert not is_signed_in(client)


def test_wrong_codes_count_towards_the_lockout(client, two_factor_user):
    user, device = two_factor_user
    login(client, user.email)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post("/login/verify/", {"code": wrong_code(device)}).status_code == 200
    locked = client.post("/login/verify/", {"code": wrong_code(device)})
    assert locked.status_code == 429
    assert LOCKOUT_TEXT in html(locked)
    assert not is_signed_in(client)

    # The password step is locked too, and the half-finished sign-in is gone.
    assert login(client, user.email).status_code == 429
    assert client.get("/login/verify/").url == "/login/"


def test_a_backup_code_works_once_at_the_second_step(client, two_factor_user):
    user, _ = two_factor_user
    backup = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    backup.token_set.create(token="k7q2mx4z")
    login(client, user.email)
    assert client.post("/login/verify/", {"code": "k7q2mx4z"}).status_code == 302
    assert is_signed_in(client)
    assert not backup.token_set.exists()


def test_the_second_step_without_a_first_goes_back_to_the_login(client, db):
    assert client.get("/login/verify/").url == "/login/"
    assert client.post("/login/verify/", {"code": "123456"}).url == "/login/"


def test_a_stale_first_step_must_be_done_again(client, two_factor_user):
    user, device = two_factor_user
    login(client, user.email)
    session = client.session
    session["portal_login_pending"]["at"] -= 600
    session.save()
    assert client.post("/login/verify/", {"code": code_at(device)}).url == "/login/"
    assert not is_signed_in(client)


def test_two_factor_can_be_turned_off_with_a_current_code(client, two_factor_user):
    user, device = two_factor_user
    login(client, user.email)
    client.post("/login/verify/", {"code": code_at(device)})
    refused = client.post("/security/two-factor/disable/", {"code": wrong_code(device)})
    assert "That code is not valid." in html(refused)
    assert TOTPDevice.objects.filter(user=user).exists()

    device.refresh_from_db()
    device.throttle_reset()
    response = client.post("/security/two-factor/disable/", {"code": code_at(device, 1)})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert AuditLog.objects.filter(actor=user, action="two_factor_disabled").exists()
    client.post("/logout/")
    assert login(client, user.email).url == "/dashboard/"  # password only again


def test_staff_cannot_turn_off_the_device_the_ops_console_needs(client):
    staff = StaffFactory()
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    login(client, staff.email)
    client.post("/login/verify/", {"code": code_at(device)})
    page = client.get("/security/")
    assert "cannot be turned off here" in html(page)
    response = client.post(
        "/security/two-factor/disable/", {"code": code_at(device, 1)}, follow=True
    )
    assert "Ops staff need two-factor authentication" in html(response)
    assert TOTPDevice.objects.filter(user=staff).exists()


# --- Password reset by email ----------------------------------------------------------------


def test_password_reset_by_email(client, customer_user):
    page = client.get("/password-reset/")
    assert page.status_code == 200
    response = client.post("/password-reset/", {"email": customer_user.email.upper()})
    assert response.status_code == 302
    assert response.url == "/password-reset/sent/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [customer_user.email]
    assert message.subject == "Reset your Prime Portal password"
    link = re.search(r"http://testserver(/password-reset/[^/\s]+/[^/\s]+/)", message.body)
    assert link, message.body

    form = client.get(link.group(1), follow=True)
    assert "Choose a new password" in html(form)
    set_password_url = form.redirect_chain[-1][0]
    done = client.post(
        set_password_url,
        {"new_password1": "a-new-long-passphrase-42", "new_password2": "a-new-long-passphrase-42"},
    )
    assert done.status_code == 302
    assert done.url == "/password-reset/complete/"
    assert "Your password is changed" in html(client.get(done.url))

    assert login(client, customer_user.email).status_code == 200  # the old password is gone
    assert (
        login(client, customer_user.email, password="a-new-long-passphrase-42").status_code == 302
    )

    # The link worked once.
    client.post("/logout/")
    assert "This link does not work any more" in html(client.get(link.group(1), follow=True))


def test_password_reset_for_an_unknown_email_sends_nothing_and_says_the_same(client, db):
    response = client.post("/password-reset/", {"email": "nobody@example.test"}, follow=True)
    assert "Check your email" in html(response)
    assert mail.outbox == []


# --- KYB pending ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/deposits/", "/accounts/", "/reports/", "/api-keys/"])
def test_customers_awaiting_kyb_are_sent_to_the_pending_page(client, path):
    applicant = UserFactory(kyb_status=User.KybStatus.PENDING)
    open_account(owner=applicant)
    signed_in(client, applicant)
    response = client.get(path)
    assert response.status_code == 302
    assert response.url == "/kyb-pending/"
    page = client.get("/kyb-pending/")
    assert page.status_code == 200
    assert "under review" in html(page)
    assert "Pending review" in html(page)
    assert 'href="/deposits/"' not in html(page)  # no money navigation yet
    assert 'href="/security/"' in html(page)


def test_a_rejected_applicant_is_told_so(client):
    applicant = UserFactory(kyb_status=User.KybStatus.REJECTED)
    signed_in(client, applicant)
    assert "could not be verified" in html(client.get("/kyb-pending/"))


def test_approved_customers_skip_the_pending_page(customer_client):
    assert customer_client.get("/kyb-pending/").url == "/dashboard/"


def test_the_pending_page_needs_a_sign_in(client):
    assert client.get("/kyb-pending/").url == "/login/?next=/kyb-pending/"


# --- Account switcher --------------------------------------------------------------------------


def test_the_switcher_lists_own_accounts_and_switches_between_them(customer_client, customer_user):
    main = Account.objects.get(owner=customer_user, index=0)
    tracked = open_account(owner=customer_user, kind=Account.Kind.NON_CUSTODIAL)
    page = html(customer_client.get("/transactions/"))
    assert f'<option value="{main.public_id}" selected>' in page
    assert f'<option value="{tracked.public_id}">' in page
    assert "· tracked" in page

    response = customer_client.post(
        "/accounts/switch/", {"account": tracked.public_id, "next": "/transactions/"}
    )
    assert response.status_code == 302
    assert response.url == "/transactions/"
    assert customer_client.session[SESSION_ACCOUNT] == tracked.public_id
    page = html(customer_client.get("/transactions/"))
    assert f'<option value="{tracked.public_id}" selected>' in page
    assert f'Transactions <span class="subtitle">{tracked.public_id}' in page


def test_the_switcher_refuses_another_customers_account(customer_client, customer_user):
    other = open_account(kind=Account.Kind.CUSTODIAL)
    response = customer_client.post("/accounts/switch/", {"account": other.public_id})
    assert response.status_code == 404
    assert SESSION_ACCOUNT not in customer_client.session
    page = html(customer_client.get("/deposits/"))
    assert other.public_id not in page


def test_the_switcher_ignores_an_unsafe_next(customer_client, customer_user):
    account = Account.objects.get(owner=customer_user, index=0)
    response = customer_client.post(
        "/accounts/switch/", {"account": account.public_id, "next": "//evil.example/"}
    )
    assert response.url == "/dashboard/"


def test_switching_needs_a_post(customer_client, customer_user):
    account = Account.objects.get(owner=customer_user, index=0)
    assert customer_client.get(f"/accounts/switch/?account={account.public_id}").status_code == 405


def test_the_portal_login_does_not_open_the_ops_console(client, customer_user):
    staff = StaffFactory(password=DEFAULT_PASSWORD)
    signed_in(client, staff)  # no device: password only
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")
