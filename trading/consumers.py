"""Channels consumers: thin. The browser dashboard's live feed.

`DashboardConsumer` serves `ws/dashboard/<account public id>/` for the
margin dashboard (SPEC §8). The socket is session-authenticated
(channels' auth stack fills `scope["user"]`) and origin-checked
(`portal.origins.SiteOriginValidator`, in `portal.asgi`: an Origin other than
the site's own, scheme, host and port compared, is refused at the handshake).
Then:

- not signed in: accepted and closed at once with code 4401, so the page
  can tell "sign in again" from a network failure and stop retrying;
- not KYB approved, or the account is not one of the user's: closed 4403;
- otherwise the socket joins `account.<id>` (before it is accepted, so
  nothing sent after the accept is missed: the page fetches its snapshot on
  open) and receives each `margin.update`, `margin.call` and
  `order.update` of that account as the JSON text `trading.broadcasts`
  serialized once for every socket: it is forwarded as is, never decoded
  or re-encoded here.

The session is checked again every settings.DASHBOARD_SESSION_CHECK_SECONDS
(`portal.sessions.session_watch`: a process's sockets all together): once it has
ended (logout, idle or absolute expiry, a password change, the user deactivated)
the socket is closed with 4401, so a signed-out browser stops receiving figures
within that time.
A check that cannot reach the database keeps the socket and tries again.

Margin updates are coalesced per socket: while one is being written to a
slow client, a newer one replaces the one waiting (the latest figures win);
order updates and margin calls are each delivered. Messages from the
browser are ignored: the feed is one-way, and REST (the snapshot) stays the
source of truth.
"""

import asyncio
import logging
from collections import deque

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.models import Account
from accounts.staff import session_verified_staff
from portal import metrics
from portal.sessions import session_unwatch, session_watch
from trading.broadcasts import OPS_DESK_GROUP, account_group

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# Channel-layer messages forwarded to the browser (handler name: coalesced?).
FORWARDED = {"margin_update": True, "margin_call": False, "order_update": False}


@database_sync_to_async
def _own_account_id(user, public_id: str) -> int | None:
    """The id of the user's account `public_id`, or None (unknown, or another user's)."""
    if not user.is_kyb_approved:
        return None
    return (
        Account.objects.filter(owner=user, public_id=public_id).values_list("pk", flat=True).first()
    )


class _SignedInFeed(AsyncWebsocketConsumer):
    """A one-way feed on a session-authenticated socket (the steps both sockets share).

    Not signed in: closed 4401; `group_for` says None (not allowed): closed 4403.
    Otherwise the socket joins the group before it is accepted and the session is
    re-checked every settings.DASHBOARD_SESSION_CHECK_SECONDS: once it has ended,
    closed 4401. What the browser sends is ignored.
    """

    label: str  # in log lines: "<label> socket: …"
    group: str | None = None
    _counted = ""  # the metrics kind while counted open

    async def group_for(self, user) -> str | None:
        """The group `user` may follow on this socket, or None (refused, 4403)."""
        raise NotImplementedError

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(CLOSE_UNAUTHENTICATED)
            return
        group = await self.group_for(user)
        if group is None:
            await self._refuse(CLOSE_FORBIDDEN)
            return
        self.group = group
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self._counted = self.label.replace(" ", "_")  # portal_websocket_connections{kind}
        metrics.websocket_opened(self._counted)
        session_watch(
            self,
            session_key=self.scope["session"].session_key,
            user_id=user.pk,
            ended=self._signed_out,
        )

    async def _signed_out(self) -> None:
        """The session no longer signs the user in (`session_watch`): close with 4401."""
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _refuse(self, code: int) -> None:
        # Accept first: a close before the accept reaches the browser as a bare
        # handshake failure (1006), without the code the page acts on.
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if self._counted:
            metrics.websocket_closed(self._counted)
            self._counted = ""
        session_unwatch(self)
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """The feed is one-way: what the browser sends is ignored."""


class DashboardConsumer(_SignedInFeed):
    """One browser dashboard's socket on one of the signed-in user's accounts."""

    label = "dashboard"
    _writer: asyncio.Task | None = None

    async def connect(self) -> None:
        # [coalesced?, text] waiting to be written, in order; at most one margin update.
        self._queue: deque[list] = deque()
        self._margin_waiting = False
        self._writer: asyncio.Task | None = None
        await super().connect()

    async def group_for(self, user) -> str | None:
        public_id = self.scope["url_route"]["kwargs"]["account_id"]
        account_id = await _own_account_id(user, public_id)
        return None if account_id is None else account_group(account_id)

    async def disconnect(self, code: int) -> None:
        await super().disconnect(code)
        if self._writer is not None:
            self._writer.cancel()

    async def dispatch(self, message: dict) -> None:
        """Forward account messages without the per-message database housekeeping
        the base class does (a thread hand-off each: they touch no database);
        ignore message types this socket does not know (future pushes to the group)."""
        name = get_handler_name(message)
        if name in FORWARDED:
            self._forward(message["text"], coalesce=FORWARDED[name])
        elif message["type"].startswith("websocket."):
            await super().dispatch(message)
        else:
            logger.debug("dashboard socket: ignored a %s message", message["type"])

    def _forward(self, text: str, *, coalesce: bool) -> None:
        if self.group is None:  # refused: nothing is forwarded
            return
        if coalesce and self._margin_waiting:
            # Replace the waiting margin update in place (its turn in the queue).
            for item in reversed(self._queue):
                if item[0]:
                    item[1] = text
                    return
        self._queue.append([coalesce, text])
        self._margin_waiting = self._margin_waiting or coalesce
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while self._queue:
            coalesced, text = self._queue.popleft()
            if coalesced:
                self._margin_waiting = False
            await self.send(text_data=text)


@database_sync_to_async
def _verified_staff(user, session) -> bool:
    return session_verified_staff(user, session)


class OpsDeskConsumer(_SignedInFeed):
    """The ops risk desk's socket, `ws/ops/desk/`: hints that the desk changed.

    Session-authenticated and origin-checked like the dashboard's socket (same
    stack in `portal.asgi`). Not signed in: closed 4401; not active staff, or the
    session not verified by a one-time code (django-otp): closed 4403. Otherwise
    it joins `ops.desk` and forwards each `desk.changed` hint as is (the page
    re-reads /ops/desk.json). The session is re-checked like the dashboard's: a
    signed-out user stops getting hints.
    """

    label = "ops desk"

    async def group_for(self, user) -> str | None:
        return OPS_DESK_GROUP if await _verified_staff(user, self.scope.get("session")) else None

    async def desk_changed(self, message: dict) -> None:
        if self.group is not None:
            await self.send(text_data=message["text"])
