"""Set-up of the dashboard tests, through the real services: quoted markets (the
`markets` fixture of tests/web/conftest.py), a trader whose positions were bought
with `order_execute`, a signed-in browser, the ticket's JSON endpoints.
"""

import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.conftest import binary_create, perp_create
from tests.trading.executing import no_commission
from tests.trading.margining import margin_keys_clear
from tests.trading.quoting import put_quote
from trading.marketdata import store
from trading.models import Instrument
from trading.services.execute import order_execute

D = Decimal
TRUMP, FED, BTC = "TRUMP-WIN", "FED-CUT", "BTC-PERP"
JSON = {"HTTP_ACCEPT": "application/json"}


def quotes_put() -> None:
    """Fresh, deep books: TRUMP-WIN 0.59/0.60 (kalshi) and 0.60/0.61 (polymarket),
    FED-CUT 0.29/0.30, BTC-PERP 50,000/50,001."""
    put_quote(f"{TRUMP}@kalshi", bid="0.59", ask="0.60")
    put_quote(f"{TRUMP}@polymarket", bid="0.60", ask="0.61")
    put_quote(f"{FED}@kalshi", bid="0.29", ask="0.30")
    put_quote(f"{BTC}@leviathan", bid="50000", ask="50001", binary=False, step="1", size="100")


def markets_open() -> Iterator[dict[str, Instrument]]:
    """TRUMP-WIN (kalshi, polymarket) and FED-CUT (kalshi), both expiring in 800 days;
    BTC-PERP (leviathan); all quoted, no broker commission. The quote store and the
    margin keys are cleared before and after. A generator: the `markets` fixture."""
    client = store.redis_client()
    client.delete(store.quotes_key())
    margin_keys_clear()
    no_commission()
    instruments = {
        TRUMP: binary_create(TRUMP),
        FED: binary_create(FED, "0.01", "kalshi"),
        BTC: perp_create(BTC, "BTC"),
    }
    for symbol in (TRUMP, FED):
        # Far from expiry, the haircut's expiry term is below a micro-dollar: figures
        # read a few milliseconds apart (page, API, selector) are equal to the digit.
        instruments[symbol].expires_at = timezone.now() + timedelta(days=800)
        instruments[symbol].save(update_fields=["expires_at"])
    quotes_put()
    yield instruments
    client.delete(store.quotes_key())
    margin_keys_clear()


def trader(cash: str = "1000", *, margin: bool = True, owner=None) -> Account:
    """A funded custodial account (margin enabled unless `margin` is False)."""
    fields = {"margin_enabled": True, "margin_override": "granted"} if margin else {}
    account = open_account(owner=owner, kind=Account.Kind.CUSTODIAL, **fields)
    credit_cash(account, cash)
    return account


def buy(account: Account, symbol: str, notional: str, side: str = "buy"):
    quotes_put()  # the simulated venue refuses a stale quote
    order = order_execute(account=account, symbol=symbol, side=side, notional_usdc=D(notional))
    account.refresh_from_db()
    return order


def borrower(owner=None) -> Account:
    """1,500 USDC deposited, then 1,100 USDC of TRUMP-WIN, 300 of FED-CUT:NO and a
    1,000 USDC BTC-PERP long at 5x (200 of isolated margin): cash about −100, so it
    borrows (Used Margin > 0) with health well above 1.5."""
    account = trader("1500", owner=owner)
    buy(account, TRUMP, "1100")
    buy(account, f"{FED}:NO", "300")
    buy(account, BTC, "1000")
    return account


def signed_in(account: Account) -> Client:
    client = Client()
    client.force_login(account.owner)
    return client


def projection(client: Client, account: Account, **params) -> tuple[int, dict]:
    """The order ticket's projection (`trade-projection`): its status and JSON."""
    response = client.get(reverse("trade-projection", args=[account.public_id]), params)
    return response.status_code, response.json()


def ticket_post(client: Client, account: Account, **data):
    """POST the order ticket as its script does (an empty client_order_id unless given)."""
    data.setdefault("client_order_id", "")
    return client.post(reverse("order-place", args=[account.public_id]), data, **JSON)


FIELD = re.compile(r'data-field="(?P<name>[a-z_]+)"[^>]*?data-value="(?P<value>[^"]*)"')


def page_fields(html: str) -> dict[str, str]:
    """The first data-value of each data-field on a page (the summary's figures)."""
    found: dict[str, str] = {}
    for match in FIELD.finditer(html):
        found.setdefault(match["name"], match["value"])
    return found


def row_values(html: str, table_body_id: str) -> list[dict[str, str]]:
    """Each row of a table body as {data-field: data-value} (plus position_id)."""
    body = html.split(f'id="{table_body_id}"', 1)[1].split("</tbody>", 1)[0]
    rows = []
    for chunk in body.split("<tr")[1:]:
        position = re.search(r'data-position-id="(\d+)"', chunk)
        if position is None:
            continue
        row = {"position_id": position[1]}
        row.update({m["name"]: m["value"] for m in FIELD.finditer(chunk)})
        rows.append(row)
    return rows
