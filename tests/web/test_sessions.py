"""Browser sessions end after SESSION_IDLE_TIMEOUT_MINUTES without a request and
SESSION_MAX_AGE_HOURS after sign-in however active (portal.sessions)."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from portal.sessions import SESSION_STARTED_KEY, sessions_signed_in
from tests.factories import UserFactory
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


# --- sessions_signed_in: what a watched socket's re-check decides ------------------------


def signed_in_pair(user) -> tuple[Client, tuple[str, int]]:
    """A browser signed in as `user` (a first request marks the session's start) and
    its (session key, user id)."""
    browser = signed_in(Client(), user)
    browser.get("/accounts/")
    return browser, (browser.cookies["sessionid"].value, user.pk)


def test_many_sessions_are_re_checked_in_two_queries(django_assert_num_queries):
    pairs = [signed_in_pair(UserFactory())[1] for _ in range(6)]
    with django_assert_num_queries(2):  # the sessions, the users
        assert sessions_signed_in(set(pairs)) == set(pairs)
    assert sessions_signed_in(set()) == set()


def test_each_way_a_session_ends_is_seen_and_the_others_stay_signed_in():
    users = [UserFactory() for _ in range(7)]
    browsers, pairs = zip(*(signed_in_pair(user) for user in users), strict=True)
    browsers[0].post("/logout/")
    Session.objects.filter(session_key=pairs[1][0]).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    session = SessionStore(pairs[2][0])
    session[SESSION_STARTED_KEY] = time.time() - settings.SESSION_ABSOLUTE_MAX_AGE - 1
    session.save()
    users[3].set_password("a-new-passphrase-42")  # changed elsewhere: the hash no longer holds
    users[3].save()
    type(users[4]).objects.filter(pk=users[4].pk).update(is_active=False)
    other = (pairs[6][0], users[5].pk)  # a live session, but another user's
    checked = {*pairs, other}
    assert sessions_signed_in(checked) == {pairs[5], pairs[6]}
    assert Session.objects.filter(session_key=pairs[3][0]).exists()  # a check changes nothing


def test_a_session_signed_with_a_fallback_secret_still_signs_in(settings):
    _, pair = signed_in_pair(UserFactory())
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = (
        "rotated-" + "k" * 50,
        [settings.SECRET_KEY],
    )
    assert sessions_signed_in({pair}) == {pair}
    settings.SECRET_KEY_FALLBACKS = []
    assert sessions_signed_in({pair}) == set()


def test_another_session_engine_is_read_one_session_at_a_time(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    browser, pair = signed_in_pair(UserFactory())
    assert not Session.objects.exists()  # nothing in the database table
    assert sessions_signed_in({pair, ("no-such-session", pair[1])}) == {pair}
    browser.post("/logout/")
    assert sessions_signed_in({pair}) == set()
