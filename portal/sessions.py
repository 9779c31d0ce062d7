"""How long a browser session lives, and whether one is still signed in.

Two limits (settings from the environment):

- idle: SESSION_COOKIE_AGE (SESSION_IDLE_TIMEOUT_MINUTES, 30) with
  SESSION_SAVE_EVERY_REQUEST, so every request pushes the expiry forward and a
  session nobody uses for that long is gone (Django's own expiry);
- absolute: SESSION_ABSOLUTE_MAX_AGE (SESSION_MAX_AGE_HOURS, 12) from the first
  signed-in request, however active: `SessionLifetimeMiddleware` signs out.

Long-lived connections (the dashboard and ops desk WebSockets) are watched by
`session_watch`, so they end when the session does: logout, either limit, a
password change elsewhere, a deactivated user. A web process re-checks all of
its sockets' sessions together every DASHBOARD_SESSION_CHECK_SECONDS, in one
thread hand-off and two queries however many are open (`sessions_signed_in`):
checked one socket at a time, 1,000 idle sockets kept 0.6 of a CPU busy
(bench/ws_fanout.py).
"""

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Collection, Mapping
from importlib import import_module
from itertools import chain
from typing import Any

from channels.db import database_sync_to_async
from channels.sessions import InstanceSessionWrapper, SessionMiddleware
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

logger = logging.getLogger(__name__)

# When the session's user first made a signed-in request (Unix time).
SESSION_STARTED_KEY = "_portal_signed_in_at"


def session_too_old(session: Mapping[str, Any], *, now: float | None = None) -> bool:
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


def _sessions_load(keys: Collection[str]) -> dict[str, dict[str, Any]]:
    """The data of the sessions `keys` (missing or {} when gone or expired): one query
    with a database session engine, else one load each."""
    engine = import_module(settings.SESSION_ENGINE).SessionStore
    if not issubclass(engine, DbSessionStore):
        return {key: engine(key).load() for key in keys}  # {} when gone
    rows = engine.get_model_class().objects.filter(
        session_key__in=keys, expire_date__gt=timezone.now()
    )
    store = engine()
    return {row.session_key: store.decode(row.session_data) for row in rows}


def _signs_in(session: Mapping[str, Any], user, user_id: int) -> bool:
    """What `django.contrib.auth.get_user` decides for a request with this session,
    given its user (None: no such user), without its side effects: the session names
    `user_id` and a configured backend, the user may authenticate (active), the
    password has not changed since sign-in (the session hash, current or fallback
    secrets), and the session is not too old."""
    try:
        named = get_user_model()._meta.pk.to_python(session[auth.SESSION_KEY])
        backend = session[auth.BACKEND_SESSION_KEY]
    except (KeyError, ValidationError):
        return False
    if user is None or named != user_id or backend not in settings.AUTHENTICATION_BACKENDS:
        return False
    if not getattr(user, "is_active", True):
        return False
    session_hash = session.get(auth.HASH_SESSION_KEY)
    hashes = chain([user.get_session_auth_hash()], user.get_session_auth_fallback_hash())
    if not session_hash or not any(constant_time_compare(session_hash, h) for h in hashes):
        return False
    return not session_too_old(session)


def sessions_signed_in(pairs: Collection[tuple[str, int]]) -> set[tuple[str, int]]:
    """Those of the (session key, user id) `pairs` whose session still signs in that
    user: not logged out, not expired (idle or absolute), the password unchanged, the
    user active. Reads the sessions and the users afresh, in two queries however many
    (sync)."""
    if not pairs:
        return set()
    sessions = _sessions_load({key for key, _ in pairs})
    users = get_user_model()._default_manager.in_bulk({user_id for _, user_id in pairs})
    return {
        (key, user_id)
        for key, user_id in pairs
        if key in sessions and _signs_in(sessions[key], users.get(user_id), user_id)
    }


class _Watch:
    """The watched sockets of one event loop (a web process), re-checked together."""

    def __init__(self) -> None:
        self.feeds: dict[Any, tuple[tuple[str, int], Callable[[], Awaitable[None]]]] = {}
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        check = database_sync_to_async(sessions_signed_in)
        while self.feeds:
            await asyncio.sleep(settings.DASHBOARD_SESSION_CHECK_SECONDS)
            watched = dict(self.feeds)
            try:
                live = await check({pair for pair, _ in watched.values()})
            except Exception:  # the database is away: keep the sockets, check again later
                logger.warning("could not re-check the sockets' sessions", exc_info=True)
                continue
            for feed, (pair, ended) in watched.items():
                if pair in live or self.feeds.get(feed, (None,))[0] != pair:
                    continue
                del self.feeds[feed]
                try:
                    await ended()
                except Exception:
                    logger.warning("could not close a signed-out socket", exc_info=True)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watch] = weakref.WeakKeyDictionary()


def session_watch(
    feed: Any, *, session_key: str, user_id: int, ended: Callable[[], Awaitable[None]]
) -> None:
    """Watch `feed` (a socket) of the running event loop: once its session no longer
    signs in `user_id`, `ended()` is awaited (the socket closes itself), within
    DASHBOARD_SESSION_CHECK_SECONDS and one check. A check that cannot reach the
    database keeps every socket and tries again."""
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = _Watch()
    watch.feeds[feed] = ((session_key, user_id), ended)
    if watch.task is None or watch.task.done():
        watch.task = loop.create_task(watch.run())


def session_unwatch(feed: Any) -> None:
    """Stop watching `feed` (it closed)."""
    watch = _watches.get(asyncio.get_running_loop())
    if watch is not None:
        watch.feeds.pop(feed, None)


class SocketSessionMiddleware(SessionMiddleware):
    """channels' SessionMiddleware for WebSocket routes: the session is put in the
    scope as there, but the socket's own `send` is passed on, not channels' wrapper of
    it. The wrapper saves a session and sets its cookie only on an HTTP response start,
    which a socket never sends, yet it read the session on every message (12% of a web
    worker's time forwarding a 1,000-socket fan-out: bench/ws_fanout.py)."""

    async def __call__(self, scope, receive, send):
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)
