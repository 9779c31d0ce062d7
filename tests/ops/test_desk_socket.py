"""The risk desk's WebSocket (`ws/ops/desk/`, trading.consumers.OpsDeskConsumer)
through the whole ASGI stack (origin check, session auth, routing) on the real Redis
channel layer: who may join, and that real changes hint it after commit."""

import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from accounts.models import User
from accounts.services.accounts import user_kyb_set
from accounts.services.withdrawals import withdrawal_request
from portal.asgi import application
from tests.conftest import credit_cash
from tests.factories import StaffFactory, UserFactory, open_account
from tests.ops.conftest import ops_signed_in
from tests.web.test_consumers import ORIGIN, TIMEOUT, close_code, run_async
from trading.broadcasts import DESK_CHANGED, OPS_DESK_GROUP, desk_changed_broadcast

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/ops/desk/"
PROBE = '{"type":"desk_changed","reason":"probe"}'


def desk_socket(cookie: bytes | None = None, origin: bytes | None = ORIGIN):
    headers = [(b"host", b"127.0.0.1:8000")]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, PATH, headers=headers)


def cookie_of(client: Client) -> bytes:
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def verified_staff_cookie() -> bytes:
    return cookie_of(ops_signed_in(Client(), StaffFactory()))


def unverified_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return cookie_of(client)


async def joined(communicator: WebsocketCommunicator) -> None:
    """Return once the socket's `ops.desk` subscription is live (probe, then drain)."""
    layer = get_channel_layer()
    while True:
        await layer.group_send(OPS_DESK_GROUP, {"type": DESK_CHANGED, "text": PROBE})
        if not await communicator.receive_nothing(timeout=0.2):
            break
    while not await communicator.receive_nothing(timeout=0.1):
        assert await communicator.receive_from() == PROBE


def test_anonymous_is_closed_4401_customers_and_unverified_staff_4403():
    customer = unverified_cookie(UserFactory())
    staff_without_code = unverified_cookie(StaffFactory())

    async def code(cookie):
        return await close_code(desk_socket(cookie))

    assert run_async(code, None) == 4401
    assert run_async(code, customer) == 4403
    assert run_async(code, staff_without_code) == 4403
    assert run_async(code, verified_staff_cookie()) is None  # stays open


def test_a_foreign_origin_is_refused_at_the_handshake():
    cookie = verified_staff_cookie()

    async def connects(origin):
        communicator = desk_socket(cookie, origin)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        await communicator.disconnect()
        return connected

    assert run_async(connects, b"https://evil.example") is False
    assert run_async(connects, ORIGIN) is True


def test_withdrawals_kyb_decisions_and_hints_reach_the_desk_after_commit():
    cookie = verified_staff_cookie()
    account = open_account()
    credit_cash(account, "500")
    newcomer = UserFactory(kyb_status=User.KybStatus.PENDING)
    reviewer = StaffFactory()

    def rolled_back_hint() -> None:
        with transaction.atomic():
            desk_changed_broadcast(reason="never")
            transaction.set_rollback(True)

    async def run():
        communicator = desk_socket(cookie)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await joined(communicator)
        await sync_to_async(rolled_back_hint)()
        assert await communicator.receive_nothing(timeout=0.3)
        await sync_to_async(withdrawal_request)(
            account=account, amount=Decimal("100"), destination="Bank", requested_by=account.owner
        )
        first = json.loads(await communicator.receive_from(timeout=TIMEOUT))
        await sync_to_async(user_kyb_set)(
            user=newcomer, status=User.KybStatus.APPROVED, actor=reviewer
        )
        second = json.loads(await communicator.receive_from(timeout=TIMEOUT))
        await communicator.send_to(text_data="ignored")  # one-way: nothing comes back
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()
        return first, second

    first, second = run_async(run)
    assert first == {"type": "desk_changed", "reason": "withdrawal"}
    assert second == {"type": "desk_changed", "reason": "kyb"}
