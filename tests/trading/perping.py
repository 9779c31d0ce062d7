"""Helpers for the perpetual tests: fills under the account lock, ledger balances."""

from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from accounts.models import Account, LedgerAccount, Posting
from portal.money import ZERO
from trading.models import Instrument, Position
from trading.services.perps import PerpFillResult, perp_fill_apply


def fill(
    account: Account,
    instrument: Instrument,
    side: str,
    quantity: str,
    price: str,
    *,
    venue_fee: str = "0",
    commission: str = "0",
    leverage: int | None = None,
) -> PerpFillResult:
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        result = perp_fill_apply(
            account=locked,
            instrument=instrument,
            side=side,
            quantity=Decimal(quantity),
            price=Decimal(price),
            venue_fee=Decimal(venue_fee),
            commission=Decimal(commission),
            leverage=leverage,
        )
    account.refresh_from_db()
    return result


def ledger_balance(code: str) -> Decimal:
    total = Posting.objects.filter(ledger_account__code=code).aggregate(total=Sum("amount"))
    return total["total"] if total["total"] is not None else ZERO


def isolated_balance(account: Account, instrument: Instrument) -> Decimal:
    return ledger_balance(f"isolated:{account.public_id}:{instrument.symbol}")


def perp_position(account: Account, instrument: Instrument) -> Position:
    return Position.objects.get(account=account, instrument=instrument, outcome="")


def assert_reconciled(account: Account, instrument: Instrument) -> None:
    position = perp_position(account, instrument)
    assert position.isolated_margin == isolated_balance(account, instrument)
    ledger = LedgerAccount.objects.get(code=f"isolated:{account.public_id}:{instrument.symbol}")
    assert ledger.purpose == LedgerAccount.Purpose.ISOLATED_MARGIN
    assert ledger.account_id == account.pk
