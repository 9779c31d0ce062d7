"""The staff guard of the ops area (/ops/): an active staff user, 2FA-verified.

`staff_page` wraps a page: anyone not signed in, or signed in but not staff,
goes to the admin's sign-in (with ?next=); staff whose session did not pass the
one-time-code step (django-otp: `request.user.is_verified()`) get a 403 page
with a sentence. `staff_json` wraps a JSON endpoint of the same area: 401 / 403
with {"code", "message"}. `staff_link` and `account_ops_href` link its pages.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from accounts.models import Account

NOT_VERIFIED_MESSAGE = (
    "The ops area needs a two-factor sign-in. Sign out, then sign in to the admin "
    "again with the code from your authenticator app."
)
NOT_SIGNED_IN_MESSAGE = "Sign in to the admin with a staff account to use the ops area."
NOT_STAFF_MESSAGE = "The ops area is for staff only."


def is_staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def is_verified_staff(user) -> bool:
    """An active staff user whose session passed the one-time-code step."""
    verified = getattr(user, "is_verified", None)
    return is_staff(user) and callable(verified) and bool(verified())


def session_verified_staff(user, session) -> bool:
    """Whether `user`, signed in by `session`, is active staff verified by a confirmed
    OTP device of theirs: django-otp's middleware check, for a WebSocket scope (which
    no HTTP middleware fills). Queries the database: call it from sync code."""
    if not is_staff(user):
        return False
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    if not persistent_id:
        return False
    device = Device.from_persistent_id(persistent_id)
    return device is not None and device.user_id == user.pk and bool(device.confirmed)


def staff_link(name: str, *args: object) -> str:
    """The URL named `name`, or "" when no such page exists (yet)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def account_ops_href(account: Account) -> str:
    """An account's ops page (the per-account view), else its admin change page."""
    return staff_link("ops_account", account.public_id) or staff_link(
        "admin:accounts_account_change", account.pk
    )


def staff_render(
    request: HttpRequest, template: str, context: dict | None = None, *, status: int = 200
) -> HttpResponse:
    """Render a page of the ops area with the admin's context (site header, user
    tools, sidebar), so templates extending "ops/base.html" look like the admin."""
    full = {**admin.site.each_context(request), "is_nav_sidebar_enabled": False}
    full.update(context or {})
    return render(request, template, full, status=status)


def staff_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A staff page: active staff, 2FA-verified (else admin login / a 403 page)."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not is_staff(user):
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not is_verified_staff(user):
            return staff_render(
                request,
                "ops/refused.html",
                {"title": "Two-factor sign-in required", "message": NOT_VERIFIED_MESSAGE},
                status=403,
            )
        return view(request, *args, **kwargs)

    return guarded


def staff_json(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A staff JSON endpoint: 401 not signed in, 403 not staff or not 2FA-verified."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not (user and user.is_authenticated):
            return JsonResponse(
                {"code": "unauthorized", "message": NOT_SIGNED_IN_MESSAGE}, status=401
            )
        if not is_staff(user):
            return JsonResponse({"code": "forbidden", "message": NOT_STAFF_MESSAGE}, status=403)
        if not is_verified_staff(user):
            return JsonResponse(
                {"code": "two_factor_required", "message": NOT_VERIFIED_MESSAGE}, status=403
            )
        return view(request, *args, **kwargs)

    return guarded
