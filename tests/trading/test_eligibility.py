"""Margin eligibility (trading.services.eligibility): on by lifetime volume through the
fill path, overridden by ops, never for non-custodial accounts."""

from decimal import Decimal

import pytest

from accounts.models import Account, AuditLog
from portal.errors import Forbidden, InvalidParams
from tests.conftest import credit_cash
from tests.trading.quoting import put_quote
from tests.trading.test_selectors import fill, market
from trading.selectors import risk_policy_get
from trading.services.eligibility import account_margin_override_set

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha(quote_store):
    put_quote("ALPHA@kalshi", bid="0.50", ask="0.52")
    return market("ALPHA")


def override(account: Account, value: Account.MarginOverride, actor) -> Account:
    return account_margin_override_set(account=account, override=value, actor=actor)


def enabled(account: Account) -> bool:
    account.refresh_from_db()
    return account.margin_enabled


def test_margin_turns_on_when_lifetime_volume_reaches_one_million(alpha, custodial_account):
    credit_cash(custodial_account, "1000000")
    # 1,999,999.98 contracts at 0.50 = 999,999.99 USDC: one cent short.
    fill(custodial_account, alpha, quantity="1999999.98", price="0.50")
    assert custodial_account.lifetime_volume == D("999999.99")
    assert not enabled(custodial_account)
    # 0.02 more at 0.50 = 0.01 USDC: exactly 1,000,000.
    fill(custodial_account, alpha, quantity="0.02", price="0.50")
    assert custodial_account.lifetime_volume == D("1000000")
    assert enabled(custodial_account)
    entry = AuditLog.objects.get(action="margin_auto_enabled")
    assert entry.actor is None
    assert entry.object_id == str(custodial_account.pk)
    assert entry.changes == {"margin_enabled": [False, True]}


def test_sells_count_towards_lifetime_volume(alpha, custodial_account):
    credit_cash(custodial_account, "500000")
    fill(custodial_account, alpha, quantity="1000000", price="0.50")  # 500,000 bought
    assert not enabled(custodial_account)
    fill(custodial_account, alpha, quantity="1000000", price="0.50", side="sell")  # 500,000 sold
    assert enabled(custodial_account)


def test_the_threshold_is_the_policys(alpha, custodial_account):
    policy = risk_policy_get()
    policy.margin_volume_threshold = D("1000")
    policy.save()
    credit_cash(custodial_account, "1000")
    fill(custodial_account, alpha, quantity="2000", price="0.50")
    assert enabled(custodial_account)


def test_an_ops_grant_wins_below_the_threshold(alpha, custodial_account, staff):
    override(custodial_account, Account.MarginOverride.GRANTED, staff)
    assert enabled(custodial_account)
    credit_cash(custodial_account, "100")
    fill(custodial_account, alpha, quantity="100", price="0.50")  # a fill re-applies the rule
    assert enabled(custodial_account)
    entry = AuditLog.objects.get(action="margin_override_granted")
    assert entry.actor == staff
    assert entry.changes == {
        "margin_override": ["", "granted"],
        "margin_enabled": [False, True],
    }


def test_an_ops_revoke_wins_above_the_threshold_until_handed_back(alpha, custodial_account, staff):
    credit_cash(custodial_account, "1000000")
    fill(custodial_account, alpha, quantity="2000000", price="0.50")
    assert enabled(custodial_account)
    override(custodial_account, Account.MarginOverride.REVOKED, staff)
    assert not enabled(custodial_account)
    fill(custodial_account, alpha, quantity="2000000", price="0.50", side="sell")
    assert not enabled(custodial_account)  # more volume does not undo the revoke
    override(custodial_account, Account.MarginOverride.AUTOMATIC, staff)
    assert enabled(custodial_account)  # back to the volume rule: 2,000,000 ≥ 1,000,000


def test_a_non_custodial_account_never_gets_margin(alpha, non_custodial_account, staff):
    credit_cash(non_custodial_account, "1000000")
    fill(non_custodial_account, alpha, quantity="2000000", price="0.50")
    assert non_custodial_account.lifetime_volume == D("1000000")
    assert not enabled(non_custodial_account)
    with pytest.raises(InvalidParams, match="Only custodial accounts"):
        override(non_custodial_account, Account.MarginOverride.GRANTED, staff)
    assert not enabled(non_custodial_account)
    assert not AuditLog.objects.filter(action__startswith="margin_").exists()


def test_only_ops_staff_can_override(custodial_account):
    with pytest.raises(Forbidden):
        override(custodial_account, Account.MarginOverride.GRANTED, custodial_account.owner)
    assert not enabled(custodial_account)
