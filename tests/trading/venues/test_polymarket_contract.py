"""Polymarket's documented wire shapes against the fake and the adapter, and the
dead-man switch (heartbeats) end to end.

Each file in trading/venues/fakes/examples/polymarket/ records one endpoint's
request and answer as Polymarket documents them (with its page and version):
the fake must answer the documented request in that shape, and what our adapter
sends must be what the page lists. Everything goes over real HTTP to the
loopback `FakePolymarket`, on a clock the tests move.
"""

import json
import logging
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from eth_account import Account
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.clob_types import (
    ApiCreds,
    OrderArgsV2,
    OrderType,
    PartialCreateOrderOptions,
)
from py_clob_client_v2.order_utils.model.order_data_v1 import SignedOrderV1, order_to_json_v1
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
from py_clob_client_v2.order_utils.model.side import Side as ClobSide
from py_clob_client_v2.order_utils.model.signature_type_v1 import SignatureTypeV1

from tests.trading.conftest import FakeClock, binary_create
from tests.trading.executing import no_commission, trader
from tests.trading.quoting import put_quote
from trading.models import Fill, Instrument, Listing, Order, Venue
from trading.services.execute import order_execute, orders_reconcile
from trading.venues import polymarket
from trading.venues.base import Side, VenueOrderStatus
from trading.venues.fakes.polymarket import FakeCredentials, FakePolymarket, post_order_check
from trading.venues.polymarket import (
    BrokerHeartbeat,
    ClobCredentials,
    ClobOrderSigner,
    PolymarketClient,
    PolymarketVenue,
    SignerBucket,
    broker_heartbeat,
)
from trading.venues.ratelimit import token_buckets

D = Decimal
EXAMPLES = Path(polymarket.__file__).parent / "fakes" / "examples" / "polymarket"
WALLET = "0x983eedfbd75803602e4a6e6ea9aab6dc6b9c6748"  # the Data API example's wallet
BROKER_KEY = "0x" + "4c" * 32  # test private keys: they never sign anything but fake orders
OTHER_KEY = "0x" + "5d" * 32
V1_FIELDS = {"nonce", "feeRateBps", "taker"}


def example(name: str) -> dict:
    """A recorded example from Polymarket's documentation (see its `source`)."""
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def test_every_recorded_example_is_held_against_the_fake():
    """A new example file needs a contract test here (the list below)."""
    covered = {
        "data_api_positions_v2",
        "post_order_v2",
        "heartbeats",
        "rate_limit_warning",
        "rate_limited_429",
    }
    assert {path.stem for path in EXAMPLES.glob("*.json")} == covered


@pytest.fixture
def fake(clock: FakeClock):
    with FakePolymarket(clock=clock) as server:
        yield server


@pytest.fixture
def client(fake, clock) -> PolymarketClient:
    # A wait the client sleeps (a 429's Retry-After) moves the fake's clock instead.
    return PolymarketClient(
        data_url=fake.data_url,
        gamma_url=fake.gamma_url,
        clob_url=fake.clob_url,
        rate_limit=False,
        sleep=clock.sleep,
    )


def fed_market(fake: FakePolymarket) -> tuple[str, str]:
    """A Yes/No market with books on both tokens: (yes token, no token)."""
    condition_id = fake.add_market(
        slug="fed-cuts-rates-in-december-2026",
        question="Will the Fed cut interest rates at the December 2026 meeting?",
        event_slug="fed-decision-in-december-2026",
        event_title="Fed decision in December 2026",
        prices=("0.62", "0.38"),
    )
    yes, no = fake.market_tokens(condition_id)
    fake.set_book(yes, bids=[("0.61", "1500")], asks=[("0.62", "5000"), ("0.63", "5000")])
    fake.set_book(no, bids=[("0.38", "5000")], asks=[("0.39", "1500")])
    return yes, no


def keys_of(fake: FakePolymarket, private_key: str, balance: str = "1000"):
    """(the fake's record, our credentials) of a CLOB key for `private_key`'s address."""
    registered = fake.register_credentials(
        address=Account.from_key(private_key).address, balance=balance
    )
    return registered, ClobCredentials(
        api_key=registered.api_key,
        api_secret=registered.secret,
        api_passphrase=registered.passphrase,
        address=registered.address,
    )


@pytest.fixture
def broker(fake, client):
    """(venue trading as the broker, yes token, the fake's record of its key)."""
    yes, _ = fed_market(fake)
    registered, credentials = keys_of(fake, BROKER_KEY)
    signer = ClobOrderSigner(
        clob_url=fake.clob_url, private_key=BROKER_KEY, credentials=credentials
    )
    return PolymarketVenue("polymarket", client=client, signer=signer), yes, registered


def market_order(venue: PolymarketVenue, token: str) -> str:
    """The JSON of a FOK buy of 10 USDC the adapter's signer (the official client) makes."""
    return venue.signer.sign_market_order(
        token_id=token,
        side=Side.BUY,
        amount=D("10"),
        limit_price=D("0.63"),
        metadata=polymarket.order_metadata("ord-shape"),
    ).payload


def listing_for(token: str) -> Listing:
    instrument = Instrument(
        symbol="FED-DEC26", kind=Instrument.Kind.BINARY, tick_size=Decimal("0.01")
    )
    return Listing(instrument=instrument, venue=Venue(code="polymarket"), venue_symbol=token)


def signed_post(fake: FakePolymarket, credentials: ClobCredentials, path: str, body: str):
    """A raw L2-signed POST to the fake's CLOB (the response with its headers)."""
    headers = credentials.headers("POST", path, body)
    if body:
        headers["Content-Type"] = "application/json"
    return httpx.post(f"{fake.clob_url}{path}", content=body, headers=headers)


def limit_order(
    fake: FakePolymarket,
    private_key: str,
    registered: FakeCredentials,
    token: str,
    *,
    price: float = 0.5,
    size: float = 10,
) -> str:
    """A limit order built and signed by the official client, as JSON to POST /order."""
    official = ClobClient(
        fake.clob_url,
        chain_id=137,
        key=private_key,
        creds=ApiCreds(registered.api_key, registered.secret, registered.passphrase),
    )
    signed = official.create_order(
        OrderArgsV2(token_id=token, price=price, size=size, side="BUY"),
        PartialCreateOrderOptions(version=2),
    )
    body = order_to_json_v2(signed, registered.api_key, OrderType.GTC)
    return json.dumps(body, separators=(",", ":"))


# ---------------------------------------------------------------------------
# Data API v2 positions (data_api_positions_v2.json)


def test_positions_v2_answer_the_documented_envelope_and_row_fields(fake):
    documented = example("data_api_positions_v2")
    condition_id = fake.add_market(
        slug="slovan-bratislava-2026-08-19",
        question=documented["response"]["body"]["data"][0]["title"],
        event_slug="slovan-bratislava-2026-08-19",
        event_title="ŠK Slovan Bratislava",
    )
    for size in ("86780.64", "12.5"):
        fake.add_position(WALLET, condition_id=condition_id, size=size, avg_price="0.5203")

    first = httpx.get(f"{fake.data_url}{documented['path']}", params=documented["request"]["query"])

    assert first.status_code == documented["response"]["status"]
    body, doc_body = first.json(), documented["response"]["body"]
    assert set(body) == set(doc_body) == {"data", "pagination"}
    assert set(body["pagination"]) == set(doc_body["pagination"])
    (row,) = body["data"]
    (doc_row,) = doc_body["data"]
    assert set(doc_row) <= set(row)  # the page trims its rows; ours carry more
    for name, value in doc_row.items():
        # snake_case, and numbers as JSON numbers, strings as strings, as documented.
        assert isinstance(row[name], str) == isinstance(value, str), name
    assert row["status"] in ("OPEN", "REDEEMABLE", "CLOSED")
    assert body["pagination"]["has_more"] is True
    cursor = body["pagination"]["next_cursor"]
    assert isinstance(cursor, str) and cursor
    # Following the cursor (with the anchor restated, as the newer page asks) ends the walk.
    last = httpx.get(
        f"{fake.data_url}/v2/positions", params={"user": WALLET, "cursor": cursor}
    ).json()
    assert len(last["data"]) == 1
    assert last["pagination"]["has_more"] is False and last["pagination"]["next_cursor"] is None
    # A documented miss is an empty list, never an error.
    other = httpx.get(f"{fake.data_url}/v2/positions", params={"user": "0x" + "1" * 40})
    assert other.status_code == 200 and other.json()["data"] == []


# ---------------------------------------------------------------------------
# POST /order (post_order_v2.json)


def test_the_adapter_sends_exactly_the_documented_v2_order(fake, broker):
    venue, yes, registered = broker
    documented = example("post_order_v2")

    placed = venue.market_order_place(
        listing_for(yes), "buy", notional=D("31"), client_order_id="ord-contract"
    )

    assert placed.status == VenueOrderStatus.FILLED
    (call,) = fake.requests_to("clob", documented["path"], method=documented["method"])
    sent = json.loads(call.body)
    assert set(sent) == set(documented["request"])
    assert set(sent["order"]) == set(documented["request"]["order"])
    assert not V1_FIELDS & set(sent["order"])
    for name in documented["required_request_fields"]:
        where = sent
        for part in name.split("."):
            assert part in where, name
            where = where[part]
    order = sent["order"]
    assert sent["owner"] == registered.api_key and sent["orderType"] == "FOK"
    assert sent["postOnly"] is False and sent["deferExec"] is False
    assert order["side"] == "BUY" and order["signatureType"] == 0
    assert isinstance(order["salt"], int)
    for amount in ("makerAmount", "takerAmount", "timestamp", "expiration"):
        assert isinstance(order[amount], str) and order[amount].isdigit(), amount
    assert int(order["timestamp"]) > 10**12  # milliseconds
    for bytes32 in ("metadata", "builder"):
        assert order[bytes32].startswith("0x") and len(order[bytes32]) == 66, bytes32
    assert order["metadata"] == polymarket.order_metadata("ord-contract")


def test_post_order_answers_have_the_documented_fields(fake, broker, client):
    venue, yes, registered = broker
    documented = example("post_order_v2")
    live_fields = set(documented["response"]["body"])  # the page's "live" example
    venue.market_order_place(listing_for(yes), "buy", notional=D("31"), client_order_id="ord-m")
    (call,) = fake.requests_to("clob", "/order", method="POST")
    matched = json.loads(call.body)
    credentials = venue.signer.credentials

    again = signed_post(fake, credentials, "/order", call.body)  # answered as the first time
    resting = signed_post(
        fake, credentials, "/order", limit_order(fake, BROKER_KEY, registered, yes)
    )

    assert again.status_code == resting.status_code == documented["response"]["status"]
    # The page's matched example adds transactionsHashes and tradeIDs.
    assert set(again.json()) == live_fields | {"transactionsHashes", "tradeIDs"}
    assert again.json()["status"] == "matched" and again.json()["success"] is True
    assert set(resting.json()) == live_fields
    assert resting.json()["status"] == "live" and resting.json()["errorMsg"] == ""
    # The page's own request body passes the fake's V2 shape check as it is.
    assert post_order_check(documented["request"]) == ("GTC", False)
    assert post_order_check(matched) == ("FOK", False)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"order": {"nonce": "0"}}, "nonce is a CLOB V1 order field"),
        ({"order": {"feeRateBps": "0"}}, "feeRateBps is a CLOB V1 order field"),
        ({"order": {"taker": "0x" + "0" * 40}}, "taker is a CLOB V1 order field"),
        ({"order": {"extra": 1}}, "unknown field extra"),
        ({"clientOrderId": "ord-1"}, "unknown field clientOrderId"),
        ({"order": {"timestamp": None}}, "timestamp is required"),
        ({"order": {"metadata": None}}, "metadata is required"),
        ({"order": {"builder": None}}, "builder is required"),
        ({"orderType": "IOC"}, "unknown orderType IOC"),
        ({"postOnly": True}, "postOnly is only supported for GTC and GTD"),
    ],
)
def test_the_fake_refuses_what_clob_v2_does_not_take(fake, broker, client, change, message):
    venue, yes, _ = broker
    body = json.loads(market_order(venue, yes))
    for name, value in change.items():
        if name == "order":
            for field, field_value in value.items():
                if field_value is None:
                    del body["order"][field]
                else:
                    body["order"][field] = field_value
        else:
            body[name] = value

    raw = signed_post(fake, venue.signer.credentials, "/order", json.dumps(body))
    answer = client.order_post(venue.signer.credentials, json.dumps(body))

    assert raw.status_code == 400
    assert set(raw.json()) == {"error"}  # Polymarket's error shape
    assert message in raw.json()["error"]
    assert answer["success"] is False and message in answer["errorMsg"]
    assert fake.orders == {}


def test_an_order_in_the_v1_shape_of_the_official_client_is_refused(fake, broker):
    venue, yes, registered = broker
    v2 = json.loads(market_order(venue, yes))["order"]
    v1 = SignedOrderV1(
        salt=str(v2["salt"]),
        maker=v2["maker"],
        signer=v2["signer"],
        taker="0x" + "0" * 40,
        tokenId=v2["tokenId"],
        makerAmount=v2["makerAmount"],
        takerAmount=v2["takerAmount"],
        expiration="0",
        nonce="0",
        feeRateBps="0",
        side=ClobSide.BUY,
        signatureType=SignatureTypeV1(0),
        signature=v2["signature"],
    )
    body = json.dumps(order_to_json_v1(v1, registered.api_key, OrderType.FOK))

    answer = signed_post(fake, venue.signer.credentials, "/order", body)

    assert answer.status_code == 400
    assert "CLOB V1 order field" in answer.json()["error"]
    assert fake.orders == {}


# ---------------------------------------------------------------------------
# Per-signer order buckets (rate_limit_warning.json, rate_limited_429.json)


def _limit_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("poly-ratelimit")}


def test_order_calls_report_the_signers_bucket_and_warn_in_warning_mode(fake, broker):
    venue, yes, _ = broker
    documented = example("rate_limit_warning")
    fake.rate_limit_warning_mode = True
    venue.market_order_place(listing_for(yes), "buy", notional=D("31"), client_order_id="ord-w")
    (call,) = fake.requests_to("clob", "/order", method="POST")
    credentials = venue.signer.credentials

    # The clock stands still: the first POST and these 59 replays empty the burst of 60.
    started = int(time.time())
    answers = [signed_post(fake, credentials, "/order", call.body) for _ in range(59)]
    warned = signed_post(fake, credentials, documented["path"], call.body)

    assert all(a.status_code == 200 and "poly-ratelimit-warning" not in a.headers for a in answers)
    assert answers[0].headers["Poly-RateLimit-Remaining"] == "58"
    assert answers[-1].headers["Poly-RateLimit-Remaining"] == "0"
    assert answers[0].headers["Poly-RateLimit-Tier"] == "Standard"
    assert int(answers[0].headers["Poly-RateLimit-Reset"]) >= started  # now: nothing to wait
    assert warned.status_code == documented["response"]["status"]  # served all the same
    assert {h.lower() for h in documented["response"]["headers"]} == {
        h.lower() for h in _limit_headers(warned)
    }
    assert warned.headers["Poly-RateLimit-Warning"] == "true"
    assert warned.headers["Poly-RateLimit-Remaining"] == "-1"
    assert set(documented["response"]["body"]) <= set(warned.json())


def test_an_empty_order_bucket_answers_429_and_the_client_waits_its_retry_after(
    fake, broker, clock
):
    venue, yes, _ = broker
    documented = example("rate_limited_429")
    venue.market_order_place(listing_for(yes), "buy", notional=D("31"), client_order_id="ord-r")
    (call,) = fake.requests_to("clob", "/order", method="POST")
    credentials = venue.signer.credentials
    for _ in range(59):
        signed_post(fake, credentials, "/order", call.body)
    # Another signer's bucket is its own.
    other_record, other = keys_of(fake, OTHER_KEY)
    other_order = limit_order(fake, OTHER_KEY, other_record, yes)
    assert signed_post(fake, other, "/order", other_order).status_code == 200

    refused = signed_post(fake, credentials, documented["path"], call.body)

    assert refused.status_code == documented["response"]["status"]
    assert {h.lower() for h in documented["response"]["headers"]} <= {
        h.lower() for h in refused.headers
    }
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["Poly-RateLimit-Remaining"] == "0"
    assert "poly-ratelimit-warning" not in refused.headers
    # Our client waits the advised second (the fake's clock moves) and is then served.
    before = clock.now
    answer = venue.client.order_post(credentials, call.body)
    assert clock.now - before == 1.0
    assert answer["status"] == "matched"


# ---------------------------------------------------------------------------
# POST /heartbeats (heartbeats.json) and the dead-man switch


def test_heartbeats_answer_as_documented_with_or_without_a_body(fake, broker):
    venue, _, registered = broker
    documented = example("heartbeats")
    credentials = venue.signer.credentials

    bare = signed_post(fake, credentials, documented["path"], "")  # the page's curl: no body
    extra = signed_post(fake, credentials, "/heartbeats", '{"heartbeat_id": "", "unknown": 1}')
    unsigned = httpx.post(f"{fake.clob_url}/heartbeats")
    not_an_object = signed_post(fake, credentials, "/heartbeats", "[1]")

    assert bare.status_code == extra.status_code == documented["response"]["status"]
    assert bare.json() == extra.json() == documented["response"]["body"]
    assert unsigned.status_code == 401 and set(unsigned.json()) == {"error"}
    assert not_an_object.status_code == 400 and set(not_an_object.json()) == {"error"}
    assert fake.last_heartbeat(registered.address) is not None
    # Our client's heartbeat: the official client's body, the documented answer.
    assert venue.heartbeat() == ""
    sent = fake.requests_to("clob", "/heartbeats")[-1]
    assert json.loads(sent.body) == {"heartbeat_id": ""}


def test_a_lapsed_heartbeat_cancels_that_users_open_orders_once(fake, broker, client, clock):
    """The fake's switch itself: our broker places only fill-or-kill orders, so
    its open orders here are limit orders made with the official client."""
    venue, yes, registered = broker
    broker_keys = venue.signer.credentials
    other_record, other_keys = keys_of(fake, OTHER_KEY)
    unarmed = client.order_post(other_keys, limit_order(fake, OTHER_KEY, other_record, yes))
    resting = client.order_post(broker_keys, limit_order(fake, BROKER_KEY, registered, yes))
    assert resting["status"] == unarmed["status"] == "live"
    venue.heartbeat()  # arms the broker's switch; the other user never sends one

    clock.sleep(fake.heartbeat_timeout_seconds)  # not yet a lapse
    assert fake.expire_heartbeats() == []
    assert client.order_get(broker_keys, resting["orderID"])["status"] == "LIVE"
    clock.sleep(1)

    # Seen by the next request (and the background sweep), as on the venue.
    assert client.order_get(broker_keys, resting["orderID"])["status"] == "CANCELED"
    assert client.order_get(other_keys, unarmed["orderID"])["status"] == "LIVE"
    assert fake.heartbeat_cancellations == [(registered.address, [resting["orderID"]])]
    # Disarmed until the next heartbeat: an order placed now rests on.
    later = client.order_post(broker_keys, limit_order(fake, BROKER_KEY, registered, yes, size=11))
    clock.sleep(60)
    assert client.order_get(broker_keys, later["orderID"])["status"] == "LIVE"
    assert [o["id"] for o in fake.open_orders(registered.address)] == [later["orderID"]]


def test_heartbeats_keep_the_open_orders_alive(fake, broker, client, clock):
    venue, yes, registered = broker
    resting = client.order_post(
        venue.signer.credentials, limit_order(fake, BROKER_KEY, registered, yes)
    )
    for _ in range(6):
        venue.heartbeat()
        clock.sleep(5)
    assert fake.expire_heartbeats() == []
    assert fake.orders[resting["orderID"]]["status"] == "LIVE"


class Role:
    """A stand-in for the feed's Leadership: held or not, as the test says."""

    def __init__(self, held: bool):
        self.held = held


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_the_heartbeat_loop_sends_heartbeats_while_it_holds_the_role(fake, broker):
    venue, _, registered = broker
    role = Role(held=False)

    with BrokerHeartbeat(venue, every=0.02, leadership=role) as heartbeat:
        time.sleep(0.15)
        assert fake.requests_to("clob", "/heartbeats") == []  # standing by: none sent
        role.held = True
        assert wait_for(lambda: heartbeat.sent >= 3)

    sent = fake.requests_to("clob", "/heartbeats", method="POST")
    assert len(sent) >= 3
    assert all(json.loads(r.body) == {"heartbeat_id": ""} for r in sent)
    assert all(
        {k.upper(): v for k, v in r.headers.items()}["POLY_API_KEY"] == registered.api_key
        for r in sent
    )
    assert fake.last_heartbeat(registered.address) is not None
    count = len(sent)
    time.sleep(0.1)
    assert len(fake.requests_to("clob", "/heartbeats")) == count  # stopped with its context


def test_failed_heartbeats_are_logged_once_and_the_loop_goes_on(fake, broker, caplog):
    venue, _, _ = broker
    heartbeat = BrokerHeartbeat(venue, every=0.02)
    fake.outage(True)

    with caplog.at_level(logging.INFO, logger="trading.venues.polymarket"):
        assert heartbeat.beat() is False
        assert heartbeat.beat() is False
        fake.outage(False)
        assert heartbeat.beat() is True

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "heartbeat failed" in errors[0].getMessage()
    assert any("acknowledged again after 2 failures" in r.getMessage() for r in caplog.records)
    assert venue.signer.credentials.api_secret not in caplog.text
    # In the thread: an outage does not end the loop; heartbeats resume after it.
    fake.outage(True)
    with BrokerHeartbeat(venue, every=0.02) as looping:
        assert wait_for(lambda: looping.failed_in_a_row >= 3)
        fake.outage(False)
        assert wait_for(lambda: looping.sent >= 1)


def test_a_heartbeat_without_broker_keys_is_logged_not_raised(fake, client, settings, caplog):
    settings.POLYMARKET_PRIVATE_KEY = ""
    heartbeat = BrokerHeartbeat(PolymarketVenue("polymarket", client=client), every=1)
    with caplog.at_level(logging.ERROR, logger="trading.venues.polymarket"):
        assert heartbeat.beat() is False
    assert "POLYMARKET_PRIVATE_KEY" in caplog.text
    with pytest.raises(ImproperlyConfigured):
        PolymarketVenue("polymarket", client=client).heartbeat()


def test_a_heartbeat_id_in_the_answer_is_echoed_and_a_refused_one_dropped(fake, broker):
    venue, _, _ = broker
    heartbeat = BrokerHeartbeat(venue, every=1)
    # Third-party clients report a chained heartbeat_id; Polymarket's page shows none.
    fake.fail_next(200, path="/heartbeats", body=b'{"status": "ok", "heartbeat_id": "hb-1"}')
    assert heartbeat.beat()
    fake.fail_next(400, path="/heartbeats", body=b'{"error": "Invalid Heartbeat ID"}')
    assert heartbeat.beat() is False
    assert heartbeat.beat()

    bodies = [json.loads(r.body)["heartbeat_id"] for r in fake.requests_to("clob", "/heartbeats")]
    assert bodies == ["", "hb-1", ""]


def test_the_heartbeat_interval_comes_from_settings(client, settings):
    venue = PolymarketVenue("polymarket", client=client)
    assert broker_heartbeat(venue).every == 5.0
    settings.POLYMARKET_HEARTBEAT_SECONDS = 2.5
    assert broker_heartbeat(venue).every == 2.5


@pytest.mark.django_db
def test_when_heartbeats_stop_the_reconciler_books_the_venues_cancellation(
    fake, clock, settings, quote_store
):
    """End to end: a broker order the CLOB holds (`delayed`) is cancelled by the
    venue once the heartbeats lapse; orders_reconcile books it and frees the cash."""
    yes, _ = fed_market(fake)
    registered, _ = keys_of(fake, BROKER_KEY)
    settings.VENUE_ADAPTERS = {**settings.VENUE_ADAPTERS, "polymarket": "polymarket"}
    settings.POLYMARKET_DATA_URL = fake.data_url
    settings.POLYMARKET_GAMMA_URL = fake.gamma_url
    settings.POLYMARKET_CLOB_URL = fake.clob_url
    settings.POLYMARKET_PRIVATE_KEY = BROKER_KEY
    settings.POLYMARKET_CLOB_API_KEY = registered.api_key
    settings.POLYMARKET_CLOB_API_SECRET = registered.secret
    settings.POLYMARKET_CLOB_API_PASSPHRASE = registered.passphrase
    no_commission()
    instrument = binary_create("ELECT", "0.01", "polymarket")
    Listing.objects.filter(instrument=instrument).update(venue_symbol=yes)
    put_quote("ELECT@polymarket", bid="0.61", ask="0.62")
    account = trader("1000")
    fake.delay_next_order()

    order = order_execute(
        account=account, symbol="ELECT", side="buy", notional_usdc=D("60"), venue="polymarket"
    )
    assert order.status == Order.Status.PENDING
    assert broker_heartbeat(PolymarketVenue("polymarket")).beat()  # the feed's heartbeat
    assert orders_reconcile().still_pending == [order.public_id]  # the CLOB still holds it
    assert fake.orders[order.venue_order_id]["status"] == "DELAYED"

    clock.sleep(fake.heartbeat_timeout_seconds + 1)  # the feed went silent
    summary = orders_reconcile()

    assert summary.closed == [order.public_id]
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert order.reject_code == "venue_cancelled"
    assert not Fill.objects.filter(order=order).exists()
    account.refresh_from_db()
    assert account.orders_reserved == 0 and account.cash_balance == D("1000")
    assert fake.heartbeat_cancellations == [(registered.address, [order.venue_order_id])]


def test_the_fake_sweeps_lapsed_heartbeats_without_being_asked():
    """On the real clock, no request needed: the background sweep cancels."""
    with FakePolymarket(heartbeat_timeout_seconds=0.1) as fake:
        yes, _ = fed_market(fake)
        registered, credentials = keys_of(fake, BROKER_KEY)
        client = PolymarketClient(
            data_url=fake.data_url,
            gamma_url=fake.gamma_url,
            clob_url=fake.clob_url,
            rate_limit=False,
        )
        resting = client.order_post(credentials, limit_order(fake, BROKER_KEY, registered, yes))
        client.heartbeat(credentials)
        requests_before = len(fake.requests)

        assert wait_for(lambda: fake.orders[resting["orderID"]]["status"] == "CANCELED")
        assert len(fake.requests) == requests_before


def test_matched_amounts_are_read_as_six_decimal_fixed_math(broker):
    """The docs' matched answer (100000000 USDC units for 200000000 share units) is a
    fill of 200 shares at 0.50; an answer beyond what the order signed is refused."""
    venue, _, _ = broker
    payload = json.dumps({"order": {"makerAmount": "100000000", "takerAmount": "200000000"}})
    record = {"client_order_id": "ord-fm", "order_id": "0xabc", "side": "buy", "payload": payload}
    answer = {**example("post_order_v2")["response"]["body"], "status": "matched"}

    order = venue._from_answer(record, answer)

    assert (order.quantity, order.average_price) == (D("200"), D("0.5"))
    with pytest.raises(polymarket.VenueBadResponse, match="larger than the order"):
        venue._from_answer(record, {**answer, "makingAmount": "100000001"})


def test_a_rate_limit_warning_slows_the_signers_bucket_before_any_refusal(fake, broker, clock):
    metered, yes, _ = broker
    client = PolymarketClient(
        data_url=fake.data_url, gamma_url=fake.gamma_url, clob_url=fake.clob_url, sleep=clock.sleep
    )
    venue = PolymarketVenue("polymarket", client=client, signer=metered.signer)
    fake.rate_limit_warning_mode = True
    for n in range(61):  # the burst is 60: the 61st order is served with a warning
        venue.market_order_place(
            listing_for(yes), "buy", notional=D("1"), client_order_id=f"ord-warn-{n}"
        )

    bucket = SignerBucket.orders_of(venue.signer.credentials)
    (state,) = [b for b in token_buckets(bucket.key) if b.key == bucket.key]
    assert state.count_warning >= 1 and state.last_warning is not None
    assert state.count_429 == 0  # slowed before the venue refused anything
