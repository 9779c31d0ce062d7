"""Resolution and settlement of binary markets (SPEC §3).

Ops resolve a market YES, NO or void (`instrument_resolve`, from the admin):
the market stops trading at once, its active orders are cancelled, and the
`trading.market_settle` task (an outbox item of the same transaction, re-sent
until it has run) pays every position out into cash
(`market_settle`): 1 USDC per winning contract, 0 per losing one, and on a
void market each position's cost back at its average price.

Exactly once: each position is settled under its account's row lock and its
own row lock, only while its quantity is still > 0, and its journal carries
the idempotency key ``settle:<position id>:<its last change>``; a second run
(or two concurrent runs) finds nothing left to pay. An order at a venue when the
market resolves keeps its contracts (a sell) until the venue answers; the
answer's booking asks for another run (`trading.services.execute`), which
settles what it left or added.
"""

import logging
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Account, HouseAccount, Journal, User
from accounts.services.audit import audit_record
from accounts.services.ledger import (
    Line,
    accounts_changed_mark,
    cash_ledger_account,
    house_ledger_account,
    journal_post,
)
from portal import format as fmt
from portal.errors import Conflict, ErrorCode, Forbidden, InvalidParams, NotFound
from portal.money import ZERO, quantize_money
from trading.enqueue import market_settle_enqueue
from trading.models import Instrument, Position
from trading.services.order_status import orders_cancel_for_instrument
from trading.services.simulation import held_at_venue

logger = logging.getLogger(__name__)


@dataclass
class SettlementRun:
    """What one `market_settle` call did."""

    instrument_id: int
    positions_settled: int = 0
    paid_out: Decimal = ZERO
    account_ids: list[int] = field(default_factory=list)
    already_settled: bool = False

    def as_dict(self) -> dict[str, int | str | bool]:
        return {
            "instrument_id": self.instrument_id,
            "positions_settled": self.positions_settled,
            "paid_out": str(self.paid_out),
            "accounts": len(self.account_ids),
            "already_settled": self.already_settled,
        }


def settlement_payout(*, position: Position, resolution: str, quantity: Decimal) -> Decimal:
    """What `quantity` contracts of one binary position are paid on resolution, in
    USDC (rounded down).

    1 per contract of the winning outcome, 0 for the losing one; on a void
    market their cost back at the position's average price.
    """
    if resolution == Instrument.Resolution.VOID:
        return quantize_money(quantity * position.average_price, rounding=ROUND_DOWN)
    if position.outcome == resolution:
        return quantize_money(quantity, rounding=ROUND_DOWN)
    return ZERO


def instrument_resolve(
    *,
    instrument: Instrument,
    resolution: str,
    actor: User,
    request: HttpRequest | None = None,
) -> Instrument:
    """Resolve a binary market YES / NO / void and schedule its settlement.

    Staff only (Forbidden otherwise). Under the instrument's row lock: the
    market must be binary (InvalidParams) and not resolved yet (Conflict
    `already_resolved`); it becomes `resolved` with `resolution` and
    `resolved_at`, every active order in it is cancelled, and the change is
    audited, all in one transaction, with an outbox item for the
    `trading.market_settle` task (re-sent until it has run; settlement is
    idempotent, so a repeated run is harmless). Returns the locked, updated
    instrument.
    """
    if actor is None or not actor.is_staff:
        raise Forbidden("Only operations staff can resolve a market.")
    try:
        resolution = Instrument.Resolution(str(resolution).strip().lower())
    except ValueError as exc:
        raise InvalidParams(
            f"A market resolves 'yes', 'no' or 'void', not {resolution!r}."
        ) from exc
    with transaction.atomic():
        locked = Instrument.objects.select_for_update().filter(pk=instrument.pk).first()
        if locked is None:
            raise NotFound(f"Unknown instrument {instrument.pk}.")
        if not locked.is_binary:
            raise InvalidParams(f"{locked.symbol} is a perpetual: only binary markets resolve.")
        if locked.status == Instrument.Status.RESOLVED:
            raise Conflict(
                f"{locked.symbol} has already resolved {locked.get_resolution_display()}.",
                code=ErrorCode.ALREADY_RESOLVED,
            )
        before = {"status": locked.status, "resolution": locked.resolution}
        locked.status = Instrument.Status.RESOLVED
        locked.resolution = resolution
        locked.resolved_at = timezone.now()
        locked.save(update_fields=["status", "resolution", "resolved_at"])
        cancelled = orders_cancel_for_instrument(
            instrument=locked, reason=f"The market resolved {resolution.label}."
        )
        audit_record(
            actor=actor,
            action="instrument.resolve",
            obj=locked,
            changes={
                "status": [before["status"], locked.status],
                "resolution": [before["resolution"], locked.resolution],
                "orders_cancelled": [None, len(cancelled)],
            },
            request=request,
        )
        market_settle_enqueue(instrument_id=locked.pk)
    return locked


def _position_settle(*, position_id: int, resolution: str, symbol: str) -> Decimal | None:
    """Settle one position in its own transaction; None when there was nothing to do.

    Locks the account row, then the position row (the order every fill path
    uses), and re-reads the quantity under the lock. Contracts the account's
    sells at a venue hold stay in the position until the venue answers: its
    fill sells them, its refusal leaves them to the next run (the answer's
    booking asks for one).
    """
    with transaction.atomic():
        account_id = Position.objects.values_list("account_id", flat=True).get(pk=position_id)
        account = Account.objects.select_for_update().get(pk=account_id)
        position = Position.objects.select_for_update().get(pk=position_id)
        at_venue = held_at_venue(
            account, instrument_id=position.instrument_id, outcome=position.outcome
        )
        quantity = position.quantity - at_venue
        if quantity <= 0:
            return None
        payout = settlement_payout(position=position, resolution=resolution, quantity=quantity)
        cost = quantity * position.average_price
        # One key per settlement of the position as it stands (a position a late
        # venue fill re-opened after an earlier settlement is settled again).
        key = f"settle:{position.pk}:{position.updated_at.timestamp():.6f}"
        if payout:
            journal_post(
                kind=Journal.Kind.SETTLEMENT,
                account=account,
                memo=(
                    f"Settlement of {fmt.quantity(quantity)} {symbol} "
                    f"{position.outcome.upper()}: the market resolved {resolution.upper()}"
                ),
                idempotency_key=key,
                lines=[
                    Line(cash_ledger_account(account), payout),
                    Line(house_ledger_account(HouseAccount.VENUE_SETTLEMENT), -payout),
                ],
            )
        else:
            # Nothing moves in cash, so no journal tells the margin engine.
            transaction.on_commit(
                lambda: accounts_changed_mark(account_ids=[account_id]), robust=True
            )
        position.realized_pnl += quantize_money(payout - cost)
        position.quantity = at_venue
        position.updated_at = timezone.now()
        position.save(update_fields=["quantity", "realized_pnl", "updated_at"])
    return payout


def market_settle(*, instrument_id: int) -> SettlementRun:
    """Pay out every open position of a resolved binary market, once; return what it did.

    Each position settles in its own transaction under its account lock
    (see the module docstring), so a failure leaves the others settled and a
    re-run finishes the rest. When none is left open the instrument's
    `settled_at` is set; a position a venue's late answer opened or left open
    after that (an order that was at the venue at resolution) is settled by
    the run its booking asks for. Safe to run twice or concurrently. Raises NotFound
    for an unknown instrument and Conflict `not_resolved` for one that has
    not resolved.
    """
    instrument = Instrument.objects.filter(pk=instrument_id).first()
    if instrument is None:
        raise NotFound(f"Unknown instrument {instrument_id}.")
    if instrument.status != Instrument.Status.RESOLVED:
        raise Conflict(f"{instrument.symbol} has not resolved.", code=ErrorCode.NOT_RESOLVED)
    run = SettlementRun(instrument_id=instrument.pk)
    open_positions = Position.objects.filter(instrument=instrument, quantity__gt=0).values_list(
        "pk", "account_id"
    )
    if instrument.settled_at is not None and not open_positions.exists():
        run.already_settled = True
        return run
    for position_id, account_id in open_positions.order_by("account_id", "pk"):
        payout = _position_settle(
            position_id=position_id, resolution=instrument.resolution, symbol=instrument.symbol
        )
        if payout is None:
            continue
        run.positions_settled += 1
        run.paid_out += payout
        if account_id not in run.account_ids:
            run.account_ids.append(account_id)
    with transaction.atomic():
        locked = Instrument.objects.select_for_update().get(pk=instrument.pk)
        if locked.settled_at is None:
            if Position.objects.filter(instrument=locked, quantity__gt=0).exists():
                logger.warning("%s: positions still open after settlement.", locked.symbol)
            else:
                locked.settled_at = timezone.now()
                locked.save(update_fields=["settled_at"])
    logger.info("Settled %s: %s", instrument.symbol, run.as_dict())
    return run


def markets_settle_due() -> list[int]:
    """The safety net: settle every resolved market that still has a position to pay
    out (one a venue's late answer opened or left after its settlement ran); return
    their instrument ids. Safe to run twice or concurrently (`market_settle`)."""
    due = list(
        Position.objects.filter(instrument__status=Instrument.Status.RESOLVED, quantity__gt=0)
        .values_list("instrument_id", flat=True)
        .distinct()
        .order_by("instrument_id")
    )
    settled = []
    for instrument_id in due:
        if market_settle(instrument_id=instrument_id).positions_settled:
            settled.append(instrument_id)
    return settled
