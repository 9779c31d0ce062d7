"""The Kalshi client, tracker and venue against the loopback fake Kalshi.

Every request goes over real HTTP to `FakeKalshi`, which verifies the real
RSA-PSS signature with the registered public key; the token bucket runs in
the test Redis. No database: listings are built in memory.
"""

import json
import logging
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from portal.errors import InvalidParams
from trading.marketdata.quotes import Outcome
from trading.models import Instrument, Listing, Venue
from trading.venues import kalshi
from trading.venues.base import PRICE_LIMIT, Side, VenueOrderStatus, VenueTimeout
from trading.venues.fakes.kalshi import FakeKalshi, rsa_key_pair, seed_demo
from trading.venues.kalshi import (
    WRITE_SCOPE_WARNING,
    KalshiClient,
    KalshiConflict,
    KalshiForbidden,
    KalshiTracker,
    KalshiVenue,
    parse_decimal,
    tracking_client,
)
from trading.venues.ratelimit import token_bucket_take, token_buckets
from trading.venues.tracking import (
    VenueAuthError,
    VenueBadResponse,
    VenueRateLimited,
    VenueUnavailable,
)

FED = "KXFEDDECISION-26DEC-H0"
CPI = "KXCPIYOY-26NOV-T3.0"


@pytest.fixture(scope="module")
def key_pairs() -> list[tuple[str, object]]:
    """Two RSA key pairs (generated once: 2048-bit keys take a moment)."""
    return [rsa_key_pair(), rsa_key_pair()]


@pytest.fixture
def fake():
    with FakeKalshi() as server:
        yield server


@pytest.fixture
def key_id() -> str:
    # A fresh key id per test: each gets its own rate-limit bucket in Redis.
    return f"key-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pem(key_pairs) -> str:
    return key_pairs[0][0]


@pytest.fixture
def read_key(fake, key_pairs, key_id) -> str:
    fake.key_add(key_id, key_pairs[0][1], scopes=("read",))
    return key_id


@pytest.fixture
def write_key(fake, key_pairs, key_id) -> str:
    fake.key_add(key_id, key_pairs[0][1], scopes=("read", "write"))
    fake.balance_set(key_id, "1000.00")
    return key_id


def client_for(fake: FakeKalshi, key_id: str, pem: str, **kwargs) -> KalshiClient:
    kwargs.setdefault("backoff_seconds", 0.01)
    return KalshiClient(fake.base_url, key_id=key_id, private_key_pem=pem, **kwargs)


def market_fed(fake: FakeKalshi) -> None:
    fake.market_add(
        FED,
        event_ticker="KXFEDDECISION-26DEC",
        title="Fed holds rates in December 2026?",
        event_title="Fed decision in December 2026",
    )
    fake.book_set(FED, yes=[("0.61", 250), ("0.60", 600)], no=[("0.37", 300), ("0.36", 700)])


def kalshi_listing(ticker: str = FED) -> Listing:
    """An unsaved listing: the adapter only reads its fields."""
    instrument = Instrument(
        symbol="FED-DEC26", kind=Instrument.Kind.BINARY, tick_size=Decimal("0.01")
    )
    return Listing(instrument=instrument, venue=Venue(code="kalshi"), venue_symbol=ticker)


class PathTamperingClient(KalshiClient):
    """Signs something other than what Kalshi expects (the test says what)."""

    def __init__(self, *args, sign_path, **kwargs):
        super().__init__(*args, **kwargs)
        self._sign_path = sign_path

    def _signed_headers(self, method: str, path: str) -> dict[str, str]:
        return super()._signed_headers(method, self._sign_path(path))


class SkewedClient(KalshiClient):
    def _timestamp_ms(self) -> int:
        return super()._timestamp_ms() - 60_000


# -- signing -------------------------------------------------------------------


def test_signed_request_is_verified_by_the_fake(fake, read_key, pem):
    fake.balance_set(read_key, "12.00")

    assert client_for(fake, read_key, pem).balance() == Decimal("12.00")
    assert fake.requests == [("GET", "/trade-api/v2/portfolio/balance", {}, read_key)]


def test_unsigned_private_request_is_refused_with_kalshis_error_shape(fake):
    response = httpx.get(f"{fake.base_url}/portfolio/balance")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_error"


@pytest.mark.parametrize(
    ("sign_path", "case"),
    [
        (lambda path: path.replace("/balance", "/positions"), "another path"),
        (lambda path: f"{path}?subaccount=0", "the query string included"),
        (lambda path: path.removeprefix("/trade-api/v2"), "the path without /trade-api/v2"),
    ],
)
def test_a_signature_over_the_wrong_message_is_refused(fake, read_key, pem, sign_path, case):
    client = PathTamperingClient(
        fake.base_url, key_id=read_key, private_key_pem=pem, sign_path=sign_path
    )

    with pytest.raises(VenueAuthError, match="Kalshi refused the API key"):
        client.request("GET", "/portfolio/balance", params={"subaccount": 0})
    assert len(fake.requests) == 1, f"a 401 is not retried ({case})"


def test_a_signature_by_another_key_is_refused(fake, read_key, key_pairs):
    other_pem = key_pairs[1][0]

    with pytest.raises(VenueAuthError, match="Kalshi refused the API key: Invalid signature"):
        client_for(fake, read_key, other_pem).balance()


def test_an_unknown_key_and_a_stale_timestamp_are_refused(fake, read_key, pem):
    with pytest.raises(VenueAuthError, match="Unknown API key"):
        client_for(fake, "key-never-registered", pem).balance()
    with pytest.raises(VenueAuthError, match="Timestamp outside"):
        SkewedClient(fake.base_url, key_id=read_key, private_key_pem=pem).balance()


def test_a_revoked_key_is_refused(fake, read_key, pem):
    client = client_for(fake, read_key, pem)
    client.balance()
    fake.key_remove(read_key)

    with pytest.raises(VenueAuthError):
        client.balance()


@pytest.mark.parametrize(
    "bad_pem",
    [
        "-----BEGIN PRIVATE KEY-----\nSECRETSECRETSECRET\n-----END PRIVATE KEY-----\n",
        "not a key at all SECRETSECRETSECRET",
    ],
)
def test_an_unreadable_private_key_raises_without_quoting_it(bad_pem):
    with pytest.raises(VenueAuthError) as caught:
        KalshiClient("http://127.0.0.1:9/trade-api/v2", key_id="k", private_key_pem=bad_pem)

    assert "SECRET" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_truncated_real_key_raises_without_quoting_it(pem):
    truncated = pem[: len(pem) // 2]

    with pytest.raises(VenueAuthError) as caught:
        KalshiClient("http://127.0.0.1:9/trade-api/v2", key_id="k", private_key_pem=truncated)

    body_line = pem.splitlines()[1]
    assert body_line not in str(caught.value)


# -- pagination and fixed-point numbers --------------------------------------------------


def test_pagination_collects_every_page(fake, read_key, pem):
    for index in range(250):
        fake.position_set(read_key, f"KXT-{index:03d}", index + 1, Decimal(index + 1) / 2)

    positions = client_for(fake, read_key, pem).positions()

    assert [p.ticker for p in positions] == [f"KXT-{index:03d}" for index in range(250)]
    pages = fake.requests_to("/portfolio/positions")
    assert len(pages) == 3
    assert [page[2].get("cursor") is None for page in pages] == [True, False, False]
    assert all(page[2]["limit"] == "100" for page in pages)


def test_positions_skip_flat_markets(fake, read_key, pem):
    fake.position_set(read_key, "KXFLAT", 0, "0", realized_pnl="3.00")
    fake.position_set(read_key, "KXLONG", 5, "2.50")

    assert [p.ticker for p in client_for(fake, read_key, pem).positions()] == ["KXLONG"]


def test_fixed_point_strings_parse_exactly(fake, read_key, pem):
    fake.balance_set(read_key, "1234.5650")
    fake.position_set(read_key, "KXA", 7, "0.5650", realized_pnl="-0.0100", fees_paid="12.00")
    client = client_for(fake, read_key, pem)

    [position] = client.positions()

    assert client.balance() == Decimal("1234.5650")
    assert position.position == Decimal("7.00")
    assert position.market_exposure == Decimal("0.5650")
    assert position.realized_pnl == Decimal("-0.0100")
    assert position.fees_paid == Decimal("12.00")
    assert parse_decimal("0.5650", "x") == Decimal("0.5650")
    assert parse_decimal("12.00", "x") == Decimal("12.00")


@pytest.mark.parametrize("value", [None, "abc", "NaN", 0.565, True, ""])
def test_unreadable_numbers_are_a_bad_response(value):
    with pytest.raises(VenueBadResponse):
        parse_decimal(value, "price")


@pytest.mark.parametrize(
    ("path", "body", "call"),
    [
        ("/portfolio/balance", "<html>oops</html>", lambda c: c.balance()),
        ("/portfolio/balance", '{"updated_ts": 1}', lambda c: c.balance()),
        ("/portfolio/positions", '{"cursor": ""}', lambda c: c.positions()),
        (
            "/portfolio/positions",
            '{"market_positions": [{"ticker": "X"}]}',
            lambda c: c.positions(),
        ),
        ("/markets/X/orderbook", '{"orderbook": {}}', lambda c: c.order_book("X")),
    ],
)
def test_unreadable_answers_are_a_bad_response(pem, path, body, call):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body)

    client = KalshiClient("http://kalshi.test/trade-api/v2", key_id="k", private_key_pem=pem)
    client._http = httpx.Client(transport=httpx.MockTransport(answer))

    with pytest.raises(VenueBadResponse):
        call(client)


def test_null_lists_are_empty_pages(pem):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text='{"market_positions": null, "cursor": null}')

    client = KalshiClient("http://kalshi.test/trade-api/v2", key_id="k", private_key_pem=pem)
    client._http = httpx.Client(transport=httpx.MockTransport(answer))

    assert client.positions() == []


def test_legacy_cents_are_read_when_dollars_are_absent():
    data = kalshi._json_loads('{"balance": 123456}')

    assert kalshi._dollars_or_cents(data, "balance", "balance answer") == Decimal("1234.56")


def test_json_floats_never_become_floats():
    assert kalshi._json_loads('{"p": 0.1}')["p"] == Decimal("0.1")


def test_settlements_and_fills_are_collected_with_decimals(fake, read_key, pem):
    fake.market_add(CPI, event_ticker="KXCPIYOY-26NOV", title="CPI above 3%?")
    fake.settlement_add(
        read_key, CPI, market_result="no", no_count=50, no_total_cost="38.50", fee_cost="0.85"
    )

    [settlement] = client_for(fake, read_key, pem).settlements()

    assert settlement["market_result"] == "no"
    assert settlement["no_count_fp"] == Decimal("50.00")
    assert settlement["no_total_cost_dollars"] == Decimal("38.5000")
    assert settlement["fee_cost"] == Decimal("0.8500")


def test_markets_are_listed_with_filters_across_pages(fake):
    for index in range(120):
        fake.market_add(f"KXM-{index:03d}", event_ticker="KXM-EV", title=f"M{index}?")
    fake.market_add("KXM-SHUT", event_ticker="KXM-EV", title="Shut?", status="closed")

    markets = KalshiClient(fake.base_url).markets(status="open", event_ticker="KXM-EV")

    assert len(markets) == 120 and "KXM-SHUT" not in {m["ticker"] for m in markets}
    assert markets[0]["notional_value_dollars"] == Decimal("1.0000")
    assert len(fake.requests_to("/markets")) == 2


def test_fills_of_a_placed_order(fake, write_key, pem):
    market_fed(fake)
    client = client_for(fake, write_key, pem)
    order = client.order_create(
        market=client.market(FED),
        book_side="bid",
        count=Decimal(400),
        price=Decimal("0.64"),
        client_order_id="ord-f",
    )

    fills = client.fills(order_id=order.order_id)

    assert sorted((f["yes_price_dollars"], f["count_fp"]) for f in fills) == [
        (Decimal("0.6300"), Decimal("300.00")),
        (Decimal("0.6400"), Decimal("100.00")),
    ]
    assert order.fill_count == Decimal(400) and order.remaining_count == 0
    assert order.average_yes_price == Decimal("0.6325")  # (300 × 0.63 + 100 × 0.64) / 400
    assert client.order_fills_yes_average(order.order_id) == (Decimal(400), Decimal("0.6325"))


# -- retries ---------------------------------------------------------------------------


def test_429_is_retried_after_the_advised_wait(fake, read_key, pem):
    fake.fail_next(429, retry_after=1)

    client_for(fake, read_key, pem).balance()

    assert len(fake.requests) == 2
    assert fake.request_times[1] - fake.request_times[0] >= 1.0


def test_429_gives_up_after_max_retries(fake, read_key, pem):
    fake.fail_next(429, count=10, retry_after=0.05)

    with pytest.raises(VenueRateLimited) as caught:
        client_for(fake, read_key, pem, max_retries=2).balance()

    assert caught.value.retry_after == pytest.approx(0.05)
    assert len(fake.requests) == 3


def test_a_long_retry_after_is_not_slept_through(fake, read_key, pem):
    fake.fail_next(429, retry_after=120)

    with pytest.raises(VenueRateLimited) as caught:
        client_for(fake, read_key, pem).balance()

    assert caught.value.retry_after == 120
    assert len(fake.requests) == 1


def test_a_transient_5xx_is_retried(fake, read_key, pem):
    fake.balance_set(read_key, "5.00")
    fake.fail_next(500)

    assert client_for(fake, read_key, pem).balance() == Decimal("5.00")
    assert len(fake.requests) == 2


def test_persistent_5xx_ends_in_venue_unavailable(fake, read_key, pem):
    fake.fail_next(503, count=10)

    with pytest.raises(VenueUnavailable):
        client_for(fake, read_key, pem, max_retries=2).balance()
    assert len(fake.requests) == 3


def test_an_outage_is_venue_unavailable(fake, read_key, pem):
    fake.outage(True)

    with pytest.raises(VenueUnavailable):
        client_for(fake, read_key, pem, max_retries=1).positions()


def test_a_dropped_connection_on_a_read_is_retried(fake, read_key, pem):
    fake.fail_next(0)

    client_for(fake, read_key, pem).balance()

    assert len(fake.requests) == 2


def test_an_unreachable_venue_is_venue_unavailable(pem):
    client = KalshiClient(
        "http://127.0.0.1:9/trade-api/v2",
        key_id="k",
        private_key_pem=pem,
        max_retries=1,
        backoff_seconds=0.01,
    )

    with pytest.raises(VenueUnavailable, match="failed to connect"):
        client.balance()


@pytest.mark.parametrize("status", [500, 503, 0])
def test_order_create_is_not_retried_when_the_outcome_is_unknown(fake, write_key, pem, status):
    market_fed(fake)
    fake.fail_next(status, path="/portfolio/events/orders")
    client = client_for(fake, write_key, pem)
    market = client.market(FED)

    with pytest.raises(VenueTimeout):
        client.order_create(
            market=market,
            book_side="bid",
            count=Decimal(5),
            price=Decimal("0.65"),
            client_order_id="ord-1",
        )
    assert len(fake.requests_to("/portfolio/events/orders", "POST")) == 1


def test_order_create_is_retried_on_429(fake, write_key, pem):
    market_fed(fake)
    fake.fail_next(429, retry_after=0.05, path="/portfolio/events/orders")
    client = client_for(fake, write_key, pem)

    order = client.order_create(
        market=client.market(FED),
        book_side="bid",
        count=Decimal(5),
        price=Decimal("0.65"),
        client_order_id="ord-1",
    )

    assert order.fill_count == Decimal(5)
    assert len(fake.requests_to("/portfolio/events/orders", "POST")) == 2


# -- tracking ------------------------------------------------------------------------


def test_credential_check_of_a_read_only_key(fake, read_key, pem):
    check = KalshiTracker(client_for(fake, read_key, pem)).credential_check()

    assert check.identity == read_key
    assert check.scopes == ("read",)
    assert check.warnings == ()
    assert fake.requests_to("/api_keys")


def test_credential_check_warns_about_a_write_key(fake, write_key, pem):
    check = KalshiTracker(client_for(fake, write_key, pem)).credential_check()

    assert check.scopes == ("read", "write")
    assert check.warnings == (WRITE_SCOPE_WARNING,)
    assert (
        WRITE_SCOPE_WARNING == "This key can place orders; a read-only key is enough for tracking."
    )


def test_credential_check_falls_back_to_the_balance(fake, read_key, pem):
    fake.fail_next(404, path="/api_keys")

    check = KalshiTracker(client_for(fake, read_key, pem)).credential_check()

    assert check.scopes == ("read",)
    assert fake.requests_to("/portfolio/balance")


def test_credential_check_of_a_refused_key(fake, key_pairs):
    tracker = KalshiTracker(client_for(fake, "key-unknown", key_pairs[0][0]))

    with pytest.raises(VenueAuthError, match="Kalshi refused the API key"):
        tracker.credential_check()


def test_account_fetch_maps_yes_and_no_positions(fake, key_id):
    seed = seed_demo(fake, key_id=key_id)
    tracker = KalshiTracker(client_for(fake, seed.key_id, seed.private_key_pem))

    account = tracker.account_fetch()

    assert account.cash == Decimal("1250.00")
    by_ticker = {p.market.venue_market_id: p for p in account.positions}
    fed, cpi = by_ticker[FED], by_ticker[CPI]
    assert (fed.outcome, fed.quantity) == ("yes", Decimal(120))
    assert fed.average_price == Decimal("0.59")  # 70.80 / 120
    # The market's real top of book (not its mid), valued by the collateral-price rule.
    assert (fed.market.yes_bid, fed.market.yes_ask) == (Decimal("0.61"), Decimal("0.63"))
    assert fed.realized_pnl == Decimal("4.20")
    assert (cpi.outcome, cpi.quantity) == ("no", Decimal(80))
    assert cpi.average_price == Decimal("0.64")  # 51.20 / 80
    # A NO position carries its market's YES prices: its own bid is 1 − the YES ask.
    assert (cpi.market.yes_bid, cpi.market.yes_ask) == (Decimal("0.34"), Decimal("0.36"))
    assert fed.market.title == "Fed holds rates in December 2026?"
    assert fed.market.event_code == "KXFEDDECISION-26DEC"
    assert fed.market.event_title == "Fed decision in December 2026"
    assert fed.market.is_open and fed.market.expires_at is not None
    # One market read per position and one event read per event.
    assert len(fake.requests_to(f"/markets/{FED}")) == 1
    assert len(fake.requests_to("/events/KXFEDDECISION-26DEC")) == 1


def test_account_fetch_of_a_closed_market_without_quotes(fake, read_key, pem):
    fake.market_add("KXOLD", event_ticker="KXOLD-EV", title="Old market", status="finalized")
    fake.position_set(read_key, "KXOLD", -3, "1.50")

    [position] = KalshiTracker(client_for(fake, read_key, pem)).account_fetch().positions

    assert position.market.is_open is False
    assert position.outcome == "no" and position.average_price == Decimal("0.5")
    market = position.market
    assert (market.yes_bid, market.yes_ask, market.last_price) == (None, None, None)


def test_a_one_sided_market_keeps_its_one_side_and_last_trade(fake, read_key, pem):
    fake.market_add("KXONE", event_ticker="KXONE-EV", title="One-sided?", last_price="0.55")
    fake.book_set("KXONE", yes=[("0.50", 10)])  # no NO bids: the YES ask shows as 1.00
    fake.position_set(read_key, "KXONE", 4, "2.00")

    [position] = KalshiTracker(client_for(fake, read_key, pem)).account_fetch().positions

    market = position.market
    assert (market.yes_bid, market.yes_ask) == (Decimal("0.50"), None)  # the 1.00 is no ask
    assert market.last_price == Decimal("0.55")


def test_tracking_client_uses_the_configured_environment(fake, read_key, pem, settings):
    settings.KALSHI_BASE_URLS = {"demo": fake.base_url}

    tracker = tracking_client(key_id=read_key, private_key_pem=pem, environment="demo")

    assert tracker.credential_check().identity == read_key
    with pytest.raises(InvalidParams):
        tracking_client(key_id=read_key, private_key_pem=pem, environment="staging")


# -- order book and quotes -----------------------------------------------------------------


def test_order_book_yes_asks_are_the_complement_of_no_bids(fake):
    fake.market_add("KXB", event_ticker="KXB-EV", title="B?")
    fake.book_set("KXB", yes=[("0.40", 10), ("0.42", 5)], no=[("0.55", 7), ("0.56", 3)])

    book = KalshiClient(fake.base_url).order_book("KXB")

    assert [(lvl.price, lvl.size) for lvl in book.bids] == [
        (Decimal("0.4200"), Decimal("5.00")),
        (Decimal("0.4000"), Decimal("10.00")),
    ]
    assert [(lvl.price, lvl.size) for lvl in book.asks] == [
        (Decimal("0.4400"), Decimal("3.00")),
        (Decimal("0.4500"), Decimal("7.00")),
    ]
    # Public and unsigned when no key is configured.
    assert fake.requests[-1][3] is None


def test_venue_quote_and_the_no_side(fake, write_key, pem):
    market_fed(fake)
    venue = KalshiVenue("kalshi", client=client_for(fake, write_key, pem))
    listing = kalshi_listing()

    quote = venue.quote(listing)
    no_book = venue.order_book(listing, outcome=Outcome.NO)

    assert (quote.bid, quote.ask, quote.mark) == (Decimal("0.61"), Decimal("0.63"), Decimal("0.62"))
    assert quote.outcome == Outcome.YES and quote.listing_key == "FED-DEC26@kalshi"
    assert no_book.bids[0].price == Decimal("0.37") and no_book.asks[0].price == Decimal("0.39")


def test_venue_quote_of_an_empty_book_is_unavailable(fake, write_key, pem):
    from trading.marketdata.store import MarketDataUnavailable

    fake.market_add(FED, event_ticker="KXFEDDECISION-26DEC", title="Fed?")
    venue = KalshiVenue("kalshi", client=client_for(fake, write_key, pem))

    with pytest.raises(MarketDataUnavailable):
        venue.quote(kalshi_listing())


def test_the_broker_venue_reads_its_key_from_settings(fake, write_key, pem, settings):
    market_fed(fake)
    settings.KALSHI_BASE_URLS = {"demo": fake.base_url}
    settings.KALSHI_BROKER_ENVIRONMENT = "demo"
    settings.KALSHI_BROKER_KEY_ID = write_key
    settings.KALSHI_BROKER_PRIVATE_KEY_PEM = pem

    assert KalshiVenue("kalshi").quote(kalshi_listing()).bid == Decimal("0.61")
    assert fake.requests[-1][3] == write_key


# -- orders ------------------------------------------------------------------------------


def test_a_market_buy_fills_and_is_idempotent(fake, write_key, pem):
    market_fed(fake)
    venue = KalshiVenue("kalshi", client=client_for(fake, write_key, pem))
    listing = kalshi_listing()

    first = venue.market_order_place(
        listing,
        Side.BUY,
        notional=Decimal(10),
        client_order_id="ord-1",
        worst_price=Decimal("0.65"),
    )
    again = venue.market_order_place(
        listing,
        Side.BUY,
        notional=Decimal(10),
        client_order_id="ord-1",
        worst_price=Decimal("0.65"),
    )

    assert first.status == VenueOrderStatus.FILLED
    assert first.quantity == Decimal(15)  # whole contracts: 10 / 0.65 = 15.38
    assert first.average_price == Decimal("0.63")
    assert again == first
    assert len(fake.requests_to("/portfolio/events/orders", "POST")) == 1
    assert not fake.requests_to("/portfolio/orders", "POST")
    sent = fake.order_get(write_key, "ord-1")
    assert sent["yes_price_dollars"] == "0.6500" and sent["book_side"] == "bid"
    assert sent["cancel_order_on_pause"] is True and sent["subaccount_number"] == 0
    assert fake.account(write_key).positions[FED].position == Decimal(15)


def test_a_duplicate_client_order_id_returns_the_existing_order(fake, write_key, pem, monkeypatch):
    market_fed(fake)
    client = client_for(fake, write_key, pem)
    venue = KalshiVenue("kalshi", client=client)
    listing = kalshi_listing()
    placed = venue.market_order_place(
        listing, Side.BUY, notional=Decimal(5), client_order_id="ord-2", worst_price=Decimal("0.65")
    )
    with pytest.raises(KalshiConflict):
        client.order_create(
            market=client.market(FED),
            book_side="bid",
            count=Decimal(1),
            price=Decimal("0.65"),
            client_order_id="ord-2",
        )
    # The lookup before sending misses (a race): Kalshi's 409 leads to the existing order.
    lookups = iter([None])
    real_lookup = client.order_get_by_client_id
    monkeypatch.setattr(
        client,
        "order_get_by_client_id",
        lambda coid, ticker=None: next(lookups, None) or real_lookup(coid, ticker=ticker),
    )

    again = venue.market_order_place(
        listing, Side.BUY, notional=Decimal(5), client_order_id="ord-2", worst_price=Decimal("0.65")
    )

    assert again == placed
    assert fake.account(write_key).positions[FED].position == placed.quantity


def test_a_buy_beyond_the_worst_price_is_rejected_with_price_limit(fake, write_key, pem):
    market_fed(fake)
    venue = KalshiVenue("kalshi", client=client_for(fake, write_key, pem))

    order = venue.market_order_place(
        kalshi_listing(),
        Side.BUY,
        notional=Decimal(100),
        client_order_id="ord-3",
        worst_price=Decimal("0.62"),  # the best ask is 0.63
    )

    assert order.status == VenueOrderStatus.REJECTED
    assert order.reject_code == PRICE_LIMIT
    assert fake.account(write_key).balance == Decimal("1000.00")


def test_a_no_buy_and_a_sell(fake, write_key, pem):
    market_fed(fake)
    venue = KalshiVenue("kalshi", client=client_for(fake, write_key, pem))
    listing = kalshi_listing()

    bought = venue.market_order_place(
        listing,
        Side.BUY,
        notional=Decimal(4),
        client_order_id="ord-no",
        outcome=Outcome.NO,
        worst_price=Decimal("0.40"),
    )
    sold = venue.market_order_place(
        listing,
        Side.SELL,
        notional=Decimal("2.00"),
        client_order_id="ord-sell",
        outcome=Outcome.NO,
        worst_price=Decimal("0.30"),
    )

    assert (bought.status, bought.quantity, bought.average_price) == (
        VenueOrderStatus.FILLED,
        Decimal(10),
        Decimal("0.39"),
    )
    assert (sold.status, sold.quantity, sold.average_price) == (
        VenueOrderStatus.FILLED,
        Decimal(5),
        Decimal("0.37"),
    )
    assert fake.order_get(write_key, "ord-no")["no_price_dollars"] == "0.4000"
    assert fake.account(write_key).positions[FED].position == Decimal(-5)


def test_a_sale_by_quantity_sends_that_count_and_takes_what_the_book_has(fake, write_key, pem):
    """A take-profit or stop-loss child sells contracts: the count is the quantity
    (whole contracts here), limited at the book walk's deepest level; what the book
    cannot take is cancelled by Kalshi (IOC) and the record says what filled."""
    market_fed(fake)
    venue = KalshiVenue("kalshi", client=client_for(fake, write_key, pem))
    listing = kalshi_listing()

    sold = venue.market_order_place(
        listing, Side.SELL, quantity=Decimal("260.5"), client_order_id="ord-q1"
    )
    swept = venue.market_order_place(
        listing, Side.SELL, quantity=Decimal(5000), client_order_id="ord-q2"
    )

    assert (sold.status, sold.quantity) == (VenueOrderStatus.FILLED, Decimal(260))
    sent = fake.order_get(write_key, "ord-q1")
    assert (sent["book_side"], sent["initial_count_fp"], sent["yes_price_dollars"]) == (
        "ask",
        "260.00",
        "0.6000",
    )
    assert sold.average_price == Decimal("0.6096")  # (250 × 0.61 + 10 × 0.60) / 260
    assert (swept.status, swept.quantity) == (VenueOrderStatus.FILLED, Decimal(590))
    assert fake.account(write_key).positions[FED].position == Decimal(-850)
    with pytest.raises(InvalidParams, match="exactly one"):
        venue.market_order_place(
            listing,
            Side.SELL,
            notional=Decimal(1),
            quantity=Decimal(1),
            client_order_id="ord-q3",
        )


def test_order_status_reads_the_order_back(fake, write_key, pem):
    market_fed(fake)
    venue = KalshiVenue("kalshi", client=client_for(fake, write_key, pem, max_retries=1))
    listing = kalshi_listing()
    placed = venue.market_order_place(
        listing, Side.BUY, notional=Decimal(5), client_order_id="ord-4", worst_price=Decimal("0.65")
    )

    assert venue.order_status(listing, client_order_id="ord-4") == placed
    assert venue.order_status(listing, client_order_id="never-sent") is None
    fake.outage(True)
    with pytest.raises(VenueTimeout):
        venue.order_status(listing, client_order_id="ord-4")


def test_a_read_only_key_cannot_place_orders(fake, read_key, pem):
    market_fed(fake)

    client = client_for(fake, read_key, pem)
    with pytest.raises(KalshiForbidden):
        client.order_create(
            market=client.market(FED),
            book_side="bid",
            count=Decimal(1),
            price=Decimal("0.65"),
            client_order_id="ord-ro",
        )


# -- rate limiting -----------------------------------------------------------------------


def test_the_token_bucket_spaces_takes_once_empty():
    bucket = f"test:{uuid.uuid4().hex}"

    waits = [token_bucket_take(bucket, 2, 1) for _ in range(3)]

    assert waits[0] == 0
    assert waits[1] == pytest.approx(0.5, abs=0.05)
    assert waits[2] == pytest.approx(1.0, abs=0.05)


def test_the_client_waits_for_the_bucket(fake, read_key, pem, settings):
    settings.KALSHI_READ_BUCKET = (40, 40)  # 10 tokens a read: 4 at once, then one every 0.25 s
    client = client_for(fake, read_key, pem)

    for _ in range(8):
        client.balance()

    spread = fake.request_times[-1] - fake.request_times[0]
    assert spread >= 0.9
    gaps = [b - a for a, b in zip(fake.request_times[4:], fake.request_times[5:], strict=False)]
    assert min(gaps) >= 0.2


def test_a_second_client_of_the_same_key_shares_the_bucket(fake, read_key, pem, settings):
    settings.KALSHI_READ_BUCKET = (40, 40)
    first, second = client_for(fake, read_key, pem), client_for(fake, read_key, pem)

    for _ in range(3):
        first.balance()
        second.balance()

    assert fake.request_times[-1] - fake.request_times[0] >= 0.4


# -- secrets stay out of messages and logs ----------------------------------------------------


def test_no_message_or_log_carries_the_key_or_a_signature(fake, read_key, key_pairs, caplog):
    pem, other_pem = key_pairs[0][0], key_pairs[1][0]
    signatures: list[str] = []

    class RecordingClient(KalshiClient):
        def _signed_headers(self, method: str, path: str) -> dict[str, str]:
            headers = super()._signed_headers(method, path)
            signatures.append(headers["KALSHI-ACCESS-SIGNATURE"])
            return headers

    messages: list[str] = []
    caplog.set_level(logging.DEBUG)
    fake.fail_next(429, retry_after=0.01)
    fake.fail_next(500)
    RecordingClient(
        fake.base_url, key_id=read_key, private_key_pem=pem, backoff_seconds=0.01
    ).balance()
    failures = [
        lambda: RecordingClient(
            fake.base_url, key_id=read_key, private_key_pem=other_pem
        ).balance(),
        lambda: RecordingClient(
            fake.base_url, key_id=read_key, private_key_pem=pem, max_retries=0
        ).request("GET", "/portfolio/nowhere"),
        lambda: KalshiClient(fake.base_url, key_id=read_key, private_key_pem=pem[:300]),
    ]
    for failure in failures:
        with pytest.raises(Exception) as caught:  # any error: its text is what is checked
            failure()
        messages.append(str(caught.value))
        messages.append(repr(caught.value))

    text = caplog.text + "\n".join(messages)
    assert signatures and len(caplog.records) > 0
    for secret in signatures:
        assert secret not in text
    for pem_text in (pem, other_pem):
        for line in pem_text.splitlines()[1:-1]:
            assert line not in text
    assert "KALSHI-ACCESS-SIGNATURE" not in text


def test_the_client_repr_names_no_key_material(pem):
    client = KalshiClient("http://127.0.0.1:9/trade-api/v2", key_id="key-1", private_key_pem=pem)

    assert "PRIVATE" not in repr(client) and pem.splitlines()[1] not in repr(client)


# -- Create Order V2 and the documented shapes ---------------------------------------------

EXAMPLES = Path(kalshi.__file__).parent / "fakes" / "examples" / "kalshi"
TAPERED = [("0", "0.10", "0.001"), ("0.10", "0.90", "0.01"), ("0.90", "1", "0.001")]


def example(name: str) -> dict:
    """A recorded example from the venue's documentation (see its `source`)."""
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def test_every_recorded_example_is_held_against_the_fake_or_unused():
    """A new example file needs a contract test here, or a reason it has none."""
    covered = {
        "create_order_v2",
        "get_order",
        "get_fills",
        "get_market",
        "get_account_limits",
        "get_endpoint_costs",
        "rate_limited_429",
    }
    unused = {  # endpoints the broker does not call (nothing of ours rests at Kalshi)
        "batch_create_orders_v2",
        "order_groups_create",
    }
    assert {path.stem for path in EXAMPLES.glob("*.json")} == covered | unused


def test_a_429_answers_in_kalshis_documented_shape(fake, read_key, pem):
    fake.limits_set(read=(10, 10), write=(10, 10))
    client = client_for(fake, read_key, pem, max_retries=0)
    client.balance()

    with pytest.raises(VenueRateLimited):
        client.balance()
    documented = example("rate_limited_429")["response"]
    response = httpx.get(
        f"{fake.base_url}/portfolio/balance",
        headers=client._signed_headers("GET", "/trade-api/v2/portfolio/balance"),
    )
    assert response.status_code == documented["status"] == 429
    assert response.json() == documented["body"]
    assert "Retry-After" not in response.headers


def sent_bodies(client: KalshiClient, monkeypatch) -> list[dict]:
    """The JSON bodies `client` sends from now on."""
    bodies: list[dict] = []
    request = client.request

    def recording(method, path, **kwargs):
        if kwargs.get("body") is not None:
            bodies.append(kwargs["body"])
        return request(method, path, **kwargs)

    monkeypatch.setattr(client, "request", recording)
    return bodies


def test_orders_go_through_create_order_v2_in_its_documented_shape(
    fake, write_key, pem, monkeypatch
):
    market_fed(fake)
    client = client_for(fake, write_key, pem)
    bodies = sent_bodies(client, monkeypatch)
    venue = KalshiVenue("kalshi", client=client)

    venue.market_order_place(
        kalshi_listing(),
        Side.BUY,
        notional=Decimal(10),
        client_order_id="ord-v2",
        worst_price=Decimal("0.65"),
    )

    documented = example("create_order_v2")
    (body,) = bodies
    assert set(documented["required_request_fields"]) <= set(body) <= set(documented["request"])
    assert body["side"] == "bid" and body["time_in_force"] == "immediate_or_cancel"
    assert body["count"] == "15.00" and body["price"] == "0.6500"
    assert all(isinstance(body[name], str) for name in ("count", "price"))
    (call,) = fake.requests_to("/portfolio/events/orders", "POST")
    assert call[1] == documented["path"]


def test_the_fakes_answers_have_the_documented_fields(fake, write_key, pem):
    market_fed(fake)
    client = client_for(fake, write_key, pem)
    created = client.request(
        "POST",
        "/portfolio/events/orders",
        body={**example("create_order_v2")["request"], "ticker": FED, "price": "0.6500"},
    )
    order = client.request("GET", f"/portfolio/orders/{created['order_id']}")["order"]
    fills = client.request("GET", "/portfolio/fills", params={"order_id": created["order_id"]})
    market = client.request("GET", f"/markets/{FED}")["market"]

    answer = example("create_order_v2")["response"]["body"]
    assert set(answer) <= set(created) <= set(answer) | {"average_fill_price", "average_fee_paid"}
    assert set(order) == set(example("get_order")["response"]["body"]["order"])
    documented_fill = example("get_fills")["response"]["body"]["fills"][0]
    assert set(fills["fills"][0]) == set(documented_fill) | {"client_order_id"}
    assert {"price_level_structure", "price_ranges"} <= set(market)
    assert "fractional_trading_enabled" not in market  # removed from the schema 2026-07-09
    assert set(market["price_ranges"][0]) == {"start", "end", "step"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"action": "buy"}, "Unknown field"),
        ({"side": "yes"}, "bid or ask"),
        ({"count": 5}, "fixed-point string"),
        ({"price": "0.655"}, "tick grid"),
        ({"count": "1.5"}, "no fractional"),
        ({"self_trade_prevention_type": None}, "Missing field"),
    ],
)
def test_the_fake_refuses_what_v2_does_not_take(fake, write_key, pem, change, message):
    market_fed(fake)
    client = client_for(fake, write_key, pem)
    body = {**example("create_order_v2")["request"], "ticker": FED, **change}

    with pytest.raises(kalshi.KalshiRejected, match=message):
        client.request("POST", "/portfolio/events/orders", body=body)


def test_the_legacy_order_endpoint_is_refused_as_kalshi_refuses_it(fake, write_key, pem):
    market_fed(fake)
    body = {"ticker": FED, "side": "yes", "action": "buy", "count": 1, "yes_price": 65}

    with pytest.raises(kalshi.KalshiRejected, match="switch to the V2 endpoints"):
        client_for(fake, write_key, pem).request("POST", "/portfolio/orders", body=body)


def test_prices_follow_the_markets_tick_bands(fake, write_key, pem, monkeypatch):
    fake.market_add(FED, event_ticker="KXFED", title="Fed?", price_ranges=TAPERED)
    fake.book_set(FED, yes=[("0.035", 500)], no=[("0.953", 500)])
    client = client_for(fake, write_key, pem)
    bodies = sent_bodies(client, monkeypatch)
    venue = KalshiVenue("kalshi", client=client)

    # A NO buy at worst 0.9655 is an ask of YES at ≥ 0.0345: up onto the 0.001 grid.
    order = venue.market_order_place(
        kalshi_listing(),
        Side.BUY,
        notional=Decimal(10),
        client_order_id="ord-tick",
        outcome=Outcome.NO,
        worst_price=Decimal("0.9655"),
    )

    assert bodies[0]["side"] == "ask" and bodies[0]["price"] == "0.0350"
    assert order.status == VenueOrderStatus.FILLED
    assert order.average_price == Decimal("0.965")  # 1 − the YES bid 0.035
    market = client.market(FED)
    assert market.price_ranges[0] == (Decimal("0"), Decimal("0.1"), Decimal("0.001"))
    with pytest.raises(InvalidParams, match=r"ticks of 0\.01"):
        client.order_create(
            market=market,
            book_side="bid",
            count=Decimal(1),
            price=Decimal("0.555"),
            client_order_id="ord-off-grid",
        )
    with pytest.raises(InvalidParams, match="whole contracts only"):
        client.order_create(
            market=market,
            book_side="bid",
            count=Decimal("1.5"),
            price=Decimal("0.55"),
            client_order_id="ord-fraction",
        )
    assert len(bodies) == 1  # neither refused order was sent


def test_counts_are_whole_unless_the_market_says_it_takes_fractions(fake, write_key, pem):
    fake.market_add(FED, event_ticker="KXFED", title="Fed?", fractional=True)
    fake.book_set(FED, yes=[("0.61", 250)], no=[("0.37", 300)])
    fake_market = client_for(fake, write_key, pem).request("GET", f"/markets/{FED}")["market"]
    assert "fractional_trading_enabled" not in fake_market
    # Kalshi no longer says which markets take fractions: whole contracts unless it does.
    venue = KalshiVenue("kalshi", client=client_for(fake, write_key, pem))

    order = venue.market_order_place(
        kalshi_listing(),
        Side.BUY,
        notional=Decimal(10),
        client_order_id="ord-whole",
        worst_price=Decimal("0.65"),
    )

    assert order.quantity == Decimal(15)
    # A market that still sends the flag true gets hundredths.
    flagged = kalshi._market_from({**fake_market, "fractional_trading_enabled": True})
    assert flagged.fractional
    assert kalshi._count_for(Decimal(10) / Decimal("0.65"), flagged) == Decimal("15.38")


def test_order_status_of_a_no_order_is_in_no_terms(fake, write_key, pem):
    market_fed(fake)
    venue = KalshiVenue("kalshi", client=client_for(fake, write_key, pem))
    placed = venue.market_order_place(
        kalshi_listing(),
        Side.BUY,
        notional=Decimal(4),
        client_order_id="ord-no-status",
        outcome=Outcome.NO,
        worst_price=Decimal("0.40"),
    )

    status = venue.order_status(
        kalshi_listing(), client_order_id="ord-no-status", outcome=Outcome.NO
    )

    assert status == placed and status.average_price == Decimal("0.39")


# -- the budget: Kalshi's token buckets per key ------------------------------------------------


def test_the_budget_is_read_from_kalshi_and_shared_by_every_client_of_the_key(fake, read_key, pem):
    fake.limits_set(read=(1000, 1000), write=(1000, 2000), tier="premier", enforce=False)
    first = client_for(fake, read_key, pem)
    assert first.budget() == kalshi.KalshiBudget.documented()  # before it is read

    budget = first.budget_refresh()

    documented = example("get_account_limits")["response"]["body"]
    assert set(documented) == set(first.request("GET", "/account/limits"))
    costs = example("get_endpoint_costs")["response"]["body"]
    answered = first.request("GET", "/account/endpoint_costs")
    assert set(costs) == set(answered)
    assert set(costs["endpoint_costs"][0]) == set(answered["endpoint_costs"][0])
    assert budget.tier == "premier" and budget.write == (1000.0, 2000.0)
    assert budget.cost("GET", "/portfolio/orders/abc-123") == 2
    assert budget.cost("GET", "/portfolio/balance") == budget.default_cost == 10
    assert client_for(fake, read_key, pem).budget() == budget  # another process's client


def test_a_429_without_retry_after_backs_off_with_jitter_for_every_client(
    fake, read_key, pem, monkeypatch
):
    # Kalshi holds two reads here (10 tokens each); the client, not told yet, assumes Basic.
    fake.limits_set(read=(100, 20), write=(10, 10))
    client = client_for(fake, read_key, pem, backoff_seconds=0.2)
    sleeps: list[float] = []
    sleep = time.sleep
    monkeypatch.setattr(kalshi.random, "uniform", lambda low, high: high)  # the longest jitter
    monkeypatch.setattr(
        kalshi.time, "sleep", lambda seconds: (sleeps.append(seconds), sleep(seconds))
    )

    for _ in range(3):
        client.balance()

    reads = [r for r in fake.requests if r[1].endswith("/portfolio/balance")]
    assert len(reads) == 4  # the third read was refused once, then retried
    assert sleeps[0] == pytest.approx(0.2)  # 0.2 / 2 + jitter up to 0.1: no Retry-After
    (state,) = [b for b in token_buckets(client.budget_key) if b.key.endswith(":read")]
    assert state.count_429 == 1 and state.last_429 is not None


def test_with_the_keys_budget_read_the_client_is_never_refused(fake, read_key, pem):
    fake.limits_set(read=(40, 40), write=(10, 10))
    client = client_for(fake, read_key, pem)
    client.budget_refresh()

    for _ in range(6):
        client.balance()

    assert len([r for r in fake.requests if r[1].endswith("/portfolio/balance")]) == 6
    gaps = [b - a for a, b in zip(fake.request_times[-3:], fake.request_times[-2:], strict=False)]
    assert min(gaps) >= 0.2


def test_the_tick_grid_is_read_once_for_every_order_of_a_client(fake, write_key, pem):
    market_fed(fake)
    client = client_for(fake, write_key, pem)
    for n in range(2):  # an adapter per order, as venue_adapter() makes them
        KalshiVenue("kalshi", client=client).market_order_place(
            kalshi_listing(),
            Side.BUY,
            notional=Decimal(5),
            client_order_id=f"ord-grid-{n}",
            worst_price=Decimal("0.65"),
        )

    assert len(fake.requests_to(f"/markets/{FED}", "GET")) == 1
