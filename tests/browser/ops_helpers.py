"""What the ops area's browser tests share: staff signing in through the admin's login
page (password and one-time code), the page's sideways overflow, and a margin account
that borrowed to hold TRUMP-WIN."""

from decimal import Decimal

from accounts.models import Account, User
from tests.conftest import credit_cash
from tests.factories import DEFAULT_PASSWORD, UserFactory, open_account
from tests.ops.conftest import totp_code, totp_device
from tests.trading.conftest import binary_create
from tests.trading.quoting import put_quote
from trading.services.execute import order_execute


def ops_sign_in(page, portal: str, staff: User, next_path: str) -> None:
    """Sign `staff` in on the admin's login page and wait for `next_path`."""
    device = totp_device(staff)
    page.goto(f"{portal}/admin/login/?next={next_path}")
    page.fill("input[name=username]", staff.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.fill("input[name=otp_token]", totp_code(device))
    page.click("input[type=submit]")
    page.wait_for_url(f"{portal}{next_path}")


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0 or less: it fits)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def quote(bid: str, ask: str) -> None:
    """TRUMP-WIN's price on both venues (a tick the margin engine sees)."""
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRUMP-WIN@{venue}", bid=bid, ask=ask)


def borrowing_account(email: str, notional: str) -> Account:
    """A margin account with 1,000 USDC that bought `notional` USDC of TRUMP-WIN
    (quoted 0.60 / 0.61), borrowing the rest."""
    account = open_account(
        owner=UserFactory(email=email), margin_enabled=True, margin_override="granted"
    )
    credit_cash(account, "1000")
    binary_create("TRUMP-WIN")
    quote("0.60", "0.61")
    order_execute(account=account, symbol="TRUMP-WIN", side="buy", notional_usdc=Decimal(notional))
    return account
