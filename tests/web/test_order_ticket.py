"""The dashboard's order ticket: contract search, live quotes and depth, limit / time in
force / take-profit / stop-loss / leverage through the one order path, the projection
equal to what execution books, the confirmation above the ops-set size (server-side
too), and bad input answered with sentences."""

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Account
from tests.accounts.test_admin import login_ops
from tests.trading.quoting import put_quote
from tests.web.dashboard_fixtures import (
    BTC,
    FED,
    TRUMP,
    buy,
    projection,
    quotes_put,
    signed_in,
    ticket_post,
    trader,
)
from trading.models import FeePolicy, Order, RiskPolicy
from trading.selectors import margin_summary_get
from trading.web import ticket

pytestmark = pytest.mark.django_db

D = Decimal


def post_as(account: Account, **data):
    """POST the order ticket as the account's owner."""
    return ticket_post(signed_in(account), account, **data)


def in_contracts(
    symbol: str, quantity: str, price: str | None = None, *, order_type: str = "limit", **extra
) -> dict[str, str]:
    """The ticket's fields for a buy sized in contracts (a limit order at `price` ¢ unless
    told; no price: none sent); `extra` adds or overrides fields."""
    fields = {"symbol": symbol, "side": "buy", "order_type": order_type, "size_mode": "quantity"}
    fields["quantity"] = quantity
    if price is not None:
        fields["price"] = price
    return fields | extra


def commission(bps: str) -> None:
    FeePolicy.objects.update_or_create(pk=1, defaults={"broker_commission_bps": D(bps)})


# --- The page ----------------------------------------------------------------------------


def test_the_ticket_is_at_the_top_beside_the_gauge(markets):
    account = trader("1000")
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    top = html.index('class="dash-top dash-top--ticket"')
    assert top < html.index('id="margin-health"') < html.index('id="order-entry"')
    assert html.index('id="order-entry"') < html.index('id="position-breakdown"')
    assert "js/order-ticket.js" in html and "css/order-ticket.css" in html
    # Outcome, order type, time in force, take-profit / stop-loss, size mode, leverage.
    for name in (
        "outcome",
        "order_type",
        "time_in_force",
        "take_profit",
        "stop_loss",
        "size_mode",
        "quantity",
        "notional_usdc",
        "price",
        "leverage",
    ):
        assert f'name="{name}"' in html, name
    assert 'id="ticket-toggle"' in html and 'id="ticket-confirm"' in html
    # The script-less confirmation box names the size: 10% of 1,000.00 USDC.
    assert "orders above 100.00 USDC, 10% of Adjusted Equity" in html


def test_a_non_custodial_account_has_no_ticket(markets):
    from tests.factories import open_account

    account = open_account(kind=Account.Kind.NON_CUSTODIAL)
    html = signed_in(account).get(reverse("dashboard")).content.decode()
    assert 'id="order-entry"' not in html and "order-ticket.js" not in html


# --- Search, quotes, depth ---------------------------------------------------------------------


def test_the_contract_search_filters_markets_with_live_bid_and_ask(markets):
    account = trader("1000")
    client = signed_in(account)
    url = reverse("ticket-markets", args=[account.public_id])
    everything = client.get(url).json()["markets"]
    assert [row["symbol"] for row in everything] == [BTC, FED, TRUMP]
    rows = client.get(url, {"q": "fed"}).json()["markets"]
    assert [row["symbol"] for row in rows] == [FED]
    quotes = rows[0]["quotes"]
    assert quotes["yes"] == {"bid": "0.29000000", "ask": "0.30000000"}
    assert quotes["no"] == {"bid": "0.70000000", "ask": "0.71000000"}  # 1 − ask, 1 − bid
    perp = client.get(url, {"q": "perp"}).json()["markets"][0]
    assert perp["quotes"]["perp"] == {"bid": "50000.00000000", "ask": "50001.00000000"}
    assert (perp["leverage"], perp["max_leverage"]) == (5, 20)
    assert client.get(url, {"q": "nothing like it"}).json()["markets"] == []


def test_a_stale_quote_is_no_live_price(markets):
    account = trader("1000")
    put_quote(f"{FED}@kalshi", bid="0.29", ask="0.30", age=120)
    rows = (
        signed_in(account)
        .get(reverse("ticket-markets", args=[account.public_id]), {"q": FED})
        .json()["markets"]
    )
    assert rows[0]["quotes"]["yes"] == {"bid": None, "ask": None}


def test_the_depth_is_every_venues_book_merged_and_cumulative(markets):
    account = trader("1000")
    client = signed_in(account)
    body = client.get(reverse("ticket-book", args=[account.public_id]), {"symbol": TRUMP}).json()
    assert body["label"] == "TRUMP-WIN YES" and sorted(body["venues"]) == ["kalshi", "polymarket"]
    assert (body["bid"], body["ask"]) == ("0.60000000", "0.60000000")
    asks = body["asks"]
    assert [a["price"] for a in asks] == ["0.60000000", "0.61000000", "0.62000000", "0.63000000"]
    assert asks[1]["size"] == "2000000.000000"  # both venues quote 0.61
    assert [D(a["cumulative"]) for a in asks] == [D(1e6), D(3e6), D(5e6), D(6e6)]
    no = client.get(reverse("ticket-book", args=[account.public_id]), {"symbol": f"{FED}:NO"})
    assert no.json()["ask"] == "0.71000000"
    missing = client.get(reverse("ticket-book", args=[account.public_id]), {"symbol": "NOPE"})
    assert missing.status_code == 404 and missing.json()["message"]


def test_the_ticket_endpoints_are_the_owners(markets):
    account = trader("1000")
    stranger = signed_in(trader("1000"))
    for name in ("ticket-markets", "ticket-book", "trade-projection"):
        response = stranger.get(reverse(name, args=[account.public_id]), {"symbol": TRUMP})
        assert response.status_code == 404, name


# --- Limit, time in force, take-profit / stop-loss, leverage ------------------------------------


def test_a_limit_order_rests_and_says_so_with_a_link(markets):
    account = trader("1000")
    response = post_as(account, **in_contracts(TRUMP, "100", "55", time_in_force="gtc"))
    assert response.status_code == 201
    body = response.json()
    order = Order.objects.get(account=account)
    assert (order.order_type, order.time_in_force, order.status) == ("limit", "GTC", "open")
    assert order.limit_price == D("0.55") and order.quantity == D("100")
    assert body["message"] == (
        "Your limit order to buy 100 TRUMP-WIN YES at 55¢ rests on Kalshi (good till cancelled)."
    )
    assert body["url"] == reverse("order_detail", args=[order.public_id])


def test_an_ioc_limit_that_crosses_fills_at_the_book(markets):
    account = trader("1000")
    response = post_as(account, **in_contracts(FED, "100", "72", outcome="no", time_in_force="ioc"))
    assert response.status_code == 201
    order = Order.objects.get(account=account)
    assert order.status == "filled" and order.outcome == "no"
    assert response.json()["message"] == (
        "Bought 100 FED-CUT NO at 71¢ on Kalshi · 71.00 USDC, fees 0.00 USDC."
    )


def test_fill_or_kill_larger_than_the_book_is_rejected_in_words(markets):
    account = trader("100000")
    put_quote(f"{FED}@kalshi", bid="0.29", ask="0.30", size="100")
    response = post_as(
        account, **in_contracts(FED, "500", "35", time_in_force="fok", confirmed="1")
    )
    assert response.status_code == 201
    assert Order.objects.get(account=account).status == "rejected"
    assert response.json()["message"] == (
        "Nothing filled: the book could not fill all 500 FED-CUT YES at once, so the "
        "fill-or-kill order was rejected."
    )


def test_take_profit_and_stop_loss_go_on_the_order_in_cents(markets):
    account = trader("1000")
    response = post_as(account, **in_contracts(TRUMP, "50", "55", take_profit="70", stop_loss="45"))
    assert response.status_code == 201
    order = Order.objects.get(account=account)
    assert (order.take_profit, order.stop_loss) == (D("0.70"), D("0.45"))


def test_a_take_profit_below_the_price_is_refused_in_words(markets):
    account = trader("1000")
    response = post_as(account, **in_contracts(TRUMP, "50", "55", take_profit="50"))
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("The take-profit must be above the price")
    assert "take_profit" not in message
    assert not Order.objects.exists()


def test_a_perp_limit_order_carries_its_leverage(markets):
    account = trader("5000")
    response = post_as(
        account,
        **in_contracts(BTC, "0.01", "50001", leverage="2", time_in_force="ioc", confirmed="1"),
    )
    assert response.status_code == 201, response.json()
    order = Order.objects.get(account=account)
    assert order.leverage == 2 and order.status == "filled"
    assert response.json()["message"].startswith("Bought 0.01 BTC-PERP at 50,001.00 on Leviathan")


def test_a_market_order_by_notional_keeps_the_leverage_in_force(markets):
    account = trader("5000")
    response = post_as(account, symbol=BTC, side="buy", notional_usdc="100", leverage="3")
    assert response.status_code == 400
    assert "leverage in force (5x)" in response.json()["message"]
    ok = post_as(account, symbol=BTC, side="buy", notional_usdc="100", leverage="5")
    assert ok.status_code == 201


def test_a_market_order_in_contracts_goes_through_order_place(markets):
    account = trader("1000")
    response = post_as(
        account, **in_contracts(TRUMP, "50", order_type="market", time_in_force="ioc")
    )
    assert response.status_code == 201
    order = Order.objects.get(account=account)
    assert (order.order_type, order.quantity, order.status) == ("market", D("50"), "filled")


# --- The projection equals execution ---------------------------------------------------------


def test_a_market_projection_equals_the_booked_order(markets):
    commission("100")
    account = trader("5000")
    client = signed_in(account)
    status, projected = projection(client, account, symbol=TRUMP, side="buy", notional_usdc="400")
    assert status == 200 and projected["path"] == "execute"
    response = ticket_post(
        client, account, symbol=TRUMP, side="buy", notional_usdc="400", confirmed="1"
    )
    order = Order.objects.get(account=account)
    assert order.status == "filled"
    assert projected["fees"] == f"{order.fees:.6f}"
    assert projected["quantity"] == f"{order.filled_quantity:.6f}"
    assert projected["average_price"] == f"{order.average_fill_price:.8f}"
    assert projected["venue"] == order.venue.code
    assert response.json()["message"].endswith(f"fees {order.fees:,.2f} USDC.")


def test_a_limit_projection_across_levels_equals_the_booked_order(markets):
    commission("100")
    account = trader("5000")
    put_quote(f"{FED}@kalshi", bid="0.29", ask="0.30", size="100")
    client = signed_in(account)
    fields = in_contracts(FED, "250", "33", time_in_force="ioc")
    status, projected = projection(client, account, **fields)
    assert status == 200 and projected["path"] == "order"
    assert projected["quantity"] == "250.000000"
    assert projected["fill_text"].startswith("250 would fill now at about")
    assert D(projected["slippage_bps"]) > 0
    ticket_post(client, account, confirmed="1", **fields)
    order = Order.objects.get(account=account)
    assert order.status == "filled"
    assert projected["fees"] == f"{order.fees:.6f}" and order.fees > 0
    assert projected["average_price"] == f"{order.average_fill_price:.8f}"


def test_a_resting_limit_projection_says_it_rests(markets):
    account = trader("1000")
    status, projected = projection(signed_in(account), account, **in_contracts(TRUMP, "100", "50"))
    assert status == 200
    assert projected["quantity"] == "0.000000" and projected["resting"] == "100.000000"
    assert projected["fill_text"].startswith("Nothing crosses now: all 100 would rest at 50¢")
    assert projected["projection"]["zone"] == "ok"
    assert projected["max_size"]["at_initial"] is not None
    assert projected["max_size"]["at_book_depth"] is not None


def test_a_limit_refused_for_margin_is_projected_with_the_orders_words(markets):
    account = trader("1000", margin=False)
    client = signed_in(account)
    fields = in_contracts(TRUMP, "5000", "55")
    status, projected = projection(client, account, **fields)
    assert status == 200
    assert projected["projection"]["is_valid_trade"] is False
    response = ticket_post(client, account, confirmed="1", **fields)
    assert response.status_code == 422
    assert projected["projection"]["refusal"] == response.json()["message"]


def test_a_binary_sale_reduces_risk(markets):
    account = trader("1000")
    buy(account, TRUMP, "60")
    status, projected = projection(
        signed_in(account),
        account,
        **in_contracts(TRUMP, "50", "58", side="sell", time_in_force="ioc"),
    )
    assert status == 200
    assert projected["projection"] is None and projected["reduces_risk"] is True


# --- The largest size: what the order path accepts, for sales and perps too -------------------


def _max_of(client, account, **fields) -> dict:
    status, projected = projection(client, account, **fields)
    assert status == 200, projected
    return projected["max_size"]


def test_a_sale_by_notional_projects_its_max_in_usdc_and_execute_accepts_it(markets):
    account = trader("1000")
    buy(account, TRUMP, "60")  # 100 contracts at 0.60
    client = signed_in(account)
    sale = {"symbol": TRUMP, "side": "sell", "notional_usdc": "10"}
    most = _max_of(client, account, **sale)
    assert most["unit"] == "usdc" and most["note"].startswith("A sale only reduces risk")
    assert most["at_initial"] == "60.000000" == most["at_book_depth"]  # 100 at the 0.60 bid
    status, at = projection(client, account, **(sale | {"notional_usdc": "60.00"}))
    assert status == 200 and at["projection"]["is_valid_trade"] is True
    status, over = projection(client, account, **(sale | {"notional_usdc": "60.01"}))
    assert status == 400 and over["message"].startswith("Cannot sell")


@pytest.mark.parametrize("margin", [True, False])
def test_a_binary_buy_in_contracts_projects_contracts_and_a_step_more_is_refused(markets, margin):
    """The max of a limit buy sized in contracts is in contracts at its price (not USDC),
    and it is exactly the largest the order's own check accepts."""
    account = trader("1000", margin=margin)
    client = signed_in(account)
    order = in_contracts(TRUMP, "10", "50", time_in_force="gtc")  # rests below the 0.60 ask
    most = _max_of(client, account, **order)
    assert most["unit"] == "contracts" and most["note"].startswith("The most contracts you")
    top = D(most["at_initial"])
    assert most["at_book_depth"] == "0.000000"  # nothing is offered at 50¢ or better
    if not margin:
        assert top == D("2000")  # 1,000 of cash at 50¢
    else:
        assert top > D("2000")  # it may borrow up to the initial requirement
    status, at = projection(client, account, **(order | {"quantity": str(top)}))
    assert status == 200 and at["projection"]["is_valid_trade"] is True
    step = D("0.000001")
    status, over = projection(client, account, **(order | {"quantity": str(top + step)}))
    assert status == 200 and over["projection"]["is_valid_trade"] is False
    crossing = in_contracts(TRUMP, "10", "70", time_in_force="gtc")  # the asks up to 70¢
    offered = D(_max_of(client, account, **crossing)["at_book_depth"])
    assert D(0) < offered <= D(_max_of(client, account, **crossing)["at_initial"])


def test_a_sale_in_contracts_projects_the_position_held(markets):
    account = trader("1000")
    buy(account, TRUMP, "60")
    client = signed_in(account)
    sale = in_contracts(TRUMP, "10", "58", side="sell", time_in_force="gtc")
    most = _max_of(client, account, **sale)
    assert most["unit"] == "contracts"
    assert most["at_initial"] == "100.000000" == most["at_book_depth"]
    status, at = projection(client, account, **(sale | {"quantity": "100"}))
    assert status == 200 and at["reduces_risk"] is True
    status, over = projection(client, account, **(sale | {"quantity": "100.000001"}))
    assert status == 400 and over["message"].startswith("Cannot sell")


def test_fillable_now_counts_what_the_orders_own_price_rule_takes_and_says_which(markets):
    """A limit order's "fillable now" is the book at or better than its limit (not the
    slippage limit it does not use); a market order in contracts takes any price; an
    order by notional stays within the slippage limit. The label says which."""
    account = trader("1000")
    buy(account, TRUMP, "60")  # 100 contracts; the book bids 0.60
    client = signed_in(account)
    above = _max_of(client, account, **in_contracts(TRUMP, "10", "65", side="sell"))
    assert above["at_initial"] == "100.000000"
    assert above["at_book_depth"] == "0.000000"  # nobody bids 65¢ or more
    assert above["depth"] == "at or better than your limit price"
    market = _max_of(client, account, **in_contracts(TRUMP, "10", side="sell", order_type="market"))
    assert market["at_book_depth"] == "100.000000"
    assert market["depth"] == "at book depth (a market order has no price limit)"
    by_notional = _max_of(client, account, symbol=TRUMP, side="sell", notional_usdc="10")
    assert by_notional["depth"] == "at book depth, within your slippage limit"


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_a_perp_by_notional_projects_the_margin_limit_and_a_cent_more_is_refused(markets, side):
    account = trader("1000")
    client = signed_in(account)
    order = {"symbol": BTC, "side": side, "notional_usdc": "100"}
    most = _max_of(client, account, **order)
    assert most["unit"] == "usdc" and most["note"].startswith("The most the isolated margin")
    top = D(most["at_initial"])
    # 1000 of cash at the 5x in force (no commission in these markets; the walk rounds
    # the contracts down to the micro-contract, so a few cents over 5,000 still fit).
    assert D("4900") < top <= D("5000.05")
    status, at = projection(client, account, **(order | {"notional_usdc": str(top)}))
    assert status == 200 and at["projection"]["is_valid_trade"] is True
    status, over = projection(client, account, **(order | {"notional_usdc": str(top + D("0.01"))}))
    assert status == 200 and over["projection"]["is_valid_trade"] is False
    assert over["projection"]["refusal"]


def test_a_perp_in_contracts_projects_contracts_at_its_leverage_and_limit(markets):
    account = trader("1000")
    client = signed_in(account)
    order = in_contracts(BTC, "0.01", "50001", leverage="2", time_in_force="gtc")
    most = _max_of(client, account, **order)
    # 1000 of cash at 2x and 50,001 a contract: 0.0399992, so 0.039999.
    assert most["unit"] == "contracts" and most["at_initial"] == "0.039999"
    status, at = projection(client, account, **(order | {"quantity": "0.039999"}))
    assert status == 200 and at["projection"]["is_valid_trade"] is True
    status, over = projection(client, account, **(order | {"quantity": "0.04"}))
    assert status == 200 and over["projection"]["is_valid_trade"] is False
    # At 4x twice as many.
    assert _max_of(client, account, **(order | {"leverage": "4"}))["at_initial"] == "0.079998"


# --- Confirmation above the ops-set size ----------------------------------------------------


def test_a_large_order_without_confirmation_is_refused_on_the_server(markets):
    account = trader("1000")  # 10% of Adjusted Equity: 100.00 USDC
    client = signed_in(account)
    _, projected = projection(client, account, symbol=TRUMP, side="buy", notional_usdc="150")
    assert projected["confirm"]["required"] is True
    assert projected["confirm"]["threshold"] == "100.000000"
    response = ticket_post(client, account, symbol=TRUMP, side="buy", notional_usdc="150")
    assert response.status_code == 409
    body = response.json()
    assert body["confirm_required"] is True
    assert body["message"] == (
        "Not placed: this order is about 150.00 USDC, above 10% of your Adjusted Equity "
        "(100.00 USDC). Confirm it to place it."
    )
    assert not Order.objects.exists()
    confirmed = ticket_post(
        client, account, symbol=TRUMP, side="buy", notional_usdc="150", confirmed="1"
    )
    assert confirmed.status_code == 201


def test_a_small_order_needs_no_confirmation(markets):
    account = trader("1000")
    client = signed_in(account)
    _, projected = projection(client, account, symbol=TRUMP, side="buy", notional_usdc="90")
    assert projected["confirm"]["required"] is False
    assert (
        ticket_post(client, account, symbol=TRUMP, side="buy", notional_usdc="90").status_code
        == 201
    )


def test_a_limit_order_is_sized_by_its_price_for_the_confirmation(markets):
    account = trader("1000")
    client = signed_in(account)
    assert ticket_post(client, account, **in_contracts(TRUMP, "150", "50")).status_code == 201
    refused = ticket_post(client, account, **in_contracts(TRUMP, "250", "50"))  # 125.00 USDC
    assert refused.status_code == 409 and "about 125.00 USDC" in refused.json()["message"]


def test_a_scriptless_form_cannot_skip_the_confirmation(markets):
    account = trader("1000")
    client = signed_in(account)
    response = client.post(
        reverse("order-place", args=[account.public_id]),
        {"symbol": TRUMP, "side": "buy", "notional_usdc": "150"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert "Not placed: this order is about 150.00 USDC" in response.content.decode()
    assert not Order.objects.exists()
    client.post(
        reverse("order-place", args=[account.public_id]),
        {"symbol": TRUMP, "side": "buy", "notional_usdc": "150", "confirmed": "on"},
    )
    assert Order.objects.filter(account=account, status="filled").count() == 1


def test_ops_set_the_confirmation_size(markets):
    policy = RiskPolicy.objects.get_or_create(pk=1)[0]
    policy.ticket_confirm_fraction = D("0.5")
    policy.save()
    account = trader("1000")
    confirm = ticket.confirm_get(account=account)
    equity = margin_summary_get(account=account).adjusted_equity
    assert confirm.threshold == (equity / 2).quantize(D("0.01"))
    assert post_as(account, symbol=TRUMP, side="buy", notional_usdc="400").status_code == 201


def test_ops_propose_the_confirmation_fraction(markets, client, staff):
    """The admin shows it (read-only, "10%"); ops change it at /ops/risk-policy/ (four eyes)."""
    login_ops(client, staff)
    RiskPolicy.objects.get_or_create(pk=1)
    page = client.get(reverse("admin:trading_riskpolicy_change", args=[1]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Order ticket" in html and "10%" in html and "Propose a change" in html
    ops = client.get(reverse("ops_risk_policy")).content.decode()
    assert 'name="ticket_confirm_fraction"' in ops


# --- Bad input: sentences, never a 500 --------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (in_contracts(TRUMP, "10"), "A limit order needs a price."),
        (in_contracts(TRUMP, "abc", "50"), "Enter a number"),
        (
            {
                "symbol": TRUMP,
                "side": "buy",
                "order_type": "limit",
                "notional_usdc": "10",
                "price": "50",
            },
            "A limit order is sized in contracts.",
        ),
        (
            {"symbol": TRUMP, "side": "buy", "size_mode": "quantity"},
            "Enter the number of contracts.",
        ),
        (
            {"symbol": TRUMP, "side": "buy", "notional_usdc": "10", "take_profit": "70"},
            "Take-profit and stop-loss need a limit order.",
        ),
        (
            {"symbol": TRUMP, "side": "buy", "notional_usdc": "10", "leverage": "3"},
            "Leverage applies to perpetuals only.",
        ),
        (
            {"symbol": "NOPE", "side": "buy", "notional_usdc": "10"},
            "There is no market called NOPE.",
        ),
        (in_contracts(TRUMP, "10", "150"), "strictly between 0 and 1"),
        (in_contracts(TRUMP, "10", "45.5"), "tick grid"),
        ({"symbol": TRUMP, "side": "sell", "notional_usdc": "10"}, "Cannot sell"),
    ],
)
def test_bad_ticket_input_is_a_sentence(markets, data, words):
    account = trader("1000")
    client = signed_in(account)
    response = ticket_post(client, account, confirmed="1", **data)
    assert response.status_code in (400, 404, 409, 422), response.content
    body = response.json()
    assert words in body["message"]
    assert "_" not in body["message"].replace("TRUMP-WIN", "")  # no field names, no codes
    status, projected = projection(client, account, **data)
    assert status in (400, 404, 409, 422) and projected["message"]
    assert not Order.objects.exists()


def test_a_sale_beyond_the_position_is_refused_in_words(markets):
    account = trader("1000")
    quotes_put()
    response = post_as(account, **in_contracts(TRUMP, "10", "55", side="sell"))
    assert response.status_code == 400
    assert response.json()["message"].startswith("Cannot sell")
