"""Fixtures for the customer pages: users and accounts built through the real services,
signed in through the real login page."""

from decimal import Decimal

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Account, User
from tests.conftest import credit_cash
from tests.factories import DEFAULT_PASSWORD, UserFactory, open_account
from tests.web.dashboard_fixtures import markets_open


def login(client: Client, email: str, password: str = DEFAULT_PASSWORD, **extra):
    """POST the portal's login form; returns the response (not followed)."""
    return client.post("/login/", {"email": email, "password": password, **extra})


def signed_in(client: Client, user: User) -> Client:
    response = login(client, user.email)
    assert response.status_code == 302, response.content.decode()
    return client


def code_at(device: TOTPDevice, offset: int = 0) -> str:
    """The device's TOTP code `offset` time steps from now."""
    value = totp(device.bin_key, device.step, device.t0, device.digits, device.drift + offset)
    return f"{value:0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    """A code valid at no step the device tolerates around now."""
    accepted = {code_at(device, offset) for offset in range(-device.tolerance - 1, 3)}
    return next(f"{n:06d}" for n in range(100) if f"{n:06d}" not in accepted)


def html(response) -> str:
    return response.content.decode()


@pytest.fixture
def customer_user(db) -> User:
    """A KYB-approved customer with a funded custodial main account."""
    user = UserFactory(email="customer@example.test")
    account = open_account(owner=user, kind=Account.Kind.CUSTODIAL)
    credit_cash(account, Decimal("2500"), memo="opening funding")
    return user


@pytest.fixture
def customer_account(customer_user) -> Account:
    return Account.objects.get(owner=customer_user, index=0)


@pytest.fixture
def customer_client(client, customer_user) -> Client:
    return signed_in(client, customer_user)


@pytest.fixture
def markets(db):
    """Quoted TRUMP-WIN, FED-CUT and BTC-PERP (`dashboard_fixtures.markets_open`)."""
    yield from markets_open()
