"""The perp fill path: open, add, reduce, flip; isolated margin in the ledger."""

from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import HouseAccount, Journal
from accounts.services.reconciliation import ledger_reconcile
from portal.errors import InvalidParams
from tests.conftest import credit_cash
from tests.trading.perping import assert_reconciled, fill, ledger_balance, perp_position
from trading.services.perps import perp_margin_needed

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def funded(custodial_account):
    credit_cash(custodial_account, "100000")
    return custodial_account


def test_open_long_allocates_margin_from_cash(funded, markets):
    btc = markets.btc
    result = fill(funded, btc, "buy", "2", "50000", venue_fee="5", commission="10", leverage=10)
    position = perp_position(funded, btc)
    assert position.quantity == D(2)
    assert position.average_price == D(50000)
    assert position.isolated_margin == D(10000)
    assert position.leverage == 10
    assert result.notional == D(100000)
    assert result.realized_pnl == 0
    assert result.journal.kind == Journal.Kind.TRADE
    assert sum(p.amount for p in result.journal.postings.all()) == 0
    assert funded.cash_balance == D(100000) - D(10000) - D(15)
    assert funded.lifetime_volume == D(100000)
    assert ledger_balance(HouseAccount.FEE_INCOME.value) == D(10)
    assert_reconciled(funded, btc)
    assert ledger_reconcile().ok


def test_default_leverage_and_weighted_entry_on_add(funded, markets):
    btc = markets.btc  # default 5x
    fill(funded, btc, "buy", "1", "50000")
    fill(funded, btc, "buy", "1", "52000")
    position = perp_position(funded, btc)
    assert position.quantity == D(2)
    assert position.average_price == D(51000)
    assert position.isolated_margin == D(10000) + D(10400)
    assert position.leverage == 5
    assert_reconciled(funded, btc)


def test_reduce_long_realizes_pnl_and_releases_margin(funded, markets):
    btc = markets.btc
    fill(funded, btc, "buy", "2", "50000", leverage=10)
    result = fill(funded, btc, "sell", "0.5", "52000")
    position = perp_position(funded, btc)
    assert result.realized_pnl == D(1000)
    assert position.quantity == D("1.5")
    assert position.average_price == D(50000)
    assert position.isolated_margin == D(7500)
    assert position.realized_pnl == D(1000)
    assert funded.cash_balance == D(100000) - D(7500) + D(1000)
    assert ledger_balance(HouseAccount.VENUE_SETTLEMENT.value) == D(-1000)
    assert_reconciled(funded, btc)
    assert ledger_reconcile().ok


def test_short_open_and_close_at_a_loss(funded, markets):
    btc = markets.btc
    fill(funded, btc, "sell", "1", "50000", leverage=10)
    position = perp_position(funded, btc)
    assert position.quantity == D(-1)
    assert position.isolated_margin == D(5000)
    result = fill(funded, btc, "buy", "1", "51000")
    position = perp_position(funded, btc)
    assert result.realized_pnl == D(-1000)
    assert position.quantity == 0
    assert position.isolated_margin == 0
    assert funded.cash_balance == D(99000)
    assert_reconciled(funded, btc)
    assert ledger_reconcile().ok


def test_flip_closes_all_then_opens_the_rest(funded, markets):
    btc = markets.btc
    fill(funded, btc, "buy", "1", "50000", leverage=10)
    result = fill(funded, btc, "sell", "3", "49000", leverage=4)
    position = perp_position(funded, btc)
    assert result.realized_pnl == D(-1000)
    assert position.quantity == D(-2)
    assert position.average_price == D(49000)
    assert position.isolated_margin == D(2) * D(49000) / 4
    assert position.leverage == 4
    assert funded.cash_balance == D(100000) - D(1000) - D(24500)
    assert_reconciled(funded, btc)
    assert ledger_reconcile().ok


def test_margin_needed(funded, markets):
    btc = markets.btc
    assert perp_margin_needed(
        account=funded, instrument=btc, side="buy", quantity=D(1), price=D(50000)
    ) == D(10000)
    fill(funded, btc, "buy", "1", "50000")
    assert (
        perp_margin_needed(
            account=funded, instrument=btc, side="sell", quantity=D("0.5"), price=D(50000)
        )
        == 0
    )
    assert perp_margin_needed(
        account=funded, instrument=btc, side="sell", quantity=D(2), price=D(50000)
    ) == D(10000)


@pytest.mark.parametrize(
    ("kwargs", "instrument"),
    [
        ({"side": "buy", "quantity": "0", "price": "1"}, "btc"),
        ({"side": "buy", "quantity": "1", "price": "0"}, "btc"),
        ({"side": "hold", "quantity": "1", "price": "1"}, "btc"),
        ({"side": "buy", "quantity": "1", "price": "1", "leverage": 21}, "btc"),
        ({"side": "buy", "quantity": "1", "price": "0.5"}, "trump"),
    ],
)
def test_fill_refuses_bad_input(funded, markets, kwargs, instrument):
    with pytest.raises(InvalidParams):
        fill(funded, getattr(markets, instrument), **kwargs)


# Isolated liquidation ---------------------------------------------------------


def put_btc(mark: str) -> None:
    from tests.trading.quoting import put_quote

    put_quote("BTC-PERP@leviathan", bid=mark, ask=mark, binary=False, step="1")


def test_selector_shows_upnl_and_liquidation_price(funded, markets, quote_store):
    from trading.selectors import perp_positions_get

    fill(funded, markets.btc, "buy", "2", "50000", leverage=10)
    put_btc("49000")
    (view,) = perp_positions_get(account=funded)
    assert (view.symbol, view.side, view.quantity, view.leverage) == ("BTC-PERP", "long", 2, 10)
    assert view.mark == D(49000)
    assert view.unrealized_pnl == D(-2000)
    assert view.isolated_margin == D(10000)
    assert view.liquidation_price == D("46391.75257732")
    assert view.maintenance_margin == D(2940)
    assert view.notional == D(98000)


def test_liquidation_not_triggered_above_maintenance(funded, markets, quote_store):
    from trading.services.perps import perp_positions_liquidate

    fill(funded, markets.btc, "buy", "2", "50000", leverage=10)
    put_btc("46400")  # above 46,391.75
    assert perp_positions_liquidate(instrument_ids=[markets.btc.pk]) == []
    assert perp_position(funded, markets.btc).quantity == 2


def liquidate(markets, capture) -> list:
    """One tick's isolated liquidation, then the outbox's send of its closing orders."""
    from trading.services.perps import perp_positions_liquidate

    with capture(execute=True):
        return perp_positions_liquidate(instrument_ids=[markets.btc.pk])


def test_liquidation_below_maintenance_closes_at_the_venue(
    funded, markets, quote_store, django_capture_on_commit_callbacks
):
    """The tick submits a market order that closes the position; the venue's fill is
    booked (journal kind LIQUIDATION, fees as any fill) and the owner told once."""
    from accounts.models import Notification
    from trading.venues.simulated import SimulatedVenue

    fill(funded, markets.btc, "buy", "2", "50000", leverage=10)
    funded.refresh_from_db()
    cash_before = funded.cash_balance
    put_btc("46000")
    (order,) = liquidate(markets, django_capture_on_commit_callbacks)
    order.refresh_from_db()
    assert (order.side, order.status, order.isolated_liquidation) == ("sell", "filled", True)
    assert (order.filled_quantity, order.average_fill_price) == (D(2), D(46000))
    listing = markets.btc.listings.get(venue__code="leviathan")
    placed = SimulatedVenue("leviathan").order_status(listing, client_order_id=order.public_id)
    assert (placed.status, placed.quantity) == ("filled", D(2))
    (closed,) = order.fills.all()
    assert closed.realized_pnl == D(-8000)
    assert closed.journal.kind == Journal.Kind.LIQUIDATION
    assert closed.journal.memo.startswith(f"{order.public_id}: Isolated liquidation: ")
    position = perp_position(funded, markets.btc)
    assert (position.quantity, position.isolated_margin) == (0, 0)
    funded.refresh_from_db()
    # The 10,000 of margin comes back less the 8,000 loss and the fill's fees.
    assert funded.cash_balance == cash_before + D(10000) - D(8000) - order.fees
    (note,) = Notification.objects.filter(account=funded, kind="liquidation")
    assert "2 were closed at 46,000" in note.body
    assert "Realized P&L -8,000.00 USDC; isolated margin released 10,000.00 USDC." in note.body
    assert "exceeded" not in note.body
    assert liquidate(markets, django_capture_on_commit_callbacks) == []
    assert_reconciled(funded, markets.btc)
    assert ledger_reconcile().ok


def test_a_closing_order_at_the_venue_is_not_sent_twice(funded, markets, quote_store, settings):
    from trading.models import Order
    from trading.services.execute import orders_reconcile
    from trading.services.perps import perp_positions_liquidate

    fill(funded, markets.btc, "buy", "2", "50000", leverage=10)
    put_btc("46000")
    (order,) = perp_positions_liquidate(instrument_ids=[markets.btc.pk])  # not sent yet
    assert order.status == "submitted"
    assert perp_positions_liquidate(instrument_ids=[markets.btc.pk]) == []
    Order.objects.filter(pk=order.pk).update(created_at=order.created_at - timedelta(minutes=5))
    assert orders_reconcile().filled == [order.public_id]  # the reconciler sends it
    assert perp_position(funded, markets.btc).quantity == 0
    assert ledger_reconcile().ok


def test_short_liquidation_loss_beyond_margin_comes_from_cash(
    funded, markets, quote_store, django_capture_on_commit_callbacks
):
    from accounts.models import Notification

    fill(funded, markets.btc, "sell", "1", "50000", leverage=20)  # M = 2,500
    funded.refresh_from_db()
    cash_before = funded.cash_balance
    put_btc("60000")
    (order,) = liquidate(markets, django_capture_on_commit_callbacks)
    order.refresh_from_db()
    assert (order.side, order.filled_quantity) == ("buy", D(1))
    assert order.fills.get().realized_pnl == D(-10000)
    funded.refresh_from_db()
    assert funded.cash_balance == cash_before + D(2500) - D(10000) - order.fees
    note = Notification.objects.get(account=funded, kind="liquidation")
    assert "The loss exceeded the isolated margin by 7,500.00 USDC" in note.body
    assert ledger_reconcile().ok


def test_engine_batch_liquidates_moved_perps(
    funded, markets, quote_store, django_capture_on_commit_callbacks
):
    from tests.trading.quoting import put_quote
    from trading.engine import MarginEngine
    from trading.marketdata.store import TickBatch

    fill(funded, markets.btc, "buy", "2", "50000", leverage=10)
    quote = put_quote("BTC-PERP@leviathan", bid="46000", ask="46000", binary=False, step="1")
    with django_capture_on_commit_callbacks(execute=True):  # the outbox sends the close
        MarginEngine(publish=False).process_batch(TickBatch(ts=quote.ts, quotes=(quote,)))
    assert perp_position(funded, markets.btc).quantity == 0
