"""Reference data cached per process: changes are seen at once here, and via Redis elsewhere."""

from decimal import Decimal

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts.models import Account, HouseAccount, LedgerAccount
from accounts.services.ledger import house_ledger_account
from portal import refdata
from portal.db import row_add
from portal.redis import redis_client
from tests.factories import open_account
from tests.trading.conftest import binary_create
from trading.catalog import instrument_get, listings_get
from trading.models import Instrument, RiskPolicy
from trading.selectors import margin_params_get, risk_policy_get

pytestmark = pytest.mark.django_db


class Loads:
    """A loader that counts its calls."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def test_a_value_is_loaded_once_then_served_from_memory():
    load = Loads("v")
    assert refdata.refdata_get("test", 1, load) == "v"
    assert refdata.refdata_get("test", 1, load) == "v"
    assert load.calls == 1


def test_none_is_not_cached_and_created_values_are_not_either():
    missing = Loads(None)
    assert refdata.refdata_get("test", "unknown", missing) is None
    assert refdata.refdata_get("test", "unknown", missing) is None
    assert missing.calls == 2
    create = Loads("made")
    assert refdata.refdata_get("test", "new", missing, create) == "made"
    assert refdata.refdata_get("test", "new", missing, create) == "made"
    assert create.calls == 2  # the creating transaction might still roll back


def test_a_save_in_this_process_is_seen_at_once():
    instrument = binary_create("HALT-ME")
    assert instrument_get(symbol="HALT-ME").status == Instrument.Status.OPEN
    row = Instrument.objects.get(pk=instrument.pk)
    row.status = Instrument.Status.HALTED
    row.save(update_fields=["status"])
    assert instrument_get(symbol="HALT-ME").status == Instrument.Status.HALTED


def test_another_process_change_is_seen_once_the_version_moves(settings):
    settings.REFDATA_MAX_AGE = 0  # re-check the version on every read
    instrument = binary_create("ELSEWHERE")
    assert len(listings_get(instrument)) == 2
    # Another process deactivates a listing: its row changes, no signal reaches us.
    listing = instrument.listings.order_by("venue__code").first()
    type(listing).objects.filter(pk=listing.pk).update(is_active=False)
    assert len(listings_get(instrument)) == 2  # our copy, still at the old version
    redis_client().incr(refdata._version_key())  # what that process's commit does
    assert len(listings_get(instrument)) == 1


def test_a_committed_change_bumps_the_version(django_capture_on_commit_callbacks):
    before = int(redis_client().get(refdata._version_key()) or 0)
    with django_capture_on_commit_callbacks(execute=True):
        policy = RiskPolicy.objects.get_or_create(pk=1)[0]
        policy.grace_period_hours = 7
        policy.save()
    assert int(redis_client().get(refdata._version_key())) > before
    assert risk_policy_get().grace_period_hours == 7


def test_the_policies_and_their_parameters_follow_a_save():
    policy = RiskPolicy.objects.get_or_create(pk=1)[0]
    assert margin_params_get().initial == float(policy.initial_margin_threshold)
    policy.initial_margin_threshold = Decimal("1.3")
    policy.save()
    assert margin_params_get().initial == 1.3


def test_without_redis_every_read_goes_to_the_database(monkeypatch, settings):
    settings.REFDATA_MAX_AGE = 0

    class Down:
        def get(self, key):
            raise RedisConnectionError("down")

    monkeypatch.setattr(refdata, "redis_client", Down)
    load = Loads("v")
    refdata.refdata_get("test", 1, load)
    refdata.refdata_get("test", 1, load)
    assert load.calls == 2


def test_house_accounts_are_created_on_first_use_and_then_cached():
    first = house_ledger_account(HouseAccount.FEE_INCOME)
    assert LedgerAccount.objects.filter(code=HouseAccount.FEE_INCOME.value).get() == first
    assert house_ledger_account(HouseAccount.FEE_INCOME).pk == first.pk


def test_row_add_returns_what_the_database_computed():
    account = open_account(kind=Account.Kind.CUSTODIAL)
    stale = Account.objects.get(pk=account.pk)
    Account.objects.filter(pk=account.pk).update(lifetime_volume=Decimal("5"))
    row_add(stale, lifetime_volume=Decimal("2.5"))
    assert stale.lifetime_volume == Decimal("7.500000")
    assert Account.objects.get(pk=account.pk).lifetime_volume == Decimal("7.5")
    stale.pk = 0
    with pytest.raises(Account.DoesNotExist):
        row_add(stale, lifetime_volume=Decimal("1"))
