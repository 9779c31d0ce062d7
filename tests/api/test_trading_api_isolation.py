"""A key for account A never reads or changes account B: not by account id, not by
order id or client order id, not by symbol, on any trading endpoint.

Two customers (A and B) trade the same markets and reuse the same
client_order_id; every request below is made with A's key.
"""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.models import Account
from tests.api.conftest import client_for, key_issue
from tests.api.test_trading_api import call, error
from tests.conftest import credit_cash
from tests.factories import UserFactory, open_account
from tests.trading.conftest import binary_create, perp_create
from tests.trading.executing import no_commission
from tests.trading.quoting import put_quote
from trading.marketdata import store
from trading.models import Fill, LeverageSetting, Order, Position

D = Decimal
pytestmark = pytest.mark.django_db


@dataclass
class Two:
    a: Account
    b: Account
    api_a: APIClient
    api_b: APIClient
    b_order: dict  # B's resting order, client_order_id "shared"
    b_only_order: dict  # B's resting order, client_order_id "b-only"
    a_order: dict  # A's resting order, client_order_id "shared"

    def snapshot_b(self) -> tuple:
        """Everything of B's that a request could change."""
        self.b.refresh_from_db()
        return (
            self.b.cash_balance,
            list(
                Order.objects.filter(account=self.b)
                .order_by("pk")
                .values_list("public_id", "status", "limit_price", "quantity")
            ),
            list(Position.objects.filter(account=self.b).values_list("pk", "quantity")),
            list(LeverageSetting.objects.filter(account=self.b).values_list("leverage")),
            Fill.objects.filter(account=self.b).count(),
        )


@pytest.fixture
def two() -> Two:
    client = store.redis_client()
    client.delete(store.quotes_key())
    no_commission()
    binary_create("TRUMP-WIN")
    perp_create("BTC-PERP", "BTC")
    put_quote("TRUMP-WIN@kalshi", bid="0.59", ask="0.60")
    put_quote("TRUMP-WIN@polymarket", bid="0.61", ask="0.62")
    put_quote("BTC-PERP@leviathan", bid="49999", ask="50000", binary=False, step="1")
    a, b = open_account(), open_account()
    credit_cash(a, "1000")
    credit_cash(b, "5000")
    api_a, api_b = client_for(key_issue([a])), client_for(key_issue([b]))
    for api, notional in ((api_a, "60"), (api_b, "120")):
        call(
            api,
            "post",
            "execute",
            {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": notional},
            expect=201,
        )
    call(
        api_b,
        "post",
        "execute",
        {"symbol": "BTC-PERP", "side": "buy", "notional_usdc": "500"},
        expect=201,
    )
    call(api_b, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 10}, expect=200)
    order = {"symbol": "TRUMP-WIN", "side": "buy", "quantity": "10", "price": "0.50"}
    a_order = call(
        api_a, "post", "orders", order | {"client_order_id": "shared"}, expect=201
    ).json()
    b_order = call(
        api_b, "post", "orders", order | {"client_order_id": "shared"}, expect=201
    ).json()
    b_only = call(
        api_b,
        "post",
        "orders",
        {
            "symbol": "BTC-PERP",
            "side": "buy",
            "quantity": "0.01",
            "price": "40000",
            "client_order_id": "b-only",
        },
        expect=201,
    ).json()
    yield Two(a, b, api_a, api_b, b_order, b_only, a_order)
    client.delete(store.quotes_key())


def test_reads_show_only_the_keys_account(two):
    api = two.api_a
    positions = call(api, "get", "positions", expect=200).json()
    assert positions["account_id"] == two.a.public_id
    assert [(p["symbol"], p["quantity"]) for p in positions["positions"]] == [
        ("TRUMP-WIN", "100.000000")  # B holds 200 and a perp
    ]
    margin = call(api, "get", "margin", expect=200).json()
    assert (margin["account_id"], margin["cash"]) == (two.a.public_id, "940.000000")
    assert margin["by_asset_class"]["perpetual"]["positions"] == 0
    assert [row["quantity"] for row in margin["breakdown"]] == ["100.000000"]

    orders = call(api, "get", "orders", expect=200).json()["orders"]
    a_ids = set(Order.objects.filter(account=two.a).values_list("public_id", flat=True))
    assert {o["id"] for o in orders} == a_ids
    assert not a_ids & set(Order.objects.filter(account=two.b).values_list("public_id", flat=True))
    by_symbol = call(api, "get", "orders", {"symbol": "BTC-PERP"}, expect=200).json()["orders"]
    assert by_symbol == []  # only B trades BTC-PERP
    trump = call(api, "get", "orders", {"symbol": "TRUMP-WIN"}, expect=200).json()["orders"]
    assert {o["id"] for o in trump} == a_ids
    shared = call(api, "get", "orders/by-client-id/shared", expect=200).json()
    assert shared["id"] == two.a_order["id"]

    fills = call(api, "get", "fills", expect=200).json()["fills"]
    assert [f["quantity"] for f in fills] == ["100.000000"]
    assert call(api, "get", "fills", {"symbol": "BTC-PERP"}, expect=200).json()["fills"] == []
    leverage = call(api, "get", "leverage", {"symbol": "BTC-PERP"}, expect=200).json()
    assert (leverage["leverage"], leverage["is_default"]) == (5, True)  # B's is 10


def requests_naming(two: Two) -> list[tuple[str, str, dict | None]]:
    """Every account-scoped request of the trading API, aimed at B by account_id."""
    b = two.b.public_id
    order_id, client_id = two.a_order["id"], "shared"
    return [
        ("get", f"positions?account_id={b}", None),
        ("get", f"margin?account_id={b}", None),
        ("post", "margin/simulate", {"account_id": b}),
        ("post", f"margin/simulate?account_id={b}", {}),
        (
            "post",
            "execute",
            {"account_id": b, "symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "10"},
        ),
        ("get", f"leverage?account_id={b}&symbol=BTC-PERP", None),
        ("post", "leverage", {"account_id": b, "symbol": "BTC-PERP", "leverage": 2}),
        ("get", f"orders?account_id={b}", None),
        (
            "post",
            "orders",
            {
                "account_id": b,
                "symbol": "TRUMP-WIN",
                "side": "buy",
                "quantity": "1",
                "price": "0.5",
            },
        ),
        ("get", f"orders/{order_id}?account_id={b}", None),
        ("patch", f"orders/{order_id}", {"account_id": b, "price": "0.51"}),
        ("delete", f"orders/{order_id}?account_id={b}", None),
        ("get", f"orders/by-client-id/{client_id}?account_id={b}", None),
        ("patch", f"orders/by-client-id/{client_id}", {"account_id": b, "price": "0.51"}),
        ("delete", f"orders/by-client-id/{client_id}", {"account_id": b}),
        ("delete", f"orders/{order_id}/triggers?account_id={b}", None),
        ("delete", f"orders/by-client-id/{client_id}/triggers?account_id={b}", None),
        ("get", f"fills?account_id={b}", None),
    ]


def test_naming_another_account_is_a_404_everywhere_and_changes_nothing(two):
    before_b = two.snapshot_b()
    a_orders = list(
        Order.objects.filter(account=two.a).values_list("public_id", "status", "limit_price")
    )
    for method, path, body in requests_naming(two):
        response = call(two.api_a, method, path, body)
        assert error(response) == (404, "not_found"), (method, path)
        assert two.b.public_id in response.json()["message"]  # only what the caller sent
    assert two.snapshot_b() == before_b
    assert (
        list(Order.objects.filter(account=two.a).values_list("public_id", "status", "limit_price"))
        == a_orders
    )


def test_another_accounts_orders_are_not_found_by_id_or_client_id(two):
    before_b = two.snapshot_b()
    api = two.api_a
    for order_id in (two.b_order["id"], two.b_only_order["id"]):
        assert error(call(api, "get", f"orders/{order_id}")) == (404, "not_found")
        assert error(call(api, "patch", f"orders/{order_id}", {"price": "0.51"})) == (
            404,
            "not_found",
        )
        assert error(call(api, "delete", f"orders/{order_id}")) == (404, "not_found")
        assert error(call(api, "delete", f"orders/{order_id}/triggers")) == (404, "not_found")
    assert error(call(api, "get", "orders/by-client-id/b-only")) == (404, "not_found")
    assert error(call(api, "delete", "orders/by-client-id/b-only/triggers")) == (404, "not_found")
    assert error(call(api, "patch", "orders/by-client-id/b-only", {"price": "40001"})) == (
        404,
        "not_found",
    )
    assert error(call(api, "delete", "orders/by-client-id/b-only")) == (404, "not_found")
    # "shared" is A's own order for A's key: cancelling it leaves B's "shared" open
    call(api, "delete", "orders/by-client-id/shared", expect=200)
    assert two.snapshot_b() == before_b
    assert Order.objects.get(public_id=two.b_order["id"]).status == "open"


def test_writes_by_symbol_touch_only_the_keys_account(two):
    before_b = two.snapshot_b()
    api = two.api_a
    body = call(api, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 2}, expect=200).json()
    assert (body["oldLeverage"], body["cancelledOrderIds"]) == (5, [])  # B's 10x and order stay
    call(
        api,
        "post",
        "execute",
        {"symbol": "TRUMP-WIN", "side": "sell", "notional_usdc": "30.5"},
        expect=201,
    )
    # A cannot sell B's BTC-PERP position, only open its own short
    short = call(
        api,
        "post",
        "execute",
        {"symbol": "BTC-PERP", "side": "sell", "notional_usdc": "100"},
        expect=201,
    )
    assert short.json()["status"] == "filled"
    # the duplicate check is per account: B's "b-only" is free for A
    call(
        api,
        "post",
        "orders",
        {
            "symbol": "TRUMP-WIN",
            "side": "buy",
            "quantity": "1",
            "price": "0.5",
            "client_order_id": "b-only",
        },
        expect=201,
    )
    # a simulation sees A's positions only: B's 200 contracts cannot be sold
    response = call(
        api,
        "post",
        "margin/simulate",
        {"simulated_position_changes": [{"instrument_name": "TRUMP-WIN", "amount": "-100"}]},
    )
    assert error(response) == (400, "invalid_params")  # A holds 50 after the sale
    assert two.snapshot_b() == before_b
    perp = Position.objects.get(account=two.b, instrument__symbol="BTC-PERP")
    assert perp.quantity == D("0.01") and perp.leverage == 10


def test_a_key_for_several_accounts_must_name_one_of_them(two):
    second = open_account(owner=two.a.owner)
    credit_cash(second, "10")
    api = client_for(key_issue([two.a, second]))
    for path in ("positions", "margin", "orders", "fills"):
        assert error(call(api, "get", path)) == (400, "invalid_params"), path
        named = call(api, "get", f"{path}?account_id={second.public_id}", expect=200).json()
        assert named["account_id"] == second.public_id
        assert error(call(api, "get", f"{path}?account_id={two.b.public_id}")) == (404, "not_found")
    assert call(api, "get", f"positions?account_id={second.public_id}").json()["positions"] == []
    mine = call(api, "get", f"positions?account_id={two.a.public_id}", expect=200).json()
    assert len(mine["positions"]) == 1
    body = {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "6"}
    assert error(call(api, "post", "execute", body)) == (400, "invalid_params")
    order = call(api, "post", "execute", body | {"account_id": second.public_id}, expect=201).json()
    assert Order.objects.get(public_id=order["id"]).account_id == second.pk


def test_another_owners_key_cannot_reach_this_owners_accounts(two):
    stranger = open_account(owner=UserFactory())
    api = client_for(key_issue([stranger]))
    assert error(call(api, "get", f"positions?account_id={two.a.public_id}")) == (404, "not_found")
    assert call(api, "get", "positions", expect=200).json()["positions"] == []
    assert call(api, "get", "orders", expect=200).json()["orders"] == []
    assert error(call(api, "get", f"orders/{two.a_order['id']}")) == (404, "not_found")


def test_market_data_carries_no_account_data(two):
    """Markets, books and leverage levels are the same for every key and name no account."""
    for path in ("markets", "markets/TRUMP-WIN", "markets/TRUMP-WIN/orderbook", "leverage/levels"):
        seen_a = call(two.api_a, "get", path, expect=200).json()
        seen_b = call(two.api_b, "get", f"{path}?account_id={two.a.public_id}", expect=200).json()
        assert seen_a == seen_b, path
        text = str(seen_a) + str(seen_b)
        assert two.a.public_id not in text and two.b.public_id not in text
