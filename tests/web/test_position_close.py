"""Closing a position from the dashboard: a row's Close… panel simulates the size
(`position-close-simulation`, `?quantity=`) and Confirm posts it
(`position-close` → `position_close`)."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Account
from tests.factories import open_account
from tests.trading.quoting import put_quote
from tests.web.dashboard_fixtures import (
    BTC,
    FED,
    JSON,
    TRUMP,
    borrower,
    quotes_put,
    signed_in,
    trader,
)
from trading.models import Order, Position
from trading.services.simulation import position_close_simulate

pytestmark = pytest.mark.django_db

D = Decimal


def close(client: Client, account: Account, **data):
    quotes_put()  # the simulated venue refuses a stale quote
    return client.post(reverse("position-close", args=[account.public_id]), data, **JSON)


def held(account: Account, instrument, outcome: str = "yes") -> Decimal:
    row = Position.objects.filter(account=account, instrument=instrument, outcome=outcome).first()
    return D(0) if row is None else row.quantity


def simulate(client: Client, account: Account, position: Position, **params):
    url = reverse("position-close-simulation", args=[account.public_id, position.pk])
    return client.get(url, params)


# --- Confirm: POST /dashboard/<id>/positions/close/ ----------------------------------------


def test_reducing_by_half_sells_half_and_a_retry_returns_the_same_order(markets):
    account = borrower()
    client = signed_in(account)
    before = held(account, markets[TRUMP])
    response = close(client, account, symbol=TRUMP, percent="50", client_order_id="web-close-1")
    assert response.status_code == 201, response.content
    body = response.json()
    order = body["order"]
    assert (order["symbol"], order["side"], order["status"]) == (TRUMP, "sell", "filled")
    assert (order["time_in_force"], order["client_order_id"]) == ("IOC", "web-close-1")
    half = (before / 2).quantize(D("0.000001"))
    assert D(order["filled_quantity"]) == half
    assert body["message"].startswith(f"Sold {half:,.2f} {TRUMP} YES at ")
    assert body["url"] == reverse("order_detail", args=[order["id"]])
    assert held(account, markets[TRUMP]) == before - half

    # The same click retried (a lost answer): the original order, nothing sold again.
    again = close(client, account, symbol=TRUMP, percent="50", client_order_id="web-close-1")
    assert again.status_code == 200
    assert again.json()["order"]["id"] == order["id"]
    assert held(account, markets[TRUMP]) == before - half
    # Another close under the same id is refused.
    other = close(client, account, symbol=TRUMP, percent="25", client_order_id="web-close-1")
    assert other.status_code == 409
    assert other.json()["code"] == "duplicate_order"
    assert Order.objects.filter(account=account, client_order_id="web-close-1").count() == 1
    assert held(account, markets[TRUMP]) == before - half


def test_a_quantity_of_a_no_position_and_all_of_a_perp_are_closed(markets):
    account = borrower()
    client = signed_in(account)
    no_before = held(account, markets[FED], "no")
    response = close(client, account, symbol=f"{FED}:NO", quantity="100")
    assert response.status_code == 201, response.content
    assert response.json()["order"]["filled_quantity"] == "100.000000"
    assert held(account, markets[FED], "no") == no_before - 100

    response = close(client, account, symbol=BTC)
    assert response.status_code == 201, response.content
    order = response.json()["order"]
    assert (order["symbol"], order["side"], order["status"]) == (BTC, "sell", "filled")
    assert held(account, markets[BTC], "") == 0


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ({"symbol": TRUMP, "quantity": "10", "percent": "50"}, 400, "invalid_params"),
        ({"symbol": TRUMP, "quantity": "999999"}, 400, "invalid_params"),
        ({"symbol": TRUMP, "percent": "150"}, 400, "invalid_params"),
        ({"symbol": TRUMP, "quantity": "-1"}, 400, "invalid_params"),
        ({"quantity": "10"}, 400, "invalid_params"),
        ({"symbol": f"{TRUMP}:NO"}, 404, "not_found"),
        ({"symbol": "NOPE"}, 404, "not_found"),
    ],
)
def test_a_bad_close_is_refused_with_its_reason_and_sells_nothing(markets, data, status, code):
    account = borrower()
    before = held(account, markets[TRUMP])
    response = close(signed_in(account), account, **data)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.json()["message"]
    assert held(account, markets[TRUMP]) == before
    assert not Order.objects.filter(account=account, side="sell").exists()


def test_closing_in_a_halted_market_is_refused(markets):
    account = borrower()
    markets[TRUMP].status = "halted"
    markets[TRUMP].save(update_fields=["status"])
    response = close(signed_in(account), account, symbol=TRUMP)
    assert (response.status_code, response.json()["code"]) == (409, "market_closed")


def test_a_non_custodial_account_cannot_close(markets):
    account = open_account(kind=Account.Kind.NON_CUSTODIAL)
    response = close(signed_in(account), account, symbol=TRUMP)
    assert (response.status_code, response.json()["code"]) == (403, "custodial_required")


def test_closing_needs_the_csrf_token_the_owner_and_a_post(markets):
    account = borrower()
    before = held(account, markets[TRUMP])
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(account.owner)
    url = reverse("position-close", args=[account.public_id])
    assert strict.post(url, {"symbol": TRUMP}, **JSON).status_code == 403
    stranger = signed_in(trader("10"))
    assert close(stranger, account, symbol=TRUMP).status_code == 404
    assert signed_in(account).get(url).status_code == 405
    assert held(account, markets[TRUMP]) == before
    assert not Order.objects.filter(account=account, side="sell").exists()


# --- The simulation of a size ----------------------------------------------------------------


def test_the_simulation_of_a_quantity_is_the_services(markets):
    account = borrower()
    position = Position.objects.get(account=account, instrument=markets[TRUMP])
    response = simulate(signed_in(account), account, position, quantity="100")
    assert response.status_code == 200
    body = response.json()
    expected = position_close_simulate(account=account, position_id=position.pk, quantity="100")
    assert (body["quantity"], body["held"]) == ("100.000000", f"{position.quantity:.6f}")
    assert body["projection"]["after"]["health"] == str(expected.projection.after.health)
    assert D(body["projection"]["after"]["health"]) > D(body["projection"]["before"]["health"])
    assert body["fillable"]["quantity"] == "100.000000" and body["fillable"]["complete"] is True
    assert body["fillable"]["venue"] == expected.venue

    response = simulate(signed_in(account), account, position, quantity="999999")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_params")


def test_on_a_thin_book_the_simulation_still_gives_the_health_and_says_what_fills(markets):
    account = borrower()
    position = Position.objects.get(account=account, instrument=markets[TRUMP])
    for venue in ("kalshi", "polymarket"):
        put_quote(f"{TRUMP}@{venue}", bid="0.59", ask="0.60", size="10", levels=1)
    response = simulate(signed_in(account), account, position)
    assert response.status_code == 200
    body = response.json()
    assert body["quantity"] == f"{position.quantity:.6f}"
    assert body["projection"]["after"]["used_margin"] == "0.000000"
    assert body["fillable"]["quantity"] == "10.000000"
    assert body["fillable"]["complete"] is False


# --- The page ----------------------------------------------------------------------------------


def test_each_position_row_has_a_close_button_and_the_panel_template(markets):
    account = borrower()
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    assert "Simulate close" not in html
    # TRUMP-WIN and FED-CUT:NO in the breakdown, BTC-PERP in the perps.
    assert html.count('data-action="close-position"') == 3
    template = html.split('id="close-panel-template"', 1)[1].split("</template>", 1)[0]
    assert 'name="csrfmiddlewaretoken"' in template
    assert reverse("position-close", args=[account.public_id]) in template
    for choice in ("Close all", "Reduce by %", "Reduce by quantity", "Confirm close"):
        assert choice in template
    assert 'data-field="buying_power_fillable"' in html
    assert 'fillable now <span data-field="buying_power_fillable_depth">at book depth' in html


def test_a_non_custodial_dashboard_offers_no_close(markets):
    account = open_account(kind=Account.Kind.NON_CUSTODIAL)
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    assert 'data-action="close-position"' not in html
    assert "close-panel-template" not in html
