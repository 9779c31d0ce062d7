"""Linked (non-custodial) accounts end to end against the loopback fake Kalshi and Polymarket:
link (verified with the venue's real signature check), sync, failures, unlink, and
the risk view the same engine gives them."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Account, LinkedCredential
from portal.errors import Conflict, Forbidden, InvalidParams
from tests.factories import UserFactory
from trading.models import Instrument, Position
from trading.selectors import margin_summaries_get
from trading.services.linked_accounts import (
    linked_account_link,
    linked_account_sync,
    linked_account_unlink,
    linked_credential_rotate,
    linked_credentials_due,
)
from trading.venues.fakes.kalshi import FakeKalshi, rsa_key_pair, seed_demo
from trading.venues.fakes.polymarket import FakePolymarket
from trading.venues.fakes.polymarket import seed_demo as polymarket_seed_demo
from trading.venues.kalshi import WRITE_SCOPE_WARNING
from trading.venues.tracking import VenueAuthError

FED = "KXFEDDECISION-26DEC-H0"
CPI = "KXCPIYOY-26NOV-T3.0"


@pytest.fixture(scope="module")
def other_key():
    return rsa_key_pair()


@pytest.fixture
def fake(settings):
    with FakeKalshi() as server:
        settings.KALSHI_BASE_URLS = {"production": server.base_url, "demo": server.base_url}
        yield server


@pytest.fixture
def seeded(fake):
    """The fake's demo account under a fresh key id (read+write scopes)."""
    return seed_demo(fake, key_id=f"key-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def owner(db):
    return UserFactory()


def link(owner, seeded, **extra):
    return linked_account_link(
        user=owner,
        venue="kalshi",
        environment="demo",
        key_id=seeded.key_id,
        private_key_pem=seeded.private_key_pem,
        **extra,
    )


def held(account) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    return {
        (p.instrument.symbol, p.outcome): (p.quantity, p.average_price)
        for p in Position.objects.filter(account=account, quantity__gt=0).select_related(
            "instrument"
        )
    }


def test_linking_verifies_with_the_venue_and_opens_a_non_custodial_account(owner, seeded):
    credential = link(owner, seeded, name="My Kalshi")
    account = credential.account
    assert account.kind == Account.Kind.NON_CUSTODIAL and account.name == "My Kalshi"
    assert credential.status == LinkedCredential.Status.ACTIVE
    assert credential.scopes == "read,write"
    assert credential.warning == WRITE_SCOPE_WARNING  # write scope where read would do
    assert credential.secrets() == {"private_key_pem": seeded.private_key_pem.strip() + "\n"}
    assert seeded.private_key_pem.split("\n")[1] not in credential.sealed_secret
    assert credential.last_verified_at is not None


def test_a_key_the_venue_refuses_is_not_stored(owner, fake, seeded, other_key):
    with pytest.raises(VenueAuthError):
        linked_account_link(
            user=owner,
            venue="kalshi",
            environment="demo",
            key_id=seeded.key_id,
            private_key_pem=other_key[0],  # signs with a key Kalshi does not know
        )
    assert not LinkedCredential.objects.exists()
    assert not Account.objects.filter(owner=owner).exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"environment": "staging"},
        {"key_id": "x"},
        {"private_key_pem": "not a key"},
    ],
)
def test_bad_input_is_refused_before_the_venue_is_asked(owner, fake, seeded, fields):
    values = {
        "environment": "demo",
        "key_id": seeded.key_id,
        "private_key_pem": seeded.private_key_pem,
        **fields,
    }
    with pytest.raises(InvalidParams):
        linked_account_link(user=owner, venue="kalshi", **values)
    assert fake.requests == []


def test_kyb_and_duplicates_are_refused(owner, seeded):
    with pytest.raises(Forbidden):
        link(UserFactory(kyb_status="pending"), seeded)
    link(owner, seeded)
    with pytest.raises(Conflict):
        link(owner, seeded)


def test_a_sync_mirrors_cash_and_positions_and_running_it_twice_changes_nothing(owner, seeded):
    credential = link(owner, seeded)
    first = linked_account_sync(credential_id=credential.pk)
    assert first.ok and first.positions == 2
    positions = held(credential.account)
    assert positions == {
        (FED, "yes"): (Decimal("120"), Decimal("0.59")),  # exposure 70.80 / 120
        (CPI, "no"): (Decimal("80"), Decimal("0.64")),  # 51.20 / 80
    }
    rows = list(Position.objects.filter(account=credential.account).values())
    credential.refresh_from_db()
    assert credential.cash_balance == Decimal("1250.000000")
    assert credential.last_synced_at is not None and credential.last_error == ""
    # Unknown markets became halted instruments: tracked, never traded through us.
    fed = Instrument.objects.get(symbol=FED)
    assert fed.status == Instrument.Status.HALTED and fed.event.title

    again = linked_account_sync(credential_id=credential.pk)
    assert again.ok
    assert list(Position.objects.filter(account=credential.account).values()) == rows


def test_a_position_closed_on_the_venue_is_closed_here(owner, fake, seeded):
    credential = link(owner, seeded)
    linked_account_sync(credential_id=credential.pk)
    fake.position_set(seeded.key_id, CPI, 0, "0")
    linked_account_sync(credential_id=credential.pk)
    assert held(credential.account) == {(FED, "yes"): (Decimal("120"), Decimal("0.59"))}


def test_a_venue_outage_keeps_the_last_good_positions_and_backs_off(owner, fake, seeded, settings):
    settings.LINKED_SYNC_INTERVAL_SECONDS = 60
    credential = link(owner, seeded)
    linked_account_sync(credential_id=credential.pk)
    before = held(credential.account)
    fake.outage(True)
    now = timezone.now()
    outcome = linked_account_sync(credential_id=credential.pk, now=now)
    assert not outcome.ok and outcome.error.startswith("venue_unavailable")
    credential.refresh_from_db()
    assert credential.status == LinkedCredential.Status.FAILING
    assert credential.consecutive_failures == 1
    assert credential.next_sync_at == now + timedelta(seconds=120)
    assert credential.cash_balance == Decimal("1250.000000")
    assert held(credential.account) == before
    linked_account_sync(credential_id=credential.pk, now=now)
    credential.refresh_from_db()
    assert credential.next_sync_at == now + timedelta(seconds=240)  # doubling
    assert credential.pk not in linked_credentials_due(now=now + timedelta(seconds=200))

    fake.outage(False)
    assert linked_account_sync(credential_id=credential.pk).ok
    credential.refresh_from_db()
    assert credential.status == LinkedCredential.Status.ACTIVE
    assert credential.consecutive_failures == 0 and credential.last_error == ""


def test_a_revoked_key_is_recorded_not_wiped(owner, fake, seeded):
    credential = link(owner, seeded)
    linked_account_sync(credential_id=credential.pk)
    fake.key_remove(seeded.key_id)
    outcome = linked_account_sync(credential_id=credential.pk)
    assert outcome.error.startswith("venue_auth_failed")
    assert len(held(credential.account)) == 2


def test_the_risk_view_uses_the_venue_cash_without_borrowing(owner, seeded):
    credential = link(owner, seeded)
    linked_account_sync(credential_id=credential.pk)
    account = Account.objects.get(pk=credential.account_id)
    [summary] = margin_summaries_get([account])
    assert summary.cash == summary.deposit == Decimal("1250.000000")
    assert summary.used_margin == Decimal("0") and summary.health is None
    assert summary.adjusted_equity > summary.cash  # the positions count, haircut
    assert {row.symbol for row in summary.breakdown} == {FED, CPI}


def test_unlink_erases_the_secret_and_stops_syncing_then_rotate_links_again(owner, seeded):
    credential = link(owner, seeded)
    linked_account_sync(credential_id=credential.pk)
    with pytest.raises(Forbidden):
        linked_account_unlink(credential=credential, actor=UserFactory())
    credential = linked_account_unlink(credential=credential, actor=owner)
    assert credential.sealed_secret == "" and credential.status == "unlinked"
    assert linked_account_sync(credential_id=credential.pk).skipped == "unlinked"
    assert len(held(credential.account)) == 2  # the last synced positions stay

    credential = linked_credential_rotate(
        credential=credential,
        actor=owner,
        key_id=seeded.key_id,
        private_key_pem=seeded.private_key_pem,
    )
    assert credential.status == "active" and credential.rotated_at is not None
    assert linked_account_sync(credential_id=credential.pk).ok


@pytest.fixture
def fake_polymarket(settings):
    with FakePolymarket() as server:
        settings.POLYMARKET_DATA_URL = server.data_url
        settings.POLYMARKET_GAMMA_URL = server.gamma_url
        settings.POLYMARKET_CLOB_URL = server.clob_url
        yield server


def test_a_polymarket_wallet_syncs_open_positions_and_cash_only_with_clob_keys(
    owner, fake_polymarket
):
    seed = polymarket_seed_demo(fake_polymarket)
    uppercase = "0x" + seed.wallet[2:].upper()  # no checksum: accepted as it is
    credential = linked_account_link(user=owner, venue="polymarket", wallet=uppercase)
    assert credential.identity == seed.wallet.lower() and credential.scopes == "read"
    assert linked_account_sync(credential_id=credential.pk).ok
    positions = held(credential.account)
    # The demo wallet's four OPEN positions; REDEEMABLE and CLOSED rows are not held.
    assert len(positions) == 4
    assert all(symbol.startswith("PM-") for symbol, _ in positions)
    credential.refresh_from_db()
    assert credential.cash_balance is None  # a wallet alone does not tell its cash

    with_keys = linked_credential_rotate(
        credential=credential,
        actor=owner,
        clob_api_key=seed.credentials.api_key,
        clob_api_secret=seed.credentials.secret,
        clob_api_passphrase=seed.credentials.passphrase,
    )
    assert with_keys.scopes == "read,trade" and with_keys.warning
    assert linked_account_sync(credential_id=with_keys.pk).ok
    with_keys.refresh_from_db()
    assert with_keys.cash_balance == Decimal("2500.000000")
    assert held(credential.account) == positions


def test_a_polymarket_wallet_with_a_bad_checksum_or_half_the_keys_is_refused(
    owner, fake_polymarket
):
    seed = polymarket_seed_demo(fake_polymarket)
    mixed = seed.wallet[:2] + seed.wallet[2:].upper()[:20] + seed.wallet[22:]
    with pytest.raises(InvalidParams):
        linked_account_link(user=owner, venue="polymarket", wallet=mixed)
    with pytest.raises(InvalidParams, match="all three"):
        linked_account_link(user=owner, venue="polymarket", wallet=seed.wallet, clob_api_key="k")
