"""Two-factor sign-in for customers: TOTP devices through django-otp (optional per user).

Enrol (an unconfirmed device and its QR), confirm with a code, verify at sign-in
(an authenticator or a backup code), disable with a current code; staff keep
theirs (the ops console requires it). Changes are audited.
"""

from django.db import transaction
from django.http import HttpRequest
from django_otp import devices_for_user, user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services.audit import audit_record
from portal.errors import Conflict, ErrorCode, Forbidden, InvalidParams, NotFound


def otp_devices_confirmed(*, user: User) -> bool:
    """Whether the user must give a one-time code to sign in (any confirmed device)."""
    return user_has_device(user, confirmed=True)


def totp_device_get(*, user: User, confirmed: bool) -> TOTPDevice | None:
    """The user's confirmed (or pending, unconfirmed) authenticator, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=confirmed).order_by("-id").first()


def _token_clean(token: str) -> str:
    return (token or "").strip().replace(" ", "")


def otp_token_verify(*, user: User, token: str) -> Device | None:
    """The user's confirmed device that accepts `token`, or None.

    Digits are an authenticator (TOTP) code, anything else a backup (static)
    code, which is then used up. The devices are locked while checked
    (select_for_update), so one code cannot be spent twice at once, and
    django-otp's per-device throttling applies.
    """
    token = _token_clean(token)
    if not token:
        return None
    wants_totp = token.isdigit()
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if isinstance(device, TOTPDevice) == wants_totp and device.verify_token(token):
                return device
    return None


def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """A new unconfirmed authenticator for the user; an earlier pending one is replaced.

    Raises Conflict `two_factor_enabled` if the user already has a confirmed one.
    """
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise Conflict(
                "Two-factor authentication is already on. Turn it off first to move to a "
                "new authenticator.",
                code=ErrorCode.TWO_FACTOR_ENABLED,
            )
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def totp_enrolment_confirm(
    *, user: User, token: str, request: HttpRequest | None = None
) -> TOTPDevice:
    """Confirm the user's pending authenticator with a code from it; audited.

    Locks the pending device row (select_for_update). Raises NotFound when
    nothing is pending, InvalidParams `invalid_token` for a wrong code.
    """
    token = _token_clean(token)
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False)
            .order_by("-id")
            .first()
        )
        if device is None:
            raise NotFound("No authenticator is waiting to be confirmed: start the set-up again.")
        if not (token.isdigit() and device.verify_token(token)):
            raise InvalidParams(
                "That code is not valid. Enter the 6-digit code your app shows now.",
                code=ErrorCode.INVALID_TOKEN,
            )
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit_record(actor=user, action="two_factor_enabled", obj=device, request=request)
    return device


def totp_disable(*, user: User, token: str, request: HttpRequest | None = None) -> int:
    """Turn two-factor sign-in off after checking a current code; audited.

    Removes the user's authenticators and backup codes and returns how many
    devices went. Ops staff keep theirs, since the ops console requires one
    (Forbidden `two_factor_required`). Raises NotFound when two-factor is off
    and InvalidParams `invalid_token` for a wrong code.
    """
    if user.is_staff:
        raise Forbidden(
            "Ops staff need two-factor authentication for the ops console; ask an "
            "administrator to change your device.",
            code=ErrorCode.TWO_FACTOR_REQUIRED,
        )
    if not otp_devices_confirmed(user=user):
        raise NotFound("Two-factor authentication is not on.")
    if otp_token_verify(user=user, token=token) is None:
        raise InvalidParams(
            "That code is not valid. Enter the code your app shows now.",
            code=ErrorCode.INVALID_TOKEN,
        )
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).count()
        removed += StaticDevice.objects.filter(user=user).count()
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        audit_record(
            actor=user,
            action="two_factor_disabled",
            obj=user,
            changes={"devices": [removed, 0]},
            request=request,
        )
    return removed
