"""Stale prices (older than the risk policy's `price_stale_after_seconds`, 15 s by default):
shown as such, refused for trading, and never the basis of a margin call or liquidation."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from portal.heartbeats import heartbeat_read
from tests.api.conftest import client_for, key_issue
from tests.trading.margining import (
    LISTING,
    borrower,
    capture_outbox_sends,
    margin_keys_clear,
    tick,
)
from tests.trading.quoting import put_quote
from trading.engine import MarginEngine
from trading.enqueue import ACCOUNT_LIQUIDATE
from trading.models import Instrument, MarginCall
from trading.selectors import contracts_get, margin_summary_get, position_book_get
from trading.services.execute import order_execute
from trading.services.liquidation import account_liquidate
from trading.services.margin_calls import margin_calls_remind, margin_calls_sync

STALE = 16  # seconds: past the default 15


@pytest.fixture(autouse=True)
def _clean(quote_store, monkeypatch):
    margin_keys_clear()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def sent(monkeypatch):
    return capture_outbox_sends(monkeypatch)


def stale_tick(bid: str) -> None:
    """Both TRUMP-WIN listings quoted STALE seconds ago at `bid` (the feed stopped)."""
    for key in (LISTING, "TRUMP-WIN@polymarket"):
        put_quote(key, bid=bid, ask=str(Decimal(bid) + Decimal("0.02")), twap=bid, age=STALE)


def test_a_price_older_than_the_policy_allows_is_stale_and_carries_its_time(markets):
    fresh = put_quote(LISTING, bid="0.60", ask="0.62", age=14)
    ((_, contract),) = contracts_get([(markets.trump.pk, "yes")]).items()
    assert contract.quoted_at == fresh.ts and not contract.stale
    old = put_quote(LISTING, bid="0.60", ask="0.62", age=STALE)
    ((_, contract),) = contracts_get([(markets.trump.pk, "yes")]).items()
    assert contract.quoted_at == old.ts and contract.stale


def test_halted_resolved_and_never_priced_markets_are_not_stale(markets):
    put_quote(LISTING, bid="0.60", ask="0.62", age=3600)
    markets.trump.status = Instrument.Status.HALTED
    markets.trump.save()
    ((_, halted),) = contracts_get([(markets.trump.pk, "yes")]).items()
    assert not halted.stale  # a halted market keeps its last price on purpose
    markets.trump.status, markets.trump.resolution = Instrument.Status.RESOLVED, "yes"
    markets.trump.save()
    ((_, resolved),) = contracts_get([(markets.trump.pk, "yes")]).items()
    assert (resolved.collateral_price, resolved.quoted_at, resolved.stale) == (1, None, False)
    from tests.trading.conftest import binary_create

    unpriced = binary_create("NEVER-QUOTED")
    ((_, never),) = contracts_get([(unpriced.pk, "yes")]).items()
    assert (never.collateral_price, never.stale) == (0, False)


def test_positions_and_margin_say_which_prices_are_delayed_and_since_when(markets):
    tick(bid="0.60")
    account = borrower(markets.trump)
    api = client_for(key_issue([account]))
    body = api.get("/v1/intelligence/positions").json()
    (position,) = body["positions"]
    assert position["stale"] is False and position["quoted_at"] is not None
    margin = api.get("/v1/intelligence/margin").json()
    assert (margin["stale"], margin["stale_since"]) == (False, None)

    stale_tick("0.60")
    (position,) = api.get("/v1/intelligence/positions").json()["positions"]
    assert position["stale"] is True
    margin = api.get("/v1/intelligence/margin").json()
    assert margin["stale"] is True
    assert margin["stale_since"] == position["quoted_at"]
    assert timezone.now() - timezone.datetime.fromisoformat(margin["stale_since"]) >= timedelta(
        seconds=STALE
    )


def test_an_execute_on_stale_prices_is_refused_with_its_own_code(markets):
    tick(bid="0.60")
    account = borrower(markets.trump)
    api = client_for(key_issue([account]))
    stale_tick("0.60")
    response = api.post(
        "/v1/intelligence/execute",
        {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "10"},
        format="json",
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["code"] == "market_data_stale"
    assert body["message"].startswith("Prices for TRUMP-WIN on ")
    assert "delayed: the last quote is from" in body["message"]
    assert "(the limit is 15 s)" in body["message"]


def test_the_engine_opens_no_margin_call_on_stale_prices_and_says_why(
    markets, committed, sent, caplog
):
    tick(bid="0.60")
    account = borrower(markets.trump)
    engine = MarginEngine()
    with committed():
        engine.sweep()
    stale_tick("0.10")  # the last prices the feed sent before it stopped: a deep call
    with committed():
        engine.sweep()
    assert not MarginCall.objects.exists()
    assert sent.named(ACCOUNT_LIQUIDATE) == []
    assert engine._beat_detail["calls_deferred_stale"] == 1
    assert f"account {account.pk}" in caplog.text and "prices are stale" in caplog.text

    with committed():  # prices are live again
        engine.process_batch(tick(bid="0.10"))
    assert MarginCall.objects.filter(account=account, status=MarginCall.Status.OPEN).exists()
    assert engine._beat_detail["calls_deferred_stale"] == 0


def test_the_engine_heartbeat_shows_deferred_calls(markets, committed, sent):
    tick(bid="0.60")
    borrower(markets.trump)
    engine = MarginEngine()
    stale_tick("0.10")
    with committed():
        engine.sweep()
    engine._beat()
    assert heartbeat_read("engine").detail["calls_deferred_stale"] == 1


def test_calls_and_liquidations_wait_for_live_prices(markets, committed, sent):
    tick(bid="0.60")
    account = borrower(markets.trump)
    tick(bid="0.15")
    with committed():
        (state,) = margin_calls_sync(account_ids=[account.pk])
    call = state.open_call
    assert call is not None

    stale_tick("0.05")  # far below the liquidation threshold, but delayed
    with committed():
        (state,) = margin_calls_sync(account_ids=[account.pk])
        summary = margin_calls_remind(now=call.opened_at + timedelta(days=2))  # grace over
    assert state.deferred and not state.liquidation_requested
    assert summary.grace_expired == []
    assert sent.named(ACCOUNT_LIQUIDATE) == []
    assert account_liquidate(account_id=account.pk, reason="below_threshold") is None
    assert margin_summary_get(account=account).stale
    assert position_book_get(account=account).positions[0].stale


def test_a_resting_ioc_order_on_stale_prices_is_refused_the_same_way(markets):
    tick(bid="0.60")
    account = borrower(markets.trump)
    stale_tick("0.60")
    api = client_for(key_issue([account]))
    response = api.post(
        "/v1/intelligence/orders",
        {
            "symbol": "TRUMP-WIN",
            "side": "buy",
            "order_type": "limit",
            "time_in_force": "IOC",
            "quantity": "10",
            "price": "0.70",
        },
        format="json",
    )
    assert response.status_code == 503, response.json()
    assert response.json()["code"] == "market_data_stale"
    with pytest.raises(Exception, match="delayed"):
        order_execute(account=account, symbol="TRUMP-WIN", side="buy", notional_usdc=Decimal("5"))
