"""Reads served from the engine (trading.services.figures_store): stored figures are the
computed ones character for character, and are served only while the account, the
reference data and every quote they were priced from are unchanged."""

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import orjson
import pytest
import redis
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from tests.api.conftest import client_for, key_issue
from tests.conftest import credit_cash
from tests.trading.executing import no_commission
from tests.trading.margining import borrower, capture_outbox_sends, margin_keys_clear, tick
from tests.trading.quoting import put_quote
from trading import selectors
from trading.engine import MarginEngine
from trading.models import Position
from trading.services import figures_store
from trading.services.figures_store import (
    PARTS,
    account_figures_get,
    figures_key,
    watched_key,
)
from trading.services.figures_store import (
    figures_store as store_figures,
)
from trading.web.figures import dashboard_snapshot

pytestmark = pytest.mark.django_db
BASE = "/v1/intelligence/"


@pytest.fixture(autouse=True)
def _clean(quote_store, monkeypatch, settings):
    settings.FIGURES_STORE = True
    margin_keys_clear()
    capture_outbox_sends(monkeypatch)
    client = figures_store.redis_client()
    keys = client.keys(figures_key(0)[:-1] + "*")
    if keys:
        client.delete(*keys)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def frozen(monkeypatch):
    """Pricing at one instant (selectors' clock), so computed and stored figures agree
    to the character, `as_of` included."""
    at = datetime.now(UTC)
    monkeypatch.setattr(selectors, "timezone", SimpleNamespace(now=lambda: at))
    return at


@pytest.fixture
def priced(markets):
    """TRUMP-WIN on both venues, BTC-PERP quoted; two borrowers and a perp holder."""
    no_commission()
    tick(bid="0.60")
    put_quote("TRUMP-WIN@polymarket", bid="0.58", ask="0.62")
    put_quote("BTC-PERP@leviathan", bid="49999", ask="50000", binary=False, step="1")
    first = borrower(markets.trump)
    second = borrower(markets.trump, deposit="5000", quantity="100")
    watch(first, second)
    return SimpleNamespace(markets=markets, first=first, second=second)


def watch(*accounts: Account) -> None:
    """Mark accounts watched, as a read does: the engine stores their figures."""
    for account in accounts:
        figures_store.redis_client().set(watched_key(account.pk), 1)


def fresh(account: Account) -> Account:
    return Account.objects.get(pk=account.pk)


def stored(account: Account) -> dict | None:
    """The account's record: what it was computed from (`meta`) and its parts."""
    fields = figures_store.redis_client().hgetall(figures_key(account.pk))
    if not fields:
        return None
    record = {name.decode(): orjson.loads(value) for name, value in fields.items()}
    return record.pop("meta") | record


def computed(account: Account, part: str, settings) -> dict:
    settings.FIGURES_STORE = False
    try:
        return account_figures_get(account=fresh(account), part=part)
    finally:
        settings.FIGURES_STORE = True


def api_get(account: Account, path: str):
    response = client_for(key_issue([account])).get(BASE + path)
    assert response.status_code == 200, response.content
    return response


# ---------------------------------------------------------------------------
# Versions


def test_figures_version_goes_up_with_every_change_in_the_same_transaction(priced):
    account = priced.first
    start = fresh(account).figures_version
    credit_cash(account, "10")
    after_deposit = fresh(account).figures_version
    assert after_deposit == start + 1
    position = Position.objects.get(account=account)
    position.save(update_fields=["updated_at"])
    assert fresh(account).figures_version == after_deposit + 1
    stale = fresh(account)
    position.save(update_fields=["updated_at"])
    stale.name = "renamed"
    stale.save()  # a stale instance's full save cannot lower the version
    assert fresh(account).figures_version == after_deposit + 2
    Account.objects.filter(pk=account.pk).update(name="again")  # not a figure
    assert fresh(account).figures_version == after_deposit + 2


# ---------------------------------------------------------------------------
# Stored = computed


def test_stored_figures_equal_computed_ones_character_for_character(priced, frozen, settings):
    accounts = [priced.first, priced.second]
    assert store_figures(account_ids=[a.pk for a in accounts]) == 2  # priced together
    for account in accounts:
        record = stored(account)
        assert record["v"] == fresh(account).figures_version
        for part in PARTS:
            assert orjson.dumps(record[part]) == orjson.dumps(computed(account, part, settings))


def test_the_api_serves_the_stored_bodies_as_it_computes_them(priced, frozen, settings):
    account = priced.first
    settings.FIGURES_STORE = False
    want = {path: api_get(account, path).content for path in ("positions", "margin")}
    settings.FIGURES_STORE = True
    store_figures(account_ids=[account.pk])
    figures_store.redis_client().persist(figures_key(account.pk))  # no TTL race
    with CaptureQueriesContext(connection) as queries:
        got = {path: api_get(account, path).content for path in want}
    assert got == want
    # Served from the store: the key's account, nothing priced.
    assert not any("trading_position" in q["sql"] for q in queries.captured_queries)


def test_the_dashboard_snapshot_reads_the_stored_figures(priced, frozen, settings):
    account = priced.first
    settings.FIGURES_STORE = False
    want = dashboard_snapshot(account=fresh(account), history=False)
    settings.FIGURES_STORE = True
    store_figures(account_ids=[account.pk])
    assert orjson.dumps(dashboard_snapshot(account=fresh(account), history=False)) == (
        orjson.dumps(want)
    )


# ---------------------------------------------------------------------------
# When stored figures are not served


def test_a_stale_version_falls_back_to_computing_and_writes_back(priced):
    account = priced.first
    store_figures(account_ids=[account.pk])
    version = stored(account)["v"]
    Account.objects.filter(pk=account.pk).update(figures_version=F("figures_version") + 1)
    body = account_figures_get(account=fresh(account), part="margin")
    assert body["cash"] == f"{fresh(account).risk_cash:.6f}"
    assert stored(account)["v"] == version + 1  # written back at the version it read


def test_read_your_writes_after_a_deposit(priced):
    account = priced.first
    store_figures(account_ids=[account.pk])
    before = api_get(account, "margin").json()
    credit_cash(account, "250")  # no engine turn in between
    after = api_get(account, "margin").json()
    assert Decimal(after["cash"]) == Decimal(before["cash"]) + 250


def test_read_your_writes_after_a_fill(priced):
    account = priced.second
    store_figures(account_ids=[account.pk])
    api = client_for(key_issue([account]))
    assert [p["symbol"] for p in api.get(BASE + "positions").json()["positions"]] == ["TRUMP-WIN"]
    response = api.post(
        BASE + "execute",
        {"symbol": "BTC-PERP", "side": "buy", "notional_usdc": "500"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    symbols = [p["symbol"] for p in api.get(BASE + "positions").json()["positions"]]
    assert symbols == ["BTC-PERP", "TRUMP-WIN"]


def test_moved_quotes_are_never_served_from_the_store(priced):
    account = priced.first
    store_figures(account_ids=[account.pk])
    tick(bid="0.40")  # kalshi moves; polymarket (0.58) is now the collateral price
    (position,) = account_figures_get(account=fresh(account), part="positions")["positions"]
    assert position["mark_price"] == "0.58000000"
    put_quote("TRUMP-WIN@polymarket", bid="0.30", ask="0.32")
    (position,) = account_figures_get(account=fresh(account), part="positions")["positions"]
    assert position["mark_price"] == "0.40000000"


def test_expired_figures_are_recomputed(priced, monkeypatch):
    account = priced.first
    store_figures(account_ids=[account.pk])
    record = stored(account)
    later = record["until"] + 1
    monkeypatch.setattr(figures_store.time, "time", lambda: later)
    account_figures_get(account=fresh(account), part="positions")
    assert stored(account)["at"] > record["at"]  # recomputed and written back


def test_figures_expire_when_a_live_price_would_turn_stale(priced, settings):
    account = priced.first
    max_age = selectors.price_max_age()
    # kalshi's 0.60, the collateral price, turns stale in about half a second.
    put_quote("TRUMP-WIN@kalshi", bid="0.60", ask="0.62", twap="0.60", age=max_age - 0.5)
    store_figures(account_ids=[account.pk])
    record = stored(account)
    assert record["until"] < record["at"] + 0.5
    (position,) = record["positions"]["positions"]
    assert (position["venue"], position["stale"]) == ("kalshi", False)


def test_another_accounts_figures_are_never_returned(priced):
    first, second = priced.first, priced.second
    store_figures(account_ids=[first.pk, second.pk])
    client = figures_store.redis_client()
    # Even a record under the wrong key (first's figures as second's) is refused.
    fields = client.hgetall(figures_key(first.pk))
    meta = orjson.loads(fields[b"meta"]) | {"v": fresh(second).figures_version}
    client.hset(figures_key(second.pk), mapping=fields | {b"meta": orjson.dumps(meta)})
    body = api_get(second, "positions").json()
    assert body["account_id"] == second.public_id
    assert body["positions"][0]["quantity"] == "100.000000"
    assert api_get(first, "positions").json()["account_id"] == first.public_id


def test_redis_down_computes_and_answers(priced, monkeypatch):
    account = priced.first
    store_figures(account_ids=[account.pk])

    class Down:
        def __getattr__(self, name):
            raise redis.ConnectionError("down")

    monkeypatch.setattr(figures_store, "redis_client", Down)
    body = api_get(account, "margin").json()
    assert body["account_id"] == account.public_id and body["breakdown"]
    assert api_get(account, "positions").json()["positions"]


# ---------------------------------------------------------------------------
# The engine stores what it evaluates


def test_the_engine_stores_the_accounts_it_evaluates(priced, committed):
    engine = MarginEngine()
    with committed():
        engine.sweep()
    assert stored(priced.first) is None  # a sweep stores nothing: reads write back
    with committed():
        engine.process_batch(tick(bid="0.50"))
    for account in (priced.first, priced.second):
        record = stored(account)
        assert record["v"] == fresh(account).figures_version
        (position,) = record["positions"]["positions"]
        assert position["mark_price"] == "0.58000000"
    with committed():
        credit_cash(priced.first, "100")
    with committed():
        engine.process_batch(None)  # the changed account, reloaded and stored
    assert stored(priced.first)["v"] == fresh(priced.first).figures_version


def test_the_engine_stores_only_the_accounts_somebody_reads(priced, committed):
    figures_store.redis_client().delete(*(watched_key(a.pk) for a in (priced.first, priced.second)))
    engine = MarginEngine()
    with committed():
        engine.sweep()
    api_get(priced.second, "positions")  # the API's read marks it watched (and writes back)
    written_back = stored(priced.second)["at"]
    with committed():
        figures = engine.process_batch(tick(bid="0.50"))
    assert len(figures) == 2  # both evaluated
    assert stored(priced.first) is None  # nobody reads it: not priced again
    assert stored(priced.second)["at"] > written_back  # priced again by the engine
    # Unwatched once the mark lapses: the next batch stores nothing for it.
    figures_store.redis_client().delete(
        watched_key(priced.second.pk), figures_key(priced.second.pk)
    )
    with committed():
        engine.process_batch(tick(bid="0.45"))
    assert stored(priced.second) is None


def test_an_engine_that_cannot_store_goes_on(priced, committed, monkeypatch):
    engine = MarginEngine()
    with committed():
        engine.sweep()

    def down(**kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr("trading.engine.figures_store", down)
    with committed():
        figures = engine.process_batch(tick(bid="0.50"))
    assert len(figures) == 2 and engine.stats.errors == 0


def test_nothing_is_stored_with_the_store_off(priced, settings):
    settings.FIGURES_STORE = False
    assert store_figures(account_ids=[priced.first.pk]) == 0
    account_figures_get(account=fresh(priced.first), part="margin")
    assert stored(priced.first) is None


def test_an_unknown_part_is_refused(priced):
    with pytest.raises(ValueError):
        account_figures_get(account=fresh(priced.first), part="orders")


def test_margin_enabled_change_is_a_new_version(priced):
    account = priced.second
    before = fresh(account).figures_version
    Account.objects.filter(pk=account.pk).update(margin_enabled=False, margin_override="revoked")
    assert fresh(account).figures_version == before + 1
