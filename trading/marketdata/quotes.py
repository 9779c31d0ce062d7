"""Quotes and order books as the market-data feed publishes them.

Every price that leaves the simulator (or, later, a venue poller) is a
Decimal. A binary listing is quoted for its YES contract;
`Quote.for_outcome(Outcome.NO)` derives the NO side (bid_no = 1 − ask_yes,
ask_no = 1 − bid_yes). Quotes travel through Redis as orjson bytes with
prices as decimal strings, so nothing is rounded through a float.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, Self

import orjson

from portal.money import PRICE_DECIMAL_PLACES

PRICE_QUANTUM = Decimal(1).scaleb(-PRICE_DECIMAL_PLACES)
ONE = Decimal(1)


def quantize_price(value: Decimal) -> Decimal:
    """Round a price to stored precision (8 places), half to even."""
    return value.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)


class Outcome(StrEnum):
    """The two contracts of a binary market (same values as the resolution)."""

    YES = "yes"
    NO = "no"


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class OrderBook:
    """Resting liquidity, best level first on each side.

    Bids are strictly decreasing in price, asks strictly increasing, and the
    best bid is below the best ask.
    """

    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]

    def top(self, depth: int | None) -> "OrderBook":
        """The best `depth` levels per side (all of them when depth is None)."""
        if depth is None:
            return self
        if depth < 1:
            raise ValueError("Order book depth must be at least 1.")
        return OrderBook(bids=self.bids[:depth], asks=self.asks[:depth])


@dataclass(frozen=True, slots=True)
class Quote:
    """The state of one listing at one instant.

    `mark` is the mid of the best bid and ask; `twap` the time-weighted mid
    over the feed's TWAP window. Binary prices are strictly inside (0, 1).
    `funding_rate` (perpetuals only) is the rate per funding interval that a
    long pays a short (negative: the short pays). `outcome` says which
    contract of a binary market the prices are for (None for perpetuals).
    """

    listing_key: str
    is_binary: bool
    ts: datetime
    mark: Decimal
    bid: Decimal
    ask: Decimal
    twap: Decimal
    book: OrderBook
    funding_rate: Decimal | None = None
    outcome: Outcome | None = None

    def __post_init__(self) -> None:
        if self.is_binary == (self.outcome is None):
            raise ValueError("A binary quote is for YES or NO; a perpetual's has no outcome.")

    @property
    def symbol(self) -> str:
        return self.listing_key.rpartition("@")[0]

    @property
    def venue(self) -> str:
        return self.listing_key.rpartition("@")[2]

    @property
    def collateral_price(self) -> Decimal:
        """The price a position is valued at as collateral (SPEC §4).

        The lower of the best bid and the time-weighted mid, so a one-tick
        spike cannot inflate collateral.
        """
        return min(self.bid, self.twap)

    def for_outcome(self, outcome: Outcome | None) -> "Quote":
        """This quote seen from `outcome`'s side (None: as published).

        For a binary market the other outcome's prices are 1 − these, its bids
        the complement of these asks and vice versa. Perpetuals have no
        outcomes: asking for one raises ValueError.
        """
        if outcome is None:
            return self
        if not self.is_binary:
            raise ValueError(f"{self.symbol} is a perpetual: it has no {outcome} side.")
        if outcome == self.outcome:
            return self
        return replace(
            self,
            bid=ONE - self.ask,
            ask=ONE - self.bid,
            mark=ONE - self.mark,
            twap=ONE - self.twap,
            book=OrderBook(
                bids=tuple(BookLevel(ONE - level.price, level.size) for level in self.book.asks),
                asks=tuple(BookLevel(ONE - level.price, level.size) for level in self.book.bids),
            ),
            outcome=outcome,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: prices and sizes as decimal strings."""
        return {
            "key": self.listing_key,
            "binary": self.is_binary,
            "ts": self.ts.isoformat(),
            "mark": str(self.mark),
            "bid": str(self.bid),
            "ask": str(self.ask),
            "twap": str(self.twap),
            "bids": [[str(level.price), str(level.size)] for level in self.book.bids],
            "asks": [[str(level.price), str(level.size)] for level in self.book.asks],
            "funding_rate": None if self.funding_rate is None else str(self.funding_rate),
            "outcome": None if self.outcome is None else self.outcome.value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The inverse of `to_dict`."""
        return cls(
            listing_key=data["key"],
            is_binary=data["binary"],
            ts=datetime.fromisoformat(data["ts"]),
            mark=Decimal(data["mark"]),
            bid=Decimal(data["bid"]),
            ask=Decimal(data["ask"]),
            twap=Decimal(data["twap"]),
            book=OrderBook(
                bids=tuple(BookLevel(Decimal(p), Decimal(s)) for p, s in data["bids"]),
                asks=tuple(BookLevel(Decimal(p), Decimal(s)) for p, s in data["asks"]),
            ),
            funding_rate=None if data["funding_rate"] is None else Decimal(data["funding_rate"]),
            outcome=None if data["outcome"] is None else Outcome(data["outcome"]),
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        return cls.from_dict(orjson.loads(raw))


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """One trade on a venue, without who traded: `side` is the taker's, `price` the
    price of `outcome`'s contract (None for a perpetual)."""

    trade_id: str
    listing_key: str
    outcome: Outcome | None
    side: str
    price: Decimal
    size: Decimal
    ts: datetime

    def to_dict(self) -> dict:
        return {
            "id": self.trade_id,
            "key": self.listing_key,
            "outcome": None if self.outcome is None else self.outcome.value,
            "side": self.side,
            "price": str(self.price),
            "size": str(self.size),
            "ts": self.ts.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Self:
        return cls(
            trade_id=data["id"],
            listing_key=data["key"],
            outcome=None if data["outcome"] is None else Outcome(data["outcome"]),
            side=data["side"],
            price=Decimal(data["price"]),
            size=Decimal(data["size"]),
            ts=datetime.fromisoformat(data["ts"]),
        )
