"""Order books and public trades for the partner stream: one hub per server process.

The feed publishes every tick batch and every public trade once on Redis
(`trading.marketdata.store`). Each server process holds one subscription to
both channels (started by its first `orderbook` or `trades` subscriber) and
does the per-market work once, whatever the number of sockets:

- for each contract watched in the process (`TRUMP-WIN`, `TRUMP-WIN:NO`,
  `BTC-PERP`) it keeps the last book of each of its listings, turns a new
  book into the levels that changed (`size` "0": the level is gone) and
  serializes that update once for every subscriber;
- trades are filtered to the watched markets, seen from the contract's side
  (a NO trade at 0.40 is a YES trade at 0.60, taker side flipped).

A subscriber gets the snapshot of the books the hub holds, then every update
computed from that same state, in order: the event loop delivers both, so
nothing falls between. Messages go to subscribers as JSON without the
channel and the per-subscription `seq`, which the socket adds
(`trading.streams.consumer`).

The hub's books come from Redis (the quote hash is the truth); a lost Redis
connection is re-established with back-off, and the books are then re-read
and the differences sent as updates, so a subscriber's book stays exact.
"""

import asyncio
import logging
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import orjson
from redis.exceptions import RedisError

from portal.money import dec, price
from portal.redis import redis_async_client
from trading.catalog import listings_get
from trading.marketdata.quotes import ONE, BookLevel, OrderBook, Outcome, Quote
from trading.marketdata.store import quotes_key, ticks_channel, trades_channel
from trading.selectors import contract_symbol
from trading.services.routing import contract_from_symbol

logger = logging.getLogger(__name__)

RECONNECT_MAX_SECONDS = 5.0
SUBSCRIBE_TIMEOUT_SECONDS = 5.0


class Subscriber(Protocol):
    def deliver(self, body: str) -> None:
        """Queue one message (JSON object text) for the socket; must not block."""


@dataclass(frozen=True, slots=True)
class MarketRef:
    """A contract as the stream names it, and the listings that quote it."""

    market_id: str  # "TRUMP-WIN", "TRUMP-WIN:NO", "BTC-PERP"
    symbol: str  # the instrument's symbol
    outcome: Outcome | None  # None: a perpetual
    listings: tuple[tuple[str, str], ...]  # (listing key, venue code), by venue


@dataclass(eq=False)
class _Watch:
    market: MarketRef
    subscribers: set = field(default_factory=set)


def _levels_out(levels: Iterable[BookLevel]) -> list[dict[str, str | None]]:
    return [{"price": price(level.price), "size": dec(level.size)} for level in levels]


def _side_changes(old: tuple[BookLevel, ...], new: tuple[BookLevel, ...], *, descending: bool):
    before = {level.price: level.size for level in old}
    after = {level.price: level.size for level in new}
    changes = [BookLevel(p, s) for p, s in after.items() if before.get(p) != s]
    changes += [BookLevel(p, Decimal(0)) for p in before if p not in after]
    return sorted(changes, key=lambda level: level.price, reverse=descending)


def _book_for(quote: Quote, outcome: Outcome | None) -> OrderBook:
    return quote.for_outcome(outcome).book


def _trade_out(trade: dict, outcome: Outcome | None) -> dict:
    side, trade_price = trade["side"], Decimal(trade["price"])
    if outcome is not None and trade["outcome"] not in (None, outcome.value):
        side = "sell" if side == "buy" else "buy"
        trade_price = ONE - trade_price
    return {
        "id": trade["id"],
        "venue": trade["key"].rpartition("@")[2],
        "side": side,
        "price": price(trade_price),
        "size": dec(Decimal(trade["size"])),
        "ts": trade["ts"],
    }


def _json(payload: dict) -> str:
    return orjson.dumps(payload).decode()


class MarketHub:
    """The process's (the event loop's) order-book and trade fan-out. See the module."""

    _hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MarketHub]" = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def get(cls) -> "MarketHub":
        loop = asyncio.get_running_loop()
        hub = cls._hubs.get(loop)
        if hub is None:
            hub = cls._hubs[loop] = cls()
        return hub

    def __init__(self) -> None:
        self._books: dict[str, Quote | None] = {}  # listing key → last quote (None: none yet)
        self._loading: dict[str, Quote | None] = {}  # keys being read, with ticks meanwhile
        self._book_watches: dict[str, _Watch] = {}  # market id → watch
        self._by_listing: dict[str, list[_Watch]] = {}
        self._trade_watches: dict[str, _Watch] = {}  # market id → watch
        self._trades_by_symbol: dict[str, list[_Watch]] = {}
        self._ready = asyncio.Event()
        self._reader: asyncio.Task | None = None

    # -- subscribing ---------------------------------------------------------

    async def books_watch(self, market: MarketRef, subscriber: Subscriber) -> str:
        """Add `subscriber` to `market`'s book updates; return the snapshot to send first."""
        await self._running()
        keys = [key for key, _ in market.listings if key not in self._books]
        if keys:
            await self._books_load(keys)
        watch = self._book_watches.get(market.market_id)
        if watch is None:
            watch = self._book_watches[market.market_id] = _Watch(market)
            for key, _ in market.listings:
                self._by_listing.setdefault(key, []).append(watch)
        watch.subscribers.add(subscriber)
        return self._snapshot(market)

    def books_unwatch(self, market_id: str, subscriber: Subscriber) -> None:
        watch = self._book_watches.get(market_id)
        if watch is None:
            return
        watch.subscribers.discard(subscriber)
        if watch.subscribers:
            return
        del self._book_watches[market_id]
        for key, _ in watch.market.listings:
            watches = self._by_listing.get(key, [])
            if watch in watches:
                watches.remove(watch)
            if not watches:
                self._by_listing.pop(key, None)
                self._books.pop(key, None)

    async def trades_watch(self, market: MarketRef, subscriber: Subscriber) -> None:
        """Add `subscriber` to `market`'s public trades from now on."""
        await self._running()
        watch = self._trade_watches.get(market.market_id)
        if watch is None:
            watch = self._trade_watches[market.market_id] = _Watch(market)
            self._trades_by_symbol.setdefault(market.symbol, []).append(watch)
        watch.subscribers.add(subscriber)

    def trades_unwatch(self, market_id: str, subscriber: Subscriber) -> None:
        watch = self._trade_watches.get(market_id)
        if watch is None:
            return
        watch.subscribers.discard(subscriber)
        if not watch.subscribers:
            del self._trade_watches[market_id]
            watches = self._trades_by_symbol[watch.market.symbol]
            watches.remove(watch)
            if not watches:
                del self._trades_by_symbol[watch.market.symbol]

    def snapshot(self, market_id: str) -> str | None:
        """A fresh snapshot of a watched market's books (None: not watched here)."""
        watch = self._book_watches.get(market_id)
        return None if watch is None else self._snapshot(watch.market)

    def _snapshot(self, market: MarketRef) -> str:
        books, latest = [], None
        for key, venue in market.listings:
            quote = self._books.get(key)
            if quote is None:
                continue
            book = _book_for(quote, market.outcome)
            books.append(
                {
                    "venue": venue,
                    "ts": quote.ts.isoformat(),
                    "bids": _levels_out(book.bids),
                    "asks": _levels_out(book.asks),
                }
            )
            latest = quote.ts if latest is None else max(latest, quote.ts)
        return _json(
            {
                "type": "snapshot",
                "market_id": market.market_id,
                "ts": None if latest is None else latest.isoformat(),
                "books": books,
            }
        )

    # -- reading Redis ---------------------------------------------------------

    async def _running(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read())
        await asyncio.wait_for(self._ready.wait(), SUBSCRIBE_TIMEOUT_SECONDS)

    async def _books_load(self, keys: list[str]) -> None:
        for key in keys:
            self._loading.setdefault(key, None)
        try:
            raw = await redis_async_client().hmget(quotes_key(), keys)
        except BaseException:
            for key in keys:
                self._loading.pop(key, None)
            raise
        for key, value in zip(keys, raw, strict=True):
            stored = None if value is None else Quote.from_json(value)
            ticked = self._loading.pop(key, None)
            newest = max(
                (quote for quote in (stored, ticked) if quote is not None),
                key=lambda quote: quote.ts,
                default=None,
            )
            self._books.setdefault(key, newest)

    async def _read(self) -> None:
        delay, first = 0.1, True
        while True:
            pubsub = redis_async_client().pubsub()
            try:
                await pubsub.subscribe(ticks_channel(), trades_channel())
                confirmed = 0
                async for message in pubsub.listen():
                    kind = message["type"]
                    if kind == "subscribe":
                        confirmed += 1
                        if confirmed == 2:
                            if not first:
                                await self._resync()
                            first, delay = False, 0.1
                            self._ready.set()
                    elif kind == "message":
                        self._on_message(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                logger.warning("stream hub: Redis subscription lost; reconnecting", exc_info=True)
            except Exception:
                logger.exception("stream hub: message handling failed; resubscribing")
            finally:
                self._ready.clear()
                await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _resync(self) -> None:
        """After a reconnect: re-read the held books and send what changed meanwhile."""
        keys = [key for key, quote in self._books.items() if quote is not None]
        if not keys:
            return
        raw = await redis_async_client().hmget(quotes_key(), keys)
        self._quotes_apply([Quote.from_json(value) for value in raw if value is not None], ts=None)

    def _on_message(self, channel: bytes, data: bytes) -> None:
        payload = orjson.loads(data)
        if channel.decode() == ticks_channel():
            quotes = []
            for item in payload["quotes"]:
                key = item["key"]
                if key in self._loading:
                    self._loading[key] = Quote.from_dict(item)
                elif key in self._by_listing:
                    quotes.append(Quote.from_dict(item))
            if quotes:
                self._quotes_apply(quotes, ts=payload["ts"])
        else:
            self._trades_apply(payload["trades"])

    def _quotes_apply(self, quotes: list[Quote], *, ts: str | None) -> None:
        changed: dict[_Watch, list[dict]] = {}
        for quote in quotes:
            key = quote.listing_key
            old = self._books.get(key)
            if old is not None and old.ts > quote.ts:
                continue  # an older quote than the one held (a re-read raced a tick)
            self._books[key] = quote
            for watch in self._by_listing.get(key, ()):
                outcome = watch.market.outcome
                new_book = _book_for(quote, outcome)
                old_book = OrderBook(bids=(), asks=()) if old is None else _book_for(old, outcome)
                bids = _side_changes(old_book.bids, new_book.bids, descending=True)
                asks = _side_changes(old_book.asks, new_book.asks, descending=False)
                if bids or asks:
                    changed.setdefault(watch, []).append(
                        {
                            "venue": quote.venue,
                            "ts": quote.ts.isoformat(),
                            "bids": _levels_out(bids),
                            "asks": _levels_out(asks),
                        }
                    )
        for watch, books in changed.items():
            body = _json(
                {
                    "type": "update",
                    "market_id": watch.market.market_id,
                    "ts": ts or max(book["ts"] for book in books),
                    "books": books,
                }
            )
            for subscriber in tuple(watch.subscribers):
                subscriber.deliver(body)

    def _trades_apply(self, trades: list[dict]) -> None:
        by_watch: dict[_Watch, list[dict]] = {}
        for trade in trades:
            symbol = trade["key"].rpartition("@")[0]
            for watch in self._trades_by_symbol.get(symbol, ()):
                by_watch.setdefault(watch, []).append(_trade_out(trade, watch.market.outcome))
        for watch, out in by_watch.items():
            body = _json(
                {
                    "type": "trades",
                    "market_id": watch.market.market_id,
                    "trades": out,
                }
            )
            for subscriber in tuple(watch.subscribers):
                subscriber.deliver(body)


def market_ref_get(market_id: object) -> MarketRef:
    """The contract `market_id` names and its active listings (a database read).

    Raises InvalidParams (malformed) or NotFound (unknown), as the REST order book does.
    """
    contract = contract_from_symbol(market_id)
    instrument = contract.instrument
    return MarketRef(
        market_id=contract_symbol(instrument.symbol, contract.outcome),
        symbol=instrument.symbol,
        outcome=contract.book_outcome,
        listings=tuple((listing.key, listing.venue.code) for listing in listings_get(instrument)),
    )
