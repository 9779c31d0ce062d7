"""Daily interest on Used Margin (SPEC §2: "used margin accrues interest daily").

For a day D (UTC), every custodial account that closed D borrowing pays
UM × annual rate / 365, where UM = −cash at the close of D as the ledger
says it (the sum of its cash postings made before midnight). Using the
closing balance rather than the balance whenever the run happens keeps the
charge right for a run that starts late or is replayed for a past day.
Interest posted for D lands after midnight, so it counts in D+1's balance
(daily compounding).

The amount is rounded half-even to the micro-dollar: unbiased, neither in
the customer's nor the broker's favour on average; an amount that rounds
to zero is not charged. Each charge is one INTEREST journal (customer cash
−interest, the broker's interest income +interest) with the idempotency key
`interest:<account public id>:<YYYY-MM-DD>`, so an account pays a day once
however often the run is repeated or raced.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Account, HouseAccount, Journal, LedgerAccount, Posting
from accounts.services.ledger import Line, cash_ledger_account, house_ledger_account, journal_post
from portal import format as fmt
from portal.errors import Conflict, ErrorCode, InvalidParams, NotFound
from portal.money import ZERO, quantize_money
from trading.selectors import risk_policy_get

logger = logging.getLogger(__name__)

DAYS_PER_YEAR = Decimal(365)


@dataclass(frozen=True)
class InterestCharge:
    """One account's interest for one day, as posted."""

    account_id: int
    day: date
    used_margin: Decimal
    interest: Decimal
    journal: Journal


@dataclass(frozen=True)
class InterestRun:
    """What one accrual run for `day` did."""

    day: date
    rate_annual: Decimal
    borrowers: int = 0  # custodial accounts with Used Margin at the close of `day`
    charged: int = 0  # journals this run posted
    skipped: int = 0  # already charged for `day`, or nothing due once locked
    failed: int = 0  # errors, logged; a later run retries them
    total: Decimal = ZERO  # interest this run posted

    def as_dict(self) -> dict[str, str | int]:
        return {
            "day": self.day.isoformat(),
            "rate_annual": str(self.rate_annual),
            "borrowers": self.borrowers,
            "charged": self.charged,
            "skipped": self.skipped,
            "failed": self.failed,
            "total": str(self.total),
        }


def interest_for_day(*, used_margin: Decimal, rate_annual: Decimal) -> Decimal:
    """One day's interest on `used_margin`: UM × rate / 365, half-even to the micro-dollar."""
    return quantize_money(used_margin * rate_annual / DAYS_PER_YEAR, rounding=ROUND_HALF_EVEN)


def interest_idempotency_key(*, account: Account, day: date) -> str:
    return f"interest:{account.public_id}:{day.isoformat()}"


def interest_accrue(*, day: date) -> InterestRun:
    """Charge every custodial account that closed `day` borrowing its interest for it.

    Uses the risk policy's current annual rate; a zero rate charges nothing.
    Accounts already charged for `day` are skipped up front; each other one
    is charged by `account_interest_accrue` in its own transaction under its
    own row lock, so an error on one account is logged and counted in
    `failed` and does not stop the rest (a re-run retries it). Idempotent
    per account per day. Raises InvalidParams for a day that has not begun.
    """
    _day_check(day)
    rate = risk_policy_get().interest_rate_annual
    if rate == ZERO:
        return InterestRun(day=day, rate_annual=rate)
    borrowers = _closing_cash_of_borrowers(close=_day_close(day))
    accounts = Account.objects.in_bulk(list(borrowers))
    keys = {pk: interest_idempotency_key(account=accounts[pk], day=day) for pk in borrowers}
    posted = set(
        Journal.objects.filter(idempotency_key__in=keys.values()).values_list(
            "idempotency_key", flat=True
        )
    )
    charged = skipped = failed = 0
    total = ZERO
    for account_id in sorted(borrowers):
        if keys[account_id] in posted:
            skipped += 1
            continue
        try:
            charge = account_interest_accrue(account_id=account_id, day=day, rate_annual=rate)
        except Exception:
            logger.exception("interest: charging account %s for %s failed", account_id, day)
            failed += 1
            continue
        if charge is None:
            skipped += 1
        else:
            charged += 1
            total += charge.interest
    return InterestRun(
        day=day,
        rate_annual=rate,
        borrowers=len(borrowers),
        charged=charged,
        skipped=skipped,
        failed=failed,
        total=total,
    )


def interest_accrue_recent(*, until: date, days: int) -> list[InterestRun]:
    """`interest_accrue` for each of the `days` days up to `until`, oldest first: the
    daily run's catch-up (a day whose run was lost, or an account whose charge failed,
    is charged by a later run; days already charged are skipped up front)."""
    return [interest_accrue(day=until - timedelta(days=back)) for back in reversed(range(days))]


def account_interest_accrue(
    *, account_id: int, day: date, rate_annual: Decimal | None = None
) -> InterestCharge | None:
    """Charge one account its interest for `day`; return the charge, or None.

    Runs in its own transaction holding the account row lock
    (select_for_update), so every journal of the account made before it is
    committed and counted. The rate defaults to the risk policy's. Returns
    None when nothing is due (not custodial, not borrowing at the close of
    `day`, or an amount that rounds to zero) or the day was already charged:
    the key is checked under the lock, and a concurrent insert of the same
    key is caught, not raised. Raises InvalidParams for a day that has not
    begun, NotFound for an unknown account.
    """
    _day_check(day)
    rate = risk_policy_get().interest_rate_annual if rate_annual is None else rate_annual
    with transaction.atomic():
        try:
            account = Account.objects.select_for_update().get(pk=account_id)
        except Account.DoesNotExist as exc:
            raise NotFound(f"No account {account_id}.") from exc
        key = interest_idempotency_key(account=account, day=day)
        if Journal.objects.filter(idempotency_key=key).exists():
            return None
        cash = _closing_cash_of_borrowers(close=_day_close(day), account_id=account.pk).get(
            account.pk
        )
        if cash is None:
            return None
        used_margin = -cash
        interest = interest_for_day(used_margin=used_margin, rate_annual=rate)
        if interest <= ZERO:
            return None
        try:
            journal = journal_post(
                kind=Journal.Kind.INTEREST,
                account=account,
                memo=(
                    f"Interest for {fmt.day(day)}: {fmt.percent(rate, 2)} a year on Used "
                    f"Margin of {fmt.usdc(used_margin)}"
                ),
                idempotency_key=key,
                lines=[
                    Line(cash_ledger_account(account), -interest),
                    Line(house_ledger_account(HouseAccount.INTEREST_INCOME), interest),
                ],
            )
        except Conflict as exc:
            if exc.error is not ErrorCode.ALREADY_POSTED:
                raise
            return None
    return InterestCharge(
        account_id=account.pk, day=day, used_margin=used_margin, interest=interest, journal=journal
    )


def _day_check(day: date) -> None:
    if day > timezone.now().date():
        raise InvalidParams(f"Interest for {day.isoformat()} cannot accrue before the day begins.")


def _day_close(day: date) -> datetime:
    """The end of `day` (UTC midnight after it), or now while the day is still running."""
    return min(
        datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC),
        timezone.now(),
    )


def _closing_cash_of_borrowers(
    *, close: datetime, account_id: int | None = None
) -> dict[int, Decimal]:
    """Cash below zero at `close`, by account id: custodial accounts (or the one
    `account_id`) whose cash postings journaled before `close` sum below zero."""
    postings = Posting.objects.filter(
        ledger_account__purpose=LedgerAccount.Purpose.CASH,
        ledger_account__account__kind=Account.Kind.CUSTODIAL,
        journal__created_at__lt=close,
    )
    if account_id is not None:
        postings = postings.filter(ledger_account__account_id=account_id)
    return dict(
        postings.values("ledger_account__account_id")
        .annotate(total=Sum("amount"))
        .filter(total__lt=0)
        .order_by()
        .values_list("ledger_account__account_id", "total")
    )
