"""Every bad value sent to /v1 is a 400 `invalid_params` that says what is accepted, and
moves no money (issue 14): out-of-range pages and days, loosely written numbers (SPEC §2:
decimals are strings of ASCII digits), control characters in free text."""

from decimal import Decimal

import pytest

from accounts.models import Deposit
from portal.errors import InvalidParams
from portal.pagination import PAGE_LIMIT_MAX, PAGE_OFFSET_MAX, Page
from tests.api.refusals import BASE, error_of, money_state
from tests.trading.quoting import put_quote
from trading.models import Instrument, Order
from trading.services.orders import order_place, orders_match

pytestmark = pytest.mark.django_db


# --- 4. limit / offset out of range: 400, documented --------------------------------------

LISTS = ("orders", "fills", "deposits", "withdrawals", "transactions", "reports")


@pytest.mark.parametrize("name", LISTS)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"offset": str(2**63)}, "offset"),
        ({"offset": str(2**64 + 5)}, "offset"),
        ({"offset": str(PAGE_OFFSET_MAX + 1)}, "offset"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "0"}, "limit"),
        ({"limit": str(PAGE_LIMIT_MAX + 1)}, "limit"),
        ({"limit": "1_0"}, "limit"),
        ({"offset": "١٠"}, "offset"),
    ],
)
def test_a_page_out_of_range_is_400_invalid_params(api, funded_account, name, query, field):
    response = api.get(BASE + name, query)
    assert error_of(response) == (400, "invalid_params")
    assert response.json()["message"].startswith(field)


@pytest.mark.parametrize("name", LISTS)
def test_the_last_offset_allowed_answers_an_empty_page(api, funded_account, name):
    response = api.get(BASE + name, {"offset": str(PAGE_OFFSET_MAX), "limit": "500"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["offset"] == PAGE_OFFSET_MAX and body["next_offset"] is None


def test_every_paged_list_documents_its_limit_and_offset_maxima(api):
    schema = api.get("/v1/openapi.json").json()
    paged = {}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            params = {p["name"]: p["schema"] for p in operation.get("parameters", [])}
            if "offset" in params:
                paged[f"{method} {path}"] = (params["limit"], params["offset"])
    assert len(paged) == len(LISTS), sorted(paged)
    for limit, offset in paged.values():
        assert (limit["minimum"], limit["maximum"]) == (1, PAGE_LIMIT_MAX)
        assert (offset["minimum"], offset["maximum"]) == (0, PAGE_OFFSET_MAX)


def test_page_read_refuses_what_the_database_cannot_take():
    with pytest.raises(InvalidParams, match="offset"):
        Page.read([], limit=10, offset=2**63)
    with pytest.raises(InvalidParams, match="limit"):
        Page.read([], limit=0, offset=0)


# --- 5. Days out of range: 400 ------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"to": "9999-12-31"},  # a day after it does not exist: was an OverflowError
        {"from": "0001-01-01"},
        {"from": "3000-01-01"},
        {"to": "2026-02-30"},
        {"to": "2026-1-5"},
        {"to": "٢٠٢٦-٠١-٠١"},
    ],
)
def test_transaction_days_out_of_range_are_400(api, funded_account, query):
    response = api.get(BASE + "transactions", query)
    assert error_of(response) == (400, "invalid_params")
    assert "1970-01-01 to 2999-12-31" in response.json()["message"]


def test_the_last_day_allowed_is_answered(api, funded_account):
    response = api.get(BASE + "transactions", {"from": "1970-01-01", "to": "2999-12-31"})
    assert response.status_code == 200
    assert len(response.json()["transactions"]) == 1


@pytest.mark.parametrize(("day_from", "day_to"), [("9999-12-30", "9999-12-31"), ("1", "2")])
def test_report_days_out_of_range_are_400(api, funded_account, day_from, day_to):
    body = {"type": "transactions", "from": day_from, "to": day_to, "format": "csv"}
    response = api.post(BASE + "reports", body, format="json")
    assert error_of(response) == (400, "invalid_params")
    assert "2999-12-31" in response.json()["message"]


def test_the_day_range_is_documented(api):
    schema = api.get("/v1/openapi.json").json()
    parameters = schema["paths"]["/v1/intelligence/transactions"]["get"]["parameters"]
    to = next(p for p in parameters if p["name"] == "to")
    assert "From 1970-01-01 to 2999-12-31" in to["description"]


# --- 6. Decimals: strings of ASCII digits only --------------------------------------------

NOTIONAL_REFUSED = ["١٢٣", "1_000", "  5  ", 5, 5.0, "5e2", "NaN", "Infinity", "", "0x10", True]


@pytest.mark.parametrize("notional", NOTIONAL_REFUSED)
def test_execute_refuses_a_notional_not_written_as_a_decimal_string(api, funded_account, notional):
    before = money_state(funded_account)
    body = {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": notional}
    response = api.post(BASE + "execute", body, format="json")
    assert error_of(response) == (400, "invalid_params")
    assert response.json()["message"] == (
        'notional_usdc must be a decimal string of ASCII digits such as "1500.00".'
    )
    assert money_state(funded_account) == before


def test_execute_takes_a_decimal_string(api, funded_account):
    body = {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "+12.50"}
    response = api.post(BASE + "execute", body, format="json")
    assert response.status_code == 201, response.content
    assert Decimal(response.json()["filled_notional"]) > 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("orders", {"quantity": 100}, "quantity"),
        ("orders", {"price": 0.4}, "price"),
        ("orders", {"quantity": "١٠٠"}, "quantity"),
        ("orders", {"price": "0_4"}, "price"),
        ("orders", {"take_profit": " 0.9"}, "take_profit"),
        ("orders", {"stop_loss": "1e-1"}, "stop_loss"),
        ("orders", {"leverage": "١٠"}, "leverage"),
        ("orders", {"leverage": 2.0}, "leverage"),
        ("deposits", {"amount": "١٠٠", "method": "bank_transfer"}, "amount"),
        ("deposits", {"amount": 100, "method": "bank_transfer"}, "amount"),
        ("withdrawals", {"amount": "1_000", "destination": "Bank"}, "amount"),
        ("margin/simulate", {"simulated_collateral_changes": [{"amount": 100}]}, "amount"),
        (
            "margin/simulate",
            {"simulated_position_changes": [{"instrument_name": "TRUMP-WIN", "amount": "١"}]},
            "amount",
        ),
        ("leverage", {"symbol": "BTC-PERP", "leverage": "١٠"}, "leverage"),
        ("execute", {"slippage_bps": "5_0"}, "slippage_bps"),
    ],
)
def test_every_decimal_and_whole_number_is_strict(api, funded_account, path, body, field):
    order = {"symbol": "TRUMP-WIN", "side": "buy", "quantity": "10", "price": "0.40"}
    execute = {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "10"}
    base = {"orders": order, "execute": execute}.get(path, {})
    before = money_state(funded_account)
    response = api.post(BASE + path, base | body, format="json")
    assert error_of(response) == (400, "invalid_params")
    message = response.json()["message"]
    assert field in message and "ASCII digits" in message, message
    assert money_state(funded_account) == before


def test_leverage_as_a_json_integer_still_works(api, funded_account):
    response = api.post(BASE + "leverage", {"symbol": "BTC-PERP", "leverage": 3}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "APPLIED"


def test_decimal_inputs_are_documented_as_strings(api):
    schema = api.get("/v1/openapi.json").json()
    execute = schema["components"]["schemas"]["ExecuteInputRequest"]["properties"]
    assert execute["notional_usdc"]["type"] == "string"
    assert execute["notional_usdc"]["format"] == "decimal"


# --- 9. Control characters in free text ---------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "shown"),
    [
        ("Bank\nPAID", "a newline (U+000A)"),
        ("Bank\tX", "a tab (U+0009)"),
        ("Bank\x1b[31m", "a control character (U+001B)"),
        ("Bank\x85X", "a control character (U+0085)"),
        ("Bank \u202e1234", "a bidirectional override (U+202E)"),
        ("Bank \u2066x\u2069", "a bidirectional override (U+2066)"),
        ("Bank\u2028x", "a line separator (U+2028)"),
    ],
)
def test_a_withdrawal_destination_with_control_characters_is_refused(
    api, funded_account, destination, shown
):
    before = money_state(funded_account)
    body = {"amount": "10", "destination": destination}
    response = api.post(BASE + "withdrawals", body, format="json")
    assert error_of(response) == (400, "invalid_params")
    assert response.json()["message"] == (
        f"destination must be printable text on one line: it contains {shown}."
    )
    assert money_state(funded_account) == before


@pytest.mark.parametrize("path", ["execute", "orders"])
def test_a_client_order_id_with_control_characters_is_refused(api, funded_account, path):
    body = {
        "symbol": "TRUMP-WIN",
        "side": "buy",
        "notional_usdc": "10",
        "quantity": "10",
        "price": "0.40",
        "client_order_id": "mi\tne",
    }
    response = api.post(BASE + path, body, format="json")
    assert error_of(response) == (400, "invalid_params")
    assert "client_order_id must be printable text" in response.json()["message"]
    assert not Order.objects.exists()


def test_a_card_number_with_control_characters_is_refused(api, funded_account):
    body = {"amount": "10", "method": "card", "card_number": "4242\x004242"}
    assert error_of(api.post(BASE + "deposits", body, format="json")) == (400, "invalid_params")
    assert not Deposit.objects.exists()


def test_plain_text_is_still_taken(api, funded_account):
    body = {"amount": "10", "destination": "Chase ****1234 — Café"}
    response = api.post(BASE + "withdrawals", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["destination"] == "Chase ****1234 — Café"


def test_text_must_be_a_json_string(api, funded_account):
    body = {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "10", "client_order_id": 42}
    response = api.post(BASE + "execute", body, format="json")
    assert error_of(response) == (400, "invalid_params")
    assert response.json()["message"] == "client_order_id: Not a valid string."
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("orders", {"status": ""}),
        ("deposits", {"status": ""}),
        ("transactions", {"to": ""}),
        ("fills", {"limit": ""}),
        ("leverage", {"symbol": "BTC-PERP\x00"}),
        ("markets/TRUMP-WIN/orderbook", {"venue": "kal\x07shi"}),
    ],
)
def test_an_empty_or_control_character_query_value_is_400(api, funded_account, path, query):
    assert error_of(api.get(BASE + path, query)) == (400, "invalid_params")


# --- A sale too small to book: its proceeds round to nothing --------------------------------


def _holding(api) -> None:
    body = {"symbol": "TRUMP-WIN", "side": "buy", "notional_usdc": "100"}
    assert api.post(BASE + "execute", body, format="json").status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("orders", {"symbol": "TRUMP-WIN", "side": "sell", "quantity": "0.000001", "price": "0.5"}),
        (
            "orders",
            {"symbol": "TRUMP-WIN", "side": "sell", "quantity": "0.000001", "order_type": "market"},
        ),
        ("execute", {"symbol": "TRUMP-WIN", "side": "sell", "notional_usdc": "0.000001"}),
        ("positions/TRUMP-WIN/close", {"quantity": "0.000001"}),
        ("positions/TRUMP-WIN/close", {"percent": "0.000001"}),
    ],
)
def test_a_sale_too_small_to_book_is_400_and_changes_nothing(api, funded_account, path, body):
    """0.000001 contracts at ~0.5 raise 0.0000005 USDC: rounded down, nothing; a journal
    of nothing could not be posted (it was a 500, and a resting one never left the book)."""
    _holding(api)
    before = money_state(funded_account)
    response = api.post(BASE + path, body, format="json")
    assert error_of(response) == (400, "invalid_params"), response.json()
    assert "Too small to sell" in response.json()["message"]
    assert money_state(funded_account) == before


def test_a_resting_sale_left_too_small_is_cancelled_when_the_book_crosses(api, funded_account):
    """A resting remainder that has become dust (the order was placed before this check,
    or a partial fill left it) is cancelled with the reason, not retried for ever."""
    _holding(api)
    order = order_place(
        account=funded_account,
        symbol="TRUMP-WIN",
        side="sell",
        quantity=Decimal(1),
        price=Decimal("0.9"),
    )
    Order.objects.filter(pk=order.pk).update(quantity=Decimal("0.000001"))
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRUMP-WIN@{venue}", bid="0.95", ask="0.96")
    orders_match(instrument_ids=[Instrument.objects.get(symbol="TRUMP-WIN").pk])
    order.refresh_from_db()
    assert (order.status, order.reject_code) == ("cancelled", "invalid_params")
    assert "Too small to sell" in order.reject_reason
