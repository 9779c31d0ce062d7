"""Margin simulations (trading.services.simulation): trade, close, add funds, buying
power and seed 003's what-if, on accounts built through the real services.

The market throughout: ALPHA, long-dated (h = 0.3·4p(1−p) = 0.3 at p = 0.5), quoted
  kalshi      bid 0.50  ask 0.52  (TWAP = mid 0.51 → collateral min(0.50, 0.51) = 0.50)
  polymarket  bid 0.49  ask 0.51  (TWAP = mid 0.50 → collateral min(0.49, 0.50) = 0.49)
so its collateral price is 0.50 (kalshi's), the best ask 0.51 (polymarket), the best
bid 0.50 (kalshi). One position: HHI = 1, D = 0.75, so each contract held adds
0.75·0.50·(1 − 0.3) = 0.2625 USDC of Adjusted Equity.
"""

from decimal import Decimal

import pytest

from accounts.models import Account, Journal
from accounts.services.accounts import account_open
from portal.errors import Conflict, InvalidParams, NotFound
from tests.conftest import credit_cash
from tests.trading.conftest import perp_create
from tests.trading.quoting import put_quote
from tests.trading.test_selectors import fill, margin_grant, market
from trading.marketdata import store
from trading.marketdata.store import MarketDataUnavailable
from trading.models import Instrument, Position
from trading.services.execute import execute_preview
from trading.services.orders import order_place_preview
from trading.services.perps import perp_power_get
from trading.services.simulation import (
    Breach,
    add_funds_simulate,
    buying_power_get,
    portfolio_what_if,
    position_close_simulate,
    selling_power_get,
    trade_simulate,
)
from trading.venues.base import Side

D = Decimal
CENT = D("0.01")
pytestmark = pytest.mark.django_db


def alpha_quoted(**kalshi) -> Instrument:
    """ALPHA on kalshi and polymarket with the quotes of the module docstring."""
    alpha = market("ALPHA")
    put_quote("ALPHA@kalshi", bid="0.50", ask="0.52", **kalshi)
    put_quote("ALPHA@polymarket", bid="0.49", ask="0.51")
    return alpha


def holder_open(owner, staff, alpha: Instrument) -> Account:
    """Margin granted; 1000 deposited; 1000 ALPHA YES bought at 0.50: cash 500.

    V = 500, AE = 500 + 0.75·500·0.7 = 762.5, UM = 0: health unbounded.
    """
    account = margin_grant(account_open(owner=owner, kind=Account.Kind.CUSTODIAL), staff)
    credit_cash(account, "1000")
    fill(account, alpha, quantity="1000", price="0.50")
    return account


def borrower_open(owner, staff, alpha: Instrument) -> Account:
    """Margin granted; 500 deposited; 3000 ALPHA YES bought at 0.50: cash −1000.

    V = 1500, AE = 0.75·1500·0.7 = 787.5, UM = 1000: health 0.7875, a margin call.
    """
    account = margin_grant(account_open(owner=owner, kind=Account.Kind.CUSTODIAL), staff)
    credit_cash(account, "500")
    fill(account, alpha, quantity="3000", price="0.50")
    return account


@pytest.fixture
def alpha(quote_store) -> Instrument:
    return alpha_quoted()


@pytest.fixture
def holder(user, staff, alpha) -> Account:
    return holder_open(user, staff, alpha)


@pytest.fixture
def borrower(user, staff, alpha) -> Account:
    return borrower_open(user, staff, alpha)


def _state_fingerprint(account: Account):
    account.refresh_from_db()
    return (
        account.cash_balance,
        list(Position.objects.filter(account=account).values_list("quantity", flat=True)),
        Journal.objects.count(),
    )


# ---------------------------------------------------------------------------
# Trade


def test_a_buy_is_filled_at_the_best_ask_and_valued_at_the_collateral_price(holder):
    unchanged = _state_fingerprint(holder)
    trade = trade_simulate(
        account=holder, symbol="ALPHA", outcome="yes", side="buy", notional="1000"
    )
    # Polymarket's ask 0.51 beats kalshi's 0.52: 1000 / 0.51 = 1960.784313 contracts
    # (whole micro-contracts), costing 999.99999963 → 1000.000000 paid (rounded up).
    assert (trade.venue, trade.side, trade.average_price) == ("polymarket", Side.BUY, D("0.51"))
    assert trade.quantity == D("1960.784313")
    assert trade.notional == D("1000.000000")
    before, after = trade.projection.before, trade.projection.after
    assert (before.adjusted_equity, before.used_margin, before.health) == (
        D("762.500000"),
        D("0.000000"),
        None,
    )
    # After: cash 500 − 1000 = −500; 2960.784313 contracts at 0.50: V = 1480.3921565;
    # AE = 0.75·1480.3921565·0.7 = 777.205882; UM = 500; health 1.554412 (healthy).
    assert after.cash == D("-500.000000")
    assert after.adjusted_equity == D("777.205882")
    assert after.used_margin == D("500.000000")
    assert after.health == D("1.554412")
    assert after.status == "healthy"
    # Seed 003's requirements: initial 1.2·UM = 600, maintenance 1.0·UM = 500.
    assert (after.initial_requirement, after.maintenance_requirement) == (D("600"), D("500"))
    assert trade.projection.is_valid_trade
    assert _state_fingerprint(holder) == unchanged  # a simulation writes nothing


def test_a_buy_below_the_initial_requirement_is_projected_invalid(holder):
    trade = trade_simulate(
        account=holder, symbol="ALPHA", outcome="yes", side="buy", notional="1500"
    )
    # 1500 / 0.51 = 2941.176470 contracts for 1500.000000: cash −1000, 3941.176470 held,
    # V = 1970.588235, AE = 0.525·1970.588235 = 1034.558823; health 1.034559 < 1.2.
    after = trade.projection.after
    assert after.adjusted_equity == D("1034.558823")
    assert after.health == D("1.034559")
    assert after.status == "caution"
    assert not trade.projection.is_valid_trade
    assert trade.projection.breach is Breach.INITIAL_MARGIN


def test_a_chosen_venue_is_used_even_when_another_is_cheaper(holder):
    trade = trade_simulate(
        account=holder,
        symbol="ALPHA",
        outcome="yes",
        side="buy",
        notional="1000",
        venue="kalshi",
    )
    # 1000 / 0.52 = 1923.076923 contracts.
    assert (trade.venue, trade.average_price, trade.quantity) == (
        "kalshi",
        D("0.52"),
        D("1923.076923"),
    )


def test_routing_walks_each_book_for_the_size(holder):
    # Polymarket thin: 100 at 0.51, 100 at 0.56, 100 at 0.61.
    put_quote("ALPHA@polymarket", bid="0.49", ask="0.51", size="100", step="0.05")
    small = trade_simulate(account=holder, symbol="ALPHA", outcome="yes", side="buy", notional="40")
    assert (small.venue, small.average_price) == ("polymarket", D("0.51"))
    # 100 USDC there: 100 at 0.51 (51) + 87.5 at 0.56 (49) → average 0.5333 > kalshi's 0.52.
    large = trade_simulate(
        account=holder, symbol="ALPHA", outcome="yes", side="buy", notional="100"
    )
    assert (large.venue, large.average_price) == ("kalshi", D("0.52"))


def test_a_sell_receives_the_best_bid_and_always_passes(borrower):
    trade = trade_simulate(
        account=borrower, symbol="ALPHA", outcome="yes", side="sell", notional="250"
    )
    # Kalshi's bid 0.50 beats polymarket's 0.49: 500 contracts for 250.
    assert (trade.venue, trade.quantity, trade.notional) == ("kalshi", D("500"), D("250"))
    # Cash −750, 2500 held: AE = 0.2625·2500 = 656.25, health 0.875: still a margin call,
    # but selling only reduces risk.
    after = trade.projection.after
    assert (after.adjusted_equity, after.health, after.status) == (
        D("656.250000"),
        D("0.875000"),
        "margin_call",
    )
    assert trade.projection.is_valid_trade


def test_selling_more_than_the_position_is_refused(holder):
    with pytest.raises(InvalidParams, match=r"Cannot sell 1,200 ALPHA YES.*holds 1,000"):
        trade_simulate(account=holder, symbol="ALPHA", outcome="yes", side="sell", notional="600")


def test_the_no_contract_trades_on_the_complement_book(holder):
    # NO asks = 1 − YES bids: kalshi 0.50, polymarket 0.51 → kalshi at 0.50.
    trade = trade_simulate(account=holder, symbol="ALPHA", outcome="NO", side="buy", notional="50")
    assert (trade.outcome, trade.venue, trade.average_price, trade.quantity) == (
        "no",
        "kalshi",
        D("0.50"),
        D("100"),
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"symbol": "NOPE"}, NotFound, "Unknown instrument 'NOPE'"),
        ({"venue": "leviathan"}, NotFound, "not listed on 'leviathan'"),
        ({"outcome": "maybe"}, InvalidParams, "outcome must be 'yes' or 'no'"),
        ({"side": "short"}, InvalidParams, "side must be 'buy' or 'sell'"),
        ({"notional": "0"}, InvalidParams, "greater than zero"),
        ({"notional": "-5"}, InvalidParams, "greater than zero"),
        ({"notional": 10.5}, InvalidParams, "not a float"),
        ({"notional": "1.0000001"}, InvalidParams, "6 decimal places"),
        ({"notional": "lots"}, InvalidParams, "decimal string"),
        ({"notional": "10000000000001"}, InvalidParams, "at most"),
        ({"notional": "1e3"}, InvalidParams, "decimal string"),
        ({"notional": "١٢٣"}, InvalidParams, "ASCII digits"),
    ],
)
def test_bad_trade_requests_are_refused(holder, kwargs, error, match):
    request = {"symbol": "ALPHA", "outcome": "yes", "side": "buy", "notional": "10"} | kwargs
    with pytest.raises(error, match=match):
        trade_simulate(account=holder, **request)


def test_a_perpetual_is_not_simulated_in_the_margin_portfolio(holder):
    perp_create("BTC-PERP", "BTC")
    with pytest.raises(InvalidParams, match="perpetual"):
        trade_simulate(account=holder, symbol="BTC-PERP", outcome="yes", side="buy", notional="10")


@pytest.mark.parametrize(
    ("status", "resolution", "match"),
    [
        (Instrument.Status.HALTED, "", "halted"),
        (Instrument.Status.RESOLVED, Instrument.Resolution.NO, r"resolved \(NO\)"),
    ],
)
def test_a_closed_market_cannot_be_simulated(holder, alpha, status, resolution, match):
    Instrument.objects.filter(pk=alpha.pk).update(status=status, resolution=resolution)
    with pytest.raises(Conflict, match=match) as info:
        trade_simulate(account=holder, symbol="ALPHA", outcome="yes", side="buy", notional="10")
    assert (info.value.code, info.value.status) == ("market_closed", 409)
    position = Position.objects.get(account=holder)
    with pytest.raises(Conflict, match=match):
        position_close_simulate(account=holder, position_id=position.pk)


def test_without_live_prices_there_is_nothing_to_simulate(holder, quote_store):
    quote_store.delete(store.quotes_key())
    with pytest.raises(MarketDataUnavailable) as info:
        trade_simulate(account=holder, symbol="ALPHA", outcome="yes", side="buy", notional="10")
    assert info.value.status == 503


def test_a_size_no_book_can_fill_is_refused(holder):
    put_quote("ALPHA@kalshi", bid="0.50", ask="0.52", size="100", levels=1)
    put_quote("ALPHA@polymarket", bid="0.49", ask="0.51", size="100", levels=1)
    with pytest.raises(InvalidParams, match="Not enough liquidity") as info:
        trade_simulate(account=holder, symbol="ALPHA", outcome="yes", side="buy", notional="60")
    assert info.value.code == "insufficient_liquidity"


# ---------------------------------------------------------------------------
# Close a position


def test_closing_a_position_shows_how_health_improves(borrower):
    position = Position.objects.get(account=borrower)
    close = position_close_simulate(account=borrower, position_id=position.pk)
    # 3000 valued at the collateral price 0.50: +1500 → cash 500, no positions: AE 500.
    before, after = close.projection.before, close.projection.after
    assert close.quantity == D("3000")
    assert (before.health, before.status) == (D("0.787500"), "margin_call")
    assert (after.cash, after.adjusted_equity, after.health, after.status) == (
        D("500"),
        D("500.000000"),
        None,
        "healthy",
    )
    assert close.projection.is_valid_trade
    # The books absorb it all now at kalshi's 0.50 bid.
    assert close.venue == "kalshi"
    assert (close.fillable.quantity, close.fillable.average_price) == (D("3000"), D("0.50"))
    assert close.proceeds == D("1500")


def test_a_close_is_simulated_on_a_thin_book_and_a_partial_size(borrower):
    """Never `insufficient_liquidity`: the health after is the engine's valuation, and
    what the books can take now is reported beside it."""
    put_quote("ALPHA@kalshi", bid="0.50", ask="0.52", size="100", levels=2)
    put_quote("ALPHA@polymarket", bid="0.49", ask="0.51", size="50", levels=1)
    position = Position.objects.get(account=borrower)
    close = position_close_simulate(account=borrower, position_id=position.pk)
    assert close.projection.after.cash == D("500")  # valued at 0.50, as the engine does
    assert close.venue == "kalshi"
    assert close.fillable.quantity == D("200")  # 100 at 0.50, 100 at 0.49
    assert close.fillable.average_price == D("0.495")
    half = position_close_simulate(account=borrower, position_id=position.pk, quantity="1500")
    assert (half.quantity, half.projection.after.cash) == (D("1500"), D("-250"))
    with pytest.raises(InvalidParams, match="more than the position"):
        position_close_simulate(account=borrower, position_id=position.pk, quantity="3001")


def test_only_an_open_position_of_the_account_can_be_closed(borrower, holder):
    other = Position.objects.get(account=holder)
    with pytest.raises(NotFound, match=f"No open position {other.pk}"):
        position_close_simulate(account=borrower, position_id=other.pk)
    fill(holder, other.instrument, quantity="1000", price="0.50", side="sell")
    with pytest.raises(NotFound):
        position_close_simulate(account=holder, position_id=other.pk)


# ---------------------------------------------------------------------------
# Add funds


def test_add_funds_restores_the_target_health_exactly(borrower):
    # AE 787.5, UM 1000. Target 1.5: d* = 1000 − 787.5/1.5 = 1000 − 525 = 475.
    healthy = add_funds_simulate(account=borrower)
    assert (healthy.target, healthy.amount) == (D("1.5"), D("475.000000"))
    after = healthy.projection.after
    assert (after.cash, after.adjusted_equity, after.used_margin, after.health) == (
        D("-525.000000"),
        D("787.500000"),
        D("525.000000"),
        D("1.500000"),
    )
    # Target 1.2: d* = 1000 − 787.5/1.2 = 1000 − 656.25 = 343.75 → health 787.5/656.25 = 1.2.
    initial = add_funds_simulate(account=borrower, target="1.2")
    assert initial.amount == D("343.750000")
    assert initial.projection.after.health == D("1.200000")


def test_add_funds_rounds_up_to_the_micro_dollar(borrower):
    # Target 1.7: d* = 1000 − 787.5/1.7 = 1000 − 463.235294117… = 536.764705882… → 536.764706.
    answer = add_funds_simulate(account=borrower, target="1.7")
    assert answer.amount == D("536.764706")
    # 787.5 / (1000 − 536.764706) = 1.70000000043 ≥ 1.7.
    assert answer.projection.after.health == D("1.700000")
    assert answer.projection.result.health[0] >= 1.7


def test_nothing_to_add_without_borrowing(holder):
    answer = add_funds_simulate(account=holder)
    assert answer.amount == D("0")
    assert answer.projection.after.health is None


@pytest.mark.parametrize("target", ["0", "-1.5", "high", 1.5])
def test_a_bad_target_is_refused(holder, target):
    with pytest.raises(InvalidParams):
        add_funds_simulate(account=holder, target=target)


# ---------------------------------------------------------------------------
# Buying power


def test_buying_power_of_a_margin_account_worked_example(holder):
    """Buying power is what execute accepts: the worst case at the 50 bps slippage
    limit (0.51 · 1.005 = 0.51255 a contract), the 10 bps commission included."""
    # Cash 500 − 1.001·N, contracts 1000 + N/0.51255, AE = 0.2625·(1000 + N/0.51255).
    # Health = 1.2 ⇔ 262.5 + 0.512145·N = 1.2·(1.001·N − 500) ⇔ N = 862.5 / 0.689055.
    power = buying_power_get(account=holder, symbol="ALPHA", outcome="yes")
    assert power.notional == D("1251.71") == power.fillable
    accepted = execute_preview(account=holder, symbol="ALPHA", side="buy", notional_usdc="1251.71")
    assert accepted.refusal is None
    assert accepted.plan.projection.after.health >= D("1.2")
    refused = execute_preview(account=holder, symbol="ALPHA", side="buy", notional_usdc="1251.72")
    assert refused.code == "insufficient_margin"


def test_buying_power_without_margin_is_the_cash(user, alpha):
    account = account_open(owner=user, kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "1000")
    power = buying_power_get(account=account, symbol="ALPHA", outcome="yes")
    assert power.notional == D("999.00")  # 1000 / 1.001: the 10 bps commission is paid too
    assert (
        execute_preview(account=account, symbol="ALPHA", side="buy", notional_usdc="999.00").refusal
        is None
    )
    assert (
        execute_preview(account=account, symbol="ALPHA", side="buy", notional_usdc="999.01").code
        == "insufficient_margin"
    )


def test_an_account_below_the_requirement_has_no_buying_power(borrower):
    power = buying_power_get(account=borrower, symbol="ALPHA", outcome="no")
    assert (power.notional, power.fillable) == (D("0.00"), D("0.00"))
    assert power.before.health == D("0.787500")


# ---------------------------------------------------------------------------
# Selling power and the largest perp order: what the order path accepts


def test_selling_power_is_the_position_and_execute_accepts_exactly_it(holder):
    """A sale sells what is held (selling YES never buys NO) and only reduces risk:
    the largest is the 1000 contracts held, 500.00 USDC at the best bid 0.50."""
    power = selling_power_get(account=holder, symbol="ALPHA", outcome="yes")
    assert (power.quantity, power.fillable_quantity) == (D("1000"), D("1000"))
    assert power.notional == D("500.00") == power.fillable
    at = execute_preview(account=holder, symbol="ALPHA", side="sell", notional_usdc="500.00")
    assert at.refusal is None and at.plan.projection.is_valid_trade
    over = execute_preview(account=holder, symbol="ALPHA", side="sell", notional_usdc="500.01")
    assert over.refusal is not None and over.refusal.message.startswith("Cannot sell")
    # The other outcome is not held: nothing to sell.
    other = selling_power_get(account=holder, symbol="ALPHA", outcome="no")
    assert (other.quantity, other.notional, other.fillable) == (D("0"), D("0.00"), D("0.00"))


def test_a_thin_book_bounds_the_sale_at_the_slippage_limit(holder):
    """Bids of 300 at 0.50, 0.49, 0.48 (kalshi): within 50 bps of 0.50 the average
    may fall to 0.4975 (as the walk rounds it, to 8 places), reached at about 400
    contracts (300·0.50 + 100·0.49 = 199.00)."""
    put_quote("ALPHA@kalshi", bid="0.50", ask="0.52", size="300")
    put_quote("ALPHA@polymarket", bid="0.49", ask="0.51", size="300")
    power = selling_power_get(account=holder, symbol="ALPHA", outcome="yes")
    assert power.notional == D("500.00") and power.quantity == D("1000")
    assert power.fillable == D("199.00")
    assert D("400") <= power.fillable_quantity < D("400.001")
    at = execute_preview(account=holder, symbol="ALPHA", side="sell", notional_usdc="199.00")
    assert at.refusal is None
    over = execute_preview(account=holder, symbol="ALPHA", side="sell", notional_usdc="199.01")
    assert over.code == "slippage_exceeded"
    wider = selling_power_get(account=holder, symbol="ALPHA", outcome="yes", slippage_bps=100)
    assert D("600") <= wider.fillable_quantity < D("600.001")  # 0.495: 100 bps


def test_buying_power_fillable_stops_at_the_slippage_limit(holder):
    """Asks of 300 at 0.51, 0.52, 0.53 (polymarket; kalshi 0.52 up): within 50 bps of
    0.51 the average may rise to 0.51255."""
    put_quote("ALPHA@kalshi", bid="0.50", ask="0.52", size="300")
    put_quote("ALPHA@polymarket", bid="0.49", ask="0.51", size="300")
    power = buying_power_get(account=holder, symbol="ALPHA", outcome="yes")
    assert power.notional == D("1251.71") > power.fillable
    at = execute_preview(
        account=holder, symbol="ALPHA", side="buy", notional_usdc=str(power.fillable)
    )
    assert at.refusal is None
    over = execute_preview(
        account=holder, symbol="ALPHA", side="buy", notional_usdc=str(power.fillable + CENT)
    )
    assert over.code == "slippage_exceeded"


@pytest.fixture
def btc(alpha) -> Instrument:
    instrument = perp_create("BTC-PERP", "BTC")
    put_quote("BTC-PERP@leviathan", bid="50000", ask="50001", binary=False, step="1", size="1")
    return instrument


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_the_largest_perp_order_by_notional_is_what_execute_accepts(holder, btc, side):
    """A margin account with cash 500 and ALPHA as collateral: the isolated margin
    (at the 5x in force, at the slippage limit) and the fee come off cash, which may
    go below zero while health stays ≥ 1.2."""
    power = perp_power_get(account=holder, symbol="BTC-PERP", side=side)
    assert power.leverage == 5 and power.notional > D("2500")  # more than the cash × 5
    at = execute_preview(
        account=holder, symbol="BTC-PERP", side=side, notional_usdc=str(power.notional)
    )
    assert at.refusal is None
    assert at.plan.projection.after.health is None or at.plan.projection.after.health >= D("1.2")
    over = execute_preview(
        account=holder, symbol="BTC-PERP", side=side, notional_usdc=str(power.notional + CENT)
    )
    assert over.code == "insufficient_margin"
    # The book holds 3 BTC a side (1 a level, 1 apart), more than the margin allows.
    assert power.fillable == power.notional
    fits = execute_preview(
        account=holder, symbol="BTC-PERP", side=side, notional_usdc=str(power.fillable)
    )
    assert fits.refusal is None


def test_the_largest_perp_order_in_contracts_is_what_order_place_accepts(user, btc):
    """Without margin: cash 1000 at 2x and a limit of 50,001 allows
    1000·2 / 50,001 = 0.0399992, so 0.039999 BTC; order_place checks no fee."""
    account = account_open(owner=user, kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "1000")
    power = perp_power_get(
        account=account, symbol="BTC-PERP", side="buy", leverage=2, limit=D("50001")
    )
    assert (power.quantity, power.leverage, power.price) == (D("0.039999"), 2, D("50001"))

    def preview(quantity: str):
        return order_place_preview(
            account=account,
            symbol="BTC-PERP",
            side="buy",
            order_type="limit",
            time_in_force="gtc",
            quantity=quantity,
            price=D("50001"),
            leverage=2,
        )

    assert preview("0.039999").refusal is None
    assert preview("0.040000").refusal.code == "insufficient_margin"
    # By notional, at the 5x in force and with the fee: about 5 × 1000 / 1.005.
    assert D("4900") < power.notional < D("5000")


# ---------------------------------------------------------------------------
# Seed 003's what-if


def test_what_if_deposit_and_buy_at_the_ask(holder):
    what_if = portfolio_what_if(
        account=holder,
        collateral_changes=[{"amount": "100", "asset_name": "USDC"}],
        position_changes=[{"instrument_name": "ALPHA", "amount": "1000"}],
    )
    # 1000 at the best ask for that size (polymarket 0.51): 510 paid, and the 10 bps
    # broker commission (0.51) as execute charges it.
    (priced,) = what_if.positions
    assert (priced.symbol, priced.outcome, priced.entry_price, priced.fee, priced.cash) == (
        "ALPHA",
        "yes",
        D("0.51"),
        D("0.510000"),
        D("-510.510000"),
    )
    # Cash 500 + 100 − 510.51 = 89.49; 2000 held: AE = 89.49 + 0.2625·2000 = 614.49; UM 0.
    post = what_if.projection.after
    assert (post.cash, post.adjusted_equity, post.used_margin, post.health) == (
        D("89.490000"),
        D("614.490000"),
        D("0.000000"),
        None,
    )
    assert what_if.projection.is_valid_trade


def test_what_if_borrowing_below_the_requirement_is_not_a_valid_trade(holder):
    what_if = portfolio_what_if(
        account=holder,
        position_changes=[{"instrument_name": "ALPHA:YES", "amount": "3000", "entry_price": "0.5"}],
    )
    # Cash 500 − 1500 − 1.50 (the 10 bps commission) = −1001.50; 4000 held:
    # AE = 0.2625·4000 = 1050; health 1050 / 1001.50 = 1.048427.
    projection = what_if.projection
    assert (projection.before.initial_requirement, projection.before.maintenance_requirement) == (
        D("0"),
        D("0"),
    )
    post = projection.after
    assert (post.adjusted_equity, post.used_margin, post.health) == (
        D("1050.000000"),
        D("1001.500000"),
        D("1.048427"),
    )
    # AE 1050 < initial requirement 1.2·1001.50 = 1201.80, ≥ maintenance 1.0·1001.50.
    assert (post.initial_requirement, post.maintenance_requirement) == (
        D("1201.800000"),
        D("1001.500000"),
    )
    assert not projection.is_valid_trade


def test_what_if_no_contract_and_a_sell(holder):
    what_if = portfolio_what_if(
        account=holder,
        position_changes=[
            {"instrument_name": "ALPHA:no", "amount": "100"},
            {"instrument_name": "ALPHA", "amount": "-400"},
        ],
    )
    bought, sold = what_if.positions
    # NO: best ask 0.50 (kalshi, 1 − its YES bid) → −50 − 0.05 commission; YES sold at
    # the best bid 0.50 → +200 − 0.20 commission.
    assert (bought.outcome, bought.entry_price, bought.cash) == ("no", D("0.50"), D("-50.050000"))
    assert (sold.outcome, sold.entry_price, sold.cash) == ("yes", D("0.50"), D("199.800000"))
    # Cash 500 − 50.05 + 199.80 = 649.75. YES 600 at 0.50: V 300, h 0.3. NO 100 at
    # collateral max(min(0.48, 0.49), min(0.49, 0.50)) = 0.49: V 49, h = 0.29988.
    # One event: D = 0.75; AE = 649.75 + 0.75·(300·0.7 + 49·0.70012) = 649.75 + 183.229410.
    assert what_if.projection.after.adjusted_equity == D("832.979410")


def test_a_what_if_withdrawal_can_never_borrow(holder):
    what_if = portfolio_what_if(
        account=holder, collateral_changes=[{"amount": "-600", "asset_name": "usdc"}]
    )
    # Cash −100 would leave health 262.5 / 100 = 2.625, but a withdrawal never borrows.
    assert what_if.projection.after.health == D("2.625000")
    assert what_if.projection.breach is Breach.BORROWING
    assert not what_if.projection.is_valid_trade


@pytest.mark.parametrize(
    ("collateral", "positions", "error", "match"),
    [
        ([{"amount": "1", "asset_name": "ETH"}], [], InvalidParams, "Only USDC"),
        ([{"amount": 1.5, "asset_name": "USDC"}], [], InvalidParams, "not a float"),
        ("USDC", [], InvalidParams, "must be a list"),
        ([], [{"instrument_name": "NOPE", "amount": "1"}], NotFound, "Unknown instrument"),
        ([], [{"instrument_name": "ALPHA:MAYBE", "amount": "1"}], InvalidParams, "outcome"),
        ([], [{"instrument_name": "", "amount": "1"}], InvalidParams, "instrument_name"),
        ([], [{"instrument_name": "ALPHA", "amount": "0"}], InvalidParams, "not be zero"),
        ([], [{"instrument_name": "ALPHA", "amount": "-1001"}], InvalidParams, "holds 1,000"),
        (
            [],
            [{"instrument_name": "ALPHA", "amount": "1", "entry_price": "1.5"}],
            InvalidParams,
            r"\(0, 1\]",
        ),
        ([], [{"instrument_name": "ALPHA"}], InvalidParams, "decimal string"),
        ([], [["ALPHA", "1"]], InvalidParams, "must be an object"),
    ],
)
def test_bad_what_ifs_are_refused(holder, collateral, positions, error, match):
    with pytest.raises(error, match=match):
        portfolio_what_if(account=holder, collateral_changes=collateral, position_changes=positions)
