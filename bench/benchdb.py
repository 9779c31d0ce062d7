"""What every benchmark needs around its run: its own PostgreSQL database and Redis keys."""

import sys
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import psycopg


def database_recreate(url: str) -> str:
    """Drop and create the benchmark database named by `url`; return its name.

    Refuses any database whose name does not start with "bench".
    """
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("bench"):
        sys.exit(f"Refusing to drop database {name!r}: DATABASE_URL must name a bench* database.")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def database_drop(url: str, name: str) -> None:
    from django.db import connections

    connections.close_all()
    maintenance = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_keys_delete() -> None:
    """Delete every Redis key under this run's prefix."""
    from django.conf import settings

    from portal.redis import redis_client

    client = redis_client()
    for key in client.scan_iter(match=f"{settings.KEY_PREFIX}*", count=1000):
        client.delete(key)


def funded_account_create(*, email: str, funding: Decimal):
    """A custodial account of a KYB-approved user, opened with `account_open` and funded
    with `funding` USDC by a balanced deposit journal (a reconcilable ledger)."""
    from django.db import transaction

    from accounts.models import Account, HouseAccount, Journal, User
    from accounts.services.accounts import account_open
    from accounts.services.ledger import (
        Line,
        cash_ledger_account,
        house_ledger_account,
        journal_post,
    )

    owner = User.objects.create_user(email=email, kyb_status=User.KybStatus.APPROVED)
    account = account_open(owner=owner, kind=Account.Kind.CUSTODIAL)
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        journal_post(
            kind=Journal.Kind.DEPOSIT,
            account=locked,
            memo="benchmark funding",
            lines=[
                Line(cash_ledger_account(locked), funding),
                Line(house_ledger_account(HouseAccount.PAYMENT_CLEARING), -funding),
            ],
        )
    account.refresh_from_db()
    return account
