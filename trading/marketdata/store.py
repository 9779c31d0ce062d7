"""The latest quote of every listing, in Redis, and the stream of ticks.

Redis keys, under `settings.KEY_PREFIX`:

- `<prefix>:md:quotes`: a hash; field = listing key "SYMBOL@venue", value =
  the Quote as JSON (`Quote.to_json`). It holds the last quote of every
  listing the feed has quoted: a halted or resolved market keeps its last
  quote, whose `ts` tells how old it is.
- `<prefix>:md:ticks`: a pub/sub channel; one message per feed cycle,
  `{"ts": ..., "quotes": [Quote.to_dict(), ...]}` with every listing that
  moved in that cycle.
- `<prefix>:md:trades`: a pub/sub channel of public trades,
  `{"trades": [PublicTrade.to_dict(), ...]}`: the venues' prints (the
  simulator's, in the embedded feed) and the broker's own fills, anonymized.
  Trades are events with no stored copy: a subscriber sees those published
  while it listens.

The hash is the source of truth. A message is a hint: a subscriber that may
have missed some re-reads the hash (`quotes_all`).
"""

import functools
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

import orjson
import redis
from django.conf import settings

from portal.errors import DomainError, ErrorCode
from portal.redis import redis_client
from trading.marketdata.quotes import PublicTrade, Quote

logger = logging.getLogger(__name__)


class MarketDataUnavailable(DomainError):
    """No usable quote for a listing (never quoted, or no venue has a book)."""

    error = ErrorCode.MARKET_DATA_UNAVAILABLE


class MarketDataStale(MarketDataUnavailable):
    """The latest quote is older than the risk policy allows (`price_stale_after_seconds`):
    prices are delayed, and nothing trades on them until the feed catches up."""

    error = ErrorCode.MARKET_DATA_STALE
    retry_after = 5


def quotes_key() -> str:
    return f"{settings.KEY_PREFIX}:md:quotes"


def ticks_channel() -> str:
    return f"{settings.KEY_PREFIX}:md:ticks"


@dataclass(frozen=True, slots=True)
class TickBatch:
    """The quotes one feed cycle moved, as published on the ticks channel."""

    ts: datetime
    quotes: tuple[Quote, ...]

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"ts": self.ts.isoformat(), "quotes": [quote.to_dict() for quote in self.quotes]}
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        data = orjson.loads(raw)
        return cls(
            ts=datetime.fromisoformat(data["ts"]),
            quotes=tuple(Quote.from_dict(item) for item in data["quotes"]),
        )


def trades_channel() -> str:
    return f"{settings.KEY_PREFIX}:md:trades"


def _trades_message(trades: Sequence[PublicTrade]) -> bytes:
    return orjson.dumps({"trades": [trade.to_dict() for trade in trades]})


def quotes_publish(
    quotes: Sequence[Quote], *, ts: datetime, trades: Sequence[PublicTrade] = ()
) -> None:
    """Store `quotes` as the latest and publish them as one tick batch, then `trades`.

    One round trip in a MULTI block: a subscriber that re-reads the hash on
    a message sees at least this batch. Does nothing for an empty batch.
    """
    if not quotes and not trades:
        return
    pipe = redis_client().pipeline(transaction=True)
    if quotes:
        pipe.hset(quotes_key(), mapping={quote.listing_key: quote.to_json() for quote in quotes})
        pipe.publish(ticks_channel(), TickBatch(ts=ts, quotes=tuple(quotes)).to_json())
    if trades:
        pipe.publish(trades_channel(), _trades_message(trades))
    pipe.execute()


def trades_publish(trades: Sequence[PublicTrade]) -> None:
    """Publish public trades on the trades channel (nothing for none)."""
    if trades:
        redis_client().publish(trades_channel(), _trades_message(trades))


@functools.lru_cache(maxsize=4096)
def _quote_parse(raw: bytes) -> Quote:
    """A stored quote, parsed once per process: Quote is immutable and a stored value
    only changes with a tick, so every read between two ticks shares one parse."""
    return Quote.from_json(raw)


def quote_parse(raw: bytes) -> Quote:
    """A stored quote's raw value (as `quotes_key()` holds it), parsed once per process."""
    return _quote_parse(raw)


def quote_get(listing_key: str) -> Quote | None:
    """The latest quote of one listing ("SYMBOL@venue"), or None if never quoted."""
    raw = redis_client().hget(quotes_key(), listing_key)
    return None if raw is None else _quote_parse(raw)


def quotes_get_many(listing_keys: Iterable[str]) -> dict[str, Quote]:
    """The latest quotes of these listings; listings never quoted are absent."""
    keys = list(listing_keys)
    if not keys:
        return {}
    values = redis_client().hmget(quotes_key(), keys)
    return {key: _quote_parse(raw) for key, raw in zip(keys, values, strict=True) if raw}


def quotes_all() -> dict[str, Quote]:
    """The latest quote of every listing ever quoted, by listing key."""
    return {
        key.decode(): _quote_parse(raw) for key, raw in redis_client().hgetall(quotes_key()).items()
    }


class TickSubscription:
    """Tick batches published from the moment of subscribing on.

    Creating it waits for Redis to confirm the subscription, so no batch
    published after `ticks_subscribe()` returns is missed. It holds a Redis
    connection: close it, or use it as a context manager.
    """

    def __init__(self, client: redis.Redis, channel: str, *, confirm_timeout: float = 5.0):
        self._pubsub = client.pubsub()
        self._pubsub.subscribe(channel)
        confirmation = self._pubsub.get_message(timeout=confirm_timeout)
        if confirmation is None or confirmation["type"] != "subscribe":
            self._pubsub.close()
            raise redis.TimeoutError(f"Redis did not confirm the subscription to {channel}.")

    def get(self, timeout: float) -> TickBatch | None:
        """The next batch, or None if none arrives within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            message = self._pubsub.get_message(timeout=remaining)
            if message is not None and message["type"] == "message":
                return TickBatch.from_json(message["data"])
        return None

    def close(self) -> None:
        self._pubsub.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def ticks_subscribe() -> TickSubscription:
    """Subscribe to the feed's tick batches (see TickSubscription)."""
    return TickSubscription(redis_client(), ticks_channel())
