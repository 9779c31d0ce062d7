"""The ledger: balanced by the database, append-only, balances reconciled."""

import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from accounts.models import Account, HouseAccount, Journal, LedgerAccount, Posting
from accounts.services.ledger import (
    Line,
    UnbalancedJournal,
    cash_balance_from_ledger,
    cash_ledger_account,
    house_ledger_account,
    journal_post,
)
from accounts.services.reconciliation import ledger_reconcile
from accounts.tasks import ledger_reconcile_task
from tests.conftest import credit_cash
from tests.factories import open_account

pytestmark = pytest.mark.django_db


def _raw_insert_unbalanced(account: Account) -> None:
    """Write an unbalanced journal straight to the tables, bypassing the service."""
    cash = cash_ledger_account(account)
    journal = Journal.objects.create(kind=Journal.Kind.DEPOSIT, account=account)
    Posting.objects.create(journal=journal, ledger_account=cash, amount=Decimal("10"))
    Posting.objects.create(
        journal=journal,
        ledger_account=house_ledger_account(HouseAccount.PAYMENT_CLEARING),
        amount=Decimal("-9.99"),
    )


def test_unbalanced_journal_rejected_by_database_at_commit(custodial_account):
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        _raw_insert_unbalanced(custodial_account)
        # Deferred triggers run at commit; force them now inside the test's transaction.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert not Posting.objects.exists()


def test_single_posting_journal_rejected_by_database(custodial_account):
    with pytest.raises(IntegrityError, match="at least two"), transaction.atomic():
        journal = Journal.objects.create(kind=Journal.Kind.DEPOSIT, account=custodial_account)
        Posting.objects.create(
            journal=journal,
            ledger_account=cash_ledger_account(custodial_account),
            amount=Decimal("5"),
        )
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.django_db(transaction=True)
def test_unbalanced_journal_rejected_on_real_commit():
    account = open_account()
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        _raw_insert_unbalanced(account)
    assert Posting.objects.count() == 0
    assert Journal.objects.count() == 0


def test_service_refuses_unbalanced_lines(custodial_account):
    cash = cash_ledger_account(custodial_account)
    house = house_ledger_account(HouseAccount.PAYMENT_CLEARING)
    cases = [
        [Line(cash, Decimal("1")), Line(house, Decimal("-0.5"))],
        [Line(cash, Decimal("1"))],
        [Line(cash, Decimal("0")), Line(house, Decimal("0"))],
        [Line(cash, Decimal("0.0000001")), Line(house, Decimal("-0.0000001"))],
    ]
    for lines in cases:
        with pytest.raises(UnbalancedJournal), transaction.atomic():
            journal_post(kind=Journal.Kind.DEPOSIT, lines=lines)
    assert not Journal.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_service_requires_a_transaction():
    account = open_account()
    lines = [
        Line(cash_ledger_account(account), Decimal("1")),
        Line(house_ledger_account(HouseAccount.PAYMENT_CLEARING), Decimal("-1")),
    ]
    with pytest.raises(RuntimeError, match=r"transaction\.atomic"):
        journal_post(kind=Journal.Kind.DEPOSIT, lines=lines)
    assert not Journal.objects.exists()


def test_postings_cannot_be_updated_or_deleted(custodial_account):
    journal = credit_cash(custodial_account, "100")
    posting = journal.postings.first()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Posting.objects.filter(pk=posting.pk).update(amount=Decimal("1000"))
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Posting.objects.filter(pk=posting.pk).delete()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Journal.objects.filter(pk=journal.pk).update(memo="rewritten")
    posting.refresh_from_db()
    assert posting.amount in (Decimal("100"), Decimal("-100"))


def test_cash_balance_is_sum_of_postings_and_cache_matches(custodial_account):
    credit_cash(custodial_account, "250.5")
    credit_cash(custodial_account, "49.5")
    assert cash_balance_from_ledger(custodial_account) == Decimal("300")
    assert custodial_account.cash_balance == Decimal("300")
    report = ledger_reconcile()
    assert report.ok, report.summary()
    assert report.accounts_checked == 1


def test_reconciliation_detects_a_tampered_cache(custodial_account):
    credit_cash(custodial_account, "100")
    Account.objects.filter(pk=custodial_account.pk).update(cash_balance=Decimal("100.01"))
    report = ledger_reconcile()
    assert not report.ok
    (mismatch,) = report.mismatches
    assert mismatch.account_public_id == custodial_account.public_id
    assert (mismatch.cached, mismatch.ledger) == (Decimal("100.01"), Decimal("100"))
    with pytest.raises(SystemExit) as exit_info:
        call_command("reconcile_ledger")
    assert exit_info.value.code == 1
    assert ledger_reconcile_task() == {
        "ok": False,
        "accounts_checked": 1,
        "mismatches": [custodial_account.public_id],
        "hold_mismatches": [],
        "unbalanced_journals": [],
    }


def test_reconcile_command_succeeds_on_clean_ledger(custodial_account, capsys):
    credit_cash(custodial_account, "1")
    call_command("reconcile_ledger")
    assert "all balances match" in capsys.readouterr().out


def test_every_account_has_exactly_one_cash_ledger_account(custodial_account):
    cash_ledger_account(custodial_account)
    assert (
        LedgerAccount.objects.filter(
            account=custodial_account, purpose=LedgerAccount.Purpose.CASH
        ).count()
        == 1
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_credits_never_lose_an_update():
    account = open_account()
    errors = []

    def worker():
        try:
            for _ in range(5):
                credit_cash(account, "1.000001")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    account.refresh_from_db()
    assert account.cash_balance == Decimal("40.000040")
    assert cash_balance_from_ledger(account) == account.cash_balance
    assert ledger_reconcile().ok


@pytest.mark.django_db(transaction=True)
def test_the_ledger_refuses_truncate():
    account = open_account()
    credit_cash(account, "100")
    for table in ("accounts_posting", "accounts_journal"):
        with (
            pytest.raises(IntegrityError, match="append-only: TRUNCATE"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"TRUNCATE {table} CASCADE")
    assert cash_balance_from_ledger(account) == Decimal("100")


@pytest.mark.django_db(transaction=True)
def test_a_committed_journal_takes_no_more_postings_even_balanced_ones():
    account = open_account()
    journal = credit_cash(account, "100")  # committed
    cash = cash_ledger_account(account)
    house = house_ledger_account(HouseAccount.PAYMENT_CLEARING)
    with (
        pytest.raises(IntegrityError, match=f"journal {journal.pk} is sealed"),
        transaction.atomic(),
    ):
        Posting.objects.create(journal=journal, ledger_account=cash, amount=Decimal("50"))
        Posting.objects.create(journal=journal, ledger_account=house, amount=Decimal("-50"))
    assert cash_balance_from_ledger(account) == Decimal("100")
    assert journal.postings.count() == 2
    # The ledger's one writer still posts, also inside a savepoint (idempotency keys).
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        journal_post(
            kind=Journal.Kind.DEPOSIT,
            account=locked,
            idempotency_key="sealed-journals-test",
            lines=[Line(cash, Decimal("5")), Line(house, Decimal("-5"))],
        )
    assert cash_balance_from_ledger(account) == Decimal("105")
