"""The order ticket in a real browser: search a contract, read its live bid / ask and
depth, place a limit order and see the formatted result with its link; the
confirmation dialog (focus inside, Esc cancels) above the ops-set size; an old
error cleared by a change of contract; the bottom sheet on a phone.

Headless Chromium (Debian's) through Playwright against uvicorn and the margin engine
on this test's committed data (tests/browser/conftest.py). Screenshots land in
test-artifacts/.
"""

import re
from decimal import Decimal

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.conftest import credit_cash
from tests.factories import DEFAULT_PASSWORD, UserFactory, open_account
from tests.trading.conftest import binary_create
from tests.trading.quoting import put_quote
from trading.models import Order
from trading.services.execute import order_execute

pytestmark = pytest.mark.browser

TICKET = "#order-entry"


def quote() -> None:
    """Fresh TRUMP-WIN and FED-CUT books (the venues refuse a stale quote)."""
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRUMP-WIN@{venue}", bid="0.60", ask="0.61")
    put_quote("FED-CUT@kalshi", bid="0.29", ask="0.30")


@pytest.fixture
def bob(transactional_db):
    """A margin account with 10,000 USDC and two open markets."""
    user = UserFactory(email="bob@example.test")
    account = open_account(owner=user, margin_enabled=True, margin_override="granted")
    credit_cash(account, "10000")
    binary_create("TRUMP-WIN")
    binary_create("FED-CUT", "0.01", "kalshi")
    quote()
    return account


def log_in(page, portal: str) -> None:
    page.goto(f"{portal}/login/")
    page.fill("input[name=email]", "bob@example.test")
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{portal}/dashboard/")
    page.wait_for_selector("#live-status[data-socket=open]")


def choose(page, text: str, symbol: str) -> None:
    page.fill("#ticket-search", text)
    page.wait_for_function(
        "s => [...document.querySelectorAll('#order-symbol option')].map(o => o.value)"
        ".join() === s",
        arg=symbol,
    )


def test_a_limit_order_from_the_ticket_shows_its_result_and_link(portal, page, bob):
    log_in(page, portal)
    ticket = page.locator(TICKET)
    # Top right, beside the gauge.
    gauge = page.locator("#margin-health").bounding_box()
    box = ticket.bounding_box()
    assert box["x"] > gauge["x"] + gauge["width"] and box["y"] < gauge["y"] + gauge["height"]

    choose(page, "fed", "FED-CUT")
    # The live bid · ask in cents, YES and NO (its complement), and the depth chart.
    page.wait_for_function(
        "() => document.querySelector('#order-entry [data-field=quote_yes]').textContent"
        " === '29¢ · 30¢'"
    )
    assert ticket.locator("[data-field=quote_no]").inner_text() == "70¢ · 71¢"
    page.wait_for_selector("#ticket-depth path.depth-bids")
    assert ticket.locator("#ticket-depth path.depth-asks").count() == 1
    assert "FED-CUT YES" in page.get_attribute("#ticket-depth", "aria-label")

    ticket.locator("input[name=order_type][value=limit]").check()
    assert page.locator("#order-notional").is_hidden()
    page.fill("#order-quantity", "100")
    page.fill("#order-price", "25")
    assert page.input_value("#order-tif") == "gtc"
    page.wait_for_function(
        "() => document.querySelector('#order-projection [data-field=fill_text]')"
        ".textContent.startsWith('Nothing crosses now: all 100 would rest at 25¢')"
    )
    # Sized in contracts: its largest size in contracts at 25¢, and none offered that low.
    page.wait_for_function(
        "() => document.querySelector('#order-projection [data-field=buying_power]')"
        ".textContent.endsWith(' contracts')"
    )
    assert ticket.locator("[data-field=buying_power_fillable]").inner_text() == "0 contracts"
    depth = ticket.locator("[data-field=buying_power_fillable_depth]").inner_text()
    assert depth == "at or better than your limit price"  # not the slippage limit it lacks
    quote()
    page.click("#order-submit")
    message = ticket.locator("#order-message")
    message.locator("a").wait_for()
    order = Order.objects.get(account=bob)
    assert order.status == "open" and order.limit_price == Decimal("0.25")
    assert message.inner_text().startswith(
        "Your limit order to buy 100 FED-CUT YES at 25¢ rests on Kalshi (good till cancelled)."
    )
    link = message.locator("a")
    assert link.inner_text() == "View order"
    assert link.get_attribute("href") == f"/orders/{order.public_id}/"
    ARTIFACTS.mkdir(exist_ok=True)
    ticket.screenshot(path=str(ARTIFACTS / "order-ticket-result.png"))

    # The whole flow: it is among the open orders, and is cancelled from its page.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Orders").click()
    row = page.locator(f"#open-order-rows tr[data-order-id={order.public_id}]")
    assert row.locator("[data-field=price]").inner_text() == "25¢"
    row.locator("th a").click()
    page.wait_for_url(f"{portal}/orders/{order.public_id}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-action=cancel-order]")
    page.wait_for_selector(".message--success")
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED


def test_a_large_order_asks_for_confirmation_and_esc_cancels(portal, page, bob):
    log_in(page, portal)
    ticket = page.locator(TICKET)
    choose(page, "trump", "TRUMP-WIN")
    page.fill("#order-notional", "1500")  # above 10% of 10,000
    page.wait_for_function(
        "() => document.querySelector('#order-projection [data-field=confirm_note]')"
        ".textContent.includes('you will be asked to confirm')"
    )
    page.click("#order-submit")
    dialog = page.locator("#ticket-confirm")
    dialog.wait_for(state="visible")
    assert page.evaluate(
        "document.getElementById('ticket-confirm').contains(document.activeElement)"
    )
    summary = dialog.locator("[data-field=confirm_summary]").inner_text()
    assert summary.startswith("Buy 1,500.00 USDC of TRUMP-WIN YES, at market")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "order-ticket-confirm.png"))
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    # The dialog's close event comes after it is hidden.
    page.wait_for_function(
        "() => document.querySelector('#order-message').textContent"
        " === 'Not placed: you cancelled the confirmation.'"
    )
    assert not Order.objects.filter(account=bob).exists()

    quote()
    page.click("#order-submit")
    dialog.wait_for(state="visible")
    dialog.get_by_role("button", name="Place order").click()
    ticket.locator("#order-message a").wait_for()
    text = ticket.locator("#order-message").inner_text()
    assert re.match(
        r"Bought [\d,.]+ TRUMP-WIN YES at 61¢ on (Kalshi|Polymarket) · 1,500\.00 USDC", text
    )
    assert Order.objects.get(account=bob).status == "filled"


def test_an_old_error_clears_when_the_contract_changes(portal, page, bob):
    log_in(page, portal)
    ticket = page.locator(TICKET)
    choose(page, "trump", "TRUMP-WIN")
    ticket.locator("input[name=order_type][value=limit]").check()
    page.fill("#order-quantity", "10")
    page.fill("#order-price", "55")
    page.fill("#order-tp", "50")  # below the price of a buy: refused
    page.click("#order-submit")
    message = ticket.locator("#order-message")
    page.wait_for_function(
        "() => document.querySelector('#order-message').dataset.kind === 'error'"
    )
    assert message.inner_text().startswith("The take-profit must be above")
    ticket.locator("input[name=outcome][value=no]").check()
    assert message.inner_text() == ""


def test_a_sale_shows_its_max_size_in_the_unit_of_its_size(portal, page, bob):
    order_execute(account=bob, symbol="FED-CUT", side="buy", notional_usdc=Decimal("30"))
    log_in(page, portal)
    ticket = page.locator(TICKET)
    choose(page, "fed", "FED-CUT")
    ticket.locator("input[name=side][value=sell]").check()
    page.fill("#order-notional", "10")
    most = ticket.locator("[data-field=buying_power]")
    page.wait_for_function(
        "() => document.querySelector('#order-projection [data-field=buying_power]')"
        ".textContent.endsWith(' USDC')"
    )
    assert most.inner_text() == "29.00 USDC"  # the 100 held, at the 29¢ bid
    assert (
        ticket.locator("[data-field=max_size_note]")
        .inner_text()
        .startswith("A sale only reduces risk")
    )
    ticket.locator("input[name=size_mode][value=quantity]").check()
    page.fill("#order-quantity", "10")
    page.wait_for_function(
        "() => document.querySelector('#order-projection [data-field=buying_power]')"
        ".textContent === '100 contracts'"
    )
    assert ticket.locator("[data-field=buying_power_fillable]").inner_text() == "100 contracts"


def test_on_a_phone_the_ticket_is_a_bottom_sheet(portal, browser, bob):
    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    try:
        log_in(page, portal)
        toggle = page.locator("#ticket-toggle")
        assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
        assert page.locator("#ticket-body").is_hidden()
        box = toggle.bounding_box()
        assert box["y"] + box["height"] == pytest.approx(812, abs=2)  # at the bottom
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        assert page.locator("#order-form").is_visible()
        assert page.evaluate("document.activeElement.id") == "ticket-search"
        # Nothing in the sheet is wider than the phone (the page's own tables are helper
        # E's: tests/browser checks the whole page at 375 px).
        wide = page.evaluate(
            """() => [...document.querySelectorAll('#order-entry *')].filter(n => {
              const r = n.getBoundingClientRect();
              return r.width && r.right > window.innerWidth + 1;
            }).map(n => n.tagName + '#' + n.id)"""
        )
        assert wide == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "order-ticket-phone-open.png"))
        page.keyboard.press("Escape")
        assert toggle.get_attribute("aria-expanded") == "false"
        assert page.evaluate("document.activeElement.id") == "ticket-toggle"
    finally:
        context.close()
