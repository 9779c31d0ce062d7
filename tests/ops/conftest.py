"""The ops area's tests: staff signed in through the real admin login (password and a
TOTP code), staff signed in without the code, and the dashboard's quoted markets."""

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from tests.factories import DEFAULT_PASSWORD
from tests.web.dashboard_fixtures import markets_open


def totp_code(device: TOTPDevice) -> str:
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{code:0{device.digits}d}"


def totp_device(user: User) -> TOTPDevice:
    """`user`'s authenticator (enrolled now if they have none)."""
    return TOTPDevice.objects.filter(user=user).first() or TOTPDevice.objects.create(
        user=user, name="phone", confirmed=True
    )


def ops_signed_in(client: Client, user: User) -> Client:
    """`client` signed in to the admin as `user` with password and a one-time code."""
    device = totp_device(user)
    response = client.post(
        reverse("admin:login"),
        {
            "username": user.email,
            "password": DEFAULT_PASSWORD,
            "otp_token": totp_code(device),
            "next": reverse("admin:index"),
        },
    )
    assert response.status_code == 302, response.content.decode()
    return client


@pytest.fixture
def ops_client(client, staff) -> Client:
    """Staff, 2FA-verified."""
    return ops_signed_in(client, staff)


@pytest.fixture
def unverified_staff_client(staff) -> Client:
    """Staff signed in without the one-time-code step."""
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def markets(db):
    yield from markets_open()
