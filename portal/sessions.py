"""How long a browser session lives, and whether one is still signed in.

Two limits (settings from the environment):

- idle: SESSION_COOKIE_AGE (SESSION_IDLE_TIMEOUT_MINUTES, 30) with
  SESSION_SAVE_EVERY_REQUEST, so every request pushes the expiry forward and a
  session nobody uses for that long is gone (Django's own expiry);
- absolute: SESSION_ABSOLUTE_MAX_AGE (SESSION_MAX_AGE_HOURS, 12) from the first
  signed-in request, however active: `SessionLifetimeMiddleware` signs out.

Long-lived connections (the dashboard WebSocket) ask `session_signed_in` again
and again, so they end when the session does: logout, either limit, a password
change elsewhere, a deactivated user.
"""

import time
from collections.abc import Callable
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib import auth
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse

# When the session's user first made a signed-in request (Unix time).
SESSION_STARTED_KEY = "_portal_signed_in_at"


def session_too_old(session: SessionBase, *, now: float | None = None) -> bool:
    """True once the session is older than SESSION_ABSOLUTE_MAX_AGE (counted from
    its first signed-in request; a session without the mark is not too old)."""
    started = session.get(SESSION_STARTED_KEY)
    if not isinstance(started, int | float):
        return False
    return (time.time() if now is None else now) - started > settings.SESSION_ABSOLUTE_MAX_AGE


class SessionLifetimeMiddleware:
    """Signs out a session older than SESSION_ABSOLUTE_MAX_AGE (the request then
    goes on signed out: pages redirect to the sign-in). After AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            if SESSION_STARTED_KEY not in request.session:
                request.session[SESSION_STARTED_KEY] = time.time()
            elif session_too_old(request.session):
                auth.logout(request)
        return self.get_response(request)


def session_signed_in(*, session_key: str, user_id: int) -> bool:
    """True while the session `session_key` still signs in user `user_id`: not
    logged out, not expired (idle or absolute), the password unchanged, the user
    active. Reads the session store and the user afresh (sync: two queries with
    the database session engine)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(SimpleNamespace(session=store))
    return user.is_authenticated and user.pk == user_id and not session_too_old(store)
