"""Execute (trading.services.execute.order_execute): one market order for a
notional, routed, checked, filled and booked in one transaction."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from accounts.models import Account, User
from accounts.services.ledger import cash_balance_from_ledger
from accounts.services.reconciliation import ledger_reconcile
from portal.errors import DomainError, InsufficientMargin
from tests.factories import open_account
from tests.trading.executing import market, no_commission, trader
from tests.trading.margining import listen, receive
from trading.broadcasts import account_group
from trading.models import Fill, Instrument, Order, Position
from trading.services.execute import order_execute
from trading.services.simulation import account_state_load

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def elect(quote_store) -> Instrument:
    no_commission()
    return market()


def test_smart_routing_picks_the_cheaper_venue_and_books_everything(elect):
    account = trader("1000")
    order = order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    assert order.status == Order.Status.FILLED
    assert order.venue.code == "kalshi"
    assert order.outcome == "yes"
    assert order.filled_quantity == D(100)
    assert order.average_fill_price == D("0.60")
    fill = order.fills.get()
    assert fill.venue.code == "kalshi" and fill.notional == D("60")
    position = Position.objects.get(account=account, instrument=elect, outcome="yes")
    assert position.quantity == D(100)
    account.refresh_from_db()
    assert account.cash_balance == D("940") == cash_balance_from_ledger(account)
    assert account.lifetime_volume == D("60")


def test_a_venue_can_be_named_and_no_buys_the_no_contract(elect):
    account = trader("1000")
    order = order_execute(
        account=account, symbol="ELECT:NO", side="buy", notional_usdc=D("41"), venue="polymarket"
    )
    assert order.venue.code == "polymarket" and order.outcome == "no"
    assert order.average_fill_price == D("0.39")  # 1 − polymarket's YES bid 0.61


def test_sell_reduces_a_position(elect):
    account = trader("1000")
    order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    sold = order_execute(account=account, symbol="ELECT", side="sell", notional_usdc=D("29.5"))
    assert sold.status == Order.Status.FILLED
    assert sold.average_fill_price == D("0.61")  # polymarket's bid beats kalshi's 0.59


def test_fees_are_charged_and_counted(elect):
    from trading.models import FeePolicy, VenueFeeSchedule
    from trading.services.fees import fee_policy_get

    FeePolicy.objects.filter(pk=1).update(broker_commission_bps=10)
    VenueFeeSchedule.objects.create(
        policy=fee_policy_get(),
        venue=elect.listings.get(venue__code="kalshi").venue,
        model=VenueFeeSchedule.Model.KALSHI,
    )
    account = trader("1000")
    order = order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    assert order.fees == D("1.68") + D("0.06")
    account.refresh_from_db()
    assert account.cash_balance == D("1000") - D("60") - D("1.74")
    assert ledger_reconcile().ok


def test_retried_client_order_id_fills_once_and_a_different_body_is_a_409(elect):
    account = trader("1000")
    args = {"account": account, "symbol": "ELECT", "side": "buy", "client_order_id": "c-1"}
    first = order_execute(**args, notional_usdc=D("60"))
    again = order_execute(**args, notional_usdc=D("60.000"))
    assert again.pk == first.pk
    assert Fill.objects.filter(account=account).count() == 1
    with pytest.raises(DomainError) as error:
        order_execute(**args, notional_usdc=D("61"))
    assert (error.value.code, error.value.status) == ("duplicate_order", 409)


def test_slippage_beyond_the_limit_is_refused(quote_store):
    no_commission()
    from tests.trading.conftest import binary_create
    from tests.trading.quoting import put_quote

    binary_create("THIN", "0.01", "kalshi")
    put_quote("THIN@kalshi", bid="0.49", ask="0.50", size="10", step="0.05")
    account = trader("1000")
    with pytest.raises(DomainError) as error:
        order_execute(account=account, symbol="THIN", side="buy", notional_usdc=D("10"))
    assert (error.value.code, error.value.status) == ("slippage_exceeded", 422)
    order = order_execute(
        account=account, symbol="THIN", side="buy", notional_usdc=D("10"), slippage_bps=1000
    )
    assert order.status == Order.Status.FILLED


def test_a_book_that_moves_after_routing_is_refused_by_the_venue(quote_store, monkeypatch):
    """The venue gets a worst acceptable price: a move past it fills nothing, the
    order is recorded as rejected and its reservation released."""
    no_commission()
    from tests.trading.conftest import binary_create
    from tests.trading.quoting import put_quote
    from trading.services import execute

    binary_create("JUMP", "0.01", "kalshi")
    put_quote("JUMP@kalshi", bid="0.49", ask="0.50")
    account = trader("1000")
    routed = execute.execute_route

    def route_then_jump(request):
        route = routed(request)
        put_quote("JUMP@kalshi", bid="0.59", ask="0.60")  # 2,000 bps worse, after routing
        return route

    monkeypatch.setattr(execute, "execute_route", route_then_jump)
    with pytest.raises(DomainError) as error:
        order_execute(account=account, symbol="JUMP", side="buy", notional_usdc=D("10"))
    assert (error.value.code, error.value.status) == ("slippage_exceeded", 422)
    assert "worst acceptable price" in error.value.message
    order = Order.objects.get(account=account)
    assert (order.status, order.reject_code) == (Order.Status.REJECTED, "slippage_exceeded")
    assert order.reserved_cash == 0
    assert not Fill.objects.filter(account=account).exists()
    account.refresh_from_db()
    assert account.cash_balance == D("1000")
    assert account.orders_reserved == 0


def code_of(**kwargs) -> str:
    with pytest.raises(DomainError) as error:
        order_execute(**{"symbol": "ELECT", "side": "buy", "notional_usdc": D("10")} | kwargs)
    return error.value.code


def test_clear_errors(elect):
    account = trader("1000")
    assert code_of(account=account, symbol="NOPE") == "not_found"
    assert code_of(account=account, notional_usdc=D("0")) == "invalid_params"
    assert code_of(account=account, notional_usdc=D("1.0000001")) == "invalid_params"
    elect.status = Instrument.Status.HALTED
    elect.save(update_fields=["status"])
    assert code_of(account=account) == "market_closed"
    elect.status = Instrument.Status.OPEN
    elect.save(update_fields=["status"])
    assert code_of(account=open_account(kind=Account.Kind.NON_CUSTODIAL)) == ("custodial_required")
    pending = trader("1000")
    User.objects.filter(pk=pending.owner_id).update(kyb_status=User.KybStatus.PENDING)
    assert code_of(account=pending) == "kyb_required"
    poor = trader("5")
    assert code_of(account=poor) == "insufficient_margin"  # non-margin account cannot borrow
    assert Order.objects.filter(account__in=[account, poor, pending]).count() == 0


def test_filled_order_is_pushed_after_commit(elect, django_capture_on_commit_callbacks):
    account = trader("1000")
    channel = listen(account_group(account.pk))
    with django_capture_on_commit_callbacks(execute=True):
        order = order_execute(account=account, symbol="ELECT", side="buy", notional_usdc=D("6"))
    messages = [receive(channel) for _ in range(3)]
    assert [m["type"] for m in messages] == ["fill.update", "position.update", "order.update"]
    assert order.public_id in messages[2]["text"] and '"filled"' in messages[2]["text"]


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_executes_never_breach_the_requirement_nor_lose_a_cent(quote_store):
    no_commission()
    instrument = market("RACE")
    account = trader("300", margin=True)
    outcomes: list[object] = []
    start = threading.Barrier(50)

    def client(i: int) -> None:
        try:
            start.wait()
            outcomes.append(
                order_execute(account=account, symbol="RACE", side="buy", notional_usdc=D("30"))
            )
        except InsufficientMargin as exc:
            outcomes.append(exc)
        except Exception as exc:  # pragma: no cover - reported below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    filled = [o for o in outcomes if isinstance(o, Order)]
    refused = [o for o in outcomes if isinstance(o, InsufficientMargin)]
    assert len(filled) + len(refused) == 50, [o for o in outcomes if not isinstance(o, Order)]
    assert filled and refused  # it borrowed up to the requirement, then refused
    account.refresh_from_db()
    state = account_state_load(account=account)
    assert state.before.health is None or state.before.health >= D("1.2")
    fills = Fill.objects.filter(account=account)
    position = Position.objects.get(account=account, instrument=instrument, outcome="yes")
    assert position.quantity == fills.aggregate(q=Sum("quantity"))["q"]
    spent = fills.aggregate(n=Sum("notional"))["n"]
    assert account.cash_balance == D("300") - spent == cash_balance_from_ledger(account)
    assert ledger_reconcile().ok


def test_perp_execute_opens_an_isolated_position(quote_store):
    from tests.trading.conftest import perp_create
    from tests.trading.quoting import put_quote

    no_commission()
    btc = perp_create("BTC-PERP", "BTC")
    put_quote("BTC-PERP@leviathan", bid="49999", ask="50000", binary=False, step="1")
    account = trader("1000")
    order = order_execute(account=account, symbol="BTC-PERP", side="buy", notional_usdc=D("500"))
    assert order.status == Order.Status.FILLED and order.outcome == ""
    position = Position.objects.get(account=account, instrument=btc)
    assert position.quantity == D("0.01") and position.isolated_margin > 0
    account.refresh_from_db()
    assert account.lifetime_volume == D("500")
    assert ledger_reconcile().ok
