"""The engine's in-memory book: loading, incremental refresh, re-pricing on ticks."""

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from django.utils import timezone

from accounts.models import Account
from accounts.services.ledger import accounts_changed_key, accounts_changed_mark
from portal.redis import redis_client
from portal.refdata import refdata_changed
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.conftest import binary_create
from tests.trading.margining import borrower, buy, margin_keys_clear, tick
from trading.models import Venue
from trading.selectors import margin_summaries_get
from trading.services import margin_book
from trading.services.margin_book import MarginBook, accounts_changed_pop

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean(quote_store):
    margin_keys_clear()


def at_now() -> datetime:
    return datetime.now(UTC)


def figures_by_account(figures) -> dict[int, dict[str, float]]:
    return {
        int(figures.account_id[i]): {
            "health": float(figures.health[i]),
            "adjusted_equity": float(figures.adjusted_equity[i]),
            "used_margin": float(figures.used_margin[i]),
        }
        for i in range(len(figures))
    }


def test_load_evaluates_every_account_as_the_dashboard_does(markets):
    tick(bid="0.55")
    other = binary_create("FED-CUT", "0.01", "kalshi")
    tick("FED-CUT@kalshi", bid="0.30")
    a = borrower(markets.trump)
    b = borrower(markets.trump, deposit="5000", quantity="1000", price="0.5")
    buy(b, other, "3000", "0.3")
    watcher = borrower(markets.trump, kind=Account.Kind.NON_CUSTODIAL, quantity="100")
    idle = open_account()

    book = MarginBook()
    book.load()
    figures = book.evaluate(at=timezone.now())

    assert set(figures.account_id.tolist()) >= {a.pk, b.pk, watcher.pk, idle.pk}
    custodial = dict(zip(figures.account_id.tolist(), figures.custodial.tolist(), strict=True))
    assert custodial[a.pk] and not custodial[watcher.pk]
    got = figures_by_account(figures)
    for summary in margin_summaries_get([a, b, watcher, idle]):
        row = got[summary.account_id]
        assert row["adjusted_equity"] == pytest.approx(float(summary.adjusted_equity), abs=1e-5)
        assert row["used_margin"] == pytest.approx(float(summary.used_margin), abs=1e-6)
        if summary.health is None:
            assert math.isinf(row["health"])
        else:
            assert row["health"] == pytest.approx(float(summary.health), abs=1e-5)
    assert got[a.pk]["used_margin"] == pytest.approx(200.0)
    assert got[watcher.pk]["used_margin"] == 0.0


def test_a_subset_evaluates_to_the_same_figures_as_the_whole_book(markets):
    tick(bid="0.40")
    accounts = [borrower(markets.trump, quantity=str(q)) for q in (1500, 2000, 2500)]
    book = MarginBook()
    book.load()
    whole = figures_by_account(book.evaluate(at=at_now()))
    subset = book.evaluate(book.slots_of([accounts[2].pk, accounts[0].pk]), at=at_now())
    assert subset.account_id.tolist() == sorted([accounts[0].pk, accounts[2].pk])
    for account_id, row in figures_by_account(subset).items():
        assert row == pytest.approx(whole[account_id])


def test_a_tick_reprices_and_returns_only_the_holders_of_what_moved(markets):
    fed = binary_create("FED-CUT", "0.01", "kalshi", "polymarket")
    tick(bid="0.50")
    tick("FED-CUT@kalshi", bid="0.40")
    trump_only = borrower(markets.trump)
    fed_only = borrower(fed, price="0.40")
    both = borrower(markets.trump, quantity="100")
    buy(both, fed, "100", "0.4")
    open_account()  # holds nothing
    book = MarginBook()
    book.load()

    tick("FED-CUT@polymarket", bid="0.45")
    moved = book.prices_update(["FED-CUT"], at=timezone.now())
    assert book.account_ids[moved].tolist() == sorted([fed_only.pk, both.pk])

    # Collateral across venues is the best venue's: kalshi's 0.40 no longer counts.
    before = figures_by_account(book.evaluate(moved, at=at_now()))[fed_only.pk]
    tick("FED-CUT@kalshi", bid="0.41")
    assert book.prices_update(["FED-CUT"], at=timezone.now()).size == 0
    after = figures_by_account(book.evaluate(moved, at=at_now()))[fed_only.pk]
    assert after == pytest.approx(before, rel=1e-8)  # the haircut's clock moved, not the price

    assert book.prices_update(["BTC-PERP", "NOBODY-HOLDS"], at=timezone.now()).size == 0
    tick(bid="0.52")
    assert book.account_ids[
        book.prices_update(["TRUMP-WIN"], at=timezone.now())
    ].tolist() == sorted([trump_only.pk, both.pk])


def test_a_tick_prices_from_the_listings_every_valuation_uses(markets):
    """A venue switched off drops out of collateral pricing on ticks as in a full load."""
    tick(bid="0.50")
    holder = borrower(markets.trump, quantity="1000", price="0.50")
    Venue.objects.filter(code="polymarket").update(is_active=False)
    refdata_changed()
    book = MarginBook()
    book.load()
    loaded = figures_by_account(book.evaluate(at=at_now()))[holder.pk]
    tick("TRUMP-WIN@polymarket", bid="0.70")  # the switched-off venue's quote
    book.prices_update(["TRUMP-WIN"], at=timezone.now())
    ticked = figures_by_account(book.evaluate(at=at_now()))[holder.pk]
    assert ticked == pytest.approx(loaded, rel=1e-6)
    (summary,) = margin_summaries_get([holder])
    assert ticked["adjusted_equity"] == pytest.approx(float(summary.adjusted_equity), abs=1e-5)


def test_a_no_position_reprices_from_the_yes_quote(markets):
    tick(bid="0.70")
    holder = borrower(markets.trump, quantity="1000", price="0.30")
    buy(holder, markets.trump, "500", "0.30", outcome="no")
    book = MarginBook()
    book.load()
    tick(bid="0.60", ask="0.62")
    assert book.account_ids[book.prices_update(["TRUMP-WIN"], at=timezone.now())].tolist() == [
        holder.pk
    ]
    # YES collateral = bid 0.60; NO collateral = 1 − ask 0.62 = 0.38.
    assert sorted(book.contract_price.tolist()) == pytest.approx([0.38, 0.60])


def test_changed_accounts_are_reloaded_and_keep_their_slots(
    markets, django_capture_on_commit_callbacks
):
    tick(bid="0.50")
    first = borrower(markets.trump)
    second = borrower(markets.trump)
    book = MarginBook()
    book.load()
    slot_of_second = int(book.slots_of([second.pk])[0])
    assert book.refresh_changed().size == 0

    with django_capture_on_commit_callbacks(execute=True):
        buy(second, markets.trump, "500", "0.5")
        newcomer = open_account()
        credit_cash(newcomer, "250")
    assert redis_client().scard(accounts_changed_key()) == 2

    slots = book.refresh_changed()
    assert book.account_ids[slots].tolist() == [second.pk, newcomer.pk]
    assert int(book.slots_of([second.pk])[0]) == slot_of_second
    assert redis_client().scard(accounts_changed_key()) == 0
    second.refresh_from_db()
    assert book.cash[slot_of_second] == pytest.approx(float(second.cash_balance))
    held = book.quantity[book.position_account == slot_of_second]
    assert held.tolist() == [2500.0]
    assert book.quantity[book.position_account == book.slots_of([first.pk])[0]].tolist() == [2000.0]
    assert book.cash[book.slots_of([newcomer.pk])[0]] == 250.0


def test_taking_the_changed_set_is_atomic_and_a_failed_reload_puts_it_back(markets, monkeypatch):
    account = borrower(markets.trump)
    book = MarginBook()
    book.load()
    accounts_changed_mark(account_ids=[account.pk, 10**9])
    assert accounts_changed_pop() == [account.pk, 10**9]
    assert accounts_changed_pop() == []

    accounts_changed_mark(account_ids=[account.pk])

    def broken(**_):
        raise RuntimeError("database went away")

    monkeypatch.setattr(margin_book, "portfolio_load", broken)
    with pytest.raises(RuntimeError):
        book.refresh_changed()
    assert accounts_changed_pop() == [account.pk]


def test_the_full_load_replaces_positions_and_starts_the_changed_set_afresh(markets):
    tick(bid="0.50")
    account = borrower(markets.trump)
    book = MarginBook()
    book.load()
    buy(account, markets.trump, "1000", "0.5")
    accounts_changed_mark(account_ids=[account.pk])
    book.load()
    assert redis_client().scard(accounts_changed_key()) == 0
    slot = book.slots_of([account.pk])[0]
    assert np.sum(book.quantity[book.position_account == slot]) == 3000.0
    assert book.n_positions == int(np.sum(book.quantity > 0))
