"""Put hand-chosen quotes into the market-data store (what the feed would publish)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trading.marketdata import store
from trading.marketdata.quotes import BookLevel, OrderBook, Outcome, Quote


def put_quote(
    listing_key: str,
    *,
    bid: str | Decimal,
    ask: str | Decimal,
    twap: str | Decimal | None = None,
    size: str | Decimal = "1000000",
    levels: int = 3,
    binary: bool = True,
    step: str | Decimal = "0.01",
    age: float = 0.0,
) -> Quote:
    """Publish one quote with `levels` book levels of `size` each side, `step` apart,
    quoted `age` seconds ago."""
    bid, ask, size, step = Decimal(bid), Decimal(ask), Decimal(size), Decimal(step)
    mark = (bid + ask) / 2
    quote = Quote(
        listing_key=listing_key,
        is_binary=binary,
        ts=datetime.now(UTC) - timedelta(seconds=age),
        mark=mark,
        bid=bid,
        ask=ask,
        twap=Decimal(twap) if twap is not None else mark,
        book=OrderBook(
            bids=tuple(
                BookLevel(bid - i * step, size) for i in range(levels) if bid - i * step > 0
            ),
            asks=tuple(
                BookLevel(ask + i * step, size)
                for i in range(levels)
                if not binary or ask + i * step < 1
            ),
        ),
        outcome=Outcome.YES if binary else None,
    )
    store.quotes_publish([quote], ts=quote.ts)
    return quote
