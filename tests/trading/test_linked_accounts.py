"""Linked (non-custodial) accounts end to end against the loopback fake Kalshi and Polymarket:
link (verified with the venue's real signature check), sync, failures, unlink, and
the risk view the same engine gives them."""

import uuid
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from accounts.models import Account, LinkedCredential
from portal.errors import Conflict, Forbidden, InvalidParams
from portal.money import money
from tests.api.conftest import client_for, key_issue
from tests.factories import UserFactory
from trading.marketdata import store
from trading.marketdata.quotes import ONE, Outcome
from trading.models import Instrument, Position
from trading.selectors import contract_symbol, margin_summaries_get, money_decimal
from trading.services.linked_accounts import (
    linked_account_link,
    linked_account_sync,
    linked_account_unlink,
    linked_credential_rotate,
    linked_credentials_due,
)
from trading.services.margin_book import MarginBook
from trading.venues.fakes.kalshi import FakeKalshi, rsa_key_pair, seed_demo
from trading.venues.fakes.polymarket import FakePolymarket
from trading.venues.fakes.polymarket import seed_demo as polymarket_seed_demo
from trading.venues.kalshi import WRITE_SCOPE_WARNING
from trading.venues.tracking import VenueAuthError
from trading.web.figures import dashboard_snapshot

D = Decimal
FED = "KXFEDDECISION-26DEC-H0"
CPI = "KXCPIYOY-26NOV-T3.0"


@pytest.fixture(scope="module")
def other_key():
    return rsa_key_pair()


@pytest.fixture
def fake(settings, monkeypatch):
    # The adapter's retries of a failing read still happen, without its real waits.
    monkeypatch.setattr("trading.venues.kalshi.backoff_seconds", lambda base, attempt: 0.01)
    with FakeKalshi() as server:
        settings.KALSHI_BASE_URLS = {"production": server.base_url, "demo": server.base_url}
        yield server


@pytest.fixture
def seeded(fake):
    """The fake's demo account under a fresh key id (read+write scopes)."""
    return seed_demo(fake, key_id=f"key-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def owner(db):
    return UserFactory()


def link(owner, seeded, **extra):
    return linked_account_link(
        user=owner,
        venue="kalshi",
        environment="demo",
        key_id=seeded.key_id,
        private_key_pem=seeded.private_key_pem,
        **extra,
    )


def held(account) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    return {
        (p.instrument.symbol, p.outcome): (p.quantity, p.average_price)
        for p in Position.objects.filter(account=account, quantity__gt=0).select_related(
            "instrument"
        )
    }


def test_linking_verifies_with_the_venue_and_opens_a_non_custodial_account(owner, seeded):
    credential = link(owner, seeded, name="My Kalshi")
    account = credential.account
    assert account.kind == Account.Kind.NON_CUSTODIAL and account.name == "My Kalshi"
    assert credential.status == LinkedCredential.Status.ACTIVE
    assert credential.scopes == "read,write"
    assert credential.warning == WRITE_SCOPE_WARNING  # write scope where read would do
    assert credential.secrets() == {"private_key_pem": seeded.private_key_pem.strip() + "\n"}
    assert seeded.private_key_pem.split("\n")[1] not in credential.sealed_secret
    assert credential.last_verified_at is not None


def test_a_key_the_venue_refuses_is_not_stored(owner, fake, seeded, other_key):
    with pytest.raises(VenueAuthError):
        linked_account_link(
            user=owner,
            venue="kalshi",
            environment="demo",
            key_id=seeded.key_id,
            private_key_pem=other_key[0],  # signs with a key Kalshi does not know
        )
    assert not LinkedCredential.objects.exists()
    assert not Account.objects.filter(owner=owner).exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"environment": "staging"},
        {"key_id": "x"},
        {"private_key_pem": "not a key"},
    ],
)
def test_bad_input_is_refused_before_the_venue_is_asked(owner, fake, seeded, fields):
    values = {
        "environment": "demo",
        "key_id": seeded.key_id,
        "private_key_pem": seeded.private_key_pem,
        **fields,
    }
    with pytest.raises(InvalidParams):
        linked_account_link(user=owner, venue="kalshi", **values)
    assert fake.requests == []


def test_kyb_and_duplicates_are_refused(owner, seeded):
    with pytest.raises(Forbidden):
        link(UserFactory(kyb_status="pending"), seeded)
    link(owner, seeded)
    with pytest.raises(Conflict):
        link(owner, seeded)


def test_a_sync_mirrors_cash_and_positions_and_running_it_twice_changes_nothing(owner, seeded):
    credential = link(owner, seeded)
    first = linked_account_sync(credential_id=credential.pk)
    assert first.ok and first.positions == 2
    positions = held(credential.account)
    assert positions == {
        (FED, "yes"): (Decimal("120"), Decimal("0.59")),  # exposure 70.80 / 120
        (CPI, "no"): (Decimal("80"), Decimal("0.64")),  # 51.20 / 80
    }
    rows = list(Position.objects.filter(account=credential.account).values())
    credential.refresh_from_db()
    assert credential.cash_balance == Decimal("1250.000000")
    assert credential.last_synced_at is not None and credential.last_error == ""
    # Unknown markets became halted instruments: tracked, never traded through us.
    fed = Instrument.objects.get(symbol=FED)
    assert fed.status == Instrument.Status.HALTED and fed.event.title

    again = linked_account_sync(credential_id=credential.pk)
    assert again.ok
    assert list(Position.objects.filter(account=credential.account).values()) == rows


def test_a_position_closed_on_the_venue_is_closed_here(owner, fake, seeded):
    credential = link(owner, seeded)
    linked_account_sync(credential_id=credential.pk)
    fake.position_set(seeded.key_id, CPI, 0, "0")
    linked_account_sync(credential_id=credential.pk)
    assert held(credential.account) == {(FED, "yes"): (Decimal("120"), Decimal("0.59"))}


def test_a_venue_outage_keeps_the_last_good_positions_and_backs_off(owner, fake, seeded, settings):
    settings.LINKED_SYNC_INTERVAL_SECONDS = 60
    credential = link(owner, seeded)
    linked_account_sync(credential_id=credential.pk)
    before = held(credential.account)
    fake.outage(True)
    now = timezone.now()
    outcome = linked_account_sync(credential_id=credential.pk, now=now)
    assert not outcome.ok and outcome.error.startswith("venue_unavailable")
    credential.refresh_from_db()
    assert credential.status == LinkedCredential.Status.FAILING
    assert credential.consecutive_failures == 1
    assert credential.next_sync_at == now + timedelta(seconds=120)
    assert credential.cash_balance == Decimal("1250.000000")
    assert held(credential.account) == before
    linked_account_sync(credential_id=credential.pk, now=now)
    credential.refresh_from_db()
    assert credential.next_sync_at == now + timedelta(seconds=240)  # doubling
    assert credential.pk not in linked_credentials_due(now=now + timedelta(seconds=200))

    fake.outage(False)
    assert linked_account_sync(credential_id=credential.pk).ok
    credential.refresh_from_db()
    assert credential.status == LinkedCredential.Status.ACTIVE
    assert credential.consecutive_failures == 0 and credential.last_error == ""


def test_a_revoked_key_is_recorded_not_wiped(owner, fake, seeded):
    credential = link(owner, seeded)
    linked_account_sync(credential_id=credential.pk)
    fake.key_remove(seeded.key_id)
    outcome = linked_account_sync(credential_id=credential.pk)
    assert outcome.error.startswith("venue_auth_failed")
    assert len(held(credential.account)) == 2


def test_the_risk_view_uses_the_venue_cash_without_borrowing(owner, seeded):
    credential = link(owner, seeded)
    linked_account_sync(credential_id=credential.pk)
    account = Account.objects.get(pk=credential.account_id)
    [summary] = margin_summaries_get([account])
    assert summary.cash == summary.deposit == Decimal("1250.000000")
    assert summary.used_margin == Decimal("0") and summary.health is None
    assert summary.adjusted_equity > summary.cash  # the positions count, haircut
    assert {row.symbol for row in summary.breakdown} == {FED, CPI}


def test_unlink_erases_the_secret_and_stops_syncing_then_rotate_links_again(owner, seeded):
    credential = link(owner, seeded)
    linked_account_sync(credential_id=credential.pk)
    with pytest.raises(Forbidden):
        linked_account_unlink(credential=credential, actor=UserFactory())
    credential = linked_account_unlink(credential=credential, actor=owner)
    assert credential.sealed_secret == "" and credential.status == "unlinked"
    assert linked_account_sync(credential_id=credential.pk).skipped == "unlinked"
    assert len(held(credential.account)) == 2  # the last synced positions stay

    credential = linked_credential_rotate(
        credential=credential,
        actor=owner,
        key_id=seeded.key_id,
        private_key_pem=seeded.private_key_pem,
    )
    assert credential.status == "active" and credential.rotated_at is not None
    assert linked_account_sync(credential_id=credential.pk).ok


@pytest.fixture
def fake_polymarket(settings):
    with FakePolymarket() as server:
        settings.POLYMARKET_DATA_URL = server.data_url
        settings.POLYMARKET_GAMMA_URL = server.gamma_url
        settings.POLYMARKET_CLOB_URL = server.clob_url
        yield server


def test_a_polymarket_wallet_syncs_open_positions_and_cash_only_with_clob_keys(
    owner, fake_polymarket
):
    seed = polymarket_seed_demo(fake_polymarket)
    uppercase = "0x" + seed.wallet[2:].upper()  # no checksum: accepted as it is
    credential = linked_account_link(user=owner, venue="polymarket", wallet=uppercase)
    assert credential.identity == seed.wallet.lower() and credential.scopes == "read"
    assert linked_account_sync(credential_id=credential.pk).ok
    positions = held(credential.account)
    # The demo wallet's four OPEN positions; REDEEMABLE and CLOSED rows are not held.
    assert len(positions) == 4
    assert all(symbol.startswith("PM-") for symbol, _ in positions)
    credential.refresh_from_db()
    assert credential.cash_balance is None  # a wallet alone does not tell its cash

    with_keys = linked_credential_rotate(
        credential=credential,
        actor=owner,
        clob_api_key=seed.credentials.api_key,
        clob_api_secret=seed.credentials.secret,
        clob_api_passphrase=seed.credentials.passphrase,
    )
    assert with_keys.scopes == "read,trade" and with_keys.warning
    assert linked_account_sync(credential_id=with_keys.pk).ok
    with_keys.refresh_from_db()
    assert with_keys.cash_balance == Decimal("2500.000000")
    assert held(credential.account) == positions


def test_a_polymarket_wallet_with_a_bad_checksum_or_half_the_keys_is_refused(
    owner, fake_polymarket
):
    seed = polymarket_seed_demo(fake_polymarket)
    mixed = seed.wallet[:2] + seed.wallet[2:].upper()[:20] + seed.wallet[22:]
    with pytest.raises(InvalidParams):
        linked_account_link(user=owner, venue="polymarket", wallet=mixed)
    with pytest.raises(InvalidParams, match="all three"):
        linked_account_link(user=owner, venue="polymarket", wallet=seed.wallet, clob_api_key="k")


# ---------------------------------------------------------------------------
# Valuation: synced positions are priced by the one collateral-price rule (SPEC §4)

# A three-position account on wide books (YES bid, YES ask, contracts: > 0 YES, < 0 NO, cost).
WIDE = {
    "KXWIDE-A": ("0.50", "0.70", 120, "66.00"),  # YES: bid 0.50, mid 0.60
    "KXWIDE-B": ("0.34", "0.36", -80, "51.20"),  # NO: bid 1 − 0.36 = 0.64, mid 0.65
    "KXWIDE-C": ("0.21", "0.24", 100, "22.00"),  # YES: bid 0.21, mid 0.225
}
WIDE_COLLATERAL = {"KXWIDE-A": D("0.50"), "KXWIDE-B:NO": D("0.64"), "KXWIDE-C": D("0.21")}


def yes_book_set(fake, ticker: str, bid: str, ask: str) -> None:
    """Kalshi's book holds bids only: a YES ask at p is a NO bid at 1 − p."""
    fake.book_set(ticker, yes=[(bid, 100)], no=[(ONE - D(ask), 100)])


@pytest.fixture
def wide(fake):
    """A read-only key whose account holds WIDE (markets a long way from expiry, so
    figures read a moment apart are equal to the micro-dollar) and 1,000 USDC."""
    key_id = f"key-{uuid.uuid4().hex[:12]}"
    pem, public_key = rsa_key_pair()
    fake.key_add(key_id, public_key, scopes=("read",))
    close = timezone.now().replace(microsecond=0) + timedelta(days=800)
    for ticker, (bid, ask, contracts, cost) in WIDE.items():
        fake.market_add(
            ticker,
            event_ticker=f"{ticker}-EV",
            title=f"{ticker}?",
            close_time=close,
            last_price=bid,
        )
        yes_book_set(fake, ticker, bid, ask)
        fake.position_set(key_id, ticker, contracts, cost)
    fake.balance_set(key_id, "1000.00")
    return SimpleNamespace(key_id=key_id, private_key_pem=pem)


def surfaces(account: Account, book: MarginBook) -> dict[str, tuple]:
    """(collateral prices, Adjusted Equity) of the account as GET /v1/intelligence/margin,
    the dashboard and the margin engine's `book` each give them."""
    api = client_for(key_issue([account])).get("/v1/intelligence/margin").json()
    dashboard = dashboard_snapshot(account=account, history=False)
    figures = book.evaluate(book.slots_of([account.pk]), at=timezone.now())
    return {
        "api": (
            {row["symbol"]: D(row["collateral_price"]) for row in api["breakdown"]},
            api["adjusted_equity"],
        ),
        "dashboard": (
            {row["symbol"]: D(row["collateral_price"]) for row in dashboard["breakdown"]},
            dashboard["summary"]["adjusted_equity"],
        ),
        # The book holds this account's contracts only: their prices, by value.
        "engine": (
            sorted(D(repr(price)) for price in book.contract_price.tolist()),
            money(money_decimal(figures.adjusted_equity[0])),
        ),
    }


def synced(owner, seed) -> Account:
    credential = link(owner, seed)
    assert linked_account_sync(credential_id=credential.pk).ok
    return Account.objects.get(pk=credential.account_id)


def test_synced_positions_are_valued_at_min_of_bid_and_twap_by_the_api_dashboard_and_engine(
    owner, wide, quote_store
):
    account = synced(owner, wide)
    book = MarginBook()
    book.load(consume_changes=False)

    seen = surfaces(account, book)

    assert seen["api"][0] == seen["dashboard"][0] == WIDE_COLLATERAL  # not the mids
    assert seen["engine"][0] == sorted(WIDE_COLLATERAL.values())
    assert seen["api"][1] == seen["dashboard"][1] == seen["engine"][1]
    api = client_for(key_issue([account])).get("/v1/intelligence/margin").json()
    # 120 · 0.50 + 80 · 0.64 + 100 · 0.21 (the mids would give 72 + 52 + 22.5 = 146.5)
    assert D(api["collateral_value"]) == D("132.2")


def test_a_resync_reprices_the_engine_by_its_tick_as_the_api_sees_it(
    owner, fake, wide, quote_store
):
    account = synced(owner, wide)
    book = MarginBook()
    book.load(consume_changes=False)
    yes_book_set(fake, "KXWIDE-A", "0.40", "0.80")  # the spread widens; the mid stays 0.60

    with store.ticks_subscribe() as ticks:
        linked_account_sync(credential_id=account.linked_credential.pk)
        batch = ticks.get(5)
    moved = book.prices_update((quote.symbol for quote in batch.quotes), at=timezone.now())

    assert list(book.account_ids[moved]) == [account.pk]
    seen = surfaces(account, book)
    expected = WIDE_COLLATERAL | {"KXWIDE-A": D("0.40")}
    assert seen["api"][0] == seen["dashboard"][0] == expected
    assert seen["engine"][0] == sorted(expected.values())
    assert seen["api"][1] == seen["dashboard"][1] == seen["engine"][1]


def test_the_synced_quote_carries_the_venues_bid_and_ask(owner, wide, quote_store):
    synced(owner, wide)

    quote = store.quote_get("KXWIDE-A@kalshi")

    assert (quote.bid, quote.ask) == (D("0.50"), D("0.70"))
    assert quote.mark == quote.twap == D("0.60")  # one snapshot: its mid
    assert quote.collateral_price == D("0.50")
    no = quote.for_outcome(Outcome.NO)
    assert (no.bid, no.collateral_price) == (D("0.30"), D("0.30"))  # 1 − the YES ask


def test_one_sided_and_empty_books_are_valued_from_the_side_that_can_be_sold(
    owner, fake, quote_store
):
    key_id = f"key-{uuid.uuid4().hex[:12]}"
    pem, public_key = rsa_key_pair()
    fake.key_add(key_id, public_key, scopes=("read",))
    close = timezone.now() + timedelta(days=800)
    for ticker in ("KXBIDS", "KXASKS", "KXNONE"):
        fake.market_add(
            ticker,
            event_ticker=f"{ticker}-EV",
            title=f"{ticker}?",
            close_time=close,
            last_price="0.55",
        )
    fake.book_set("KXBIDS", yes=[("0.50", 10)])  # YES bids only: no YES ask
    fake.book_set("KXASKS", no=[("0.40", 10)])  # a YES ask at 0.60 only: no YES bid
    fake.book_set("KXNONE")
    fake.position_set(key_id, "KXBIDS", 10, "5.00")  # YES: sells into the 0.50 bid
    fake.position_set(key_id, "KXASKS", 10, "5.00")  # YES: nobody bids for it
    fake.position_set(key_id, "KXNONE", -10, "4.50")  # NO, no book: the last trade
    account = synced(owner, SimpleNamespace(key_id=key_id, private_key_pem=pem))

    [summary] = margin_summaries_get([account])

    prices = {
        contract_symbol(row.symbol, row.outcome): row.collateral_price for row in summary.breakdown
    }
    assert prices == {
        "KXBIDS": D("0.50"),  # not the 0.55 last trade
        "KXASKS": D("0.0001"),  # the price floor: no bid at all
        "KXNONE:NO": D("0.45"),  # 1 − the last YES trade, the only price there is
    }


def test_a_polymarket_wallet_is_valued_from_the_clob_best_bid_and_ask(
    owner, fake_polymarket, quote_store
):
    seed = polymarket_seed_demo(fake_polymarket)
    credential = linked_account_link(user=owner, venue="polymarket", wallet=seed.wallet)
    assert linked_account_sync(credential_id=credential.pk).ok
    account = Account.objects.get(pk=credential.account_id)

    [summary] = margin_summaries_get([account])

    prices = {row.title: (row.outcome, row.collateral_price) for row in summary.breakdown}
    # YES book 0.61 / 0.63 (Data API price 0.62): YES at the bid.
    assert prices["Will the Fed cut interest rates at the December 2026 meeting?"] == (
        "yes",
        D("0.61"),
    )
    # YES book 0.234 / 0.236: NO at 1 − 0.236 (not 1 − the 0.235 mid).
    assert prices["Will Bitcoin be above $150,000 on December 31, 2026?"] == ("no", D("0.764"))
