"""Daily interest on Used Margin: amount, ledger, idempotency, who is charged."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, HouseAccount, Journal, Posting
from accounts.services.reconciliation import ledger_reconcile
from portal.errors import InvalidParams
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.threads import together
from tests.trading.conftest import binary_create
from trading.selectors import risk_policy_get
from trading.services import interest as interest_service
from trading.services.eligibility import account_margin_override_set
from trading.services.interest import (
    account_interest_accrue,
    interest_accrue,
    interest_for_day,
)
from trading.services.positions import binary_fill_apply
from trading.tasks import interest_accrue_daily_task


def today():
    return timezone.now().date()


def borrowing(staff, *, deposit: str, contracts: str, price: str = "0.5") -> Account:
    """A margin account that deposited `deposit` and bought `contracts` at `price`."""
    account = open_account(kind=Account.Kind.CUSTODIAL)
    account_margin_override_set(
        account=account, override=Account.MarginOverride.GRANTED, actor=staff
    )
    credit_cash(account, deposit)
    market = binary_create(f"M{account.pk}")
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        binary_fill_apply(
            account=locked,
            instrument=market,
            outcome="yes",
            side="buy",
            quantity=Decimal(contracts),
            price=Decimal(price),
        )
    account.refresh_from_db()
    return account


@pytest.fixture
def borrower(db, staff) -> Account:
    """Cash 10,000 − 93,000 × 0.5 = −36,500: Used Margin 36,500."""
    account = borrowing(staff, deposit="10000", contracts="93000")
    assert account.cash_balance == Decimal("-36500")
    return account


def interest_journals(account: Account):
    return Journal.objects.filter(kind=Journal.Kind.INTEREST, account=account)


def test_used_margin_is_charged_a_days_interest_at_the_policy_rate(borrower):
    assert risk_policy_get().interest_rate_annual == Decimal("0.08")

    run = interest_accrue(day=today())

    # 36,500 × 8% / 365 = 8 USDC.
    assert (run.borrowers, run.charged, run.skipped, run.failed) == (1, 1, 0, 0)
    assert run.total == Decimal("8.000000")
    borrower.refresh_from_db()
    assert borrower.cash_balance == Decimal("-36508")
    journal = interest_journals(borrower).get()
    assert journal.idempotency_key == f"interest:{borrower.public_id}:{today().isoformat()}"
    postings = {p.ledger_account.code: p.amount for p in journal.postings.all()}
    assert postings == {
        f"cash:{borrower.public_id}": Decimal("-8"),
        HouseAccount.INTEREST_INCOME.value: Decimal("8"),
    }
    assert ledger_reconcile().ok


def test_a_second_run_for_the_same_day_posts_nothing(borrower):
    interest_accrue(day=today())

    again = interest_accrue(day=today())

    assert (again.borrowers, again.charged, again.skipped, again.total) == (1, 0, 1, 0)
    assert interest_journals(borrower).count() == 1
    assert account_interest_accrue(account_id=borrower.pk, day=today()) is None
    borrower.refresh_from_db()
    assert borrower.cash_balance == Decimal("-36508")
    assert ledger_reconcile().ok


def test_a_day_is_charged_on_its_own_closing_balance(borrower):
    """Yesterday closed before the account borrowed: nothing is due for it."""
    yesterday = today() - timedelta(days=1)

    run = interest_accrue(day=yesterday)

    assert (run.borrowers, run.charged) == (0, 0)
    assert not interest_journals(borrower).exists()
    assert interest_accrue(day=today()).total == Decimal("8")


def test_accounts_that_do_not_borrow_are_untouched(borrower, staff, non_custodial_account):
    saver = borrowing(staff, deposit="10000", contracts="1000")
    credit_cash(non_custodial_account, "500")

    run = interest_accrue(day=today())

    assert run.borrowers == run.charged == 1
    assert not Journal.objects.filter(kind=Journal.Kind.INTEREST).exclude(account=borrower)
    saver.refresh_from_db()
    assert saver.cash_balance == Decimal("9500")


def test_a_zero_rate_charges_nothing(borrower):
    policy = risk_policy_get()
    policy.interest_rate_annual = Decimal(0)
    policy.save()

    run = interest_accrue(day=today())

    assert (run.borrowers, run.charged, run.total) == (0, 0, 0)
    assert not Journal.objects.filter(kind=Journal.Kind.INTEREST).exists()


def test_the_amount_is_rounded_half_even_to_the_micro_dollar():
    assert interest_for_day(used_margin=Decimal("1000"), rate_annual=Decimal("0.08")) == Decimal(
        "0.219178"  # 0.2191780821…
    )
    # Exactly half a micro-dollar rounds to the even neighbour, not up.
    half = {"rate_annual": Decimal("0.0365")}
    assert interest_for_day(used_margin=Decimal("0.025"), **half) == Decimal("0.000002")
    assert interest_for_day(used_margin=Decimal("0.035"), **half) == Decimal("0.000004")


def test_dust_interest_that_rounds_to_zero_is_not_posted(db, staff):
    account = borrowing(staff, deposit="0.5", contracts="1.002", price="0.5")
    assert account.cash_balance == Decimal("-0.001")

    run = interest_accrue(day=today())

    assert (run.borrowers, run.charged, run.skipped) == (1, 0, 1)
    assert not interest_journals(account).exists()


def test_one_failing_account_does_not_stop_the_others(borrower, staff, monkeypatch):
    other = borrowing(staff, deposit="10000", contracts="93000")
    real_post = interest_service.journal_post

    def failing_for_borrower(**kwargs):
        if kwargs["account"].pk == borrower.pk:
            raise RuntimeError("database hiccup")
        return real_post(**kwargs)

    monkeypatch.setattr(interest_service, "journal_post", failing_for_borrower)
    run = interest_accrue(day=today())

    assert (run.borrowers, run.charged, run.failed, run.total) == (2, 1, 1, Decimal("8"))
    assert interest_journals(other).count() == 1
    assert not interest_journals(borrower).exists()

    monkeypatch.setattr(interest_service, "journal_post", real_post)
    retry = interest_accrue(day=today())
    assert (retry.charged, retry.skipped, retry.failed) == (1, 1, 0)
    assert ledger_reconcile().ok


def test_a_day_that_has_not_begun_cannot_accrue(borrower):
    with pytest.raises(InvalidParams):
        interest_accrue(day=today() + timedelta(days=1))
    assert not Journal.objects.filter(kind=Journal.Kind.INTEREST).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_charge_once(staff):
    account = borrowing(staff, deposit="10000", contracts="93000")
    runs, errors = together(lambda: interest_accrue(day=today()), 4)
    assert errors == []
    assert sum(r.charged for r in runs) == 1
    assert sum(r.failed for r in runs) == 0
    assert Posting.objects.filter(journal__kind=Journal.Kind.INTEREST).count() == 2
    account.refresh_from_db()
    assert account.cash_balance == Decimal("-36508")
    assert ledger_reconcile().ok


def test_the_daily_task_accrues_yesterday_by_default_or_a_given_day(borrower):
    yesterday = (today() - timedelta(days=1)).isoformat()

    assert interest_accrue_daily_task.delay().get()["day"] == yesterday
    result = interest_accrue_daily_task.delay(day=today().isoformat()).get()

    assert result == {
        "day": today().isoformat(),
        "rate_annual": "0.080000",
        "borrowers": 1,
        "charged": 1,
        "skipped": 0,
        "failed": 0,
        "total": "8.000000",
    }
    assert interest_accrue_daily_task.delay(day=today().isoformat()).get()["charged"] == 0


def test_the_daily_task_catches_up_days_a_lost_run_missed(staff, monkeypatch, settings):
    """The account borrows 36,500 today; the run meant to charge today (sent tomorrow)
    is lost. Two days on, the daily run charges yesterday and makes up the lost day,
    once; a day beyond INTEREST_CATCH_UP_DAYS is left alone."""
    account = borrowing(staff, deposit="10000", contracts="93000")
    borrowed_on = today()
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(days=2))
    settings.INTEREST_CATCH_UP_DAYS = 2

    result = interest_accrue_daily_task.delay().get()

    assert result["day"] == (borrowed_on + timedelta(days=1)).isoformat()
    assert result["caught_up"] == {borrowed_on.isoformat(): 1}
    days = sorted(
        key.rsplit(":", 1)[1]
        for key in Journal.objects.filter(kind=Journal.Kind.INTEREST, account=account).values_list(
            "idempotency_key", flat=True
        )
    )
    assert days == [borrowed_on.isoformat(), (borrowed_on + timedelta(days=1)).isoformat()]
    assert "caught_up" not in interest_accrue_daily_task.delay().get()  # once
    settings.INTEREST_CATCH_UP_DAYS = 1
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(days=5))
    interest_accrue_daily_task.delay().get()  # days 2 and 3 are beyond its reach
    assert Journal.objects.filter(kind=Journal.Kind.INTEREST, account=account).count() == 3
    assert ledger_reconcile().ok
