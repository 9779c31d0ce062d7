"""Preview = apply (SPEC §6): over random accounts, books and orders, the order
form's preview (`execute_preview`) gives exactly the verdict and refusal code
that `order_execute` then gives, fees and the slippage limit included."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account
from portal.errors import DomainError
from tests.trading.conftest import binary_create
from tests.trading.executing import trader
from tests.trading.quoting import put_quote
from trading.models import FeePolicy, Order, VenueFeeSchedule
from trading.services.execute import execute_preview, order_execute
from trading.services.fees import fee_policy_get

D = Decimal
pytestmark = pytest.mark.django_db

cents = st.integers(min_value=5, max_value=90).map(lambda c: D(c) / 100)
books = st.fixed_dictionaries(
    {
        "bid": cents,
        "spread": st.integers(min_value=1, max_value=4).map(lambda c: D(c) / 100),
        "size": st.integers(min_value=1, max_value=400).map(D),
        "levels": st.integers(min_value=1, max_value=5),
    }
)
orders = st.fixed_dictionaries(
    {
        "symbol": st.sampled_from(["PROP", "PROP:NO"]),
        "side": st.sampled_from(["buy", "buy", "sell"]),
        "notional_usdc": st.integers(min_value=100, max_value=300_000).map(lambda c: D(c) / 100),
        "slippage_bps": st.sampled_from([0, 10, 50, 200, 1000]),
    }
)
accounts = st.fixed_dictionaries(
    {
        "cash": st.integers(min_value=0, max_value=3000).map(D),
        "margin": st.booleans(),
        "held": st.integers(min_value=0, max_value=300).map(D),  # YES contracts bought first
    }
)


@pytest.fixture
def market(quote_store):
    FeePolicy.objects.update_or_create(pk=1, defaults={"broker_commission_bps": 25})
    instrument = binary_create("PROP", "0.01", "kalshi")
    VenueFeeSchedule.objects.create(
        policy=fee_policy_get(),
        venue=instrument.listings.get(venue__code="kalshi").venue,
        model=VenueFeeSchedule.Model.KALSHI,
    )
    return instrument


def _account(spec: dict) -> Account:
    account = trader(str(spec["cash"] + spec["held"] + 1), margin=spec["margin"])
    put_quote("PROP@kalshi", bid="0.49", ask="0.50")
    if spec["held"]:
        order_execute(account=account, symbol="PROP", side="buy", notional_usdc=spec["held"] / 2)
    return account


def _outcome(account: Account, order: dict) -> tuple[str | None, Order | None]:
    try:
        placed = order_execute(account=account, **order)
    except DomainError as exc:
        return exc.code, None
    return None, placed


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=accounts, book=books, order=orders)
def test_the_preview_verdict_is_the_execute_verdict(market, spec, book, order):
    account = _account(spec)
    put_quote(
        "PROP@kalshi",
        bid=book["bid"],
        ask=book["bid"] + book["spread"],
        size=book["size"],
        levels=book["levels"],
    )
    preview = execute_preview(account=account, **order)
    code, placed = _outcome(account, order)
    assert preview.code == code, (preview.refusal, code)
    if placed is not None:
        plan = preview.plan
        assert placed.status == Order.Status.FILLED
        assert placed.filled_notional <= order["notional_usdc"]
        assert placed.fees <= plan.fee  # the check counted at least the fee charged
        assert placed.average_fill_price == plan.route.estimate.average_price
