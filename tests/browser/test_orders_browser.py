"""The orders and positions pages in a real browser (issue 18): a resting limit order is
shown among the open orders and cancelled from the page; half a position is closed from
the positions page with the Close… panel and its simulation.

Headless Chromium (Debian's) through Playwright against uvicorn and the margin engine
on this test's committed data (tests/browser/conftest.py).
"""

from decimal import ROUND_DOWN, Decimal

import pytest

from tests.conftest import credit_cash
from tests.factories import DEFAULT_PASSWORD, UserFactory, open_account
from tests.trading.conftest import binary_create
from tests.trading.quoting import put_quote
from trading.models import Order, Position
from trading.services.execute import order_execute
from trading.services.orders import order_place

pytestmark = pytest.mark.browser

EMAIL = "orders@example.test"


def quote(bid: str = "0.60", ask: str = "0.61") -> None:
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRUMP-WIN@{venue}", bid=bid, ask=ask)


@pytest.fixture
def trader(transactional_db):
    """1,000 USDC, TRUMP-WIN quoted 0.60 / 0.61."""
    user = UserFactory(email=EMAIL)
    account = open_account(owner=user)
    credit_cash(account, "1000")
    binary_create("TRUMP-WIN")
    quote()
    return account


def log_in(page, portal: str) -> None:
    page.goto(f"{portal}/login/")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{portal}/dashboard/")


def test_a_resting_limit_order_is_shown_and_cancelled_from_the_orders_page(portal, page, trader):
    order = order_place(
        account=trader, symbol="TRUMP-WIN", side="buy", quantity=Decimal("25"), price="0.42"
    )
    assert order.status == Order.Status.OPEN
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    log_in(page, portal)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Orders").click()
    page.wait_for_url(f"{portal}/orders/")
    row = page.locator(f"#open-order-rows tr[data-order-id={order.public_id}]")
    assert row.locator("[data-field=price]").inner_text() == "42¢"
    assert row.locator("[data-field=quantity]").inner_text() == "25"
    assert row.locator("[data-field=status]").get_attribute("data-value") == "open"

    questions: list[str] = []

    def answer(dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    row.get_by_role("button", name=f"Cancel order {order.public_id}").click()
    page.wait_for_selector(".message--success")
    assert questions == [f"Cancel order {order.public_id}: buy 25 TRUMP-WIN at 42¢?"]
    assert f"Order {order.public_id} cancelled" in page.locator(".messages").inner_text()
    assert page.locator(f"#open-order-rows tr[data-order-id={order.public_id}]").count() == 0
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    # It is in the history now, marked cancelled.
    page.get_by_role("link", name="Order history").click()
    history = page.locator(f"#order-history-rows tr[data-order-id={order.public_id}]")
    assert history.locator("[data-field=status]").inner_text() == "Cancelled"
    assert errors == []


def test_closing_half_a_position_from_the_positions_page(portal, page, trader):
    order_execute(account=trader, symbol="TRUMP-WIN", side="buy", notional_usdc=Decimal("300"))
    log_in(page, portal)
    page.goto(f"{portal}/positions/")
    row = page.locator("#binary-position-rows tr[data-symbol=TRUMP-WIN]")
    before = Decimal(row.locator("[data-field=quantity]").get_attribute("data-value"))
    half = (before / 2).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
    assert row.locator("[data-field=mark_price]").inner_text().endswith("¢")

    row.locator("[data-action=close-position]").click()
    panel = page.locator("form.close-panel")
    panel.get_by_label("Reduce by %").check()
    panel.get_by_role("button", name="50 %").click()
    page.wait_for_selector(f"form.close-panel .close-simulation[data-quantity='{half:.6f}']")
    assert panel.locator("[data-field=close_health_after]").inner_text()
    assert panel.locator("[data-field=close_fillable]").inner_text().startswith("Fillable now:")

    quote()  # a fresh price for the venue to fill on
    panel.get_by_role("button", name="Confirm close").click()
    page.wait_for_function(
        "q => document.querySelector('#binary-position-rows tr[data-symbol=TRUMP-WIN] "
        "[data-field=quantity]').dataset.value === q",
        arg=f"{before - half:.6f}",
    )
    result = page.locator("#binary-positions [data-field=close_result]")
    assert result.get_attribute("data-order-id")
    assert result.inner_text().startswith("Sold ")
    assert page.locator("form.close-panel").count() == 0  # the position changed
    assert Position.objects.get(account=trader).quantity == before - half


def test_the_positions_page_follows_prices_and_trades_without_a_reload(portal, page, trader):
    order_execute(account=trader, symbol="TRUMP-WIN", side="buy", notional_usdc=Decimal("300"))
    log_in(page, portal)
    page.goto(f"{portal}/positions/")
    page.wait_for_selector("#live-status[data-socket=open]")
    assert page.locator("#live-status").inner_text().strip() == "Live"
    page.evaluate("window.__sameDocument = true")
    row = "#binary-position-rows tr[data-symbol=TRUMP-WIN]"
    value = page.get_attribute(f"{row} [data-field=notional]", "data-value")
    grand = page.get_attribute("#position-grand-totals [data-field=grand_pnl]", "data-value")

    quote("0.70", "0.71")  # TRUMP-WIN rises: the engine pushes, the page re-reads itself
    page.wait_for_function(
        "([row, v]) => document.querySelector(row + ' [data-field=notional]').dataset.value !== v",
        arg=[row, value],
    )
    assert Decimal(page.get_attribute(f"{row} [data-field=notional]", "data-value")) > Decimal(
        value
    )
    assert Decimal(
        page.get_attribute("#position-grand-totals [data-field=grand_pnl]", "data-value")
    ) > Decimal(grand)

    held = page.get_attribute(f"{row} [data-field=quantity]", "data-value")
    order_execute(account=trader, symbol="TRUMP-WIN", side="buy", notional_usdc=Decimal("100"))
    page.wait_for_function(
        "([row, q]) => document.querySelector(row + ' [data-field=quantity]').dataset.value !== q",
        arg=[row, held],
    )
    shown = Decimal(page.get_attribute(f"{row} [data-field=quantity]", "data-value"))
    assert shown == Position.objects.get(account=trader).quantity
    assert page.evaluate("window.__sameDocument") is True  # updated in place, no reload
