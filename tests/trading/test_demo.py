"""`seed_demo` builds the demo through the real services and is idempotent."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Account, Deposit, Journal, LinkedCredential, User
from accounts.services.reconciliation import ledger_reconcile
from trading.demo import demo_linked_accounts
from trading.models import Instrument, Listing
from trading.selectors import margin_summary_get
from trading.venues.fakes.kalshi import FakeKalshi
from trading.venues.fakes.kalshi import seed_demo as kalshi_seed_demo
from trading.venues.fakes.polymarket import FakePolymarket
from trading.venues.fakes.polymarket import seed_demo as polymarket_seed_demo

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

    bob = User.objects.get(email="bob@prime.local")
    assert bob.is_kyb_approved and not bob.accounts.exists()  # linked by run_fake_venues
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


def test_the_demo_user_is_linked_to_the_fake_venues_and_relinked_on_restart(settings):
    call_command("seed_demo")
    starts = []
    for _ in range(2):  # each start of `run_fake_venues` issues a fresh Kalshi key
        with FakeKalshi() as kalshi, FakePolymarket() as polymarket:
            settings.KALSHI_BASE_URLS = {"production": kalshi.base_url, "demo": kalshi.base_url}
            settings.POLYMARKET_DATA_URL = polymarket.data_url
            settings.POLYMARKET_GAMMA_URL = polymarket.gamma_url
            settings.POLYMARKET_CLOB_URL = polymarket.clob_url
            kalshi_seed = kalshi_seed_demo(kalshi, scopes=("read",))
            wallet = polymarket_seed_demo(polymarket).wallet
            starts.append(
                demo_linked_accounts(
                    kalshi_key_id=kalshi_seed.key_id,
                    kalshi_private_key_pem=kalshi_seed.private_key_pem,
                    polymarket_wallet=wallet,
                )
            )
            kalshi_credential = LinkedCredential.objects.get(venue="kalshi")
            assert kalshi_credential.secrets()["private_key_pem"].strip() == (
                kalshi_seed.private_key_pem.strip()
            )
    assert starts[0] == starts[1]  # the same two accounts, not new ones
    accounts = Account.objects.filter(owner__email="bob@prime.local")
    assert {a.kind for a in accounts} == {Account.Kind.NON_CUSTODIAL} and len(accounts) == 2
    assert set(LinkedCredential.objects.values_list("status", flat=True)) == {"active"}
