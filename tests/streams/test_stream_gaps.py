"""A client too slow for its subscriptions sees a gap in `seq`, never a silent loss."""

import asyncio
import json
from collections import deque

from trading.streams.consumer import StreamConsumer, _Subscription, market_id_canonical


def test_messages_a_slow_client_cannot_take_keep_their_numbers(settings):
    settings.STREAM_SEND_QUEUE = 3

    async def body() -> list[int]:
        consumer = StreamConsumer()
        consumer.queue, consumer.writer, consumer.closing = deque(), None, False
        sent: list[str] = []
        release = asyncio.Event()

        async def send(text_data: str) -> None:
            await release.wait()  # the client reads nothing until released
            sent.append(text_data)

        consumer.send = send
        subscription = _Subscription(channel="orderbook", name="BTC-PERP", ready=True)
        for _ in range(6):
            consumer._emit(subscription, '{"type":"update"}')
            await asyncio.sleep(0)
        release.set()
        await consumer.writer
        consumer._emit(subscription, '{"type":"update"}')
        await consumer.writer
        return [json.loads(text)["seq"] for text in sent]

    # 1 is being written, 2-4 wait, 5 and 6 find the queue full: the client sees 4 → 7.
    assert asyncio.run(body()) == [1, 2, 3, 4, 7]


def test_market_ids_are_keyed_as_the_contract_they_name():
    assert market_id_canonical(" TRUMP-WIN:yes ") == "TRUMP-WIN"
    assert market_id_canonical("TRUMP-WIN:no") == "TRUMP-WIN:NO"
    assert market_id_canonical("BTC-PERP") == "BTC-PERP"
