"""Quotes: the NO side of a binary, collateral price, JSON round trip."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from trading.marketdata.quotes import BookLevel, OrderBook, Outcome, Quote

D = Decimal


def yes_quote(**overrides) -> Quote:
    fields = {
        "listing_key": "TRUMP-WIN@kalshi",
        "is_binary": True,
        "ts": datetime(2026, 1, 1, 12, 0, 0, 250000, tzinfo=UTC),
        "mark": D("0.415"),
        "bid": D("0.40"),
        "ask": D("0.43"),
        "twap": D("0.41200000"),
        "book": OrderBook(
            bids=(BookLevel(D("0.40"), D("100")), BookLevel(D("0.39"), D("250"))),
            asks=(BookLevel(D("0.43"), D("80")), BookLevel(D("0.45"), D("300"))),
        ),
        "outcome": Outcome.YES,
    }
    return Quote(**(fields | overrides))


def test_no_side_is_the_complement_of_the_yes_book():
    no = yes_quote().for_outcome(Outcome.NO)
    assert no.outcome == Outcome.NO
    assert (no.bid, no.ask, no.mark, no.twap) == (D("0.57"), D("0.60"), D("0.585"), D("0.588"))
    # Selling NO at 0.57 is buying YES at 0.43: the NO bids are the YES asks.
    assert no.book.bids == (BookLevel(D("0.57"), D("80")), BookLevel(D("0.55"), D("300")))
    assert no.book.asks == (BookLevel(D("0.60"), D("100")), BookLevel(D("0.61"), D("250")))


def test_flipping_twice_gives_back_the_yes_quote():
    yes = yes_quote()
    assert yes.for_outcome(Outcome.NO).for_outcome(Outcome.YES) == yes
    assert yes.for_outcome(Outcome.YES) is yes
    assert yes.for_outcome(None) is yes


def test_perpetuals_have_no_outcomes():
    perp = yes_quote(listing_key="BTC-PERP@leviathan", is_binary=False, outcome=None)
    with pytest.raises(ValueError):
        perp.for_outcome(Outcome.NO)


def test_collateral_price_is_the_lower_of_bid_and_twap():
    assert yes_quote().collateral_price == D("0.40")
    # After a drop the TWAP lags below the bid: the TWAP counts.
    assert yes_quote(twap=D("0.38")).collateral_price == D("0.38")


def test_json_round_trip_keeps_every_digit():
    quote = yes_quote(
        listing_key="BTC-PERP@leviathan",
        is_binary=False,
        mark=D("95000.25000000"),
        funding_rate=D("-0.00001234"),
        outcome=None,
    )
    assert Quote.from_json(quote.to_json()) == quote
    assert Quote.from_json(yes_quote().to_json()) == yes_quote()


def test_a_binary_quote_must_say_which_outcome_it_prices():
    with pytest.raises(ValueError):
        yes_quote(outcome=None)
    with pytest.raises(ValueError):
        yes_quote(is_binary=False)


def test_symbol_and_venue_come_from_the_key():
    assert (yes_quote().symbol, yes_quote().venue) == ("TRUMP-WIN", "kalshi")


def test_book_top():
    book = yes_quote().book
    assert book.top(1) == OrderBook(bids=book.bids[:1], asks=book.asks[:1])
    assert book.top(None) is book
    with pytest.raises(ValueError):
        book.top(0)
