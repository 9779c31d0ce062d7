"""Shared fixtures: real PostgreSQL (pytest-django) and real Redis."""

import threading
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection, transaction

from accounts.models import Account, HouseAccount, Journal
from accounts.services.ledger import Line, cash_ledger_account, house_ledger_account, journal_post
from portal.refdata import refdata_clear
from tests.error_codes import ErrorRecorder
from tests.factories import StaffFactory, UserFactory, open_account
from tests.venue_guard import GUARD, venue_calls_guard


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail a test whose code calls a venue inside a transaction (tests/venue_guard.py):
    the test's own wrapping transactions, open by now, are the allowed depth."""
    venue_calls_guard()
    GUARD.main_thread = threading.get_ident()
    GUARD.baseline = len(connection.atomic_blocks)
    try:
        return (yield)
    finally:
        GUARD.main_thread = None


@pytest.fixture(autouse=True, scope="session")
def _redis_clean_after_session():
    """Delete every key this test process wrote (its own prefix) at the end."""
    yield
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"{settings.KEY_PREFIX}*", count=1000):
        client.delete(key)


@pytest.fixture(autouse=True)
def _key_failures_forgotten():
    """Each test starts with no failed API key attempts counted against any address
    (they are per client address, and every test client is 127.0.0.1)."""
    from portal.redis import redis_client, redis_key

    client = redis_client()
    for key in client.scan_iter(match=redis_key("api", "key-failures", "*"), count=1000):
        client.delete(key)


@pytest.fixture(autouse=True, scope="session")
def _flush_past_the_ledger_guard():
    """Transactional tests end with Django's flush (TRUNCATE of every table), which the
    ledger refuses (accounts 0009): the test database's superuser switches triggers off
    for that statement only, as an operator would to empty a ledger on purpose."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    flush = DatabaseOperations.execute_sql_flush

    def flush_with_triggers_off(self, sql_list):
        with self.connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
        try:
            flush(self, sql_list)
        finally:
            with self.connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")

    DatabaseOperations.execute_sql_flush = flush_with_triggers_off
    yield
    DatabaseOperations.execute_sql_flush = flush


@pytest.fixture(autouse=True)
def _refdata_fresh():
    """Each test reads reference data from its own database state, not an earlier test's."""
    refdata_clear()
    yield
    refdata_clear()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture(autouse=True)
def _error_codes_declared(monkeypatch):
    """Fails a test in which a /v1 operation answered an error code its OpenAPI
    operation does not list (tests/error_codes.py; tests/api/test_error_codes.py)."""
    recorder = ErrorRecorder.patched(monkeypatch)
    yield recorder
    problems = recorder.undeclared()
    if problems:
        pytest.fail("Error codes missing from the schema:\n" + "\n".join(problems))


@pytest.fixture
def custodial_account(db) -> Account:
    return open_account(kind=Account.Kind.CUSTODIAL)


@pytest.fixture
def non_custodial_account(db) -> Account:
    return open_account(kind=Account.Kind.NON_CUSTODIAL)


def credit_cash(account: Account, amount: Decimal | str, memo: str = "test funding") -> Journal:
    """Credit cash from the payment clearing account with a balanced journal."""
    amount = Decimal(amount)
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        journal = journal_post(
            kind=Journal.Kind.DEPOSIT,
            account=locked,
            memo=memo,
            lines=[
                Line(cash_ledger_account(locked), amount),
                Line(house_ledger_account(HouseAccount.PAYMENT_CLEARING), -amount),
            ],
        )
    account.refresh_from_db(fields=["cash_balance"])
    return journal
