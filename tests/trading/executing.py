"""Shared set-up for the execute, fill and reconcile tests: a quoted market and
funded custodial accounts, opened through the real services."""

from decimal import Decimal

from accounts.models import Account
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.trading.conftest import binary_create
from tests.trading.quoting import put_quote
from trading.models import FeePolicy, Instrument

D = Decimal


def market(
    symbol: str = "ELECT", *, kalshi_ask: str = "0.60", poly_ask: str = "0.62"
) -> Instrument:
    """A binary listed on kalshi and polymarket, quoted one cent wide, deep books."""
    instrument = binary_create(symbol)
    put_quote(f"{symbol}@kalshi", bid=str(D(kalshi_ask) - D("0.01")), ask=kalshi_ask)
    put_quote(f"{symbol}@polymarket", bid=str(D(poly_ask) - D("0.01")), ask=poly_ask)
    return instrument


def no_commission() -> None:
    FeePolicy.objects.update_or_create(pk=1, defaults={"broker_commission_bps": 0})


def trader(cash: str = "1000", *, margin: bool = False, **fields) -> Account:
    extra = {"margin_enabled": True, "margin_override": "granted"} if margin else {}
    account = open_account(kind=Account.Kind.CUSTODIAL, **extra, **fields)
    credit_cash(account, cash)
    return account
