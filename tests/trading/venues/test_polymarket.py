"""The Polymarket client, tracker and venue against the loopback fake Polymarket.

Every request goes over real HTTP to `FakePolymarket`, which serves the Data
API, Gamma and the CLOB in their wire shapes, verifies L2 HMAC headers with
the registered secret and, for orders, the EIP-712 signature the official
py-clob-client-v2 made. No database: listings are built in memory.
"""

import base64
import hashlib
import json
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.errors import InvalidParams
from portal.redis import redis_client, redis_key
from trading.marketdata.quotes import Outcome
from trading.marketdata.store import MarketDataUnavailable
from trading.models import Instrument, Listing, Venue
from trading.venues import polymarket
from trading.venues.base import PRICE_LIMIT, VenueOrderStatus, VenueTimeout
from trading.venues.fakes.polymarket import FakePolymarket, seed_demo
from trading.venues.polymarket import (
    TRADE_SCOPE_WARNING,
    ClobCredentials,
    ClobOrderSigner,
    PolymarketClient,
    PolymarketTracker,
    PolymarketVenue,
    l2_signature,
    order_metadata,
    tracking_client,
    wallet_validate,
)
from trading.venues.tracking import (
    VenueAuthError,
    VenueBadResponse,
    VenueRateLimited,
    VenueUnavailable,
)

D = Decimal
WALLET = "0x56687bf447db6ffa42ffe2204a05edaa20f55839"
# EIP-55's own test vectors.
CHECKSUMMED = (
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
)
BROKER_KEY = "0x" + "4c" * 32  # a test private key: it never signs anything but fake orders


@pytest.fixture
def fake():
    with FakePolymarket() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(fake, sleeps) -> PolymarketClient:
    return client_for(fake, sleeps)


def client_for(fake: FakePolymarket, sleeps: list[float], **kwargs) -> PolymarketClient:
    kwargs.setdefault("rate_limit", False)
    kwargs.setdefault("sleep", sleeps.append)  # waits are recorded, not slept
    return PolymarketClient(
        data_url=fake.data_url, gamma_url=fake.gamma_url, clob_url=fake.clob_url, **kwargs
    )


def fed_market(fake: FakePolymarket, **kwargs) -> str:
    kwargs.setdefault("prices", ("0.62", "0.38"))
    return fake.add_market(
        slug="fed-cuts-rates-in-december-2026",
        question="Will the Fed cut interest rates at the December 2026 meeting?",
        event_slug="fed-decision-in-december-2026",
        event_title="Fed decision in December 2026",
        end_date="2026-12-09T19:00:00Z",
        **kwargs,
    )


def credentials_for(fake: FakePolymarket, address: str = WALLET, balance: str = "0"):
    registered = fake.register_credentials(address=address, balance=balance)
    return registered, ClobCredentials(
        api_key=registered.api_key,
        api_secret=registered.secret,
        api_passphrase=registered.passphrase,
        address=address.lower(),
    )


# ---------------------------------------------------------------------------
# Data API: pagination and numbers


def test_positions_collects_every_cursor_page(fake, client):
    condition_id = fed_market(fake)
    for i in range(250):
        fake.add_position(WALLET, condition_id=condition_id, size=str(i + 1), avg_price="0.5")

    rows = client.positions(WALLET, page_size=100)

    assert [row.size for row in rows] == [D(i + 1) for i in range(250)]
    pages = fake.requests_to("data", "/v2/positions")
    assert len(pages) == 3
    assert "cursor" not in pages[0].query
    # Each later page follows the cursor the previous one handed out, for the same wallet.
    assert all(page.query["cursor"] and page.query["user"] == [WALLET] for page in pages[1:])
    assert pages[1].query["cursor"] != pages[2].query["cursor"]


def test_a_cursor_that_repeats_is_a_bad_response(client, monkeypatch):
    # A venue that keeps handing out the same cursor would be walked forever.
    monkeypatch.setattr(client, "positions_page", lambda wallet, **kw: ([], "same-cursor"))
    with pytest.raises(VenueBadResponse, match="loop"):
        client.positions(WALLET)


def test_position_numbers_are_exact_decimals_from_json_numbers(fake, client):
    condition_id = fed_market(fake)
    fake.add_position(
        WALLET,
        condition_id=condition_id,
        size="1234.567891",
        avg_price="0.123456789012345678901",
        current_price="0.3",
        realized_pnl="-0.1",
    )
    raw = httpx.get(f"{fake.data_url}/v2/positions", params={"user": WALLET}).text
    # On the wire these are JSON numbers, which a float would not keep...
    assert '"avg_price": 0.123456789012345678901' in raw

    (row,) = client.positions(WALLET)

    # ...and they arrive exactly.
    assert row.avg_price == D("0.123456789012345678901")
    assert row.size == D("1234.567891")
    assert row.realized_pnl == D("-0.1")
    assert row.current_price == D("0.3")
    assert isinstance(row.entry_cost, Decimal)


def test_a_positions_answer_without_its_envelope_is_a_bad_response(fake, client):
    fake.fail_next(200, body=b'{"error": "not what you asked for"}')
    with pytest.raises(VenueBadResponse, match="no data list"):
        client.positions(WALLET)
    fake.fail_next(200, body=b"<html>maintenance</html>")
    with pytest.raises(VenueBadResponse, match="unreadable JSON"):
        client.positions(WALLET)


# ---------------------------------------------------------------------------
# Gamma


def test_gamma_json_encoded_fields_are_decoded(fake, client):
    condition_id = fed_market(fake)
    raw = httpx.get(f"{fake.gamma_url}/markets", params={"condition_ids": condition_id}).json()
    assert isinstance(raw[0]["outcomes"], str)  # JSON inside the JSON, as Polymarket sends it

    market = client.market(condition_id)

    assert market.outcomes == ("Yes", "No")
    assert market.outcome_prices == (D("0.62"), D("0.38"))
    assert market.clob_token_ids == tuple(fake.market_tokens(condition_id))
    assert market.event_slug == "fed-decision-in-december-2026"
    assert market.event_title == "Fed decision in December 2026"
    assert market.end_date.isoformat() == "2026-12-09T19:00:00+00:00"
    assert market.is_open


@pytest.mark.parametrize(
    "broken",
    [
        {"clobTokenIds": '["1", "2"'},  # truncated JSON
        {"outcomePrices": '"0.5"'},  # JSON, but not a list
        {"outcomePrices": '["half", "half"]'},  # not numbers
        {"clobTokenIds": '["1", "2", "3"]'},  # lengths disagree
    ],
)
def test_badly_encoded_gamma_fields_are_a_bad_response(fake, client, broken):
    condition_id = fed_market(fake, **broken)
    with pytest.raises(VenueBadResponse):
        client.market(condition_id)


def test_events_carry_their_markets(fake, client):
    fed_market(fake)
    (event,) = client.events(slug="fed-decision-in-december-2026")
    assert event.title == "Fed decision in December 2026"
    (market,) = event.markets
    assert market.event_title == "Fed decision in December 2026"
    assert market.outcome_prices == (D("0.62"), D("0.38"))


def test_closed_markets_are_found_on_a_second_ask(fake, client):
    open_id = fed_market(fake)
    closed_id = fake.add_market(
        slug="ecb", question="ECB cut?", event_slug="ecb", event_title="ECB", closed=True
    )
    found = client.markets_by_condition([open_id, closed_id, "0x" + "ab" * 32])
    assert set(found) == {open_id, closed_id}
    assert not found[closed_id].is_open


# ---------------------------------------------------------------------------
# CLOB books and prices


def test_book_is_best_first_whatever_order_the_wire_uses(fake, client):
    yes, _ = fake.market_tokens(fed_market(fake))
    fake.set_book(yes, bids=[("0.58", "900"), ("0.61", "150.5")], asks=[("0.66", 9), ("0.63", 1)])
    wire = httpx.get(f"{fake.clob_url}/book", params={"token_id": yes}).json()
    assert [level["price"] for level in wire["bids"]] == ["0.58", "0.61"]  # best last

    book = client.book(yes)

    assert [(lv.price, lv.size) for lv in book.bids] == [(D("0.61"), D("150.5")), (D("0.58"), 900)]
    assert [lv.price for lv in book.asks] == [D("0.63"), D("0.66")]
    assert client.midpoint(yes) == D("0.62")
    assert client.price(yes, "BUY") == D("0.61")  # documented: BUY → best bid
    assert client.price(yes, "sell") == D("0.63")
    assert client.books([yes])[yes] == book


def test_a_closed_market_has_no_book(fake, client):
    condition_id = fed_market(fake)
    fake.close_market(condition_id)
    with pytest.raises(polymarket.PolymarketNotFound):
        client.book(fake.market_tokens(condition_id)[0])


# ---------------------------------------------------------------------------
# Retries


def test_429_waits_the_advised_retry_after_then_succeeds(fake, client, sleeps):
    fed_market(fake)
    fake.fail_next(429, count=2, retry_after=2)
    assert client.positions(WALLET) == []
    assert sleeps == [2.0, 2.0]
    assert len(fake.requests_to("data", "/v2/positions")) == 3


def test_429_retry_after_is_really_waited(fake):
    real = client_for(fake, [], sleep=time.sleep)
    fake.fail_next(429, retry_after=1)
    real.positions(WALLET)
    first, second = fake.requests_to("data", "/v2/positions")
    assert second.at - first.at >= 1.0


def test_429_gives_up_with_venue_rate_limited(fake, client, sleeps):
    fake.fail_next(429, count=10, retry_after=1)
    with pytest.raises(VenueRateLimited) as raised:
        client.positions(WALLET)
    assert raised.value.retry_after == 1.0
    assert len(fake.requests_to("data", "/v2/positions")) == 4  # max_retries=3
    assert sleeps == [1.0, 1.0, 1.0]


def test_a_long_retry_after_is_reported_not_slept(fake, client, sleeps):
    fake.fail_next(429, retry_after=600)
    with pytest.raises(VenueRateLimited) as raised:
        client.positions(WALLET)
    assert raised.value.retry_after == 600
    assert sleeps == []


def test_429_without_retry_after_backs_off_exponentially(fake, client, sleeps):
    fake.fail_next(429, count=2)
    client.positions(WALLET)
    assert sleeps == [0.5, 1.0]


def test_5xx_is_retried_then_venue_unavailable(fake, client, sleeps):
    fake.fail_next(503, count=10)
    with pytest.raises(VenueUnavailable, match="HTTP 503"):
        client.positions(WALLET)
    assert len(fake.requests_to("data", "/v2/positions")) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_5xx_then_an_answer(fake, client, sleeps):
    condition_id = fed_market(fake)
    fake.fail_next(502, count=2)
    assert client.market(condition_id).question.startswith("Will the Fed")
    assert sleeps == [0.5, 1.0]


def test_outage_and_a_dead_host_are_venue_unavailable(fake, client):
    fake.outage(True)
    with pytest.raises(VenueUnavailable):
        client.positions(WALLET)
    fake.outage(False)
    dead = PolymarketClient(
        data_url="http://127.0.0.1:9/data",
        gamma_url="http://127.0.0.1:9/gamma",
        clob_url="http://127.0.0.1:9/clob",
        sleep=lambda _: None,
        rate_limit=False,
    )
    with pytest.raises(VenueUnavailable, match="failed to connect"):
        dead.positions(WALLET)


def test_requests_take_a_token_from_the_shared_bucket(fake, sleeps):
    limited = client_for(fake, sleeps, rate_limit=True)
    limited.positions(WALLET)
    host = hashlib.sha256(fake.data_url.encode()).hexdigest()[:12]
    bucket = redis_key("ratelimit", f"polymarket:data:{host}")
    assert redis_client().hget(bucket, "tokens") is not None


# ---------------------------------------------------------------------------
# L2 authentication


def test_l2_signature_matches_the_official_client():
    from py_clob_client_v2.signing import hmac as hmac_module

    secret = base64.urlsafe_b64encode(b"a secret of 32 bytes, urlsafe!!").decode()
    body = '{"order":{"salt":1},"owner":"k"}'
    ours = l2_signature(secret, "1790000000", "POST", "/order", body)
    assert ours == hmac_module.build_hmac_signature(secret, 1790000000, "POST", "/order", body)


def test_balance_is_read_with_a_verified_l2_signature(fake, client):
    _, credentials = credentials_for(fake, balance="1234.567891")

    assert client.balance(credentials) == D("1234.567891")

    (request,) = fake.requests_to("clob", "/balance-allowance")
    headers = {k.upper(): v for k, v in request.headers.items()}
    assert set(polymarket.L2_HEADERS) <= set(headers)
    assert request.query["asset_type"] == ["COLLATERAL"]
    assert credentials.api_secret not in json.dumps(headers)  # the secret itself is never sent


def test_a_tampered_signature_is_refused(fake, client):
    _, credentials = credentials_for(fake)
    headers = credentials.headers("GET", "/auth/api-keys")
    assert httpx.get(f"{fake.clob_url}/auth/api-keys", headers=headers).status_code == 200
    signature = headers["POLY_SIGNATURE"]
    headers["POLY_SIGNATURE"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert httpx.get(f"{fake.clob_url}/auth/api-keys", headers=headers).status_code == 401

    # A request signed with the wrong secret is refused the same way, and the
    # error names neither the secret nor the passphrase.
    wrong = ClobCredentials(
        api_key=credentials.api_key,
        api_secret=base64.urlsafe_b64encode(b"x" * 32).decode(),
        api_passphrase=credentials.api_passphrase,
        address=credentials.address,
    )
    with pytest.raises(VenueAuthError) as raised:
        client.balance(wrong)
    assert wrong.api_secret not in str(raised.value)
    assert credentials.api_passphrase not in str(raised.value)


def test_the_signature_covers_the_path_and_a_wrong_passphrase_fails(fake, client):
    _, credentials = credentials_for(fake)
    # Signed for another path: refused.
    headers = credentials.headers("GET", "/auth/api-keys")
    assert httpx.get(f"{fake.clob_url}/balance-allowance", headers=headers).status_code == 401
    wrong = ClobCredentials(
        api_key=credentials.api_key,
        api_secret=credentials.api_secret,
        api_passphrase="not-it",
        address=credentials.address,
    )
    with pytest.raises(VenueAuthError):
        client.api_keys(wrong)


def test_credentials_repr_hides_the_secrets():
    credentials = ClobCredentials.from_dict(
        {"apiKey": "key-1", "secret": "c2VjcmV0", "passphrase": "pass-1"},
        default_address=WALLET,
    )
    assert "c2VjcmV0" not in repr(credentials) and "pass-1" not in repr(credentials)
    assert credentials.api_key == "key-1" and credentials.address == WALLET


@pytest.mark.parametrize(
    "parts",
    [
        {"api_key": "k", "api_passphrase": "p"},  # no secret
        {"api_key": "k", "api_secret": "not base64 !!", "api_passphrase": "p"},
        {"api_key": "k", "api_secret": "c2VjcmV0", "api_passphrase": "p", "signature_type": 7},
    ],
)
def test_incomplete_credentials_are_invalid_params(parts):
    with pytest.raises(InvalidParams):
        ClobCredentials.from_dict(parts, default_address=WALLET)


# ---------------------------------------------------------------------------
# Wallets


@pytest.mark.parametrize("wallet", CHECKSUMMED)
def test_checksummed_wallets_are_verified(wallet):
    assert wallet_validate(wallet) == wallet.lower()
    assert polymarket.wallet_checksum(wallet.lower()) == wallet


@pytest.mark.parametrize(
    "wallet", [w.lower() for w in CHECKSUMMED] + [w.upper() for w in CHECKSUMMED]
)
def test_wallets_without_a_checksum_are_accepted(wallet):
    wallet = "0x" + wallet[2:]  # all-uppercase hex still has the 0x prefix
    assert wallet_validate(wallet) == wallet.lower()


def test_a_typo_in_a_checksummed_wallet_is_caught():
    typo = CHECKSUMMED[0][:-1] + ("D" if CHECKSUMMED[0][-1] != "D" else "E")
    with pytest.raises(InvalidParams, match="checksum"):
        wallet_validate(typo)
    flipped_case = CHECKSUMMED[0][:3] + CHECKSUMMED[0][3].swapcase() + CHECKSUMMED[0][4:]
    with pytest.raises(InvalidParams, match="checksum"):
        wallet_validate(flipped_case)


@pytest.mark.parametrize(
    "wallet",
    ["", WALLET[2:], "0X" + WALLET[2:], "0x1234", WALLET + "00", "0x" + "g" * 40],
)
def test_malformed_wallets_are_invalid_params(wallet):
    with pytest.raises(InvalidParams, match="0x followed by 40"):
        wallet_validate(wallet)


# ---------------------------------------------------------------------------
# The tracker


def test_credential_check_for_a_wallet_alone(fake, client):
    check = PolymarketTracker(client, wallet=WALLET).credential_check()
    assert check.identity == WALLET
    assert check.scopes == ("read",)
    assert check.warnings == ()
    assert fake.requests_to("data", "/v2/positions")[0].query["limit"] == ["1"]


def test_credential_check_with_clob_keys_warns_they_can_trade(fake, client):
    _, credentials = credentials_for(fake)
    check = PolymarketTracker(
        client, wallet=WALLET, clob_credentials=credentials
    ).credential_check()
    assert check.scopes == ("read", "trade")
    assert check.warnings == (TRADE_SCOPE_WARNING,)
    assert len(fake.requests_to("clob", "/auth/api-keys")) == 1


def test_credential_check_with_refused_keys_is_venue_auth_error(fake, client):
    _, credentials = credentials_for(fake)
    unknown = ClobCredentials(
        api_key=str(uuid.uuid4()),
        api_secret=credentials.api_secret,
        api_passphrase=credentials.api_passphrase,
        address=WALLET,
    )
    with pytest.raises(VenueAuthError):
        PolymarketTracker(client, wallet=WALLET, clob_credentials=unknown).credential_check()


def test_credential_check_when_the_data_api_is_down(fake, client):
    fake.outage(True)
    with pytest.raises(VenueUnavailable):
        PolymarketTracker(client, wallet=WALLET).credential_check()


def test_account_fetch_maps_open_positions(fake, client):
    fed = fed_market(fake)
    fed_yes, _ = fake.market_tokens(fed)
    fake.set_book(fed_yes, bids=[("0.61", "100")], asks=[("0.63", "100")])
    game = fake.add_market(
        slug="nba-lal-bos-2026-12-25",
        question="Lakers vs. Celtics",
        event_slug="nba-lal-bos-2026-12-25",
        event_title="Lakers vs. Celtics",
        outcomes=("Lakers", "Celtics"),
        prices=("0.44", "0.56"),
    )
    halted = fake.add_market(
        slug="halted", question="Halted?", event_slug="halted", event_title="Halted", closed=True
    )
    fake.add_position(WALLET, condition_id=fed, outcome_index=0, size="1250", avg_price="0.54")
    fake.add_position(
        WALLET, condition_id=fed, outcome_index=1, size="10", avg_price="0.4", realized_pnl="3.21"
    )
    fake.add_position(WALLET, condition_id=game, outcome_index=1, size="400", avg_price="0.52")
    fake.add_position(WALLET, condition_id=game, outcome_index=0, size="5", avg_price="0.47")
    fake.add_position(WALLET, condition_id=halted, outcome_index=0, size="7", avg_price="0.3")
    fake.add_position(WALLET, condition_id=fed, size="800", avg_price="0.8", status="REDEEMABLE")
    fake.add_position(WALLET, condition_id=fed, size="0", avg_price="0.4", status="CLOSED")
    fake.add_position(WALLET, condition_id=fed, size="0", avg_price="0.4")  # sold down to nothing

    account = PolymarketTracker(client, wallet=WALLET).account_fetch()

    assert account.cash is None  # a wallet alone does not show its cash
    got = [(p.market.title, p.outcome, p.quantity) for p in account.positions]
    assert got == [
        ("Will the Fed cut interest rates at the December 2026 meeting?", "yes", D("1250")),
        ("Will the Fed cut interest rates at the December 2026 meeting?", "no", D("10")),
        ("Lakers vs. Celtics", "no", D("400")),  # the second outcome is our "no"
        ("Lakers vs. Celtics", "yes", D("5")),
        ("Halted?", "yes", D("7")),
    ]
    yes = account.positions[0]
    assert yes.market.venue_market_id == fed
    assert yes.market.event_code == "fed-decision-in-december-2026"
    assert yes.market.event_title == "Fed decision in December 2026"
    assert yes.market.expires_at.isoformat() == "2026-12-09T19:00:00+00:00"
    assert yes.market.is_open
    assert yes.average_price == D("0.54")
    # Gamma's top of book for the first outcome (our YES), not the 0.62 mid.
    assert (yes.market.yes_bid, yes.market.yes_ask) == (D("0.61"), D("0.63"))
    assert yes.market.last_price == D("0.62")
    assert account.positions[2].market.yes_bid is None  # no book: no bid
    assert account.positions[1].realized_pnl == D("3.21")
    assert not account.positions[4].market.is_open


def test_account_fetch_with_clob_keys_reads_the_collateral_balance(fake, client):
    _, credentials = credentials_for(fake, balance="2500.25")
    tracker = PolymarketTracker(client, wallet=WALLET, clob_credentials=credentials)
    assert tracker.account_fetch().cash == D("2500.25")


def test_a_position_whose_outcome_cannot_be_told_is_left_out(fake, client):
    fed = fed_market(fake)
    unknown = fake.add_position(WALLET, condition_id=fed, outcome_index=0)
    unknown.update(outcome="Maybe", outcome_index=999)  # the Data API's "no index" sentinel
    fake.add_position(WALLET, condition_id=fed, outcome_index=0)
    account = PolymarketTracker(client, wallet=WALLET).account_fetch()
    assert [p.outcome for p in account.positions] == ["yes"]


def test_a_market_gamma_does_not_know_falls_back_to_the_position_row(fake, client):
    row = fake.add_position(WALLET, condition_id=fed_market(fake), size="3", avg_price="0.5")
    row["condition_id"] = "0x" + "cd" * 32  # a market Gamma has never heard of
    (position,) = PolymarketTracker(client, wallet=WALLET).account_fetch().positions
    market = position.market
    assert market.venue_market_id == "0x" + "cd" * 32
    assert market.title == "Will the Fed cut interest rates at the December 2026 meeting?"
    assert (market.event_code, market.event_title) == ("fed-decision-in-december-2026", "")
    assert market.expires_at.isoformat() == "2026-12-09T00:00:00+00:00"  # the row's date only
    assert market.is_open  # an OPEN row is an unresolved market
    # Gamma was asked twice (open, then closed markets) before giving up on it.
    assert len(fake.requests_to("gamma", "/markets")) == 2


def test_tracking_client_reads_the_hosts_from_settings(fake, settings):
    settings.POLYMARKET_DATA_URL = fake.data_url
    settings.POLYMARKET_GAMMA_URL = fake.gamma_url
    settings.POLYMARKET_CLOB_URL = fake.clob_url
    seed = seed_demo(fake)
    registered = seed.credentials
    tracker = tracking_client(
        wallet=seed.wallet.upper().replace("0X", "0x"),
        clob_credentials={
            "apiKey": registered.api_key,
            "secret": registered.secret,
            "passphrase": registered.passphrase,
        },
    )
    assert tracker.credential_check().scopes == ("read", "trade")
    account = tracker.account_fetch()
    assert account.cash == D("2500")
    assert len(account.positions) == 4  # the demo's REDEEMABLE and CLOSED rows are left out
    assert {r.service for r in fake.requests} == {"data", "gamma", "clob"}


def test_tracking_client_refuses_a_bad_wallet_before_sending_anything(fake):
    with pytest.raises(InvalidParams):
        tracking_client(wallet="0xnot-a-wallet", clob_credentials=None)
    assert fake.requests == []


# ---------------------------------------------------------------------------
# The custodial venue


def polymarket_listing(token: str) -> Listing:
    """An unsaved listing: the adapter only reads its fields."""
    instrument = Instrument(
        symbol="FED-DEC26", kind=Instrument.Kind.BINARY, tick_size=Decimal("0.01")
    )
    return Listing(instrument=instrument, venue=Venue(code="polymarket"), venue_symbol=token)


@pytest.fixture
def trading(fake, client):
    """(venue, listing, the fake's record of the broker's keys, yes token, no token)."""
    from eth_account import Account

    condition_id = fed_market(fake)
    yes, no = fake.market_tokens(condition_id)
    fake.set_book(yes, bids=[("0.61", "1500"), ("0.60", "4200")], asks=[("0.63", "100")])
    fake.set_book(no, bids=[("0.37", "100")], asks=[("0.39", "1500"), ("0.40", "4200")])
    registered = fake.register_credentials(
        address=Account.from_key(BROKER_KEY).address, balance="1000"
    )
    signer = ClobOrderSigner(
        clob_url=fake.clob_url,
        private_key=BROKER_KEY,
        # The signer sets the address to its own (the key's owner).
        credentials=ClobCredentials(
            api_key=registered.api_key,
            api_secret=registered.secret,
            api_passphrase=registered.passphrase,
            address=WALLET,
        ),
    )
    venue = PolymarketVenue("polymarket", client=client, signer=signer)
    return venue, polymarket_listing(yes), registered, yes, no


def order_id() -> str:
    return f"ord-{uuid.uuid4().hex}"


def test_quote_comes_from_the_yes_book(fake, client):
    yes, _ = fake.market_tokens(fed_market(fake))
    fake.set_book(yes, bids=[("0.61", "10")], asks=[("0.63", "5"), ("0.64", "1")])
    quote = PolymarketVenue("polymarket", client=client).quote(polymarket_listing(yes))
    assert (quote.bid, quote.ask, quote.mark) == (D("0.61"), D("0.63"), D("0.62"))
    assert quote.outcome == Outcome.YES and quote.is_binary
    assert [lv.price for lv in quote.book.asks] == [D("0.63"), D("0.64")]


def test_a_one_sided_book_is_no_quote(fake, client):
    yes, _ = fake.market_tokens(fed_market(fake))
    fake.set_book(yes, bids=[("0.61", "10")])
    with pytest.raises(MarketDataUnavailable):
        PolymarketVenue("polymarket", client=client).quote(polymarket_listing(yes))
    fake.outage(True)
    with pytest.raises(MarketDataUnavailable):
        PolymarketVenue("polymarket", client=client).quote(polymarket_listing(yes))


def test_an_order_signed_by_the_official_client_reaches_the_fake(fake, trading):
    venue, listing, registered, yes, _ = trading
    client_order_id = order_id()

    order = venue.market_order_place(
        listing, "buy", notional=D("50.009"), client_order_id=client_order_id
    )

    assert order.status == VenueOrderStatus.FILLED
    # 50.00 USDC (rounded down to the cent) at 0.63, in 6-decimal shares.
    assert order.quantity == D("79.365079")
    # Settled in base units: 79.365079 × 0.63 = 49.99999977 pays 49.999999.
    assert order.average_price == D("0.62999999")
    (recorded,) = fake.orders.values()
    signed = recorded["_signed_order"]
    # The fake hashes the order on its own; the adapter's hash (from the official client) agrees.
    assert recorded["id"] == order.venue_order_id
    assert recorded["id"] == polymarket.clob_order_hash(signed, chain_id=137, neg_risk=False)
    # The fake recovered the EIP-712 signer and checked the L2 HMAC (or it would have refused).
    assert signed["signer"].lower() == venue.signer.address.lower()
    assert signed["tokenId"] == yes
    assert signed["side"] == "BUY"
    assert signed["makerAmount"] == "50000000"  # USDC in 6-decimal units
    assert recorded["_metadata"] == order_metadata(client_order_id)
    assert recorded["owner"] == registered.api_key
    assert fake.credentials(registered.api_key).balance == D("1000") - D("49.999999")


def test_an_official_client_order_with_a_bad_signature_is_refused(fake, trading, monkeypatch):
    venue, listing, *_ = trading
    real = venue.signer.sign_market_order

    def tampered(**kwargs):
        signed = real(**kwargs)
        body = json.loads(signed.payload)
        body["order"]["makerAmount"] = str(int(body["order"]["makerAmount"]) * 2)
        return polymarket.SignedMarketOrder(signed.order_id, json.dumps(body))

    monkeypatch.setattr(venue.signer, "sign_market_order", tampered)
    order = venue.market_order_place(listing, "buy", notional=D("10"), client_order_id=order_id())
    assert order.status == VenueOrderStatus.REJECTED
    assert order.reason == "invalid signature"
    assert fake.orders == {}


def test_placing_the_same_order_twice_sends_it_once(fake, trading):
    venue, listing, *_ = trading
    client_order_id = order_id()
    first = venue.market_order_place(
        listing, "buy", notional=D("20"), client_order_id=client_order_id
    )
    again = venue.market_order_place(
        listing, "buy", notional=D("20"), client_order_id=client_order_id
    )
    assert again == first
    assert venue.order_status(listing, client_order_id=client_order_id) == first
    assert len(fake.requests_to("clob", "/order", method="POST")) == 1
    assert len(fake.orders) == 1


def test_a_lost_answer_is_reconciled_not_sent_again(fake, trading):
    venue, listing, *_ = trading
    client_order_id = order_id()
    fake.lose_next_order_response()

    with pytest.raises(VenueTimeout):
        venue.market_order_place(listing, "buy", notional=D("30"), client_order_id=client_order_id)

    status = venue.order_status(listing, client_order_id=client_order_id)
    assert status.status == VenueOrderStatus.FILLED
    assert status.average_price == pytest.approx(D("0.63"), abs=D("0.00000001"))
    retried = venue.market_order_place(
        listing, "buy", notional=D("30"), client_order_id=client_order_id
    )
    assert retried == status
    assert len(fake.requests_to("clob", "/order", method="POST")) == 1
    assert len(fake.orders) == 1


def test_an_order_the_venue_never_got_is_resent_identically(fake, trading):
    venue, listing, *_ = trading
    client_order_id = order_id()
    fake.fail_next(503, path="/order")  # refused before it was processed

    with pytest.raises(VenueTimeout):
        venue.market_order_place(listing, "buy", notional=D("30"), client_order_id=client_order_id)
    assert venue.order_status(listing, client_order_id=client_order_id) is None

    order = venue.market_order_place(
        listing, "buy", notional=D("30"), client_order_id=client_order_id
    )

    assert order.status == VenueOrderStatus.FILLED
    first, second = fake.requests_to("clob", "/order", method="POST")
    assert first.body == second.body  # the same signed order: one fill at most
    assert len(fake.orders) == 1


def test_a_fill_beyond_the_worst_price_is_rejected_without_sending(fake, trading):
    venue, listing, *_ = trading
    # 100 shares at 0.63 then nothing: 100 USDC cannot be filled at all.
    thin = venue.market_order_place(listing, "buy", notional=D("100"), client_order_id=order_id())
    assert thin.status == VenueOrderStatus.REJECTED
    assert thin.reason == "Not enough liquidity in the book."
    limited = venue.market_order_place(
        listing, "sell", notional=D("10"), client_order_id=order_id(), worst_price=D("0.62")
    )
    assert limited.status == VenueOrderStatus.REJECTED
    assert limited.reject_code == PRICE_LIMIT
    assert fake.requests_to("clob", "/order", method="POST") == []


def test_a_refusal_by_the_venue_is_rejected_with_its_reason(fake, trading):
    venue, listing, *_ = trading
    fake.fail_next(400, path="/order")
    order = venue.market_order_place(listing, "buy", notional=D("5"), client_order_id=order_id())
    assert order.status == VenueOrderStatus.REJECTED
    assert order.reason == "injected HTTP 400"


def test_no_trades_the_no_token_and_sells_raise_the_notional(fake, trading):
    venue, listing, _, yes, no = trading
    bought = venue.market_order_place(
        listing, "buy", notional=D("39"), client_order_id=order_id(), outcome=Outcome.NO
    )
    assert bought.status == VenueOrderStatus.FILLED
    assert bought.average_price == D("0.39000000")
    assert bought.quantity == D("100")
    sold = venue.market_order_place(listing, "sell", notional=D("61"), client_order_id=order_id())
    assert sold.status == VenueOrderStatus.FILLED
    assert (sold.quantity, sold.average_price) == (D("100"), D("0.61000000"))
    tokens = [o["_signed_order"]["tokenId"] for o in fake.orders.values()]
    assert tokens == [no, yes]


def test_a_sale_by_quantity_sells_those_shares_fill_or_kill(fake, trading):
    """A take-profit or stop-loss child sells shares: the signed order's amount is the
    quantity (cut to the cent); a book that cannot take it all refuses it unsent. A buy
    by quantity at a limit spends what the walk says it costs, cut to the cent."""
    venue, listing, *_ = trading
    sold = venue.market_order_place(
        listing, "sell", quantity=D("40.257"), client_order_id=order_id()
    )
    assert (sold.status, sold.quantity, sold.average_price) == (
        VenueOrderStatus.FILLED,
        D("40.25"),
        D("0.61000000"),
    )
    (recorded,) = fake.orders.values()
    assert recorded["_signed_order"]["side"] == "SELL"
    assert recorded["_signed_order"]["makerAmount"] == "40250000"  # shares, 6 decimals
    too_many = venue.market_order_place(
        listing, "sell", quantity=D("100000"), client_order_id=order_id()
    )
    assert too_many.status == VenueOrderStatus.REJECTED
    assert too_many.reason == "Not enough liquidity in the book."
    assert len(fake.orders) == 1
    beyond = venue.market_order_place(
        listing, "buy", quantity=D("5"), client_order_id=order_id(), worst_price=D("0.62")
    )
    assert beyond.status == VenueOrderStatus.REJECTED  # the best ask is 0.63
    assert beyond.reason == "Not enough liquidity in the book at or better than the limit."
    bought = venue.market_order_place(
        listing, "buy", quantity=D("5"), client_order_id=order_id(), worst_price=D("0.63")
    )
    assert bought.status == VenueOrderStatus.FILLED
    assert bought.quantity == D("5") and bought.average_price == D("0.63000000")
    signed = list(fake.orders.values())[-1]["_signed_order"]
    assert (signed["side"], signed["makerAmount"]) == ("BUY", "3150000")  # 5 × 0.63 USDC


def test_the_broker_venue_is_configured_from_settings(fake, settings):
    from eth_account import Account

    yes, _ = fake.market_tokens(fed_market(fake))
    fake.set_book(yes, bids=[("0.61", "100")], asks=[("0.63", "100")])
    registered = fake.register_credentials(
        address=Account.from_key(BROKER_KEY).address, balance="100"
    )
    settings.POLYMARKET_DATA_URL = fake.data_url
    settings.POLYMARKET_GAMMA_URL = fake.gamma_url
    settings.POLYMARKET_CLOB_URL = fake.clob_url
    settings.POLYMARKET_PRIVATE_KEY = BROKER_KEY
    settings.POLYMARKET_CLOB_API_KEY = registered.api_key
    settings.POLYMARKET_CLOB_API_SECRET = registered.secret
    settings.POLYMARKET_CLOB_API_PASSPHRASE = registered.passphrase

    order = PolymarketVenue("polymarket").market_order_place(
        polymarket_listing(yes), "buy", notional=D("6.30"), client_order_id=order_id()
    )

    assert (order.status, order.quantity) == (VenueOrderStatus.FILLED, D("10"))
    assert fake.credentials(registered.api_key).balance == D("93.70")


def test_without_broker_keys_placing_is_improperly_configured(fake, client, settings):
    settings.POLYMARKET_PRIVATE_KEY = ""
    yes, _ = fake.market_tokens(fed_market(fake))
    fake.set_book(yes, asks=[("0.63", "100")])
    with pytest.raises(ImproperlyConfigured):
        PolymarketVenue("polymarket", client=client).market_order_place(
            polymarket_listing(yes), "buy", notional=D("5"), client_order_id=order_id()
        )


def test_order_status_of_an_order_never_sent_is_none(trading):
    venue, listing, *_ = trading
    assert venue.order_status(listing, client_order_id=order_id()) is None
