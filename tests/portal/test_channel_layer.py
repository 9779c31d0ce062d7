"""The configured channel layer's pipelined batch (portal.channel_layer): the messages
reach the groups' channels exactly as group_send's do, and trading.broadcasts uses it."""

from channels.layers import get_channel_layer

from portal import channel_layer
from portal.channel_layer import RedisPubSubBatchChannelLayer
from tests.trading.margining import listen, receive
from trading import broadcasts
from trading.broadcasts import layer_run


def test_the_configured_layer_batches():
    assert isinstance(get_channel_layer(), RedisPubSubBatchChannelLayer)


def test_a_batch_reaches_each_group_as_group_send_would(monkeypatch):
    monkeypatch.setattr(channel_layer, "BATCH_CHUNK", 2)  # several pipelines, in order
    first, second = listen("batch.one"), listen("batch.two")
    messages = [
        ("batch.one", {"type": "margin.update", "account": 1, "text": '{"type":"margin","n":1}'}),
        ("batch.two", {"type": "margin.update", "account": 2, "text": '{"type":"margin","n":2}'}),
        ("batch.one", {"type": "order.update", "account": 1, "text": '{"type":"order","n":3}'}),
    ]
    layer = get_channel_layer()
    assert layer_run(layer.group_send_batch(messages), timeout=5) == 3
    assert receive(first) == messages[0][1]
    assert receive(first) == messages[2][1]
    assert receive(second) == messages[1][1]
    assert receive(first, timeout=0.3) is None


def test_broadcasts_send_one_batch_not_one_group_send_each(monkeypatch):
    layer = get_channel_layer()
    group_sends = []

    async def group_send(group, message):  # must not be called
        group_sends.append(group)

    channel = listen("batch.three")
    monkeypatch.setattr(layer, "group_send", group_send, raising=False)
    broadcasts._send([("batch.three", {"type": "desk.changed", "text": "{}"})] * 2)
    assert receive(channel) == receive(channel) == {"type": "desk.changed", "text": "{}"}
    assert group_sends == []


def test_a_layer_without_the_batch_still_gets_one_group_send_each(monkeypatch):
    sent = []

    class Plain:
        async def group_send(self, group, message):
            sent.append(group)

    monkeypatch.setattr(broadcasts, "get_channel_layer", Plain)
    broadcasts._send([("a", {"type": "x"}), ("b", {"type": "x"})])
    assert sorted(sent) == ["a", "b"]


def test_groups_followed_says_which_groups_have_a_subscriber_now(monkeypatch):
    monkeypatch.setattr(channel_layer, "NUMSUB_CHUNK", 2)  # several round trips, in order
    listen("followed.one")
    listen("followed.three")
    groups = ["followed.one", "followed.two", "followed.three", "followed.four"]
    layer = get_channel_layer()
    assert layer_run(layer.groups_followed(groups), timeout=5) == [True, False, True, False]
    assert layer_run(layer.groups_followed([]), timeout=5) == []


def test_without_an_answer_every_account_counts_as_followed(monkeypatch):
    class Plain:  # a layer that cannot tell
        async def group_send(self, group, message):
            pass

    monkeypatch.setattr(broadcasts, "get_channel_layer", Plain)
    assert broadcasts.account_groups_followed([1, 2]) == [True, True]

    layer = get_channel_layer()

    async def unreachable(groups):
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(broadcasts, "get_channel_layer", lambda: layer)
    monkeypatch.setattr(layer, "groups_followed", unreachable, raising=False)
    assert broadcasts.account_groups_followed([1, 2]) == [True, True]
