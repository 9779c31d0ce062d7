"""Collateral prices and margin summaries (trading.selectors), built through real
services: cash by journal, positions by `binary_fill_apply`, prices by the quote store.

The helpers here (markets, quotes, fills, margin grants) are shared by the other
Margin Portfolio tests.
"""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, User
from accounts.services.accounts import account_open
from tests.conftest import credit_cash
from tests.trading.conftest import venue_get
from tests.trading.quoting import put_quote
from trading.marketdata import store
from trading.marketdata.history import PriceHistoryRecorder
from trading.models import EventGroup, Instrument, InstrumentHaircut, Listing
from trading.selectors import (
    contract_symbol,
    contracts_get,
    margin_summaries_get,
    portfolio_load,
    position_book_get,
    risk_policy_get,
)
from trading.services.eligibility import account_margin_override_set
from trading.services.margin_book import MarginBook
from trading.services.positions import FillResult, binary_fill_apply

D = Decimal
# Long-dated markets: the expiry term 0.2·e^(−3650/14) ≈ 1e−114 vanishes, so
# h = 0.3·4p(1−p): 0.3 at p = 0.5, and figures come out exact.
LONG_DATED = 3650


def market(
    symbol: str,
    *,
    event: str | None = None,
    days: float = LONG_DATED,
    venues: tuple[str, ...] = ("kalshi", "polymarket"),
) -> Instrument:
    """An open binary market in event group `event` (default: its own), listed on `venues`."""
    code = event or f"event-{symbol.lower()}"
    group, _ = EventGroup.objects.get_or_create(code=code, defaults={"title": code})
    instrument = Instrument.objects.create(
        symbol=symbol,
        title=f"Will {symbol} happen?",
        kind=Instrument.Kind.BINARY,
        tick_size=D("0.01"),
        event=group,
        expires_at=timezone.now() + timedelta(days=days),
    )
    for venue in venues:
        Listing.objects.create(
            instrument=instrument, venue=venue_get(venue), venue_symbol=f"{symbol}-{venue}"
        )
    return instrument


def quote(symbol: str, venue: str, *, bid: str, ask: str, twap: str | None = None, **kwargs):
    """Publish a YES quote for SYMBOL@venue (TWAP defaults to the mid)."""
    return put_quote(f"{symbol}@{venue}", bid=bid, ask=ask, twap=twap, **kwargs)


def fill(
    account: Account,
    instrument: Instrument,
    *,
    quantity: str,
    price: str,
    side: str = "buy",
    outcome: str = "yes",
) -> FillResult:
    """Record a fill through the one fill path, under the account's row lock."""
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        result = binary_fill_apply(
            account=locked,
            instrument=instrument,
            outcome=outcome,
            side=side,
            quantity=D(quantity),
            price=D(price),
        )
    account.refresh_from_db()
    return result


def margin_grant(account: Account, staff: User) -> Account:
    """Ops grant margin through the real service."""
    account_margin_override_set(
        account=account, override=Account.MarginOverride.GRANTED, actor=staff
    )
    account.refresh_from_db()
    return account


def summary(account: Account):
    account.refresh_from_db()
    return margin_summaries_get([account])[0]


def price_of(instrument: Instrument, outcome: str = "yes") -> Decimal:
    return contracts_get([(instrument.pk, outcome)])[(instrument.pk, outcome)].collateral_price


@pytest.fixture
def alpha(db, quote_store) -> Instrument:
    return market("ALPHA")


def test_collateral_price_is_the_lower_of_bid_and_twap(alpha):
    # Kalshi only: bid 0.60, TWAP 0.55 → 0.55 (a spike in the bid does not count yet).
    quote("ALPHA", "kalshi", bid="0.60", ask="0.62", twap="0.55")
    assert price_of(alpha) == D("0.55")
    # TWAP 0.70 above the bid → the bid, 0.60 (what the position sells for now).
    quote("ALPHA", "kalshi", bid="0.60", ask="0.62", twap="0.70")
    assert price_of(alpha) == D("0.60")


def test_collateral_price_takes_the_best_venue(alpha):
    # kalshi: min(0.60, 0.55) = 0.55; polymarket: min(0.58, 0.61) = 0.58 → 0.58.
    quote("ALPHA", "kalshi", bid="0.60", ask="0.62", twap="0.55")
    quote("ALPHA", "polymarket", bid="0.58", ask="0.63", twap="0.61")
    assert price_of(alpha) == D("0.58")


def test_the_no_contract_is_priced_as_the_complement(alpha):
    # NO bid = 1 − YES ask, NO TWAP = 1 − YES TWAP.
    # kalshi: min(1 − 0.62, 1 − 0.61) = 0.38; polymarket: min(1 − 0.63, 1 − 0.61) = 0.37.
    quote("ALPHA", "kalshi", bid="0.60", ask="0.62", twap="0.61")
    quote("ALPHA", "polymarket", bid="0.58", ask="0.63", twap="0.61")
    assert price_of(alpha, "no") == D("0.38")
    assert price_of(alpha, "yes") == D("0.60")


def test_without_a_live_quote_the_last_stored_mark_counts(alpha, quote_store):
    kalshi = Listing.objects.get(instrument=alpha, venue__code="kalshi")
    polymarket = Listing.objects.get(instrument=alpha, venue__code="polymarket")
    old = quote("ALPHA", "kalshi", bid="0.10", ask="0.12")  # mark 0.11, an hour earlier
    k = quote("ALPHA", "kalshi", bid="0.39", ask="0.41")  # mark 0.40
    p = quote("ALPHA", "polymarket", bid="0.43", ask="0.45")  # mark 0.44
    recorder = PriceHistoryRecorder(every=1.0)
    ids = {kalshi.key: kalshi.pk, polymarket.key: polymarket.pk}
    hour_ago = old.ts - timedelta(hours=1)
    recorder.record([replace(old, ts=hour_ago)], ids, now=hour_ago.timestamp())
    recorder.record([k, p], ids, now=k.ts.timestamp())
    quote_store.delete(store.quotes_key())  # the feed's quotes are gone
    # YES: the best venue's latest mark, max(0.40, 0.44) = 0.44 (not the older 0.11).
    assert price_of(alpha, "yes") == D("0.44")
    # NO: the best venue's complement, max(1 − 0.40, 1 − 0.44) = 0.60.
    assert price_of(alpha, "no") == D("0.60")


def test_with_no_price_at_all_a_contract_is_worth_nothing(alpha):
    assert price_of(alpha) == D("0")


@pytest.mark.parametrize(
    ("resolution", "yes", "no"),
    [
        (Instrument.Resolution.YES, D("1"), D("0")),
        (Instrument.Resolution.NO, D("0"), D("1")),
        (Instrument.Resolution.VOID, D("0.55"), D("0.43")),  # void: back to the quotes
    ],
)
def test_a_resolved_market_is_worth_its_payout(alpha, resolution, yes, no):
    quote("ALPHA", "kalshi", bid="0.55", ask="0.57")
    Instrument.objects.filter(pk=alpha.pk).update(
        status=Instrument.Status.RESOLVED, resolution=resolution, resolved_at=timezone.now()
    )
    assert (price_of(alpha, "yes"), price_of(alpha, "no")) == (yes, no)


def test_a_haircut_add_on_lowers_the_positions_contribution(alpha, custodial_account):
    # 1000 YES at collateral price 0.50 (bid 0.50 < mid 0.51): V = 500.
    # h = 0.3·4·0.5·0.5 + 0 + add-on 0.10 = 0.40; one position: D = 0.75.
    # Contribution = 0.75·500·(1 − 0.40) = 225 (it was 0.75·500·0.7 = 262.5 without the add-on).
    quote("ALPHA", "kalshi", bid="0.50", ask="0.52")
    credit_cash(custodial_account, "500")
    fill(custodial_account, alpha, quantity="1000", price="0.50")
    assert summary(custodial_account).adjusted_equity == D("262.500000")
    InstrumentHaircut.objects.create(policy=risk_policy_get(), instrument=alpha, addon=D("0.1"))
    figures = summary(custodial_account)
    (row,) = figures.breakdown
    assert (row.value, row.haircut, row.contribution) == (D("500"), D("0.400000"), D("225"))
    assert figures.adjusted_equity == D("225.000000")
    assert figures.health is None  # cash 0: nothing borrowed
    assert figures.status == "healthy"


def _two_positions(account: Account, first: Instrument, second: Instrument) -> None:
    credit_cash(account, "200")
    fill(account, first, quantity="600", price="0.50")  # V = 300
    fill(account, second, quantity="200", price="0.50")  # V = 100; cash 200 − 400 = −200


def test_two_markets_of_one_event_are_one_concentration_bucket(db, quote_store, user, staff):
    senate = market("SENATE", event="election")
    house = market("HOUSE", event="election")
    rain = market("RAIN")
    for symbol in ("SENATE", "HOUSE", "RAIN"):
        quote(symbol, "kalshi", bid="0.50", ask="0.52")
    together = margin_grant(account_open(owner=user, kind=Account.Kind.CUSTODIAL), staff)
    apart = margin_grant(account_open(owner=user, kind=Account.Kind.CUSTODIAL), staff)
    _two_positions(together, senate, house)
    _two_positions(apart, senate, rain)
    same, split = margin_summaries_get([together, apart])
    # One event: HHI = 1, D = 0.75; AE = 0.75·(300 + 100)·0.7 = 210; UM = 200; health 1.05.
    assert same.diversification == D("0.750000")
    assert same.adjusted_equity == D("210.000000")
    assert same.health == D("1.050000")
    assert same.status == "caution"
    # Two events: HHI = 0.75² + 0.25² = 0.625, D = 0.84375; AE = 0.84375·400·0.7 = 236.25.
    assert split.diversification == D("0.843750")
    assert split.adjusted_equity == D("236.250000")
    assert split.health == D("1.181250")
    # Breakdown sorted by contribution: 0.84375·300·0.7 = 177.1875, then 0.84375·100·0.7 = 59.0625.
    assert [(row.symbol, row.contribution) for row in split.breakdown] == [
        ("SENATE", D("177.187500")),
        ("RAIN", D("59.062500")),
    ]


def test_yes_and_no_of_one_market_share_a_bucket(alpha, custodial_account):
    # YES 600 at 0.50 (V 300) and NO 200 at 0.48 (1 − ask 0.52: V 96): one event, D = 0.75.
    quote("ALPHA", "kalshi", bid="0.50", ask="0.52")
    credit_cash(custodial_account, "500")
    fill(custodial_account, alpha, quantity="600", price="0.50")
    fill(custodial_account, alpha, quantity="200", price="0.48", outcome="no")
    assert summary(custodial_account).diversification == D("0.750000")


def test_closed_positions_and_other_accounts_are_left_out(alpha, custodial_account):
    quote("ALPHA", "kalshi", bid="0.50", ask="0.52")
    other = account_open(owner=custodial_account.owner, kind=Account.Kind.CUSTODIAL)
    for account in (custodial_account, other):
        credit_cash(account, "1000")
        fill(account, alpha, quantity="1000", price="0.50")
    fill(custodial_account, alpha, quantity="1000", price="0.50", side="sell")
    figures = summary(custodial_account)
    assert figures.breakdown == []
    assert figures.adjusted_equity == D("1000.000000")
    assert figures.deposit == D("1000")
    assert summary(other).collateral_value == D("500.000000")


def test_the_expiry_term_uses_days_to_expiry(db, quote_store, custodial_account):
    # 14 days out at p = 0.5: h = 0.3 + 0.2·e^−1 = 0.373576; 1000 contracts: V = 500.
    # AE = 0.75·500·(1 − 0.373576) = 234.909042 (to within the seconds the test takes).
    soon = market("SOON", days=14)
    quote("SOON", "kalshi", bid="0.50", ask="0.52")
    credit_cash(custodial_account, "500")
    fill(custodial_account, soon, quantity="1000", price="0.50")
    figures = summary(custodial_account)
    assert figures.breakdown[0].haircut == pytest.approx(D("0.373576"), abs=D("0.000001"))
    assert figures.adjusted_equity == pytest.approx(D("234.909042"), abs=D("0.0001"))


def test_one_loader_prices_positions_alike_for_the_api_the_checks_and_the_engine(
    alpha, custodial_account, django_assert_max_num_queries
):
    # ALPHA YES: kalshi min(0.60, TWAP 0.55) = 0.55, polymarket min(0.58, 0.61) = 0.58 → 0.58
    # on polymarket; NO: kalshi min(1 − 0.62, 1 − 0.55) = 0.38, polymarket 1 − 0.63 = 0.37
    # → 0.38 on kalshi. BETA has no quote: its last stored mark, 0.30, on kalshi.
    beta = market("BETA", venues=("kalshi",))
    quote("ALPHA", "kalshi", bid="0.60", ask="0.62", twap="0.55")
    quote("ALPHA", "polymarket", bid="0.58", ask="0.63", twap="0.61")
    tick = quote("BETA", "kalshi", bid="0.29", ask="0.31")
    listing = Listing.objects.get(instrument=beta)
    PriceHistoryRecorder(every=1.0).record(
        [tick], {listing.key: listing.pk}, now=tick.ts.timestamp()
    )
    store.redis_client().hdel(store.quotes_key(), listing.key)
    credit_cash(custodial_account, "1000")
    fill(custodial_account, alpha, quantity="100", price="0.60")
    fill(custodial_account, alpha, quantity="50", price="0.40", outcome="no")
    fill(custodial_account, beta, quantity="10", price="0.30")
    expected = {"ALPHA": ("polymarket", D("0.58")), "ALPHA:NO": ("kalshi", D("0.38"))}
    expected["BETA"] = ("kalshi", D("0.30"))

    book = position_book_get(account=custodial_account)  # the API and the dashboard
    portfolio = portfolio_load(accounts=[custodial_account])  # the checks
    engine = MarginBook()
    engine.load(consume_changes=False)

    assert {view.symbol: (view.venue, view.mark_price) for view in book.positions} == expected
    for loaded in (book.portfolio, portfolio):
        assert {
            contract_symbol(c.symbol, c.outcome): (c.venue, c.collateral_price)
            for c in loaded.contracts
        } == expected
    assert sorted(engine.contract_price.tolist()) == sorted(
        float(price) for _, price in expected.values()
    )
    with django_assert_max_num_queries(2):  # the positions, and BETA's stored marks
        position_book_get(account=custodial_account)
