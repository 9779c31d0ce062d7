"""Browser sessions end after SESSION_IDLE_TIMEOUT_MINUTES without a request and
SESSION_MAX_AGE_HOURS after sign-in however active (portal.sessions)."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from portal.sessions import SESSION_STARTED_KEY
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


def session_row(client) -> Session:
    return Session.objects.get(session_key=client.cookies["sessionid"].value)


def test_each_request_pushes_the_idle_expiry_forward(client, customer_user):
    signed_in(client, customer_user)
    row = session_row(client)
    expected = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert abs((row.expire_date - expected).total_seconds()) < 5
    Session.objects.filter(pk=row.pk).update(expire_date=timezone.now() + timedelta(minutes=1))
    assert client.get("/accounts/").status_code == 200
    assert abs((session_row(client).expire_date - expected).total_seconds()) < 5


def test_an_idle_session_is_signed_out(client, customer_user):
    signed_in(client, customer_user)
    Session.objects.filter(pk=session_row(client).pk).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = client.get("/accounts/")
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_an_active_session_ends_at_the_absolute_cap(client, customer_user):
    signed_in(client, customer_user)
    assert client.get("/accounts/").status_code == 200  # marks the session's start
    session = client.session
    started = session[SESSION_STARTED_KEY]
    assert abs(started - time.time()) < 5
    session[SESSION_STARTED_KEY] = started - settings.SESSION_ABSOLUTE_MAX_AGE + 60
    session.save()
    assert client.get("/accounts/").status_code == 200  # a minute left
    session = client.session
    session[SESSION_STARTED_KEY] = time.time() - settings.SESSION_ABSOLUTE_MAX_AGE - 1
    session.save()
    response = client.get("/accounts/")
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert client.get("/accounts/").status_code == 302  # signed out for good


def test_defaults_are_thirty_minutes_idle_and_twelve_hours_in_all():
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True
    assert settings.SESSION_ABSOLUTE_MAX_AGE == 12 * 3600
