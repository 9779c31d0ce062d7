"""The one module that writes the ledger.

`journal_post` is the only code path that creates journals and postings.
It checks in Python what PostgreSQL also enforces at commit (the journal sums
to zero, has two or more lines, amounts at USDC precision and non-zero) and
keeps each customer's cached `Account.cash_balance` equal to the sum of its
cash postings, in the same transaction.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Sum

from accounts.models import Account, HouseAccount, Journal, LedgerAccount, Posting, User
from portal.db import row_add
from portal.errors import Conflict, ErrorCode
from portal.money import ZERO, quantize_money
from portal.redis import redis_client, redis_key
from portal.refdata import refdata_get
from portal.shards import shard_of, shards_count


class UnbalancedJournal(ValueError):
    """A journal whose lines do not sum to zero (a programming error)."""


@dataclass(frozen=True)
class Line:
    ledger_account: LedgerAccount
    amount: Decimal


def cash_ledger_account(account: Account) -> LedgerAccount:
    """The customer's cash ledger account (created with the account).

    Ledger accounts never change once created: cached per process
    (`portal.refdata`), like the house accounts.
    """
    lookup = {"account_id": account.pk, "purpose": LedgerAccount.Purpose.CASH}
    return refdata_get(
        "cash_ledger_account",
        account.pk,
        lambda: LedgerAccount.objects.filter(**lookup).first(),
        lambda: LedgerAccount.objects.get_or_create(
            **lookup,
            defaults={
                "code": f"cash:{account.public_id}",
                "name": f"Cash of {account.public_id}",
            },
        )[0],
    )


def house_ledger_account(house: HouseAccount) -> LedgerAccount:
    """One of the broker's own ledger accounts, created on first use."""
    return refdata_get(
        "house_ledger_account",
        house.value,
        lambda: LedgerAccount.objects.filter(code=house.value).first(),
        lambda: LedgerAccount.objects.get_or_create(
            code=house.value,
            defaults={"name": house.label, "purpose": LedgerAccount.Purpose.HOUSE},
        )[0],
    )


def _validated(lines: Sequence[Line]) -> list[Line]:
    if len(lines) < 2:
        raise UnbalancedJournal("A journal needs at least two lines.")
    checked = []
    for line in lines:
        amount = Decimal(line.amount)
        if amount == ZERO:
            raise UnbalancedJournal("A journal line cannot be zero.")
        if quantize_money(amount) != amount:
            raise UnbalancedJournal(f"{amount} has more than USDC precision.")
        checked.append(Line(line.ledger_account, amount))
    total = sum((line.amount for line in checked), ZERO)
    if total != ZERO:
        raise UnbalancedJournal(f"Journal lines sum to {total}, not zero.")
    return checked


def journal_post(
    *,
    kind: Journal.Kind,
    lines: Sequence[Line],
    account: Account | None = None,
    memo: str = "",
    idempotency_key: str | None = None,
    created_by: User | None = None,
    account_deltas: Mapping[str, Decimal] | None = None,
) -> Journal:
    """Post one balanced journal and update cached cash balances.

    Must run inside `transaction.atomic()` with every customer Account whose
    cash changes already locked (`select_for_update`) by the caller, so the
    caller's checks (funds, margin) and this write see the same balance.
    An `idempotency_key` may be posted once: a second use raises Conflict.
    If `account` is given, its in-memory `cash_balance` is refreshed, and
    `account_deltas` (other numeric columns of its row: a fill's lifetime
    volume, the order reservation it releases) are added in the same UPDATE.
    """
    if account_deltas and account is None:
        raise ValueError("account_deltas need the account whose row they change.")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("journal_post must run inside transaction.atomic().")
    checked = _validated(lines)
    fields = {
        "kind": kind,
        "account": account,
        "memo": memo[:255],
        "idempotency_key": idempotency_key,
        "created_by": created_by,
    }
    if idempotency_key is None:
        journal = Journal.objects.create(**fields)
    else:
        if Journal.objects.filter(idempotency_key=idempotency_key).exists():
            raise Conflict(
                f"Journal {idempotency_key!r} was already posted.", code=ErrorCode.ALREADY_POSTED
            )
        try:
            with transaction.atomic():
                journal = Journal.objects.create(**fields)
        except IntegrityError as exc:
            raise Conflict(
                f"Journal {idempotency_key!r} was already posted.", code=ErrorCode.ALREADY_POSTED
            ) from exc
    Posting.objects.bulk_create(
        Posting(journal=journal, ledger_account=line.ledger_account, amount=line.amount)
        for line in checked
    )
    cash_deltas: dict[int, Decimal] = {}
    for line in checked:
        if line.ledger_account.purpose == LedgerAccount.Purpose.CASH:
            account_id = line.ledger_account.account_id
            cash_deltas[account_id] = cash_deltas.get(account_id, ZERO) + line.amount
    extra = dict(account_deltas or {})
    if account is not None and (account.pk in cash_deltas or extra):
        # One UPDATE of the account's row; its in-memory figures follow.
        row_add(account, cash_balance=cash_deltas.get(account.pk, ZERO), **extra)
    for account_id, delta in cash_deltas.items():
        if account is not None and account_id == account.pk:
            continue
        if delta != ZERO:
            Account.objects.filter(pk=account_id).update(cash_balance=F("cash_balance") + delta)
    changed = list(cash_deltas)
    transaction.on_commit(lambda: accounts_changed_mark(account_ids=changed), robust=True)
    return journal


def accounts_changed_key(shard: int = 0) -> str:
    """Redis set of account ids whose cash or positions changed since the margin
    engine last reloaded them (every fill, deposit or withdrawal posts a journal).
    One set per engine shard (`portal.shards`); with one shard, the one set of old."""
    if shards_count() == 1:
        return redis_key("accounts", "changed")
    return redis_key("accounts", "changed", str(shard))


def accounts_changed_mark(*, account_ids: Sequence[int]) -> None:
    """Add these ids to their shards' "accounts changed" sets (one round trip)."""
    if not account_ids:
        return
    count = shards_count()
    if count == 1:
        redis_client().sadd(accounts_changed_key(), *account_ids)
        return
    by_shard: dict[int, list[int]] = {}
    for account_id in account_ids:
        by_shard.setdefault(shard_of(int(account_id), count), []).append(account_id)
    pipe = redis_client().pipeline(transaction=False)
    for shard, ids in by_shard.items():
        pipe.sadd(accounts_changed_key(shard), *ids)
    pipe.execute()


def cash_balance_from_ledger(account: Account) -> Decimal:
    """The account's cash as the ledger says it: the sum of its cash postings."""
    total = Posting.objects.filter(
        ledger_account__account=account, ledger_account__purpose=LedgerAccount.Purpose.CASH
    ).aggregate(total=Sum("amount"))["total"]
    return total if total is not None else ZERO
