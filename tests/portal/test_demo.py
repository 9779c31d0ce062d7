"""`seed_demo` builds the demo through the real services and is idempotent."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Account, Deposit, Journal, User
from accounts.services.reconciliation import ledger_reconcile
from trading.models import Instrument, Listing
from trading.selectors import margin_summary_get

pytestmark = pytest.mark.django_db


def _counts() -> tuple:
    return (
        User.objects.count(),
        Account.objects.count(),
        Instrument.objects.count(),
        Listing.objects.count(),
        Journal.objects.count(),
        Deposit.objects.count(),
    )


def test_seed_demo_twice_gives_the_same_demo():
    call_command("seed_demo")
    first = _counts()
    call_command("seed_demo")
    assert _counts() == first

    ops = User.objects.get(email="ops@prime.local")
    assert ops.is_staff and ops.check_password("prime-demo-2026")
    assert TOTPDevice.objects.filter(user=ops, confirmed=True).count() == 1

    alice = Account.objects.get(owner__email="alice@prime.local")
    assert alice.kind == Account.Kind.CUSTODIAL and alice.margin_enabled
    assert alice.deposits.get().status == Deposit.Status.CONFIRMED

    bob = Account.objects.get(owner__email="bob@prime.local")
    assert bob.kind == Account.Kind.NON_CUSTODIAL and bob.cash_balance == 0
    assert User.objects.get(email="carol@prime.local").kyb_status == User.KybStatus.PENDING

    kinds = set(Instrument.objects.values_list("kind", flat=True))
    assert kinds == {Instrument.Kind.BINARY, Instrument.Kind.PERPETUAL}
    assert set(
        Instrument.objects.filter(kind=Instrument.Kind.PERPETUAL).values_list("symbol", flat=True)
    ) == {"BTC-PERP", "ETH-PERP", "SOL-PERP"}
    # One instrument listed on two venues under venue-specific ids.
    assert set(
        Listing.objects.filter(instrument__symbol="TRUMP-WIN").values_list("venue__code", flat=True)
    ) == {"kalshi", "polymarket"}
    # Alice's demo portfolio borrows, and is healthy at the reference prices.
    assert alice.positions.filter(quantity__gt=0).count() == 5
    alice.refresh_from_db()
    assert alice.cash_balance < 0
    summary = margin_summary_get(account=alice)
    assert summary.status == "healthy" and summary.health > Decimal("2")
    assert summary.deposit == Decimal("250000")
    assert ledger_reconcile().ok
