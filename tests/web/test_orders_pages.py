"""The orders page (open orders with cancel / modify, history with filters, fills), one
order's page, the positions page, and the CSV export of every table: built through the
real services, driven through the pages (POST + CSRF where they write)."""

import csv
import io
import json
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Account
from tests.trading.quoting import put_quote
from tests.web.dashboard_fixtures import (
    BTC,
    FED,
    TRUMP,
    borrower,
    buy,
    quotes_put,
    signed_in,
    trader,
)
from trading.models import Order
from trading.selectors import position_book_get
from trading.services.orders import order_place

pytestmark = pytest.mark.django_db
D = Decimal


def rest(account: Account, *, quantity="10", price="0.30", symbol=TRUMP, side="buy") -> Order:
    """A GTC limit order far from the book (TRUMP-WIN asks 0.60): it rests."""
    quotes_put()
    order = order_place(
        account=account, symbol=symbol, side=side, quantity=D(quantity), price=D(price)
    )
    assert order.status == Order.Status.OPEN
    return order


def with_triggers(account: Account, *, price: str, take_profit: str, stop_loss: str) -> Order:
    """A buy of 10 TRUMP-WIN at `price` (it fills at 0.61 and above, else rests) with a
    take-profit and a stop-loss."""
    quotes_put()
    return order_place(
        account=account,
        symbol=TRUMP,
        side="buy",
        quantity=D("10"),
        price=D(price),
        take_profit=D(take_profit),
        stop_loss=D(stop_loss),
    )


def html(response) -> str:
    return response.content.decode()


def csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def row_ids(page: str, attribute: str = "data-order-id") -> list[str]:
    return re.findall(rf'<tr {attribute}="([^"]+)"', page)


# --- Open orders: listing, cancel, modify -------------------------------------------------


def test_open_orders_lists_the_resting_order_with_cents_and_actions(markets):
    account = trader("1000")
    order = rest(account, quantity="12", price="0.31")
    page = html(signed_in(account).get(reverse("order_list")))
    assert row_ids(page) == [order.public_id]
    row = page.split(f'data-order-id="{order.public_id}"', 1)[1].split("</tr>", 1)[0]
    assert "31¢" in row and ">12<" in row
    assert reverse("order_cancel", args=[order.public_id]) in row
    assert 'data-confirm="Cancel order' in row
    assert reverse("order_detail", args=[order.public_id]) + "#modify" in row


def test_cancel_from_the_page_cancels_and_says_so(markets):
    account = trader("1000")
    order = rest(account)
    client = signed_in(account)
    response = client.post(
        reverse("order_cancel", args=[order.public_id]),
        {"next": reverse("order_list")},
        follow=True,
    )
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    page = html(response)
    assert f"Order {order.public_id} cancelled (buy 10 TRUMP-WIN at 30¢)." in page
    assert row_ids(page.split('id="armed-orders"')[0]) == []  # no longer open


def test_cancel_needs_csrf(markets):
    account = trader("1000")
    order = rest(account)
    client = Client(enforce_csrf_checks=True)
    client.force_login(account.owner)
    response = client.post(reverse("order_cancel", args=[order.public_id]))
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == Order.Status.OPEN


def test_cancelling_twice_is_a_message_not_an_error(markets):
    account = trader("1000")
    order = rest(account)
    client = signed_in(account)
    client.post(reverse("order_cancel", args=[order.public_id]))
    response = client.post(reverse("order_cancel", args=[order.public_id]), follow=True)
    assert response.status_code == 200
    assert "only active orders change" in html(response)


def test_modify_reviews_first_then_changes_price_and_quantity(markets):
    account = trader("1000")
    order = rest(account, quantity="10", price="0.30")
    client = signed_in(account)
    url = reverse("order_modify", args=[order.public_id])
    review = client.post(url, {"price": "32", "quantity": "15"})
    assert review.status_code == 200
    page = html(review)
    assert "Check the change" in page and "30¢ → <strong>32¢</strong>" in page
    assert "10 → <strong>15</strong>" in page
    order.refresh_from_db()
    assert (order.limit_price, order.quantity) == (D("0.30"), D("10"))  # nothing sent yet
    done = client.post(url, {"price": "32", "quantity": "15", "confirm": "yes"}, follow=True)
    order.refresh_from_db()
    assert (order.limit_price, order.quantity, order.status) == (D("0.32"), D("15"), "open")
    assert f"Order {order.public_id} changed: now buy 15 TRUMP-WIN at 32¢." in html(done)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"price": "abc"}, "Enter a number in ASCII digits"),
        ({"price": "120"}, "between 0¢ and 100¢"),
        ({}, "Enter a new price, a new quantity, or both."),
        ({"price": "30.5", "confirm": "yes"}, "tick grid"),
    ],
)
def test_bad_modify_input_is_a_form_message(markets, data, message):
    account = trader("1000")
    order = rest(account)
    response = signed_in(account).post(reverse("order_modify", args=[order.public_id]), data)
    assert response.status_code == 400
    assert message in html(response)
    order.refresh_from_db()
    assert order.limit_price == D("0.30")


def test_modify_refused_by_the_margin_check_is_shown_on_the_form(markets):
    account = trader("100", margin=False)
    order = rest(account, quantity="10", price="0.30")
    response = signed_in(account).post(
        reverse("order_modify", args=[order.public_id]),
        {"quantity": "100000", "confirm": "yes"},
    )
    assert response.status_code == 400
    assert 'role="alert"' in html(response)
    order.refresh_from_db()
    assert order.quantity == D("10")


def test_the_page_echoes_only_its_own_filters(markets):
    mine, theirs = trader("1000"), trader("1000")
    client = signed_in(mine)
    for tab in ("open", "history", "fills"):
        query = {"tab": tab, "account": theirs.public_id, "side": "buy"}
        page = html(client.get(reverse("order_list"), query))
        assert theirs.public_id not in page
    assert "side=buy" in page  # the CSV link keeps the filters


def trigger_remove(client, order, which: str):
    """Press the page's Remove of `order`'s `which` trigger; the page it returns to."""
    return client.post(
        reverse("order_triggers_cancel", args=[order.public_id]),
        {"which": which, "next": reverse("order_list")},
        follow=True,
    )


def test_a_filled_orders_stop_loss_is_removed_from_the_page(markets):
    account = trader("1000")
    order = with_triggers(account, price="0.61", take_profit="0.80", stop_loss="0.40")
    assert order.status == Order.Status.FILLED
    client = signed_in(account)
    armed = html(client.get(reverse("order_list"))).split('id="armed-orders"', 1)[1]
    row = armed.split(f'data-order-id="{order.public_id}"', 1)[1].split("</tr>", 1)[0]
    assert row.count(reverse("order_triggers_cancel", args=[order.public_id])) == 2
    assert 'data-confirm="Remove the stop-loss at 40¢' in row
    response = trigger_remove(client, order, "stop_loss")
    order.refresh_from_db()
    assert (order.take_profit, order.stop_loss) == (D("0.80"), None)
    page = html(response)
    assert f"Order {order.public_id}&#x27;s stop-loss removed: it will not fire." in page
    row = page.split('id="armed-orders"', 1)[1].split("</tr>", 2)[1]
    assert 'data-action="remove-take_profit"' in row
    assert 'data-action="remove-stop_loss"' not in row
    bad = client.post(
        reverse("order_triggers_cancel", args=[order.public_id]), {"which": "x"}, follow=True
    )
    assert bad.status_code == 200 and "which must be take_profit or stop_loss" in html(bad)
    other = signed_in(trader("1000"))
    assert other.post(reverse("order_triggers_cancel", args=[order.public_id])).status_code == 404
    order.refresh_from_db()
    assert order.take_profit == D("0.80")


def test_a_resting_orders_trigger_is_removed_from_the_open_orders_table(markets):
    account = trader("1000")
    order = with_triggers(account, price="0.30", take_profit="0.50", stop_loss="0.20")
    client = signed_in(account)
    page = html(client.get(reverse("order_list"))).split('id="armed-orders"', 1)[0]
    row = page.split(f'data-order-id="{order.public_id}"', 1)[1].split("</tr>", 1)[0]
    assert "TP 50¢" in row and "SL 20¢" in row
    assert 'data-confirm="Remove the take-profit at 50¢' in row
    response = trigger_remove(client, order, "take_profit")
    order.refresh_from_db()
    assert (order.status, order.take_profit, order.stop_loss) == ("open", None, D("0.20"))
    row = html(response).split(f'data-order-id="{order.public_id}"', 1)[1].split("</tr>", 1)[0]
    assert "TP " not in row and "SL 20¢" in row


def test_another_users_order_is_a_404_everywhere(markets):
    mine, theirs = trader("1000"), trader("1000")
    order = rest(theirs)
    client = signed_in(mine)
    assert client.get(reverse("order_detail", args=[order.public_id])).status_code == 404
    assert client.post(reverse("order_cancel", args=[order.public_id])).status_code == 404
    response = client.post(
        reverse("order_modify", args=[order.public_id]), {"price": "31", "confirm": "yes"}
    )
    assert response.status_code == 404
    order.refresh_from_db()
    assert (order.status, order.limit_price) == ("open", D("0.30"))
    assert order.public_id not in html(client.get(reverse("order_list")))


# --- Order detail, history, fills ------------------------------------------------------------


def test_order_detail_shows_the_order_and_its_fills(markets):
    account = trader("1000")
    order = buy(account, TRUMP, "100")
    page = html(signed_in(account).get(reverse("order_detail", args=[order.public_id])))
    assert f"Order {order.public_id}" in page
    fill_ids = row_ids(page, "data-fill-id")
    assert fill_ids and set(fill_ids) == set(order.fills.values_list("public_id", flat=True))
    assert "Filled" in page and 'data-action="cancel-order"' not in page  # filled: no actions


def test_history_filters_by_status_side_contract_and_days(markets):
    account = trader("5000")
    filled = buy(account, TRUMP, "100")
    resting = rest(account, symbol=f"{FED}:NO", price="0.20")
    sold = buy(account, TRUMP, "20", side="sell")
    client = signed_in(account)

    def ids(**query) -> list[str]:
        response = client.get(reverse("order_list"), {"tab": "history", **query})
        assert response.status_code == 200
        return row_ids(html(response))

    assert ids() == [sold.public_id, resting.public_id, filled.public_id]
    assert ids(status="open") == [resting.public_id]
    assert ids(status="active") == [resting.public_id]
    assert ids(side="sell") == [sold.public_id]
    assert ids(symbol=f"{FED}:NO") == [resting.public_id]
    assert ids(symbol=TRUMP, side="buy") == [filled.public_id]
    assert ids(date_from="2000-01-01", date_to="2000-01-02") == []


@pytest.mark.parametrize(
    "query",
    [
        {"status": "bogus"},
        {"side": "up"},
        {"symbol": "NOPE"},
        {"date_from": "yesterday"},
        {"date_from": "2026-02-30"},
        {"date_from": "2026-03-02", "date_to": "2026-03-01"},
        {"page": "x"},
        {"page": "99999999999999999999"},
        {"tab": "nonsense"},
    ],
)
def test_bad_filter_input_is_a_form_message_not_a_500(markets, query):
    account = trader("1000")
    buy(account, TRUMP, "50")
    client = signed_in(account)
    for tab in ("history", "fills"):
        response = client.get(reverse("order_list"), {"tab": tab, **query})
        assert response.status_code == 200
        if set(query) - {"page", "tab"}:
            assert "Some filters were not valid" in html(response)


def test_history_pages_50_at_a_time(markets):
    account = trader("10000")
    orders = [rest(account, quantity="1", price="0.10") for _ in range(51)]
    client = signed_in(account)
    first = html(client.get(reverse("order_list"), {"tab": "history"}))
    assert len(row_ids(first)) == 50 and 'rel="next"' in first
    second = html(client.get(reverse("order_list"), {"tab": "history", "page": "2"}))
    assert row_ids(second) == [orders[0].public_id]


def test_fills_tab_lists_fills_with_fees_and_links(markets):
    account = trader("1000")
    order = buy(account, TRUMP, "100")
    page = html(signed_in(account).get(reverse("order_list"), {"tab": "fills"}))
    assert set(row_ids(page, "data-fill-id")) == set(
        order.fills.values_list("public_id", flat=True)
    )
    assert reverse("order_detail", args=[order.public_id]) in page


# --- CSV exports: the same rows as the tables -------------------------------------------------


def test_orders_csv_equals_the_filtered_history(markets):
    account = trader("5000")
    buy(account, TRUMP, "100")
    rest(account, symbol=f"{FED}:NO", price="0.20")
    buy(account, TRUMP, "20", side="sell")
    client = signed_in(account)
    for query in ({}, {"side": "sell"}, {"symbol": TRUMP}, {"status": "open"}):
        shown = row_ids(html(client.get(reverse("order_list"), {"tab": "history", **query})))
        rows = csv_rows(client.get(reverse("export_csv", args=["orders"]), query))
        assert [row["id"] for row in rows] == shown
    # The values are the API's order object: exact decimal strings.
    rows = csv_rows(client.get(reverse("export_csv", args=["orders"])))
    first = Order.objects.get(public_id=rows[-1]["id"])
    assert rows[-1]["filled_quantity"] == f"{first.filled_quantity:.6f}"
    assert rows[-1]["symbol"] == TRUMP and rows[-1]["status"] == "filled"


def test_fills_csv_equals_the_fills_tab_and_one_orders_fills(markets):
    account = trader("5000")
    first = buy(account, TRUMP, "100")
    buy(account, f"{FED}:NO", "50")
    client = signed_in(account)
    for query in ({}, {"symbol": f"{FED}:NO"}, {"side": "buy"}):
        page = html(client.get(reverse("order_list"), {"tab": "fills", **query}))
        shown = row_ids(page, "data-fill-id")
        rows = csv_rows(client.get(reverse("export_csv", args=["fills"]), query))
        assert [row["id"] for row in rows] == shown
    rows = csv_rows(client.get(reverse("export_csv", args=["fills"]), {"order": first.public_id}))
    assert {row["id"] for row in rows} == set(first.fills.values_list("public_id", flat=True))
    assert {row["order_id"] for row in rows} == {first.public_id}


def test_transactions_csv_equals_the_transactions_page(markets):
    account = trader("1000")
    buy(account, TRUMP, "100")
    client = signed_in(account)
    for query in ({}, {"kind": "trade"}, {"kind": "deposit"}):
        page = html(client.get(reverse("transaction_list"), query))
        journals = re.findall(r'<td class="num">(\d+)</td>\s*</tr>', page)
        rows = csv_rows(client.get(reverse("export_csv", args=["transactions"]), query))
        assert [row["journal_id"] for row in rows] == journals
        if query.get("kind"):
            assert {row["kind"] for row in rows} == {query["kind"]}
    # The balance is the account's cash after each posting, filtered or not.
    every = csv_rows(client.get(reverse("export_csv", args=["transactions"])))
    trades = csv_rows(client.get(reverse("export_csv", args=["transactions"]), {"kind": "trade"}))
    by_journal = {row["journal_id"]: row["balance"] for row in every}
    assert all(by_journal[row["journal_id"]] == row["balance"] for row in trades)
    account.refresh_from_db()
    assert D(every[0]["balance"]) == account.cash_balance


def test_transactions_page_links_to_its_csv_with_the_filters(markets):
    account = trader("1000")
    page = html(signed_in(account).get(reverse("transaction_list"), {"kind": "deposit"}))
    assert reverse("export_csv", args=["transactions"]) + "?kind=deposit" in page


def test_export_with_bad_filters_goes_back_to_the_page_with_a_message(markets):
    account = trader("1000")
    client = signed_in(account)
    response = client.get(reverse("export_csv", args=["orders"]), {"date_from": "soon"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("order_list"))
    page = html(client.get(response["Location"]))
    assert "The filters are not valid" in page and "Some filters were not valid" in page
    assert client.get(reverse("export_csv", args=["secrets"])).status_code == 404


def test_exports_are_of_the_signed_in_users_account_only(markets):
    mine, theirs = trader("1000"), trader("1000")
    buy(theirs, TRUMP, "100")
    client = signed_in(mine)
    for table in ("orders", "fills", "positions"):
        assert csv_rows(client.get(reverse("export_csv", args=[table]))) == []
    assert Client().get(reverse("export_csv", args=["orders"])).status_code == 302  # sign in


# --- Positions page ------------------------------------------------------------------------


def test_positions_page_shows_cost_value_and_signed_pnl_with_totals(markets):
    account = borrower()
    # TRUMP-WIN (bought at about 0.60) is now bid 0.70: a gain; FED-CUT:NO a loss.
    put_quote(f"{TRUMP}@kalshi", bid="0.70", ask="0.71")
    put_quote(f"{TRUMP}@polymarket", bid="0.70", ask="0.71")
    put_quote(f"{FED}@kalshi", bid="0.40", ask="0.41")
    client = signed_in(account)
    page = html(client.get(reverse("position_list")))
    book = position_book_get(account=account)
    for view in book.positions:
        row = page.split(f'data-symbol="{view.symbol}"', 1)[1].split("</tr>", 1)[0]
        assert f'data-value="{view.cost}"' in row or f'data-value="{view.cost:.6f}"' in row
        assert "Close" in row
    binary = [view for view in book.positions if view.kind != "perpetual"]
    trump = next(view for view in binary if view.symbol == TRUMP)
    row = page.split(f'data-symbol="{TRUMP}"', 1)[1].split("</tr>", 1)[0]
    assert re.search(r"\d+¢", row)  # prices in cents
    assert trump.unrealized_pnl > 0 and "pnl--positive" in row and ">+" in row
    fed = next(view for view in binary if view.symbol == f"{FED}:NO")
    row = page.split(f'data-symbol="{FED}:NO"', 1)[1].split("</tr>", 1)[0]
    assert fed.unrealized_pnl < 0 and "pnl--negative" in row and ">-" in row
    total = sum((view.cost for view in binary), D(0))
    totals = page.split('id="binary-position-totals"', 1)[1].split("</tfoot>", 1)[0]
    assert f'data-value="{total:.6f}"' in totals
    assert 'id="close-panel-template"' in page and 'id="positions-config"' in page
    config = json.loads(
        page.split('id="positions-config" type="application/json">', 1)[1].split("<", 1)[0]
    )
    assert config["ws_path"] == f"/ws/dashboard/{account.public_id}/"  # the page is live
    assert BTC in page


def test_positions_csv_equals_the_positions_table(markets):
    account = borrower()
    client = signed_in(account)
    page = html(client.get(reverse("position_list")))
    shown = re.findall(r'data-position-id="\d+" data-symbol="([^"]+)"', page)
    rows = csv_rows(client.get(reverse("export_csv", args=["positions"])))
    assert sorted(row["symbol"] for row in rows) == sorted(shown)
    for row in rows:
        cells = page.split(f'data-symbol="{row["symbol"]}"', 1)[1].split("</tr>", 1)[0]
        assert f'data-field="cost" data-value="{row["cost"]}"' in cells
        assert f'data-field="pnl" data-value="{row["pnl"]}"' in cells


def test_nav_has_orders_and_positions_marked_on_their_pages(markets):
    account = trader("1000")
    client = signed_in(account)
    for name in ("order_list", "position_list"):
        page = html(client.get(reverse(name)))
        assert re.search(rf'href="{reverse(name)}" aria-current="page"', page)
