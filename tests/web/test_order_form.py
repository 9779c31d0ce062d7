"""The dashboard's order form (live projection, execute), simulations and perp leverage."""

from decimal import ROUND_UP, Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Account
from accounts.services.accounts import account_freeze_set
from portal.errors import DomainError
from tests.conftest import credit_cash
from tests.factories import StaffFactory, open_account
from tests.trading.margining import listen, receive
from tests.web.dashboard_fixtures import (
    BTC,
    FED,
    JSON,
    TRUMP,
    borrower,
    buy,
    projection,
    quotes_put,
    signed_in,
    ticket_post,
    trader,
)
from trading import perp_math
from trading.broadcasts import account_group
from trading.models import FeePolicy, Order, Position
from trading.selectors import margin_summary_get
from trading.services.execute import execute_preview, order_execute
from trading.services.simulation import (
    add_funds_simulate,
    buying_power_get,
    position_close_simulate,
    trade_simulate,
)

pytestmark = pytest.mark.django_db


D = Decimal


def place(client: Client, account: Account, **data):
    """POST the ticket, confirmed (the confirmation step is tested on its own)."""
    data.setdefault("confirmed", "1")
    return ticket_post(client, account, **data)


# --- Live projection ---------------------------------------------------------------------


def test_the_projection_is_executes_own_check(markets):
    """The projection is the worst case execute's pre-trade check decides on: the
    whole notional at the slippage limit, fees included."""
    account = borrower()
    status, body = projection(signed_in(account), account, symbol=TRUMP, side="buy", notional="250")
    assert status == 200
    plan = execute_preview(account=account, symbol=TRUMP, side="buy", notional_usdc=D("250")).plan
    assert body["projection"]["after"]["health"] == str(plan.projection.after.health)
    assert body["projection"]["before"]["health"] == str(plan.projection.before.health)
    assert body["quantity"] == f"{plan.route.estimate.quantity:.6f}"
    assert body["worst_price"] == f"{plan.worst_price:.8f}"
    assert body["reserved"] == f"{plan.reserve_cash:.6f}"
    assert body["venue"] == plan.route.venue == "kalshi"
    power = buying_power_get(account=account, symbol=TRUMP, outcome="yes")
    assert body["buying_power"] == f"{power.notional:.6f}"
    assert body["projection"]["zone"] == "ok" and body["projection"]["is_valid_trade"] is True


def test_the_projection_counts_fees_as_the_pre_trade_check_does(markets):
    FeePolicy.objects.update_or_create(pk=1, defaults={"broker_commission_bps": 100})
    account = borrower()
    status, body = projection(signed_in(account), account, symbol=TRUMP, side="buy", notional="300")
    assert status == 200
    assert D(body["fees_max"]) >= D(body["fees"]) > 0
    trade = trade_simulate(
        account=account, symbol=TRUMP, outcome="yes", side="buy", notional=D("300")
    )
    # Fees come off cash: the projected cash is lower than the fee-less simulation's
    # by the fee the check counts (the worst case: the fill at the slippage limit).
    assert D(body["projection"]["after"]["cash"]) == (
        trade.projection.after.cash - D(body["fees_max"])
    ).quantize(D("0.000001"), rounding=ROUND_UP)


@pytest.mark.parametrize(
    ("notional", "zone", "valid"),
    [("100", "ok", True), ("1650", "warning", True), ("2600", "danger", False)],
)
def test_the_projection_shows_the_warning_and_danger_zones(markets, notional, zone, valid):
    account = trader("1000")
    status, body = projection(
        signed_in(account), account, symbol=TRUMP, side="buy", notional=notional
    )
    assert status == 200
    assert body["projection"]["zone"] == zone
    assert body["projection"]["is_valid_trade"] is valid
    if not valid:
        assert body["projection"]["breach"] == "initial_margin"
        assert body["projection"]["refusal_code"] == "insufficient_margin"
        # The refusal shown is the one the order gets, word for word.
        with pytest.raises(DomainError) as refused:
            order_execute(account=account, symbol=TRUMP, side="buy", notional_usdc=D(notional))
        assert body["projection"]["refusal"] == refused.value.message


def test_a_non_margin_account_is_told_it_cannot_borrow(markets):
    account = trader("100", margin=False)
    status, body = projection(
        signed_in(account), account, symbol=f"{FED}:NO", side="buy", notional="150"
    )
    assert status == 200
    assert body["projection"]["zone"] == "danger"
    assert body["projection"]["breach"] == "margin_disabled"
    assert "not enabled" in body["projection"]["refusal"]


def test_a_perp_projection_shows_the_isolated_margin_and_liquidation_price(markets):
    account = trader("1000")
    status, body = projection(signed_in(account), account, symbol=BTC, side="buy", notional="500")
    assert status == 200
    assert body["kind"] == "perpetual" and body["leverage"] == 5
    quantity, entry = D(body["quantity"]), D(body["average_price"])
    margin = D(body["isolated_margin"])
    worst = D(body["worst_price"])  # the margin is checked and reserved at the slippage limit
    assert margin == (quantity * worst / 5).quantize(D("0.000001"), rounding=ROUND_UP)
    expected = perp_math.liquidation_price(
        quantity=quantity, entry=entry, margin=margin, mmf=D("0.03")
    )
    assert D(body["liquidation_price"]) == expected.quantize(D("0.00000001"))
    assert D(body["projection"]["after"]["cash"]) == D("1000") - margin - D(body["fees"])


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"symbol": "NOPE", "side": "buy", "notional": "10"}, 400, "invalid_params"),
        ({"symbol": TRUMP, "side": "buy", "notional": "-5"}, 400, "invalid_params"),
        ({"symbol": TRUMP, "side": "buy", "notional": "1.1234567"}, 400, "invalid_params"),
        ({"symbol": TRUMP, "side": "hold", "notional": "10"}, 400, "invalid_params"),
        ({"symbol": f"{BTC}:NO", "side": "buy", "notional": "10"}, 400, "invalid_params"),
        ({"symbol": TRUMP, "side": "sell", "notional": "10"}, 400, "invalid_params"),
    ],
)
def test_a_bad_projection_request_gets_a_clear_error(markets, params, status, code):
    account = trader("100")
    got, body = projection(signed_in(account), account, **params)
    assert (got, body["code"]) == (status, code)
    assert body["message"]


def test_a_non_custodial_account_cannot_project_or_trade(markets):
    account = open_account(kind=Account.Kind.NON_CUSTODIAL)
    client = signed_in(account)
    status, body = projection(client, account, symbol=TRUMP, side="buy", notional="10")
    assert (status, body["code"]) == (403, "custodial_required")
    response = place(client, account, symbol=TRUMP, side="buy", notional_usdc="10")
    assert response.status_code == 403


# --- Execute through the form ------------------------------------------------------------


def test_an_order_from_the_form_fills_and_is_pushed(markets, django_capture_on_commit_callbacks):
    account = trader("1000")
    client = signed_in(account)
    channel = listen(account_group(account.pk))
    with django_capture_on_commit_callbacks(execute=True):
        response = place(
            client, account, symbol=TRUMP, side="buy", notional_usdc="120", slippage_bps="50"
        )
    assert response.status_code == 201
    body = response.json()
    assert body["order"]["status"] == "filled" and body["order"]["symbol"] == TRUMP
    assert body["message"] == (
        "Bought 200 TRUMP-WIN YES at 60¢ on Kalshi · 120.00 USDC, fees 0.00 USDC."
    )
    assert body["url"] == reverse("order_detail", args=[body["order"]["id"]])
    pushed = [receive(channel) for _ in range(3)]
    assert [m["type"] for m in pushed] == ["fill.update", "position.update", "order.update"]
    assert body["order"]["id"] in pushed[2]["text"]

    snapshot = client.get(reverse("dashboard-snapshot", args=[account.public_id])).json()
    assert [row["symbol"] for row in snapshot["breakdown"]] == [TRUMP]
    assert snapshot["breakdown"][0]["quantity"] == "200.000000"
    assert snapshot["summary"]["cash"] == "880.000000"


def test_a_form_order_without_javascript_redirects_with_a_message(markets):
    account = trader("1000")
    client = signed_in(account)
    response = client.post(
        reverse("order-place", args=[account.public_id]),
        {
            "symbol": FED,
            "outcome": "no",
            "side": "buy",
            "notional_usdc": "71",
            "client_order_id": "",
            "confirmed": "on",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    html = response.content.decode()
    assert "Bought 100 FED-CUT NO at 71¢ on Kalshi · 71.00 USDC" in html  # NO ask = 1 − 0.29
    assert Position.objects.get(account=account, outcome="no").quantity == D("100")


def test_a_refused_order_explains_why_and_changes_nothing(markets):
    account = trader("1000")
    response = place(signed_in(account), account, symbol=TRUMP, side="buy", notional_usdc="2600")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "insufficient_margin"
    assert "Margin Health would be" in body["message"]
    assert not Order.objects.filter(account=account).exists()
    account.refresh_from_db()
    assert account.cash_balance == D("1000")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"symbol": TRUMP, "side": "buy", "notional_usdc": "abc"}, "notional_usdc"),
        ({"symbol": TRUMP, "side": "short", "notional_usdc": "10"}, "side"),
        ({"side": "buy", "notional_usdc": "10"}, "symbol"),
    ],
)
def test_a_malformed_form_is_a_400_naming_the_field(markets, data, field):
    account = trader("100")
    response = place(signed_in(account), account, **data)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_params" and field in body["fields"]


def test_a_double_submit_places_one_order(markets):
    account = trader("1000")
    client = signed_in(account)
    first = place(
        client, account, symbol=TRUMP, side="buy", notional_usdc="60", client_order_id="web-1"
    )
    again = place(
        client, account, symbol=TRUMP, side="buy", notional_usdc="60", client_order_id="web-1"
    )
    assert (first.status_code, again.status_code) == (201, 200)  # 200: the original order
    assert first.json()["order"]["id"] == again.json()["order"]["id"]
    assert Order.objects.filter(account=account).count() == 1


def test_a_retry_after_the_account_was_frozen_gets_its_order_as_rest_does(markets):
    """The retry is answered before any other check (REST's order): the original order
    (200), while a new order from the frozen account is refused."""
    account = trader("1000")
    client = signed_in(account)
    first = place(
        client, account, symbol=TRUMP, side="buy", notional_usdc="60", client_order_id="web-2"
    )
    account_freeze_set(account=account, frozen=True, actor=StaffFactory(), reason="review")
    again = place(
        client, account, symbol=TRUMP, side="buy", notional_usdc="60", client_order_id="web-2"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["order"]["id"] == first.json()["order"]["id"]
    other = place(
        client, account, symbol=TRUMP, side="buy", notional_usdc="61", client_order_id="web-2"
    )
    assert (other.status_code, other.json()["code"]) == (409, "duplicate_order")
    new = place(
        client, account, symbol=TRUMP, side="buy", notional_usdc="60", client_order_id="web-3"
    )
    assert (new.status_code, new.json()["code"]) == (403, "account_not_active")
    assert Order.objects.filter(account=account).count() == 1


def test_orders_need_the_csrf_token_and_the_owner(markets):
    account = trader("1000")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(account.owner)
    url = reverse("order-place", args=[account.public_id])
    response = strict.post(url, {"symbol": TRUMP, "side": "buy", "notional_usdc": "10"}, **JSON)
    assert response.status_code == 403
    stranger = signed_in(trader("1000"))
    response = place(stranger, account, symbol=TRUMP, side="buy", notional_usdc="10")
    assert response.status_code == 404
    assert stranger.get(reverse("order-place", args=[account.public_id])).status_code == 405
    assert not Order.objects.exists()


def test_a_halted_market_is_refused_with_its_reason(markets):
    account = trader("1000")
    instrument = markets[TRUMP]
    instrument.status = "halted"
    instrument.save(update_fields=["status"])
    response = place(signed_in(account), account, symbol=TRUMP, side="buy", notional_usdc="10")
    assert response.status_code == 409
    assert response.json()["code"] == "market_closed"


# --- Simulations ---------------------------------------------------------------------------


def test_closing_a_position_is_simulated_with_the_service(markets):
    account = borrower()
    position = Position.objects.get(account=account, instrument=markets[TRUMP])
    response = signed_in(account).get(
        reverse("position-close-simulation", args=[account.public_id, position.pk])
    )
    assert response.status_code == 200
    body = response.json()
    quotes_put()
    close = position_close_simulate(account=account, position_id=position.pk)
    assert body["projection"]["after"]["health"] == (
        None if close.projection.after.health is None else str(close.projection.after.health)
    )
    assert body["symbol"] == TRUMP
    assert body["quantity"] == body["held"] == f"{position.quantity:.6f}"
    assert body["fillable"] == {
        "venue": close.venue,
        "quantity": f"{close.fillable.quantity:.6f}",
        "average_price": f"{close.fillable.average_price:.8f}",
        "slippage_bps": str(close.fillable.slippage_bps.quantize(D("0.01"))),
        "proceeds": f"{close.proceeds:.6f}",
        "complete": True,
    }
    # Closing the largest contributor repays the loan here: no borrowing after.
    assert D(body["projection"]["before"]["used_margin"]) > 0
    assert body["projection"]["after"]["used_margin"] == "0.000000"


def test_closing_someone_elses_or_a_perp_position_is_refused(markets):
    account = borrower()
    stranger = trader("10")
    theirs = Position.objects.get(account=account, instrument=markets[TRUMP])
    perp = Position.objects.get(account=account, instrument=markets[BTC])
    client = signed_in(stranger)
    response = client.get(
        reverse("position-close-simulation", args=[stranger.public_id, theirs.pk])
    )
    assert response.status_code == 404
    response = signed_in(account).get(
        reverse("position-close-simulation", args=[account.public_id, perp.pk])
    )
    assert response.status_code == 400
    assert "perpetual" in response.json()["message"]


def test_add_funds_gives_the_exact_deposits_for_1_5_and_1_2(markets):
    account = trader("1000")
    buy(account, TRUMP, "1650")  # health below 1.5, above 1.2
    summary = margin_summary_get(account=account)
    assert D("1.2") < summary.health < D("1.5")
    response = signed_in(account).get(reverse("add-funds-simulation", args=[account.public_id]))
    assert response.status_code == 200
    targets = {target["name"]: target for target in response.json()["targets"]}
    healthy = add_funds_simulate(account=account, target=D("1.5"))
    assert targets["healthy"]["amount"] == f"{healthy.amount:.6f}"
    assert targets["initial"]["amount"] == "0.000000"  # already above 1.2
    # Depositing exactly that brings health to the line.
    credit_cash(account, healthy.amount)
    account.refresh_from_db()
    assert margin_summary_get(account=account).health >= D("1.5")


def test_add_funds_without_borrowing_needs_nothing(markets):
    account = trader("1000")
    body = signed_in(account).get(reverse("add-funds-simulation", args=[account.public_id])).json()
    assert [target["amount"] for target in body["targets"]] == ["0.000000", "0.000000"]


# --- Perp leverage -------------------------------------------------------------------------


def leverage_preview(client, account, leverage, symbol=BTC) -> dict:
    url = reverse("leverage-preview", args=[account.public_id, symbol])
    return client.get(url, {"leverage": leverage}).json()


def leverage_apply(client, account, leverage, symbol=BTC):
    url = reverse("leverage-apply", args=[account.public_id, symbol])
    return client.post(url, {"leverage": leverage}, **JSON)


def test_the_page_has_a_slider_per_perp_market_with_its_levels(markets):
    account = trader("1000")
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    assert 'data-symbol="BTC-PERP"' in html
    assert 'type="range"' in html and 'min="1" max="20"' in html and 'value="5"' in html


def test_the_leverage_preview_shows_the_new_margin_and_liquidation_price(markets):
    account = trader("2000")
    buy(account, BTC, "1000")
    position = Position.objects.get(account=account, instrument=markets[BTC])
    client = signed_in(account)
    body = leverage_preview(client, account, 10)
    target = (position.quantity * position.average_price / 10).quantize(
        D("0.000001"), rounding=ROUND_UP
    )
    assert body["status"] == "APPLIED" and body["has_position"] is True
    assert body["new_isolated_margin"] == f"{target:.6f}"
    assert D(body["margin_change"]) == target - position.isolated_margin < 0
    new_liquidation = perp_math.liquidation_price(
        quantity=position.quantity, entry=position.average_price, margin=target, mmf=D("0.03")
    )
    assert D(body["new_liquidation_price"]) == new_liquidation.quantize(D("0.00000001"))
    assert D(body["new_liquidation_price"]) > D(body["liquidation_price"])  # closer to the mark

    response = leverage_apply(client, account, 10)
    assert response.status_code == 200
    result = response.json()
    assert result["status"] == "APPLIED"
    assert (result["oldLeverage"], result["newLeverage"]) == (5, 10)
    position.refresh_from_db()
    assert position.isolated_margin == target and position.leverage == 10
    snapshot = client.get(reverse("dashboard-snapshot", args=[account.public_id])).json()
    assert snapshot["perps"][0]["leverage"] == 10
    assert snapshot["perps"][0]["liquidation_price"] == body["new_liquidation_price"]


def test_leverage_outside_the_levels_is_rejected_and_explained(markets):
    account = trader("1000")
    client = signed_in(account)
    assert leverage_preview(client, account, 99)["rejectReason"] == "INVALID_LEVERAGE"
    response = leverage_apply(client, account, 99)
    assert response.status_code == 422
    body = response.json()
    assert body["status"] == "REJECTED" and body["rejectReason"] == "INVALID_LEVERAGE"
    assert "1 to 20" in body["message"] and body["explanation"]
    assert leverage_apply(client, account, 0).json()["rejectReason"] == "INVALID_LEVERAGE"
    response = leverage_apply(client, account, 3, symbol="NOPE-PERP")
    assert response.json()["rejectReason"] == "UNKNOWN_MARKET"


def test_a_frozen_account_cannot_change_leverage_from_the_page(markets):
    account = trader("2000")
    buy(account, BTC, "1000")
    account_freeze_set(account=account, frozen=True, actor=StaffFactory(), reason="review")
    client = signed_in(account)
    url = reverse("leverage-preview", args=[account.public_id, BTC])
    preview = client.get(url, {"leverage": 10})  # preview = apply
    assert (preview.status_code, preview.json()["code"]) == (403, "account_not_active")
    response = leverage_apply(client, account, 10)
    assert (response.status_code, response.json()["code"]) == (403, "account_not_active")
    url = reverse("leverage-apply", args=[account.public_id, BTC])
    response = client.post(url, {"leverage": 10}, follow=True)  # a plain form post
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert "Leverage not changed" in response.content.decode()
    position = Position.objects.get(account=account, instrument=markets[BTC])
    assert position.leverage == 5


def test_lowering_leverage_the_account_cannot_fund_is_rejected_before_and_after(markets):
    account = trader("1000", margin=False)
    buy(account, BTC, "4000")  # 800 of isolated margin at 5x; 200 of cash left
    client = signed_in(account)
    preview = leverage_preview(client, account, 1)  # needs 3,200 more
    assert preview["status"] == "REJECTED"
    assert preview["rejectReason"] == "UNDERCOLLATERALIZED"
    assert D(preview["margin_change"]) > D("3000")
    response = leverage_apply(client, account, 1)
    assert response.status_code == 422
    body = response.json()
    assert body["rejectReason"] == "UNDERCOLLATERALIZED" and body["newLeverage"] == 5
    assert body["message"] == preview["message"]  # the preview's verdict is the change's
    assert "nothing was changed" in body["explanation"]
    position = Position.objects.get(account=account, instrument=markets[BTC])
    assert position.leverage == 5
    assert D("799") < position.isolated_margin < D("801")  # 5x of the fill, unchanged


def test_without_a_position_the_leverage_applies_to_the_next_order(markets):
    account = trader("1000")
    client = signed_in(account)
    body = leverage_preview(client, account, 2)
    assert body["has_position"] is False and "next order" in body["message"]
    assert leverage_apply(client, account, 2).status_code == 200
    status, projected = projection(client, account, symbol=BTC, side="buy", notional="100")
    assert status == 200 and projected["leverage"] == 2
