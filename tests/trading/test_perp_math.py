"""The SPEC §5 formulas on worked examples."""

from decimal import Decimal

import pytest

from trading import perp_math

D = Decimal


def test_long_liquidation_price_worked_example():
    # Long 2 BTC at 50,000, L = 10: M = 10,000; MMF 0.03.
    margin = perp_math.isolated_margin_required(quantity=D(2), price=D(50000), leverage=10)
    assert margin == D(10000)
    price = perp_math.liquidation_price(quantity=D(2), entry=D(50000), margin=margin, mmf=D("0.03"))
    assert price.quantize(D("0.000001")) == D("46391.752577")
    # At that mark, equity equals maintenance exactly (to precision).
    equity = perp_math.position_equity(margin=margin, quantity=D(2), entry=D(50000), mark=price)
    maintenance = perp_math.maintenance_margin(quantity=D(2), mark=price, mmf=D("0.03"))
    assert abs(equity - maintenance) < D("1e-20")


def test_short_liquidation_price_worked_example():
    # Short 2 BTC at 50,000, L = 10: M = 10,000; (50,000 + 5,000) / 1.03.
    price = perp_math.liquidation_price(
        quantity=D(-2), entry=D(50000), margin=D(10000), mmf=D("0.03")
    )
    assert price.quantize(D("0.000001")) == D("53398.058252")


def test_unleveraged_long_cannot_be_liquidated():
    assert (
        perp_math.liquidation_price(quantity=D(1), entry=D(100), margin=D(100), mmf=D("0.03")) == 0
    )
    assert (
        perp_math.liquidation_price(quantity=D(0), entry=D(1), margin=D(0), mmf=D("0.03")) is None
    )


@pytest.mark.parametrize(
    ("quantity", "mark", "liquidatable"),
    [
        (D(2), D(46391), True),
        (D(2), D(46392), False),
        (D(-2), D(53399), True),
        (D(-2), D(53398), False),
        (D(0), D(1), False),
    ],
)
def test_liquidation_condition_around_the_price(quantity, mark, liquidatable):
    assert (
        perp_math.is_liquidatable(
            margin=D(10000), quantity=quantity, entry=D(50000), mark=mark, mmf=D("0.03")
        )
        is liquidatable
    )


def test_upnl_maintenance_and_funding_signs():
    assert perp_math.unrealized_pnl(quantity=D(-2), entry=D(100), mark=D(90)) == D(20)
    assert perp_math.unrealized_pnl(quantity=D(2), entry=D(100), mark=D(90)) == D(-20)
    assert perp_math.maintenance_margin(quantity=D(-2), mark=D(100), mmf=D("0.03")) == D("6.00")
    assert perp_math.funding_payment(quantity=D(2), mark=D(100), rate=D("0.001")) == D("0.2")
    assert perp_math.funding_payment(quantity=D(-2), mark=D(100), rate=D("0.001")) == D("-0.2")
    with pytest.raises(ValueError):
        perp_math.isolated_margin_required(quantity=D(1), price=D(1), leverage=0)
