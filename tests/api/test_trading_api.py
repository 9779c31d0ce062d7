"""The trading API (/v1/intelligence): positions, execute, margin, simulate, leverage,
orders, fills, markets and order books, through real keys, services and quotes in Redis.

Every response a test receives through `call` is also checked against the
endpoint's OpenAPI schema (/v1/openapi.json) for its status code: the documented
shape, no undocumented fields.
"""

import copy
import functools
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from django.utils import timezone
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

from accounts.models import Account, HouseAccount, Journal
from accounts.services.accounts import account_freeze_set
from accounts.services.ledger import Line, cash_ledger_account, house_ledger_account, journal_post
from tests.api.conftest import client_for, key_issue
from tests.conftest import credit_cash
from tests.factories import StaffFactory, open_account
from tests.trading.conftest import binary_create, perp_create
from tests.trading.executing import no_commission
from tests.trading.quoting import put_quote
from trading.marketdata import store
from trading.models import (
    FeePolicy,
    Fill,
    Instrument,
    LeverageSetting,
    Listing,
    Order,
    Position,
    PriceTick,
)
from trading.selectors import (
    contract_symbol,
    margin_overview_get,
    margin_summary_get,
    net_deposits_get,
)
from trading.services.execute import orders_reconcile
from trading.services.simulation import portfolio_what_if

D = Decimal
pytestmark = pytest.mark.django_db
BASE = "/v1/intelligence/"


# ---------------------------------------------------------------------------
# Responses against the OpenAPI schema


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema: `nullable` as a null type, objects closed to
    undocumented fields."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _json_schema(value) for key, value in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if node.pop("nullable", False):
        if "type" in node and "enum" not in node:
            node["type"] = [node["type"], "null"]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


@functools.cache
def openapi() -> dict:
    response = APIClient().get("/v1/openapi.json")
    assert response.status_code == 200
    return json.loads(response.content)


@functools.cache
def _components() -> dict:
    return _json_schema(copy.deepcopy(openapi()["components"]))


def schema_check(response, method: str, path: str) -> None:
    """The response body is what /v1/openapi.json documents for this status."""
    route = resolve(path.split("?")[0]).route
    template = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    operation = openapi()["paths"][template][method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method} {template} does not document {response.status_code}"
    schema = documented["content"]["application/json"]["schema"]
    validator = Draft202012Validator(_json_schema(schema) | {"components": _components()})
    errors = sorted(validator.iter_errors(response.json()), key=str)
    assert not errors, f"{method} {template} {response.status_code}: {errors[0]}"


def call(client: APIClient, method: str, path: str, data: Any = None, *, expect: int | None = None):
    """A request under /v1/intelligence/, its body checked against the schema."""
    url = path if path.startswith("/") else BASE + path
    if method == "get":
        response = client.get(url, data=data)
    else:
        response = getattr(client, method)(url, data=data, format="json")
    schema_check(response, method, url)
    if expect is not None:
        assert response.status_code == expect, response.json()
    return response


def error(response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"code", "message"} and body["message"], body
    return response.status_code, body["code"]


# ---------------------------------------------------------------------------
# Market, accounts and keys


@pytest.fixture
def quotes():
    client = store.redis_client()
    client.delete(store.quotes_key())
    yield client
    client.delete(store.quotes_key())


@pytest.fixture
def market(quotes) -> dict[str, Instrument]:
    """TRUMP-WIN (kalshi 0.59/0.60, polymarket 0.61/0.62) and BTC-PERP (49999/50000)."""
    no_commission()
    trump = binary_create("TRUMP-WIN")
    btc = perp_create("BTC-PERP", "BTC")
    put_quote("TRUMP-WIN@kalshi", bid="0.59", ask="0.60")
    put_quote("TRUMP-WIN@polymarket", bid="0.61", ask="0.62")
    put_quote("BTC-PERP@leviathan", bid="49999", ask="50000", binary=False, step="1")
    return {"trump": trump, "btc": btc}


@pytest.fixture
def account(api_account) -> Account:
    credit_cash(api_account, "10000")
    return api_account


@pytest.fixture
def api(account) -> APIClient:
    return client_for(key_issue([account]))


def execute(api: APIClient, **body) -> dict:
    return call(api, "post", "execute", {"side": "buy"} | body, expect=201).json()


def halt(instrument: Instrument) -> None:
    instrument.status = Instrument.Status.HALTED
    instrument.save(update_fields=["status"])


# ---------------------------------------------------------------------------
# Positions


def test_positions_are_the_seed_shape_for_binaries_and_perps(api, account, market):
    execute(api, symbol="TRUMP-WIN", notional_usdc="60")  # kalshi 0.60: 100 YES
    execute(api, symbol="TRUMP-WIN:NO", notional_usdc="39", venue="polymarket")  # NO at 0.39
    execute(api, symbol="BTC-PERP", notional_usdc="500")  # 0.01 BTC at 50000, 5x
    body = call(api, "get", "positions", expect=200).json()
    assert body["account_id"] == account.public_id
    assert body["margin_utilization"] == "0.000000"  # no borrowing
    by_symbol = {p["symbol"]: p for p in body["positions"]}
    assert list(by_symbol) == ["BTC-PERP", "TRUMP-WIN", "TRUMP-WIN:NO"]

    yes = by_symbol["TRUMP-WIN"]
    # Collateral price: polymarket's bid 0.61 (below its TWAP 0.615) beats kalshi's 0.59.
    assert (yes["venue"], yes["side"], yes["kind"]) == ("polymarket", "long", "binary")
    assert (yes["quantity"], yes["average_price"]) == ("100.000000", "0.60000000")
    assert (yes["mark_price"], yes["notional"], yes["pnl"]) == (
        "0.61000000",
        "61.000000",
        "1.000000",
    )
    assert yes["leverage"] is None and yes["isolated_margin"] is None
    assert yes["liquidation_price"] is None and yes["realized_pnl"] == "0.000000"

    no = by_symbol["TRUMP-WIN:NO"]
    # NO collateral: kalshi 1 − 0.60 = 0.40 beats polymarket 1 − 0.62 = 0.38.
    assert (no["venue"], no["quantity"], no["mark_price"]) == ("kalshi", "100.000000", "0.40000000")
    assert (no["notional"], no["pnl"]) == ("40.000000", "1.000000")

    perp = by_symbol["BTC-PERP"]
    assert (perp["venue"], perp["side"], perp["kind"]) == ("leviathan", "long", "perpetual")
    assert (perp["quantity"], perp["average_price"]) == ("0.010000", "50000.00000000")
    assert (perp["mark_price"], perp["notional"]) == ("49999.50000000", "499.995000")
    assert perp["pnl"] == "-0.005000"
    assert (perp["leverage"], perp["isolated_margin"]) == (5, "100.000000")
    assert perp["liquidation_price"] == "41237.11340206"  # (50000 − 100/0.01) / 0.97
    assert perp["opened_at"].startswith(
        str(Position.objects.get(instrument=market["btc"]).opened_at.date())
    )


def test_a_short_perp_and_an_empty_account(api, account, market):
    assert call(api, "get", "positions", expect=200).json()["positions"] == []
    execute(api, symbol="BTC-PERP", side="sell", notional_usdc="499.99")
    (short,) = call(api, "get", "positions", expect=200).json()["positions"]
    assert (short["side"], short["quantity"]) == ("short", "0.010000")
    assert short["pnl"] == "-0.005000"  # sold at 49999, mark 49999.5


def test_positions_utilization_when_borrowing_matches_the_margin_engine(market):
    account = open_account(margin_enabled=True, margin_override="granted")
    credit_cash(account, "100")
    api = client_for(key_issue([account]))
    execute(api, symbol="TRUMP-WIN", notional_usdc="120")  # 200 contracts, cash −20
    body = call(api, "get", "positions", expect=200).json()
    summary = margin_summary_get(account=Account.objects.get(pk=account.pk))
    assert summary.used_margin == D("20")
    assert body["margin_utilization"] == str(summary.utilization)
    assert D(body["margin_utilization"]) > 0


def test_a_position_without_a_live_quote_is_priced_at_its_last_stored_mark(api, market, quotes):
    execute(api, symbol="TRUMP-WIN", notional_usdc="60")
    quotes.delete(store.quotes_key())
    listing = Listing.objects.get(instrument=market["trump"], venue__code="kalshi")
    PriceTick.objects.create(
        listing=listing,
        ts=timezone.now(),
        is_binary=True,
        mark=D("0.55"),
        bid=D("0.54"),
        ask=D("0.56"),
        twap=D("0.55"),
    )
    (position,) = call(api, "get", "positions", expect=200).json()["positions"]
    assert (position["venue"], position["mark_price"]) == ("kalshi", "0.55000000")
    assert position["pnl"] == "-5.000000"


def test_positions_read_path_is_lean(api, account, market):
    for symbol in ("TRUMP-WIN", "TRUMP-WIN:NO", "BTC-PERP"):
        execute(api, symbol=symbol, notional_usdc="30")
    call(api, "get", "positions", expect=200)  # warm the key and reference data caches
    with CaptureQueriesContext(connection) as queries:
        call(api, "get", "positions", expect=200)
    # the account, then the positions: no query per position
    assert len(queries.captured_queries) <= 2, [q["sql"] for q in queries.captured_queries]
    with CaptureQueriesContext(connection) as queries:
        call(api, "get", "margin", expect=200)
    assert len(queries.captured_queries) <= 3, [q["sql"] for q in queries.captured_queries]


def test_positions_need_a_key_with_read_scope(account, market):
    assert error(call(client_for(None), "get", "positions")) == (401, "unauthorized")
    trade_only = client_for(key_issue([account], scopes=["intelligence", "trade"]))
    assert error(call(trade_only, "get", "positions")) == (403, "forbidden")
    assert error(call(client_for("lev_live_nope"), "get", "positions")) == (401, "unauthorized")


# ---------------------------------------------------------------------------
# Execute


def test_execute_fills_routes_and_books(api, account, market):
    response = call(
        api,
        "post",
        "execute",
        {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "60", "client_order_id": "c-1"},
        expect=201,
    )
    order = response.json()
    assert order["id"].startswith("ord_") and order["status"] == "filled"
    assert (order["symbol"], order["side"], order["venue"]) == ("TRUMP-WIN", "buy", "kalshi")
    assert (order["filled_quantity"], order["average_price"]) == ("100.000000", "0.60000000")
    assert (order["notional"], order["filled_notional"], order["fees"]) == (
        "60.000000",
        "60.000000",
        "0.000000",
    )
    assert order["client_order_id"] == "c-1" and order["order_type"] == "market"
    assert response["X-RateLimit-Limit"] == "30"  # the "execute" group
    account.refresh_from_db()
    assert account.cash_balance == D("9940")


def test_execute_charges_fees_and_sells(api, account, market):
    FeePolicy.objects.filter(pk=1).update(broker_commission_bps=10)
    order = execute(api, symbol="TRUMP-WIN", notional_usdc="60")
    assert order["fees"] == "0.060000"
    sold = execute(api, symbol="TRUMP-WIN", side="sell", notional_usdc="30.5", venue="polymarket")
    assert (sold["venue"], sold["average_price"], sold["side"]) == (
        "polymarket",
        "0.61000000",
        "sell",
    )


def test_execute_pending_at_the_venue_is_a_202(api, account, market, settings):
    settings.SIMULATED_VENUE_NO_CONFIRM = "filled"
    order = call(
        api,
        "post",
        "execute",
        {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "6"},
        expect=202,
    ).json()
    assert order["status"] == "pending" and order["filled_quantity"] == "0.000000"
    assert not Fill.objects.filter(account=account).exists()


def test_an_order_or_a_close_pending_at_the_venue_is_a_202(api, account, market, settings):
    """What crosses goes to the venue in the request; a venue that does not confirm in
    time leaves the order pending (its worst case reserved) for the reconciler."""
    execute(api, symbol="TRUMP-WIN", notional_usdc="60")
    settings.SIMULATED_VENUE_NO_CONFIRM = "filled"
    body = {"symbol": "TRUMP-WIN", "side": "buy", "quantity": "10", "price": "0.70"}
    order = call(api, "post", "orders", body, expect=202).json()
    assert (order["status"], order["filled_quantity"]) == ("pending", "0.000000")
    close = call(api, "post", "positions/TRUMP-WIN/close", {"quantity": "5"}, expect=202).json()
    assert close["status"] == "pending"
    settings.SIMULATED_VENUE_NO_CONFIRM = ""
    assert set(orders_reconcile().filled) == {order["id"], close["id"]}


def test_execute_retry_returns_the_original_and_a_different_body_is_409(api, account, market):
    body = {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "60", "client_order_id": "k"}
    first = call(api, "post", "execute", body, expect=201).json()
    again = call(api, "post", "execute", body | {"notional_usdc": "60.00"}, expect=200).json()
    assert again["id"] == first["id"]
    assert Fill.objects.filter(account=account).count() == 1
    assert error(call(api, "post", "execute", body | {"notional_usdc": "61"})) == (
        409,
        "duplicate_order",
    )


@pytest.mark.parametrize(
    "body, message",
    [
        ({"side": "buy", "notional_usdc": "10"}, "symbol"),
        ({"symbol": "TRUMP-WIN", "notional_usdc": "10"}, "side"),
        ({"symbol": "TRUMP-WIN", "side": "hold", "notional_usdc": "10"}, "side"),
        ({"symbol": "TRUMP-WIN", "side": "buy"}, "notional_usdc"),
        ({"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "abc"}, "notional_usdc"),
        ({"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "1.0000001"}, "notional_usdc"),
        ({"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "-5"}, "notional_usdc"),
        ({"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "0"}, "notional_usdc"),
        (
            {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "1", "slippage_bps": -1},
            "slippage",
        ),
        (
            {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "1", "slippage_bps": 1.5},
            "slippage",
        ),
        ({"symbol": "TRUMP-WIN:MAYBE", "side": "buy", "notional_usdc": "1"}, "contract"),
        ({"symbol": "BTC-PERP:NO", "side": "buy", "notional_usdc": "1"}, "perpetual"),
        (
            {
                "symbol": "TRUMP-WIN",
                "side": "buy",
                "notional_usdc": "1",
                "client_order_id": "x" * 65,
            },
            "client_order_id",
        ),
    ],
)
def test_execute_invalid_params_are_400(api, market, body, message):
    response = call(api, "post", "execute", body)
    assert error(response) == (400, "invalid_params")
    assert message in response.json()["message"]
    assert not Order.objects.exists()


def test_execute_domain_errors(api, account, market):
    base = {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "10"}
    assert error(call(api, "post", "execute", base | {"symbol": "NOPE"})) == (404, "not_found")
    assert error(call(api, "post", "execute", base | {"venue": "leviathan"})) == (404, "not_found")
    assert error(call(api, "post", "execute", base | {"notional_usdc": "100000000"})) == (
        400,
        "insufficient_liquidity",
    )
    poor = open_account()
    credit_cash(poor, "5")
    poor_api = client_for(key_issue([poor]))
    assert error(call(poor_api, "post", "execute", base)) == (422, "insufficient_margin")
    halt(market["trump"])
    assert error(call(api, "post", "execute", base)) == (409, "market_closed")
    assert not Order.objects.exists()


def test_execute_slippage_beyond_the_limit_is_422(api, market):
    binary_create("THIN", "0.01", "kalshi")
    put_quote("THIN@kalshi", bid="0.49", ask="0.50", size="10", step="0.05")
    body = {"symbol": "THIN", "side": "buy", "notional_usdc": "10"}
    assert error(call(api, "post", "execute", body)) == (422, "slippage_exceeded")
    call(api, "post", "execute", body | {"slippage_bps": 1000}, expect=201)


def test_execute_without_live_prices_is_503(api, market):
    binary_create("DARK", "0.01", "kalshi")
    response = call(api, "post", "execute", {"symbol": "DARK", "side": "buy", "notional_usdc": "1"})
    assert error(response) == (503, "market_data_unavailable")


def test_execute_is_refused_to_non_custodial_accounts_and_read_only_keys(account, market):
    non_custodial = open_account(kind=Account.Kind.NON_CUSTODIAL)
    body = {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "10"}
    response = call(client_for(key_issue([non_custodial])), "post", "execute", body)
    assert error(response) == (403, "custodial_required")
    read_only = client_for(key_issue([account], scopes=["intelligence", "read"]))
    assert error(call(read_only, "post", "execute", body)) == (403, "forbidden")
    no_intelligence = client_for(key_issue([account], scopes=["read", "trade"]))
    assert error(call(no_intelligence, "post", "execute", body)) == (403, "forbidden")


def test_execute_needs_a_json_object(api, market):
    response = api.post(
        BASE + "execute", data="symbol=X", content_type="application/x-www-form-urlencoded"
    )
    assert error(response) == (415, "unsupported_media_type")
    response = api.post(BASE + "execute", data="{not json", content_type="application/json")
    assert error(response) == (400, "invalid_params")
    assert error(call(api, "post", "execute", ["TRUMP-WIN"])) == (400, "invalid_params")


# ---------------------------------------------------------------------------
# Margin


def test_margin_summary_and_breakdowns(api, account, market):
    execute(api, symbol="TRUMP-WIN", notional_usdc="60")
    execute(api, symbol="TRUMP-WIN:NO", notional_usdc="39", venue="polymarket")
    execute(api, symbol="BTC-PERP", notional_usdc="500")
    body = call(api, "get", "margin", expect=200).json()
    summary = margin_summary_get(account=Account.objects.get(pk=account.pk))
    assert body["account_id"] == account.public_id and body["margin_enabled"] is False
    assert body["deposit"] == "10000.000000"
    assert body["cash"] == str(summary.cash) == "9801.000000"  # 10000 − 60 − 39 − 100 margin
    assert body["used_margin"] == "0.000000" and body["health"] is None
    assert (body["status"], body["margin_utilization"]) == ("healthy", "0.000000")
    # Evaluated a moment apart: haircuts decay with time to expiry (a micro-dollar here).
    assert abs(D(body["adjusted_equity"]) - summary.adjusted_equity) <= D("0.00001")
    # Margin is not enabled: the account cannot borrow, so it has no credit.
    assert body["available_credit"] == "0.000000" != body["available_margin"]
    assert abs(D(body["available_margin"]) - summary.available_margin) <= D("0.00001")
    assert (body["initial_margin_requirement"], body["maintenance_margin_requirement"]) == (
        "1.2",
        "1.0",
    )
    prediction, perpetual = (
        body["by_asset_class"]["prediction"],
        body["by_asset_class"]["perpetual"],
    )
    assert (prediction["positions"], prediction["notional"]) == (2, "101.000000")  # 61 + 40
    assert (
        prediction["unrealized_pnl"] == "2.000000" and prediction["isolated_margin"] == "0.000000"
    )
    adjusted = sum(row.contribution for row in summary.breakdown)
    assert abs(D(prediction["adjusted_value"]) - adjusted) <= D("0.00001")
    assert (perpetual["positions"], perpetual["notional"]) == (1, "499.995000")
    assert (perpetual["isolated_margin"], perpetual["adjusted_value"]) == ("100.000000", "0.000000")
    venues = {(v["venue"], v["asset_class"]): v for v in body["by_venue"]}
    assert sorted(venues) == [
        ("kalshi", "prediction"),
        ("leviathan", "perpetual"),
        ("polymarket", "prediction"),
    ]
    assert venues[("polymarket", "prediction")]["notional"] == "61.000000"
    assert venues[("kalshi", "prediction")]["notional"] == "40.000000"
    contributions = [D(row["contribution"]) for row in body["breakdown"]]
    assert contributions == sorted(contributions, reverse=True)
    assert {row["symbol"] for row in body["breakdown"]} == {"TRUMP-WIN", "TRUMP-WIN:NO"}


def test_margin_when_borrowing(market):
    account = open_account(margin_enabled=True, margin_override="granted")
    credit_cash(account, "100")
    api = client_for(key_issue([account]))
    execute(api, symbol="TRUMP-WIN", notional_usdc="120")
    body = call(api, "get", "margin", expect=200).json()
    summary = margin_summary_get(account=Account.objects.get(pk=account.pk))
    assert (body["used_margin"], body["cash"]) == ("20.000000", "-20.000000")
    assert body["health"] == str(summary.health) and D(body["health"]) > D("1.5")
    assert body["margin_enabled"] is True and body["status"] == "healthy"


def test_margin_figures_are_the_dashboards_to_the_micro_dollar(market):
    """The margin endpoint's lean reads give exactly `margin_summary_get`'s figures."""
    binary_create("OTHER")
    put_quote("OTHER@kalshi", bid="0.29", ask="0.30")
    account = open_account(margin_enabled=True, margin_override="granted")
    credit_cash(account, "1000")
    credit_cash(account, "250.5")
    with transaction.atomic():
        journal_post(
            kind=Journal.Kind.WITHDRAWAL,
            account=Account.objects.select_for_update().get(pk=account.pk),
            memo="test withdrawal",
            lines=[
                Line(cash_ledger_account(account), D("-200")),
                Line(house_ledger_account(HouseAccount.PAYMENT_CLEARING), D("200")),
            ],
        )
    api = client_for(key_issue([account]))
    for symbol, notional in (("TRUMP-WIN", "700"), ("TRUMP-WIN:NO", "150"), ("OTHER", "333.33")):
        execute(api, symbol=symbol, notional_usdc=notional)
    execute(api, symbol="BTC-PERP", notional_usdc="250", side="sell")
    fresh = Account.objects.get(pk=account.pk)
    assert fresh.cash_balance < 0  # borrowing
    overview = margin_overview_get(account=fresh)
    expected = margin_summary_get(account=fresh)
    # Haircuts shrink as expiry nears, so two evaluations a few ms apart may differ in the
    # last micro-dollar; everything else is equal.
    assert_figures_match(overview.summary, expected)
    assert net_deposits_get(account_ids=[fresh.pk])[fresh.pk] == D("1050.5") == expected.deposit
    body = call(api, "get", "margin", expect=200).json()
    assert body["deposit"] == "1050.500000"
    assert D(body["health"]) == pytest.approx(expected.health, abs=D("0.000002"))
    assert D(body["margin_utilization"]) == pytest.approx(expected.utilization, abs=D("0.000002"))
    assert [row["symbol"] for row in body["breakdown"]] == [
        contract_symbol(row.symbol, row.outcome) for row in expected.breakdown
    ]
    for row, want in zip(body["breakdown"], expected.breakdown, strict=True):
        assert D(row["contribution"]) == pytest.approx(want.contribution, abs=D("0.000002"))


TIME_TOLERANCE = D("0.000002")


def assert_figures_match(got, want, tolerance=TIME_TOLERANCE) -> None:
    """Two AccountMargins agree: exactly, but for the time-dependent amounts (± tolerance)."""
    exact = ("account_id", "cash", "deposit", "used_margin", "status")
    assert [getattr(got, name) for name in exact] == [getattr(want, name) for name in exact]
    for name in ("adjusted_equity", "available_margin", "health", "utilization"):
        assert getattr(got, name) == pytest.approx(getattr(want, name), abs=tolerance), name
    assert [(r.position_id, r.quantity, r.collateral_price) for r in got.breakdown] == [
        (r.position_id, r.quantity, r.collateral_price) for r in want.breakdown
    ]
    for row, expected in zip(got.breakdown, want.breakdown, strict=True):
        assert row.contribution == pytest.approx(expected.contribution, abs=tolerance)


# ---------------------------------------------------------------------------
# Margin simulation (seed 003)


def test_margin_simulate_matches_the_simulation_service_and_writes_nothing(api, account, market):
    execute(api, symbol="TRUMP-WIN", notional_usdc="60")
    body = {
        "simulated_collateral_changes": [{"amount": "-500", "asset_name": "USDC"}],
        "simulated_position_changes": [
            {"instrument_name": "TRUMP-WIN:NO", "amount": "100"},
            {"instrument_name": "TRUMP-WIN", "amount": "-50", "entry_price": "0.65"},
        ],
    }
    journals = Journal.objects.count()
    result = call(api, "post", "margin/simulate", body, expect=200).json()["result"]
    assert (
        Journal.objects.count() == journals and Order.objects.filter(account=account).count() == 1
    )
    expected = portfolio_what_if(
        account=Account.objects.get(pk=account.pk),
        collateral_changes=[{"amount": D("-500"), "asset_name": "USDC"}],
        position_changes=[
            {"instrument_name": "TRUMP-WIN:NO", "amount": D("100")},
            {"instrument_name": "TRUMP-WIN", "amount": D("-50"), "entry_price": D("0.65")},
        ],
    ).projection
    assert result["is_valid_trade"] is True and result["breach"] is None
    assert result["pre_cash"] == "9940.000000"
    assert result["post_cash"] == str(expected.after.cash) == "9433.500000"  # −500 −39 +32.5
    assert result["post_adjusted_equity"] == str(expected.after.adjusted_equity)
    assert result["pre_initial_margin"] == result["post_initial_margin"] == "0.000000"
    assert (result["pre_health"], result["post_health"]) == (None, None)
    no, yes = result["positions"]
    assert (no["instrument_name"], no["entry_price"], no["cash"]) == (
        "TRUMP-WIN:NO",
        "0.39000000",  # polymarket's NO ask, 1 − its YES bid 0.61
        "-39.000000",
    )
    assert (yes["amount"], yes["cash"]) == ("-50.000000", "32.500000")


def test_margin_simulate_verdicts(market):
    borrower = open_account(margin_enabled=True, margin_override="granted")
    credit_cash(borrower, "100")
    api = client_for(key_issue([borrower]))
    big_buy = {"simulated_position_changes": [{"instrument_name": "TRUMP-WIN", "amount": "1000"}]}
    result = call(api, "post", "margin/simulate", big_buy, expect=200).json()["result"]
    assert (result["is_valid_trade"], result["breach"]) == (False, "initial_margin")
    assert result["post_used_margin"] == "500.000000"
    assert result["post_initial_margin"] == "600.000000"  # 1.2 × UM
    assert result["post_maintenance_margin"] == "500.000000"
    assert D(result["post_health"]) < D("1.2") and result["post_status"] == "margin_call"
    withdraw = {"simulated_collateral_changes": [{"amount": "-100.01", "asset_name": "USDC"}]}
    result = call(api, "post", "margin/simulate", withdraw, expect=200).json()["result"]
    assert (result["is_valid_trade"], result["breach"]) == (False, "borrowing")
    cash_only = open_account()
    credit_cash(cash_only, "100")
    api = client_for(key_issue([cash_only]))
    result = call(api, "post", "margin/simulate", big_buy, expect=200).json()["result"]
    assert (result["is_valid_trade"], result["breach"]) == (False, "margin_disabled")
    empty = call(api, "post", "margin/simulate", {}, expect=200).json()["result"]
    assert empty["is_valid_trade"] is True and empty["positions"] == []


def test_margin_simulate_errors(api, account, market):
    def simulate(**body):
        return call(api, "post", "margin/simulate", body)

    change = {"instrument_name": "TRUMP-WIN", "amount": "10"}
    assert error(simulate(simulated_collateral_changes=[{"amount": "1", "asset_name": "ETH"}])) == (
        400,
        "invalid_params",
    )
    assert error(simulate(simulated_position_changes=[change | {"amount": "1.0000001"}])) == (
        400,
        "invalid_params",
    )
    assert error(simulate(simulated_position_changes=[change | {"amount": "0"}])) == (
        400,
        "invalid_params",
    )
    assert error(simulate(simulated_position_changes=[change | {"entry_price": "1.5"}])) == (
        400,
        "invalid_params",
    )
    assert error(simulate(simulated_position_changes=[change | {"amount": "-10"}])) == (
        400,
        "invalid_params",
    )  # sells more than held
    assert error(
        simulate(simulated_position_changes=[{"instrument_name": "BTC-PERP", "amount": "1"}])
    ) == (
        400,
        "invalid_params",
    )
    assert error(simulate(simulated_position_changes=[change] * 101)) == (400, "invalid_params")
    assert error(simulate(simulated_position_changes="TRUMP-WIN")) == (400, "invalid_params")
    assert error(simulate(simulated_position_changes=[change | {"instrument_name": "NOPE"}])) == (
        404,
        "not_found",
    )
    binary_create("DARK", "0.01", "kalshi")
    assert error(simulate(simulated_position_changes=[change | {"instrument_name": "DARK"}])) == (
        503,
        "market_data_unavailable",
    )
    halt(market["trump"])
    assert error(simulate(simulated_position_changes=[change])) == (409, "market_closed")


def test_margin_simulate_is_a_read(account, market):
    read_only = client_for(key_issue([account], scopes=["intelligence", "read"]))
    response = call(read_only, "post", "margin/simulate", {}, expect=200)
    assert response["X-RateLimit-Limit"] == "300"  # the market-data group


# ---------------------------------------------------------------------------
# Leverage (seeds 001, 002, 004)


def test_leverage_get_set_and_levels(api, account, market):
    got = call(api, "get", "leverage", {"symbol": "BTC-PERP"}, expect=200).json()
    assert got == {
        "account_id": account.public_id,
        "symbol": "BTC-PERP",
        "leverage": 5,
        "max_leverage": 20,
        "is_default": True,
    }
    response = call(api, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 10}, expect=200)
    body = response.json()
    assert body["requestId"] and body["accountId"] == account.public_id
    assert (body["status"], body["oldLeverage"], body["newLeverage"], body["leverage"]) == (
        "APPLIED",
        5,
        10,
        10,
    )
    assert "rejectReason" not in body and body["cancelledOrderIds"] == []
    assert response["X-RateLimit-Limit"] == "60"  # order management
    got = call(api, "get", "leverage", {"symbol": "BTC-PERP"}, expect=200).json()
    assert (got["leverage"], got["is_default"]) == (10, False)

    levels = call(api, "get", "leverage/levels", expect=200).json()["markets"]
    assert levels == [
        {
            "symbol": "BTC-PERP",
            "levels": list(range(1, 21)),
            "default_leverage": 5,
            "max_leverage": 20,
        }
    ]
    one = call(api, "get", "leverage/levels", {"symbol": "BTC-PERP"}, expect=200).json()
    assert one["markets"] == levels
    assert error(call(api, "get", "leverage/levels", {"symbol": "TRUMP-WIN"})) == (404, "not_found")


def test_leverage_rejections_are_422_with_the_seed_body(api, account, market):
    call(api, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 8}, expect=200)
    body = call(api, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 25}, expect=422).json()
    assert (body["status"], body["rejectReason"]) == ("REJECTED", "INVALID_LEVERAGE")
    assert (body["leverage"], body["oldLeverage"], body["newLeverage"]) == (8, 8, 8)
    body = call(api, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 0}, expect=422).json()
    assert body["rejectReason"] == "INVALID_LEVERAGE"
    body = call(api, "post", "leverage", {"symbol": "ETH-PERP", "leverage": 5}, expect=422).json()
    assert (body["rejectReason"], body["leverage"], body["oldLeverage"]) == (
        "UNKNOWN_MARKET",
        None,
        None,
    )
    body = call(api, "post", "leverage", {"symbol": "TRUMP-WIN", "leverage": 2}, expect=422).json()
    assert body["rejectReason"] == "UNKNOWN_MARKET"
    assert LeverageSetting.objects.get(account=account).leverage == 8


def test_an_account_that_may_not_trade_cannot_change_leverage(market):
    """Re-sizing a perp's isolated margin moves cash and cancels orders: a frozen
    account is refused as an order is (403), and nothing moves."""
    account = open_account()
    credit_cash(account, "10000")
    api = client_for(key_issue([account]))
    execute(api, symbol="BTC-PERP", notional_usdc="500")
    account_freeze_set(account=account, frozen=True, actor=StaffFactory(), reason="review")
    account.refresh_from_db()
    cash, journals = account.cash_balance, Journal.objects.filter(account=account).count()
    refused = call(api, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 1})
    assert error(refused) == (403, "account_not_active")
    account.refresh_from_db()
    assert account.cash_balance == cash
    assert Journal.objects.filter(account=account).count() == journals
    assert not LeverageSetting.objects.filter(account=account).exists()
    tracked = open_account(kind=Account.Kind.NON_CUSTODIAL)
    other = client_for(key_issue([tracked]))
    refused = call(other, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 2})
    assert error(refused) == (403, "custodial_required")


def test_lowering_leverage_beyond_the_cash_is_undercollateralized_and_rolled_back(market):
    account = open_account()
    credit_cash(account, "150")
    api = client_for(key_issue([account]))
    execute(api, symbol="BTC-PERP", notional_usdc="500")  # 100 of isolated margin at 5x
    body = call(api, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 1}, expect=422).json()
    assert (body["rejectReason"], body["leverage"]) == ("UNDERCOLLATERALIZED", 5)
    (position,) = call(api, "get", "positions", expect=200).json()["positions"]
    assert (position["leverage"], position["isolated_margin"]) == (5, "100.000000")
    body = call(api, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 10}, expect=200).json()
    assert "50.00 USDC of isolated margin freed" in body["message"]


def test_leverage_change_cancels_the_markets_open_orders(api, market):
    order = call(
        api,
        "post",
        "orders",
        {"symbol": "BTC-PERP", "side": "buy", "quantity": "0.01", "price": "40000"},
        expect=201,
    ).json()
    assert order["status"] == "open"
    body = call(api, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 3}, expect=200).json()
    assert body["cancelledOrderIds"] == [order["id"]]
    got = call(api, "get", f"orders/{order['id']}", expect=200).json()
    assert got["status"] == "cancelled"


def test_leverage_input_errors(api, account, market):
    assert error(call(api, "get", "leverage")) == (400, "invalid_params")
    assert error(call(api, "get", "leverage", {"symbol": "ETH-PERP"})) == (404, "not_found")
    assert error(call(api, "post", "leverage", {"symbol": "BTC-PERP"})) == (400, "invalid_params")
    assert error(call(api, "post", "leverage", {"symbol": "BTC-PERP", "leverage": "abc"})) == (
        400,
        "invalid_params",
    )
    assert error(call(api, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 2.5})) == (
        400,
        "invalid_params",
    )
    assert error(call(api, "post", "leverage", {"leverage": 2})) == (400, "invalid_params")
    read_only = client_for(key_issue([account], scopes=["intelligence", "read"]))
    call(read_only, "get", "leverage", {"symbol": "BTC-PERP"}, expect=200)
    response = call(read_only, "post", "leverage", {"symbol": "BTC-PERP", "leverage": 2})
    assert error(response) == (403, "forbidden")
    assert not LeverageSetting.objects.exists()


# ---------------------------------------------------------------------------
# Orders (seed 002)


def place(api: APIClient, expect: int | None = 201, **body) -> dict:
    body = {"symbol": "TRUMP-WIN", "side": "buy", "quantity": "10", "price": "0.50"} | body
    return call(api, "post", "orders", body, expect=expect).json()


def test_order_lifecycle_place_get_modify_cancel(api, account, market):
    response = call(
        api,
        "post",
        "orders",
        {
            "symbol": "TRUMP-WIN",
            "side": "buy",
            "order_type": "limit",
            "time_in_force": "GTC",
            "quantity": "10",
            "price": "0.50",
            "take_profit": "0.80",
            "stop_loss": "0.30",
            "client_order_id": "my-1",
        },
        expect=201,
    )
    order = response.json()
    assert response["X-RateLimit-Limit"] == "60"
    assert (order["status"], order["symbol"], order["venue"]) == ("open", "TRUMP-WIN", "kalshi")
    assert (order["quantity"], order["price"], order["take_profit"], order["stop_loss"]) == (
        "10.000000",
        "0.50000000",
        "0.80000000",
        "0.30000000",
    )
    assert order["notional"] is None and order["filled_quantity"] == "0.000000"
    assert call(api, "get", f"orders/{order['id']}", expect=200).json() == order
    assert call(api, "get", "orders/by-client-id/my-1", expect=200).json() == order

    modified = call(
        api, "patch", f"orders/{order['id']}", {"price": "0.55", "quantity": "20"}, expect=200
    ).json()
    assert (modified["price"], modified["quantity"], modified["status"]) == (
        "0.55000000",
        "20.000000",
        "open",
    )
    modified = call(api, "patch", "orders/by-client-id/my-1", {"stop_loss": "0.40"}, expect=200)
    assert modified.json()["stop_loss"] == "0.40000000"
    cancelled = call(api, "delete", f"orders/{order['id']}", expect=200).json()
    assert (cancelled["status"], cancelled["reject_code"]) == ("cancelled", "cancelled")
    assert error(call(api, "delete", f"orders/{order['id']}")) == (409, "order_not_active")
    assert error(call(api, "patch", f"orders/{order['id']}", {"price": "0.52"})) == (
        409,
        "order_not_active",
    )


def test_a_filled_orders_take_profit_and_stop_loss_are_removed_before_they_fire(
    api, account, market
):
    filled = place(api, price="0.61", take_profit="0.80", stop_loss="0.30", client_order_id="tp")
    assert (filled["status"], filled["stop_loss"]) == ("filled", "0.30000000")
    path = f"orders/{filled['id']}/triggers"
    assert error(call(api, "delete", f"{path}?which=both")) == (400, "invalid_params")
    read_only = client_for(key_issue([account], scopes=["intelligence", "read"]))
    assert error(call(read_only, "delete", path)) == (403, "forbidden")
    kept = call(api, "delete", f"{path}?which=stop_loss", expect=200).json()
    assert (kept["take_profit"], kept["stop_loss"], kept["status"]) == (
        "0.80000000",
        None,
        "filled",
    )
    for _ in range(2):  # safe to repeat
        bare = call(api, "delete", "orders/by-client-id/tp/triggers", expect=200).json()
        assert (bare["id"], bare["take_profit"], bare["stop_loss"]) == (filled["id"], None, None)
    assert call(api, "get", f"orders/{filled['id']}", expect=200).json() == bare
    assert error(call(api, "delete", "orders/nope/triggers")) == (404, "not_found")


def test_cancel_by_client_order_id(api, market):
    order = place(api, client_order_id="abc")
    cancelled = call(api, "delete", "orders/by-client-id/abc", expect=200).json()
    assert cancelled["id"] == order["id"] and cancelled["status"] == "cancelled"


def test_marketable_orders_fill_by_time_in_force(api, account, market):
    filled = place(api, price="0.61", time_in_force="IOC")
    assert (filled["status"], filled["filled_quantity"], filled["average_price"]) == (
        "filled",
        "10.000000",
        "0.60000000",
    )
    binary_create("THIN", "0.01", "kalshi")
    put_quote("THIN@kalshi", bid="0.49", ask="0.50", size="10", levels=1)
    fok = place(api, symbol="THIN", price="0.50", quantity="15", time_in_force="FOK")
    assert (fok["status"], fok["reject_code"]) == ("rejected", "fok_not_filled")
    ioc = place(api, price="0.50", time_in_force="IOC")
    assert (ioc["status"], ioc["reject_code"]) == ("cancelled", "ioc_unfilled")
    market_order = place(api, order_type="market", price=None, side="sell", quantity="10")
    assert (market_order["status"], market_order["time_in_force"]) == ("filled", "IOC")
    assert Position.objects.get(account=account, instrument=market["trump"]).quantity == 0


def test_order_errors(api, account, market):
    place(api, client_order_id="dup")
    assert error(
        call(
            api,
            "post",
            "orders",
            {
                "symbol": "TRUMP-WIN",
                "side": "buy",
                "quantity": "1",
                "price": "0.5",
                "client_order_id": "dup",
            },
        )
    ) == (409, "duplicate_order")
    assert error(
        call(
            api,
            "post",
            "orders",
            {"symbol": "NOPE", "side": "buy", "quantity": "1", "price": "0.5"},
        )
    ) == (404, "not_found")
    assert error(
        call(api, "post", "orders", {"symbol": "TRUMP-WIN", "side": "buy", "quantity": "1"})
    ) == (400, "invalid_params")  # a limit needs a price
    for bad in (
        {"price": "1.2"},
        {"price": "0.505"},  # off the tick grid
        {"quantity": "0"},
        {"time_in_force": "DAY"},
        {"order_type": "stop"},
        {"take_profit": "0.40"},  # below the price of a buy
        {"side": "sell", "quantity": "1"},  # sells more than held
    ):
        body = {"symbol": "TRUMP-WIN", "side": "buy", "quantity": "10", "price": "0.50"} | bad
        assert error(call(api, "post", "orders", body)) == (400, "invalid_params"), bad
    assert error(
        call(
            api,
            "post",
            "orders",
            {"symbol": "TRUMP-WIN", "side": "buy", "quantity": "100000", "price": "0.50"},
        )
    ) == (422, "insufficient_margin")
    binary_create("DARK", "0.01", "kalshi")
    response = call(
        api,
        "post",
        "orders",
        {"symbol": "DARK", "side": "buy", "quantity": "1", "price": "0.5", "time_in_force": "IOC"},
    )
    assert error(response) == (503, "market_data_unavailable")
    halt(market["trump"])
    response = call(
        api,
        "post",
        "orders",
        {"symbol": "TRUMP-WIN", "side": "buy", "quantity": "1", "price": "0.5"},
    )
    assert error(response) == (409, "market_closed")
    non_custodial = client_for(key_issue([open_account(kind=Account.Kind.NON_CUSTODIAL)]))
    response = call(
        non_custodial,
        "post",
        "orders",
        {"symbol": "BTC-PERP", "side": "buy", "quantity": "1", "price": "100"},
    )
    assert error(response) == (403, "custodial_required")


def test_order_lookup_and_modify_errors(api, account, market):
    order = place(api)
    assert error(call(api, "get", "orders/ord_missing")) == (404, "not_found")
    assert error(call(api, "get", "orders/by-client-id/missing")) == (404, "not_found")
    assert error(call(api, "patch", "orders/ord_missing", {"price": "0.51"})) == (404, "not_found")
    assert error(call(api, "delete", "orders/ord_missing")) == (404, "not_found")
    assert error(call(api, "delete", "orders/by-client-id/missing")) == (404, "not_found")
    assert error(call(api, "patch", f"orders/{order['id']}", {})) == (400, "invalid_params")
    assert error(call(api, "patch", f"orders/{order['id']}", {"price": "abc"})) == (
        400,
        "invalid_params",
    )
    assert error(call(api, "patch", f"orders/{order['id']}", {"quantity": "100000"})) == (
        422,
        "insufficient_margin",
    )
    read_only = client_for(key_issue([account], scopes=["intelligence", "read"]))
    assert error(call(read_only, "delete", f"orders/{order['id']}")) == (403, "forbidden")
    assert error(call(read_only, "patch", f"orders/{order['id']}", {"price": "0.51"})) == (
        403,
        "forbidden",
    )
    assert error(call(read_only, "post", "orders", {})) == (403, "forbidden")
    assert call(read_only, "get", f"orders/{order['id']}", expect=200).json()["status"] == "open"


def test_order_list_filters_and_pages(api, market):
    first = place(api, price="0.50")
    second = place(api, symbol="TRUMP-WIN:NO", price="0.30")
    third = place(api, symbol="BTC-PERP", quantity="0.01", price="40000")
    call(api, "delete", f"orders/{first['id']}", expect=200)
    response = call(api, "get", "orders", expect=200)
    assert response["X-RateLimit-Limit"] == "300"  # reads: the market-data group
    every = response.json()
    assert [o["id"] for o in every["orders"]] == [third["id"], second["id"], first["id"]]
    assert (every["limit"], every["offset"], every["next_offset"]) == (100, 0, None)
    page = call(api, "get", "orders", {"limit": 2}, expect=200).json()
    assert [o["id"] for o in page["orders"]] == [third["id"], second["id"]]
    assert page["next_offset"] == 2
    last = call(api, "get", "orders", {"limit": 2, "offset": 2}, expect=200).json()
    assert [o["id"] for o in last["orders"]] == [first["id"]] and last["next_offset"] is None
    active = call(api, "get", "orders", {"status": "active"}, expect=200).json()["orders"]
    assert [o["id"] for o in active] == [third["id"], second["id"]]
    cancelled = call(api, "get", "orders", {"status": "cancelled"}, expect=200).json()["orders"]
    assert [o["id"] for o in cancelled] == [first["id"]]
    no = call(api, "get", "orders", {"symbol": "TRUMP-WIN:NO"}, expect=200).json()["orders"]
    assert [o["id"] for o in no] == [second["id"]] and no[0]["symbol"] == "TRUMP-WIN:NO"
    yes = call(api, "get", "orders", {"symbol": "TRUMP-WIN"}, expect=200).json()["orders"]
    assert [o["id"] for o in yes] == [first["id"]]
    for bad in ({"status": "done"}, {"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "x"}):
        assert error(call(api, "get", "orders", bad)) == (400, "invalid_params"), bad


# ---------------------------------------------------------------------------
# Fills


def test_fills_list_filter_and_page(api, account, market):
    buy = execute(api, symbol="TRUMP-WIN", notional_usdc="60", client_order_id="f-1")
    execute(api, symbol="TRUMP-WIN", side="sell", notional_usdc="30.5")
    execute(api, symbol="BTC-PERP", notional_usdc="500")
    body = call(api, "get", "fills", expect=200).json()
    assert body["account_id"] == account.public_id and len(body["fills"]) == 3
    oldest = body["fills"][-1]
    assert (oldest["order_id"], oldest["client_order_id"], oldest["symbol"]) == (
        buy["id"],
        "f-1",
        "TRUMP-WIN",
    )
    assert (oldest["quantity"], oldest["price"], oldest["notional"]) == (
        "100.000000",
        "0.60000000",
        "60.000000",
    )
    assert (oldest["venue"], oldest["liquidity"], oldest["side"]) == ("kalshi", "taker", "buy")
    assert oldest["id"].startswith("fill_")
    sell = body["fills"][1]
    assert sell["realized_pnl"] == "0.500000"  # 50 sold at 0.61, bought at 0.60
    trump = call(api, "get", "fills", {"symbol": "TRUMP-WIN"}, expect=200).json()["fills"]
    assert len(trump) == 2
    page = call(api, "get", "fills", {"limit": 1, "offset": 1}, expect=200).json()
    assert (len(page["fills"]), page["next_offset"]) == (1, 2)
    assert error(call(api, "get", "fills", {"limit": 1000})) == (400, "invalid_params")


# ---------------------------------------------------------------------------
# Markets and order books


def test_markets_list_and_detail(api, market):
    markets = call(api, "get", "markets", expect=200).json()["markets"]
    assert [m["symbol"] for m in markets] == ["BTC-PERP", "TRUMP-WIN"]
    btc, trump = markets
    assert (trump["kind"], trump["status"], trump["event"]) == ("binary", "open", "event-trump-win")
    assert (trump["best_bid"], trump["best_ask"], trump["tick_size"]) == (
        "0.61000000",
        "0.60000000",
        "0.01",
    )
    assert [listing["venue"] for listing in trump["listings"]] == ["kalshi", "polymarket"]
    assert trump["listings"][0]["bid"] == "0.59000000" and trump["listings"][0]["quoted_at"]
    assert (btc["kind"], btc["max_leverage"], btc["default_leverage"]) == ("perpetual", 20, 5)
    assert btc["maintenance_margin_fraction"] == "0.030000" and btc["expires_at"] is None
    perps = call(api, "get", "markets", {"kind": "perpetual"}, expect=200).json()["markets"]
    assert [m["symbol"] for m in perps] == ["BTC-PERP"]
    halt(market["trump"])
    halted = call(api, "get", "markets", {"status": "halted"}, expect=200).json()["markets"]
    assert [m["symbol"] for m in halted] == ["TRUMP-WIN"]
    assert error(call(api, "get", "markets", {"kind": "bond"})) == (400, "invalid_params")
    one = call(api, "get", "markets/TRUMP-WIN", expect=200).json()
    assert one["symbol"] == "TRUMP-WIN" and one["status"] == "halted"
    assert error(call(api, "get", "markets/NOPE")) == (404, "not_found")
    binary_create("QUIET", "0.01", "kalshi")
    quiet = call(api, "get", "markets/QUIET", expect=200).json()
    assert quiet["best_bid"] is None and quiet["listings"][0]["quoted_at"] is None


def test_order_books(api, market):
    books = call(api, "get", "markets/TRUMP-WIN/orderbook", expect=200).json()
    assert books["symbol"] == "TRUMP-WIN"
    assert [book["venue"] for book in books["books"]] == ["kalshi", "polymarket"]
    kalshi = books["books"][0]
    assert kalshi["bids"][0] == {"price": "0.59000000", "size": "1000000"}
    assert [level["price"] for level in kalshi["asks"]] == [
        "0.60000000",
        "0.61000000",
        "0.62000000",
    ]
    no = call(
        api, "get", "markets/TRUMP-WIN:NO/orderbook", {"venue": "kalshi", "depth": 1}, expect=200
    )
    (book,) = no.json()["books"]
    assert book["venue"] == "kalshi" and no.json()["symbol"] == "TRUMP-WIN:NO"
    assert book["bids"] == [{"price": "0.40000000", "size": "1000000"}]  # 1 − YES ask
    assert book["asks"] == [{"price": "0.41000000", "size": "1000000"}]  # 1 − YES bid
    perp = call(api, "get", "markets/BTC-PERP/orderbook", expect=200).json()
    assert perp["books"][0]["asks"][0]["price"] == "50000.00000000"
    assert error(call(api, "get", "markets/NOPE/orderbook")) == (404, "not_found")
    response = call(api, "get", "markets/TRUMP-WIN/orderbook", {"venue": "leviathan"})
    assert error(response) == (404, "not_found")
    assert error(call(api, "get", "markets/BTC-PERP:NO/orderbook")) == (400, "invalid_params")
    assert error(call(api, "get", "markets/TRUMP-WIN/orderbook", {"depth": 0})) == (
        400,
        "invalid_params",
    )
    binary_create("DARK", "0.01", "kalshi")
    assert error(call(api, "get", "markets/DARK/orderbook")) == (503, "market_data_unavailable")


def test_markets_need_a_key(account, market):
    assert error(call(client_for(None), "get", "markets")) == (401, "unauthorized")
    trade_only = client_for(key_issue([account], scopes=["intelligence", "trade"]))
    assert error(call(trade_only, "get", "markets")) == (403, "forbidden")
    assert error(call(trade_only, "get", "markets/TRUMP-WIN/orderbook")) == (403, "forbidden")


# ---------------------------------------------------------------------------
# The schema


def test_every_trading_endpoint_is_documented_with_its_errors():
    paths = openapi()["paths"]
    expected = {
        "/v1/intelligence/positions": {"get": {"200", "404"}},
        "/v1/intelligence/execute": {"post": {"201", "202", "404", "409", "422", "503"}},
        "/v1/intelligence/margin": {"get": {"200", "404"}},
        "/v1/intelligence/margin/simulate": {"post": {"200", "404", "409", "503"}},
        "/v1/intelligence/leverage": {"get": {"200", "404"}, "post": {"200", "404", "422"}},
        "/v1/intelligence/leverage/levels": {"get": {"200", "404"}},
        "/v1/intelligence/orders": {
            "get": {"200", "404"},
            "post": {"201", "202", "409", "422", "503"},
        },
        "/v1/intelligence/orders/{order_id}": {
            "get": {"200", "404"},
            "patch": {"200", "404", "409", "422"},
            "delete": {"200", "404", "409"},
        },
        "/v1/intelligence/orders/by-client-id/{client_order_id}": {
            "get": {"200", "404"},
            "patch": {"200", "404", "409", "422"},
            "delete": {"200", "404", "409"},
        },
        "/v1/intelligence/fills": {"get": {"200", "404"}},
        "/v1/intelligence/markets": {"get": {"200"}},
        "/v1/intelligence/markets/{symbol}": {"get": {"200", "404"}},
        "/v1/intelligence/markets/{symbol}/orderbook": {"get": {"200", "404", "503"}},
    }
    for path, methods in expected.items():
        assert set(methods) <= set(paths[path]), path
        for method, statuses in methods.items():
            operation = paths[path][method]
            documented = set(operation["responses"])
            assert statuses | {"400", "401", "403", "429", "500"} <= documented, (path, method)
            assert operation["security"] == [{"ApiKey": []}]
    leverage_422 = paths["/v1/intelligence/leverage"]["post"]["responses"]["422"]
    assert "LeverageResult" in json.dumps(leverage_422)  # the seed's REJECTED body


# ---------------------------------------------------------------------------
# Closing a position


def test_a_position_is_closed_in_part_then_whole_idempotently(api, account, market):
    execute(api, symbol="TRUMP-WIN", notional_usdc="60")  # 100 at kalshi's 0.60
    body = {"percent": "50", "client_order_id": "close-1"}
    half = call(api, "post", "positions/TRUMP-WIN/close", body, expect=201).json()
    # Sold into the best bid (polymarket's 0.61), no lower than 0.61 less 50 bps.
    assert (half["side"], half["symbol"], half["status"]) == ("sell", "TRUMP-WIN", "filled")
    assert (half["filled_quantity"], half["average_price"]) == ("50.000000", "0.61000000")
    again = call(api, "post", "positions/TRUMP-WIN/close", body, expect=200).json()
    assert again["id"] == half["id"]  # a retry: nothing sold twice
    assert error(call(api, "post", "positions/TRUMP-WIN/close", body | {"percent": "60"})) == (
        409,
        "duplicate_order",
    )
    call(api, "post", "positions/TRUMP-WIN/close", {}, expect=201)
    assert Position.objects.get(account=account, instrument=market["trump"]).quantity == 0


def test_closing_what_is_not_held_is_refused_clearly(api, account, market):
    execute(api, symbol="TRUMP-WIN", notional_usdc="60")
    assert error(call(api, "post", "positions/TRUMP-WIN:NO/close", {})) == (404, "not_found")
    assert error(call(api, "post", "positions/TRUMP-WIN/close", {"quantity": "101"})) == (
        400,
        "invalid_params",
    )
    assert error(
        call(api, "post", "positions/TRUMP-WIN/close", {"quantity": "1", "percent": "1"})
    ) == (400, "invalid_params")
    halt(market["trump"])
    assert error(call(api, "post", "positions/TRUMP-WIN/close", {})) == (409, "market_closed")


def test_a_short_perp_is_covered_by_a_buy(api, account, market):
    call(api, "post", "execute", {"symbol": "BTC-PERP", "side": "sell", "notional_usdc": "500"})
    held = Position.objects.get(account=account, instrument=market["btc"]).quantity
    assert held < 0
    closed = call(api, "post", "positions/BTC-PERP/close", {}, expect=201).json()
    assert closed["side"] == "buy" and D(closed["filled_quantity"]) == -held
    assert Position.objects.get(account=account, instrument=market["btc"]).quantity == 0
