"""Health alerts: set per margin account, fired once by the margin engine when health
falls below the level, re-armed above level + hysteresis, never for another account.

The scenario (tests.trading.margining): 1,000 USDC and 2,000 TRUMP-WIN YES bought at
0.60; with the collateral price p, health is about
p = 0.60 → 3.1, p = 0.30 → 1.6, p = 0.15 → 0.93.
"""

from decimal import Decimal

import pytest

from accounts.models import Account, Notification
from portal.errors import Conflict, Forbidden, InvalidParams, NotFound
from tests.factories import open_account
from tests.trading.margining import borrower, capture_outbox_sends, margin_keys_clear, tick
from trading.engine import MarginEngine
from trading.models import HealthAlert
from trading.services.health_alerts import (
    ALERTS_PER_ACCOUNT_MAX,
    health_alert_create,
    health_alert_delete,
    health_alerts_act,
)
from trading.services.margin_book import accounts_changed_pop

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def _clean(quote_store, monkeypatch):
    margin_keys_clear()
    capture_outbox_sends(monkeypatch)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def alerts_told(account=None) -> list[Notification]:
    told = Notification.objects.filter(kind=Notification.Kind.HEALTH_ALERT)
    if account is not None:
        told = told.filter(account=account)
    return list(told.order_by("pk"))


def alert_on(account, level="2.00", email=True) -> HealthAlert:
    return health_alert_create(user=account.owner, account=account, level=D(level), email=email)


# --- Setting alerts ------------------------------------------------------------------------


def test_an_alert_is_set_on_the_users_own_margin_account_and_marks_it_changed(
    custodial_account, committed
):
    accounts_changed_pop()
    with committed():
        alert = alert_on(custodial_account, "1.30")
    assert (alert.level, alert.armed, alert.email) == (D("1.30"), True, True)
    assert custodial_account.pk in accounts_changed_pop()  # the engine reloads its alerts


@pytest.mark.parametrize(
    ("level", "message"),
    [
        ("0", r"above 0\.90"),
        ("0.9", r"above 0\.90"),
        ("-1", r"above 0\.90"),
        ("10.5", r"at most 10\.00"),
        ("1.305", "at most 2 decimal places"),
    ],
)
def test_a_level_that_makes_no_sense_is_refused_with_a_sentence(custodial_account, level, message):
    with pytest.raises(InvalidParams, match=message):
        alert_on(custodial_account, level)
    assert not HealthAlert.objects.exists()


def test_the_same_level_twice_and_too_many_alerts_are_refused(custodial_account):
    alert_on(custodial_account, "1.30")
    with pytest.raises(Conflict, match=r"already has an alert at 1\.30"):
        alert_on(custodial_account, "1.3")
    for k in range(1, ALERTS_PER_ACCOUNT_MAX):
        alert_on(custodial_account, f"{1.5 + k / 10:.2f}")
    with pytest.raises(InvalidParams, match="delete one first"):
        alert_on(custodial_account, "3.00")


def test_no_alert_on_someone_elses_or_a_non_custodial_account(custodial_account):
    other = open_account()
    with pytest.raises(Forbidden):
        health_alert_create(user=other.owner, account=custodial_account, level=D("1.3"))
    linked = open_account(owner=custodial_account.owner, kind=Account.Kind.NON_CUSTODIAL)
    with pytest.raises(Forbidden, match="never borrows"):
        alert_on(linked, "1.30")


def test_only_the_owner_deletes_an_alert(custodial_account):
    alert = alert_on(custodial_account, "1.30")
    with pytest.raises(NotFound):
        health_alert_delete(user=open_account().owner, alert_id=alert.pk)
    health_alert_delete(user=custodial_account.owner, alert_id=alert.pk)
    assert not HealthAlert.objects.exists()


# --- Firing (the service) -------------------------------------------------------------------


def test_an_alert_fires_once_below_its_level_and_rearms_above_it_plus_hysteresis(
    custodial_account,
):
    alert = alert_on(custodial_account, "1.30")
    health_alerts_act(health={custodial_account.pk: 1.29})
    health_alerts_act(health={custodial_account.pk: 1.10})  # still below: nothing more
    health_alerts_act(health={custodial_account.pk: 1.33})  # above, within the hysteresis
    health_alerts_act(health={custodial_account.pk: 1.28})
    (note,) = alerts_told()
    assert note.user == custodial_account.owner and note.account == custodial_account
    assert note.title == f"Margin Health of {custodial_account.public_id} fell below 1.30"
    assert "fell to 1.29" in note.body
    assert "fires again after health has been back at 1.35 or above" in note.body
    assert note.email
    alert.refresh_from_db()
    assert (alert.armed, alert.fired_count, alert.last_fired_health) == (False, 1, D("1.29"))

    health_alerts_act(health={custodial_account.pk: float("inf")})  # repaid: no borrowing
    alert.refresh_from_db()
    assert alert.armed
    health_alerts_act(health={custodial_account.pk: 1.2})
    assert len(alerts_told()) == 2


def test_an_in_app_alert_is_not_emailed(custodial_account):
    alert_on(custodial_account, "1.30", email=False)
    health_alerts_act(health={custodial_account.pk: 1.0})
    (note,) = alerts_told()
    assert not note.email


# --- Firing (the margin engine) ---------------------------------------------------------------


def swept_engine(committed) -> MarginEngine:
    engine = MarginEngine()
    with committed():
        engine.sweep()
    return engine


def test_the_engine_fires_on_the_crossing_tick_only_for_that_account(markets, committed):
    tick(bid="0.60")
    account = borrower(markets.trump)
    bystander = borrower(markets.trump)  # same positions, no alert
    other_alert = borrower(markets.trump, deposit="3000")  # alert, but far from its level
    alert_on(account, "2.00")
    alert_on(other_alert, "1.50")
    engine = swept_engine(committed)
    assert not alerts_told()

    with committed():
        engine.process_batch(tick(bid="0.30"))  # health about 1.6: below 2.00
    (note,) = alerts_told()
    assert note.account == account and note.user == account.owner
    assert engine.stats.alerts_fired == 1
    assert not Notification.objects.filter(user=bystander.owner).exists()
    assert not alerts_told(other_alert)

    with committed():
        engine.process_batch(tick(bid="0.29"))  # lower still: no second alert
        engine.process_batch(tick(bid="0.31"))
    assert len(alerts_told()) == 1

    with committed():
        engine.process_batch(tick(bid="0.60"))  # back above 2.05: re-armed, silently
    assert HealthAlert.objects.get(account=account).armed
    assert len(alerts_told()) == 1
    with committed():
        engine.process_batch(tick(bid="0.30"))
    assert len(alerts_told(account)) == 2


def test_the_engine_picks_up_a_new_alert_through_the_changed_accounts(markets, committed):
    tick(bid="0.30")
    account = borrower(markets.trump)  # health about 1.6 already
    engine = swept_engine(committed)
    with committed():
        alert_on(account, "2.00")  # marks the account changed
    with committed():
        engine.process_batch(None)
    (note,) = alerts_told()
    assert "fell to 1.6" in note.body
    with committed():
        health_alert_delete(user=account.owner, alert_id=HealthAlert.objects.get().pk)
    with committed():
        engine.process_batch(None)
    assert engine._alert_id.size == 0


def test_a_tick_without_crossing_touches_no_alert_row(
    markets, committed, django_assert_max_num_queries, settings
):
    # The alerts' own cost: the engine's figures store (its own reads) is off here.
    settings.FIGURES_STORE = False
    tick(bid="0.60")
    accounts = [borrower(markets.trump) for _ in range(3)]
    for account in accounts:
        alert_on(account, "1.50")
    engine = swept_engine(committed)
    with committed():
        engine.process_batch(tick(bid="0.59"))  # warm up whatever a first batch loads
    with django_assert_max_num_queries(3), committed():
        engine.process_batch(tick(bid="0.58"))  # still far above 1.50
    assert not alerts_told()
