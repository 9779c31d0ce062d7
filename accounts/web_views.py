"""The customer pages: sign-in (lockout, optional TOTP), KYB pending, the account
switcher, deposits, withdrawals, transactions, notifications, API keys and
two-factor security. The accounts overview (margin figures per account) and the
reports pages are the trading app's (`trading.web`).

Thin views (ARCHITECTURE "Where logic lives"): a form parses, a service decides
(`accounts/services/*`), a selector reads; a
DomainError becomes a form error or a message. Every page shows the signed-in
user's own records only: lists are of the current account (the switcher's,
always one of theirs), and a record named by id is looked up among the user's
own accounts, so another customer's id is a 404 like one that does not exist.
"""

import base64
import time
from datetime import timedelta

import qrcode
import qrcode.image.svg
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import selectors
from accounts.models import Account, Journal, User
from accounts.selectors import api_key_list, notification_list
from accounts.services.deposits import deposit_create
from accounts.services.notifications import notifications_mark_read
from accounts.services.two_factor import (
    otp_devices_confirmed,
    otp_token_verify,
    totp_device_get,
    totp_disable,
    totp_enrolment_confirm,
    totp_enrolment_start,
)
from accounts.services.withdrawals import withdrawal_cancel, withdrawal_request
from accounts.web import (
    PAGE_SIZE,
    account_current_set,
    account_label,
    own_account_ids,
    page_number,
    pager,
    portal_page,
    with_current_account,
)
from accounts.web_forms import (
    DepositForm,
    LoginForm,
    OtpCodeForm,
    TotpConfirmForm,
    TotpDisableForm,
    TransactionFilterForm,
    WithdrawalForm,
    form_error_add,
)
from portal import format as fmt
from portal.errors import DomainError, ErrorCode, NotFound
from portal.validators import text_problem, whole_number_parse

JOURNAL_KINDS = dict(Journal.Kind.choices)

# Between the password and the one-time code: who passed the first step, and when.
SESSION_PENDING_LOGIN = "portal_login_pending"
PENDING_LOGIN_MAX_AGE = timedelta(minutes=5)

LOGIN_FAILED_MESSAGE = "The email address or password is not correct."
NON_CUSTODIAL_MESSAGE = (
    "This account is non-custodial: you hold its funds on the exchange, so deposits and "
    "withdrawals happen there directly. The portal tracks its positions."
)


# --- Helpers ---------------------------------------------------------------------------


def _next_url(request: HttpRequest) -> str:
    """Where to go after signing in: a safe `next` on this site, else the dashboard."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


# --- Home, sign-in and sign-out --------------------------------------------------------


def _locked_out(request: HttpRequest) -> HttpResponse:
    """The portal's own lockout page (429).

    django-axes flagged the request (`axes_locked_out`); its middleware would
    answer with the ops console's lockout page, so the flag is cleared here
    once this page is the answer.
    """
    request.axes_locked_out = False
    request.session.pop(SESSION_PENDING_LOGIN, None)
    cool_off = get_cool_off(request)
    minutes = round(cool_off.total_seconds() / 60) if cool_off else None
    context = {"cool_off_minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT}
    return render(request, "registration/lockout.html", context, status=429)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    """Step one: email and password, through `authenticate` so django-axes counts
    failures (per email + IP) and refuses locked-out credentials. A user with a
    confirmed two-factor device continues to `login_verify`."""
    if request.user.is_authenticated:
        return redirect(_next_url(request))
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        user = authenticate(request, username=email, password=form.cleaned_data["password"])
        if getattr(request, "axes_locked_out", False):
            return _locked_out(request)
        if user is None:
            form.add_error(None, LOGIN_FAILED_MESSAGE)
        elif otp_devices_confirmed(user=user):
            request.session[SESSION_PENDING_LOGIN] = {
                "user_id": user.pk,
                "backend": user.backend,
                "next": _next_url(request),
                "at": time.time(),
            }
            return redirect("login_verify")
        else:
            auth_login(request, user)
            return redirect(_next_url(request))
    context = {"form": form, "next": request.POST.get("next") or request.GET.get("next", "")}
    return render(request, "registration/login.html", context)


def _pending_login_user(request: HttpRequest) -> tuple[User, dict] | None:
    pending = request.session.get(SESSION_PENDING_LOGIN)
    if not isinstance(pending, dict):
        return None
    if time.time() - pending.get("at", 0) > PENDING_LOGIN_MAX_AGE.total_seconds():
        request.session.pop(SESSION_PENDING_LOGIN, None)
        return None
    user = User.objects.filter(pk=pending.get("user_id"), is_active=True).first()
    return (user, pending) if user is not None else None


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_verify_view(request: HttpRequest) -> HttpResponse:
    """Step two for users with two-factor on: the code from their authenticator (or a
    backup code). A wrong code counts towards the same lockout as a wrong password."""
    found = _pending_login_user(request)
    if found is None:
        if request.method == "POST":
            messages.info(request, "Your sign-in timed out. Please sign in again.")
        return redirect("login")
    user, pending = found
    credentials = {"username": user.email}
    form = OtpCodeForm(request.POST or None)
    if request.method == "POST":
        if not AxesProxyHandler.is_allowed(request, credentials):
            return _locked_out(request)
        if form.is_valid():
            device = otp_token_verify(user=user, token=form.cleaned_data["code"])
            if device is not None:
                del request.session[SESSION_PENDING_LOGIN]
                user.otp_device = device  # django-otp marks the new session verified
                auth_login(request, user, backend=pending["backend"])
                return redirect(pending["next"])
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            if getattr(request, "axes_locked_out", False):
                return _locked_out(request)
            form.add_error("code", "That code is not valid. Enter the code your app shows now.")
    return render(request, "registration/login_verify.html", {"form": form})


@require_http_methods(["GET", "POST"])
def logout_view(request: HttpRequest) -> HttpResponse:
    """POST signs out; GET asks to confirm (signing out is never a side effect of a link)."""
    if request.method == "POST":
        auth_logout(request)
        messages.success(request, "You are signed out.")
        return redirect(settings.LOGOUT_REDIRECT_URL)
    if not request.user.is_authenticated:
        return redirect("login")
    return render(request, "registration/logout_confirm.html")


@login_required
def kyb_pending_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_kyb_approved:
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "accounts/kyb_pending.html")


# --- Accounts: the switcher ---------------------------------------------------------------


@portal_page
@require_POST
def account_switch_view(request: HttpRequest) -> HttpResponse:
    """Make one of the user's own accounts the current one; anyone else's is a 404 (so is
    an id with a control character, before it reaches the database)."""
    public_id = request.POST.get("account", "")
    account = None if text_problem(public_id) else account_current_set(request, public_id)
    if account is None:
        raise Http404("No such account.")
    messages.success(request, f"Now viewing {account_label(account)}.")
    return redirect(_next_url(request))


# --- Deposits ----------------------------------------------------------------------------


@with_current_account
@require_http_methods(["GET", "POST"])
def deposit_list_view(request: HttpRequest, account: Account) -> HttpResponse:
    """The current account's deposits, and the form that starts one (custodial only)."""
    form = DepositForm(request.POST or None) if account.is_custodial else None
    if request.method == "POST":
        if form is None:
            messages.error(request, NON_CUSTODIAL_MESSAGE)
            return redirect("deposit_list")
        if form.is_valid():
            try:
                deposit = deposit_create(
                    account=account,
                    amount=form.cleaned_data["amount"],
                    method=form.cleaned_data["method"],
                    card_number=form.cleaned_data["card_number"],
                )
            except DomainError as error:
                form_error_add(form, error)
            else:
                messages.success(
                    request,
                    f"Deposit {deposit.public_id} of {fmt.usdc(deposit.amount)} started. It "
                    "stays pending until the payment provider confirms it.",
                )
                return redirect("deposit_detail", deposit_id=deposit.public_id)
    number = page_number(request)
    page = selectors.deposit_list(account=account, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    context = {
        "account": account,
        "form": form,
        "deposits": page.items,
        "pager": pager(request, page, number),
        "has_pending": any(d.status == d.Status.PENDING for d in page.items),
    }
    return render(request, "accounts/deposit_list.html", context)


@portal_page
def deposit_detail_view(request: HttpRequest, deposit_id: str) -> HttpResponse:
    try:
        deposit = selectors.deposit_get(account_ids=own_account_ids(request), public_id=deposit_id)
    except NotFound as error:
        raise Http404(error.message) from error
    return render(request, "accounts/deposit_detail.html", {"deposit": deposit})


# --- Withdrawals -------------------------------------------------------------------------


@with_current_account
@require_http_methods(["GET", "POST"])
def withdrawal_list_view(request: HttpRequest, account: Account) -> HttpResponse:
    """The current account's withdrawal requests, and the form for a new one."""
    form = WithdrawalForm(request.POST or None) if account.is_custodial else None
    if request.method == "POST":
        if form is None:
            messages.error(request, NON_CUSTODIAL_MESSAGE)
            return redirect("withdrawal_list")
        if form.is_valid():
            try:
                withdrawal = withdrawal_request(
                    account=account,
                    amount=form.cleaned_data["amount"],
                    destination=form.cleaned_data["destination"],
                    requested_by=request.user,
                )
            except DomainError as error:
                form_error_add(form, error)
            else:
                messages.success(
                    request,
                    f"Withdrawal {withdrawal.public_id} of {fmt.usdc(withdrawal.amount)} "
                    "requested. Our operations team reviews it before the money is paid out.",
                )
                return redirect("withdrawal_list")
    number = page_number(request)
    page = selectors.withdrawal_list(
        account=account, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    balances = selectors.account_balances_get(account=account) if account.is_custodial else None
    context = {
        "account": account,
        "form": form,
        "balances": balances,
        "withdrawals": page.items,
        "pager": pager(request, page, number),
    }
    return render(request, "accounts/withdrawal_list.html", context)


@portal_page
@require_POST
def withdrawal_cancel_view(request: HttpRequest, withdrawal_id: str) -> HttpResponse:
    try:
        withdrawal = selectors.withdrawal_get(
            account_ids=own_account_ids(request), public_id=withdrawal_id
        )
    except NotFound as error:
        raise Http404(error.message) from error
    try:
        withdrawal_cancel(withdrawal=withdrawal, user=request.user)
    except DomainError as error:
        messages.error(request, fmt.sentence(error.message))
    else:
        messages.success(
            request,
            f"Withdrawal {withdrawal.public_id} cancelled: {fmt.usdc(withdrawal.amount)} is "
            "available again.",
        )
    return redirect("withdrawal_list")


# --- Transactions --------------------------------------------------------------------------


@with_current_account
def transaction_list_view(request: HttpRequest, account: Account) -> HttpResponse:
    """The ledger journals that moved the current account's cash, 50 a page."""
    filters = TransactionFilterForm(request.GET)
    query = filters.cleaned_data if filters.is_valid() else {}
    number = page_number(request)
    page = selectors.transaction_list(
        account=account,
        kind=query.get("kind") or None,
        date_from=query.get("date_from"),
        date_to=query.get("date_to"),
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    context = {
        "account": account,
        "filters": filters,
        "transactions": [
            {"tx": tx, "kind_label": JOURNAL_KINDS.get(tx.kind, tx.kind)} for tx in page.items
        ],
        "pager": pager(request, page, number),
    }
    return render(request, "accounts/transaction_list.html", context)


# --- Notifications -----------------------------------------------------------------------


@portal_page
def notification_list_view(request: HttpRequest) -> HttpResponse:
    number = page_number(request)
    page = notification_list(user=request.user, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    context = {"notifications": page.items, "pager": pager(request, page, number)}
    return render(request, "accounts/notification_list.html", context)


@portal_page
@require_POST
def notifications_read_view(request: HttpRequest) -> HttpResponse:
    """Mark one notification (`notification`) or all of the user's as read."""
    raw = request.POST.get("notification", "")
    notification_id = whole_number_parse(raw) if raw else None
    if raw and notification_id is None:
        raise Http404("No such notification.")
    changed = notifications_mark_read(user=request.user, notification_id=notification_id)
    if not raw:
        messages.success(request, "All notifications marked as read.")
    elif not changed:
        messages.info(request, "That notification was already read.")
    return redirect(reverse("notification_list") + _page_query(request))


def _page_query(request: HttpRequest) -> str:
    page = request.POST.get("page", "")
    return f"?page={page}" if page.isdigit() and page != "1" else ""


# --- API keys ----------------------------------------------------------------------------


@portal_page
def api_key_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/api_key_list.html", {"keys": api_key_list(user=request.user)})


# --- Security: two-factor sign-in ------------------------------------------------------


def _qr_data_uri(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    svg = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _grouped_secret(device: TOTPDevice) -> str:
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _security_page(
    request: HttpRequest,
    *,
    confirm_form: TotpConfirmForm | None = None,
    disable_form: TotpDisableForm | None = None,
) -> HttpResponse:
    confirmed = totp_device_get(user=request.user, confirmed=True)
    pending = None if confirmed else totp_device_get(user=request.user, confirmed=False)
    context = {
        "enabled": otp_devices_confirmed(user=request.user),
        "confirmed_device": confirmed,
        "pending_device": pending,
        "confirm_form": confirm_form or TotpConfirmForm(),
        "disable_form": disable_form or TotpDisableForm(),
    }
    if pending is not None:
        context["qr_data_uri"] = _qr_data_uri(pending.config_url)
        context["secret"] = _grouped_secret(pending)
    return render(request, "accounts/security.html", context)


@never_cache
@login_required
def security_view(request: HttpRequest) -> HttpResponse:
    return _security_page(request)


@never_cache
@login_required
@require_POST
def totp_start_view(request: HttpRequest) -> HttpResponse:
    try:
        totp_enrolment_start(user=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("security")


@never_cache
@login_required
@require_POST
@sensitive_post_parameters("code")
def totp_confirm_view(request: HttpRequest) -> HttpResponse:
    form = TotpConfirmForm(request.POST)
    if form.is_valid():
        try:
            device = totp_enrolment_confirm(
                user=request.user, token=form.cleaned_data["code"], request=request
            )
        except DomainError as error:
            if error.error is not ErrorCode.INVALID_TOKEN:
                messages.error(request, error.message)
                return redirect("security")
            form_error_add(form, error, field="code")
        else:
            otp_login(request, device)
            messages.success(
                request,
                "Two-factor authentication is on. You will be asked for a code each time "
                "you sign in.",
            )
            return redirect("security")
    return _security_page(request, confirm_form=form)


@never_cache
@login_required
@require_POST
@sensitive_post_parameters("code")
def totp_disable_view(request: HttpRequest) -> HttpResponse:
    form = TotpDisableForm(request.POST)
    if form.is_valid():
        try:
            totp_disable(user=request.user, token=form.cleaned_data["code"], request=request)
        except DomainError as error:
            if error.error is not ErrorCode.INVALID_TOKEN:
                messages.error(request, error.message)
                return redirect("security")
            form_error_add(form, error, field="code")
        else:
            messages.success(request, "Two-factor authentication is off.")
            return redirect("security")
    return _security_page(request, disable_form=form)
