"""Margin calls (SPEC §4): one record per episode of Margin Health below maintenance.

`margin_calls_sync` is the one path that opens, deepens and resolves calls.
The engine and the sweep call it for the accounts their in-memory figures
say crossed a line; it re-evaluates each from the database under the
account's row lock and acts only on what it finds there:

- health < maintenance, no open call: open one, with its Notification and an
  outbox item for `trading.margin_calls_notify` (in-app + email, exactly once
  per call) in the same transaction; a push to `account.<id>` after commit;
- health < maintenance, open call: record the lowest health;
- health < the liquidation threshold: request liquidation;
- health ≥ maintenance, open call: resolve it (notification, email, push).

While a call stays open, `margin_calls_remind` reminds every
`reminder_interval_hours` in escalating words and requests liquidation once
it has been open `grace_period_hours`. Liquidation itself is the liquidation
engine's task, `trading.account_liquidate`, requested here as an outbox item
(`trading.enqueue`: services never import tasks).
Non-custodial accounts never borrow and never get margin calls.
"""

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal

import numpy as np
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Notification
from accounts.services.notifications import (
    account_notify,
    notification_email_send_on_commit,
)
from portal import metrics
from portal.format import ratio, usdc, when
from trading import margin
from trading.broadcasts import desk_changed_broadcast, margin_calls_broadcast
from trading.enqueue import account_liquidate_enqueue, margin_calls_notify_enqueue
from trading.models import Liquidation, MarginCall, RiskPolicy
from trading.selectors import (
    margin_params_get,
    money_decimal,
    portfolio_load,
    ratio_decimal,
    risk_policy_get,
)

logger = logging.getLogger(__name__)

# The engine asks again for an account still below the threshold after this long;
# the liquidation task re-checks the account under its lock anyway.
LIQUIDATION_REQUEST_TTL_SECONDS = 60
# Accounts locked per transaction: a market-wide drop opens calls in chunks
# rather than holding thousands of account locks at once.
SYNC_CHUNK = 200
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class MarginCallState:
    """An account's margin-call standing after a sync, as verified in the database."""

    account_id: int
    health: float  # +inf when not borrowing
    adjusted_equity: Decimal
    used_margin: Decimal
    open_call: MarginCall | None  # the account's open call after the sync
    opened: bool = False  # open_call was opened by this sync
    resolved: MarginCall | None = None  # the call this sync resolved
    liquidation_requested: bool = False  # an outbox item (one unfinished per account)
    deferred: bool = False  # its prices are stale: nothing was decided (`price_stale`)


def margin_calls_sync(
    *, account_ids: Iterable[int], now: datetime | None = None
) -> list[MarginCallState]:
    """Open, deepen or resolve the margin calls of these accounts from their current health.

    Locks the custodial accounts among `account_ids` (select_for_update, in
    id order, SYNC_CHUNK per transaction) and their open calls, re-evaluates
    them from the locked rows, their positions and the quote store, and acts
    (see the module docstring). An account whose figures rest on a stale price
    is left as it is (state `deferred`): a stale price is never the basis of
    a margin call, its resolution or a liquidation. Idempotent: a second run finds the state it
    left and changes nothing. Notification tasks and liquidation requests
    are outbox items of the same transaction; pushes go after commit.
    Returns one state per custodial account.
    """
    policy = risk_policy_get()
    params = margin_params_get(policy)
    now = now or timezone.now()
    ids = sorted(set(account_ids))
    states: list[MarginCallState] = []
    for start in range(0, len(ids), SYNC_CHUNK):
        states += _sync_chunk(ids[start : start + SYNC_CHUNK], policy, params, now)
    return states


def _sync_chunk(
    ids: list[int], policy: RiskPolicy, params: margin.MarginParams, now: datetime
) -> list[MarginCallState]:
    with transaction.atomic():
        accounts = list(
            Account.objects.select_for_update()
            .filter(pk__in=ids, kind=Account.Kind.CUSTODIAL)
            .order_by("pk")
        )
        if not accounts:
            return []
        portfolio = portfolio_load(accounts=accounts)
        figures = portfolio.evaluate(params)
        stale, _ = portfolio.stale_prices()
        open_calls = {
            call.account_id: call
            for call in MarginCall.objects.select_for_update().filter(
                account_id__in=ids, status=MarginCall.Status.OPEN
            )
        }
        states: list[MarginCallState] = []
        to_open: list[tuple[Account, MarginCallState]] = []
        to_resolve: list[tuple[Account, MarginCall, Decimal | None]] = []
        for k, account in enumerate(accounts):
            health = float(figures.health[k])
            call = open_calls.get(account.pk)
            state = MarginCallState(
                account_id=account.pk,
                health=health,
                adjusted_equity=money_decimal(figures.adjusted_equity[k]),
                used_margin=money_decimal(figures.used_margin[k]),
                open_call=call,
            )
            if stale[k]:
                states.append(replace(state, deferred=True))
                continue
            if figures.status[k] != margin.MARGIN_CALL:
                if call is not None:
                    to_resolve.append((account, call, ratio_decimal(health)))
                    state = replace(state, open_call=None, resolved=call)
            elif call is None:
                to_open.append((account, state))
            elif ratio_decimal(health) < call.lowest_health:
                call.lowest_health = ratio_decimal(health)
                call.save(update_fields=["lowest_health"])
            states.append(state)
        _resolve_many(to_resolve, now=now)
        opened = {call.account_id: call for call in _open_many(to_open, policy, now)}
        result = []
        for state in states:
            if state.account_id in opened:
                state = replace(state, open_call=opened[state.account_id], opened=True)
            if state.health < params.liquidation and not state.deferred:
                account_liquidate_request(
                    account_id=state.account_id,
                    reason=Liquidation.Reason.BELOW_THRESHOLD,
                    margin_call_id=state.open_call.pk,
                )
                state = replace(state, liquidation_requested=True)
            result.append(state)
        return result


def _open_many(
    to_open: list[tuple[Account, "MarginCallState"]], policy: RiskPolicy, now: datetime
) -> list[MarginCall]:
    """Open a call for each account, with its outbox notification, in bulk.

    A market-wide move opens many calls at once: two INSERTs for all of them,
    one outbox item notifying them all, and one batch of pushes after commit.
    """
    if not to_open:
        return []
    calls = MarginCall.objects.bulk_create(
        MarginCall(
            account=account,
            opened_at=now,
            health_at_open=ratio_decimal(state.health),
            lowest_health=ratio_decimal(state.health),
            used_margin_at_open=state.used_margin,
            adjusted_equity_at_open=state.adjusted_equity,
        )
        for account, state in to_open
    )
    notifications = []
    for call, (account, _) in zip(calls, to_open, strict=True):
        title, body = _opened_message(call, account, policy)
        notifications.append(
            Notification(
                user_id=account.owner_id,
                account_id=account.pk,
                kind=Notification.Kind.MARGIN_CALL,
                title=title[:200],
                body=body,
                dedupe_key=_dedupe_key(call, "opened"),
                email=True,
            )
        )
        logger.warning(
            "Margin call %s opened on %s at health %s.",
            call.pk,
            account.public_id,
            call.health_at_open,
        )
    Notification.objects.bulk_create(notifications)
    metrics.count_on_commit(metrics.MARGIN_CALLS, len(calls), event="opened")
    _notify_enqueue([call.pk for call in calls])
    margin_calls_broadcast(calls=[(call, call.health_at_open) for call in calls])
    return calls


def _resolve_many(
    to_resolve: list[tuple[Account, MarginCall, Decimal | None]], *, now: datetime
) -> None:
    """Resolve these open calls (their accounts locked) with one notification each, in bulk."""
    if not to_resolve:
        return
    MarginCall.objects.filter(pk__in=[call.pk for _, call, _ in to_resolve]).update(
        status=MarginCall.Status.RESOLVED, resolved_at=now
    )
    notifications = []
    for account, call, health in to_resolve:
        call.status = MarginCall.Status.RESOLVED
        call.resolved_at = now
        shown = "unbounded (no borrowing)" if health is None else _health(health)
        notifications.append(
            Notification(
                user_id=account.owner_id,
                account_id=account.pk,
                kind=Notification.Kind.MARGIN_CALL_RESOLVED,
                title=f"Margin call on {account.public_id} resolved",
                body=(
                    f"Margin Health of account {account.public_id} is back at {shown}, at or "
                    f"above the maintenance requirement. The margin call opened "
                    f"{when(call.opened_at)} is resolved; no liquidation is pending."
                ),
                dedupe_key=_dedupe_key(call, "resolved"),
                email=True,
            )
        )
        logger.info("Margin call %s on %s resolved.", call.pk, account.public_id)
    notification_email_send_on_commit(notifications=Notification.objects.bulk_create(notifications))
    metrics.count_on_commit(metrics.MARGIN_CALLS, len(to_resolve), event="resolved")
    margin_calls_broadcast(calls=[(call, health) for _, call, health in to_resolve])


def margin_call_notify(*, margin_call_id: int, now: datetime | None = None) -> bool:
    """Notify the user of a margin call, exactly once per call; return whether this run did.

    Locks the call (select_for_update) and does nothing if `notified_at` is
    set. Otherwise makes sure the call's in-app notification exists (the
    outbox row written when the call opened; created now if missing), sets
    `notified_at` and, after commit, enqueues its email (sent once, by
    `emailed_at`). Safe to run twice, or twice at once. Raises
    MarginCall.DoesNotExist for an unknown id.
    """
    with transaction.atomic():
        call = (
            MarginCall.objects.select_for_update(of=("self",))
            .select_related("account")
            .get(pk=margin_call_id)
        )
        if call.notified_at is not None:
            return False
        title, body = _opened_message(call, call.account, risk_policy_get())
        account_notify(
            account=call.account,
            kind=Notification.Kind.MARGIN_CALL,
            title=title,
            body=body,
            dedupe_key=_dedupe_key(call, "opened"),
            email=True,
        )
        call.notified_at = now or timezone.now()
        call.save(update_fields=["notified_at"])
    return True


@dataclass(frozen=True)
class RemindSummary:
    """What one run of `margin_calls_remind` did (margin call ids)."""

    reminded: list[int]
    resolved: list[int]
    grace_expired: list[int]


def margin_calls_remind(*, now: datetime | None = None) -> RemindSummary:
    """Remind and escalate open margin calls (the periodic task's service).

    - Calls due a reminder, or past the grace period, are first re-checked
      with `margin_calls_sync` (a recovered account is resolved, not
      reminded). Then a call open `grace_period_hours` or longer gets
      liquidation requested (reason grace_expired); one whose last reminder
      (or opening) is `reminder_interval_hours` old gets the next reminder
      (`margin_call_remind`). An interval of 0 turns reminders off.

    Idempotent: reminders are per slot under the call's lock, notify and
    liquidation are deduplicated downstream. Locks as margin_calls_sync and
    margin_call_remind do, one account or call at a time.
    """
    now = now or timezone.now()
    policy = risk_policy_get()
    interval = timedelta(hours=policy.reminder_interval_hours)
    grace = timedelta(hours=policy.grace_period_hours)
    open_calls = list(
        MarginCall.objects.filter(status=MarginCall.Status.OPEN).values_list(
            "account_id", "opened_at", "last_reminded_at"
        )
    )
    due = [
        account_id
        for account_id, opened_at, last_reminded_at in open_calls
        if opened_at <= now - grace
        or (interval and (last_reminded_at or opened_at) <= now - interval)
    ]
    reminded, resolved, grace_expired = [], [], []
    for state in margin_calls_sync(account_ids=due, now=now):
        if state.resolved is not None:
            resolved.append(state.resolved.pk)
        call = state.open_call
        if call is None or state.deferred:  # stale prices: decided once they are live
            continue
        if call.opened_at <= now - grace:
            account_liquidate_request(
                account_id=call.account_id,
                reason=Liquidation.Reason.GRACE_EXPIRED,
                margin_call_id=call.pk,
            )
            grace_expired.append(call.pk)
        elif margin_call_remind(margin_call_id=call.pk, now=now):
            reminded.append(call.pk)
    return RemindSummary(reminded=reminded, resolved=resolved, grace_expired=grace_expired)


def margin_call_remind(*, margin_call_id: int, now: datetime | None = None) -> bool:
    """Send an open call's next reminder if it is due; return whether one was sent.

    Locks the call (select_for_update) and re-checks it is open and that
    `reminder_interval_hours` have passed since its last reminder (or its
    opening); the reminder quotes the account's current figures (read, not
    locked: they only word the message). Reminder n is a notification with dedupe key
    `margin_call:<id>:reminder:<n>` (in-app + email after commit), worded
    more urgently as n grows and as the grace period runs out; the call's
    `reminders_sent` becomes n. Safe to run twice: the second finds it not due.
    """
    now = now or timezone.now()
    policy = risk_policy_get()
    interval = timedelta(hours=policy.reminder_interval_hours)
    with transaction.atomic():
        call = (
            MarginCall.objects.select_for_update(of=("self",))
            .select_related("account")
            .get(pk=margin_call_id)
        )
        last = call.last_reminded_at or call.opened_at
        if call.status != MarginCall.Status.OPEN or not interval or last > now - interval:
            return False
        number = call.reminders_sent + 1
        title, body = _reminder_message(call, number=number, policy=policy, now=now)
        account_notify(
            account=call.account,
            kind=Notification.Kind.MARGIN_CALL_REMINDER,
            title=title,
            body=body,
            dedupe_key=_dedupe_key(call, f"reminder:{number}"),
            email=True,
        )
        call.reminders_sent = number
        call.last_reminded_at = now
        call.save(update_fields=["reminders_sent", "last_reminded_at"])
    return True


def account_liquidate_request(
    *, account_id: int, reason: Liquidation.Reason, margin_call_id: int | None
) -> None:
    """Request `trading.account_liquidate` for the account, in the caller's transaction.

    An outbox item keyed by account: while one request is unfinished a second
    joins it, and the item is re-sent until the task has run (the task
    itself re-checks the account under its lock and does nothing once health
    is restored).
    """
    account_liquidate_enqueue(
        account_id=account_id, reason=str(reason), margin_call_id=margin_call_id
    )
    desk_changed_broadcast(reason="liquidation")
    logger.warning("Liquidation of account %s requested (%s).", account_id, reason)


def _notify_enqueue(margin_call_ids: list[int]) -> None:
    margin_calls_notify_enqueue(margin_call_ids=margin_call_ids)


def _dedupe_key(call: MarginCall, event: str) -> str:
    return f"margin_call:{call.pk}:{event}"


def _health(value: Decimal) -> str:
    """Health to two places, cut (not rounded): 0.999 never reads as the 1.00 it is below."""
    return ratio(Decimal(value).quantize(CENT, rounding=ROUND_DOWN))


def _deposit_to_meet(
    *, adjusted_equity: Decimal, used_margin: Decimal, policy: RiskPolicy
) -> Decimal:
    """The deposit that brings health back to maintenance, rounded up to a cent."""
    needed = margin.add_funds_needed(
        np.array([float(adjusted_equity)]),
        np.array([float(used_margin)]),
        float(policy.maintenance_threshold),
    )
    return money_decimal(needed[0]).quantize(CENT, rounding=ROUND_UP)


def _deadline(call: MarginCall, policy: RiskPolicy) -> datetime:
    return call.opened_at + timedelta(hours=policy.grace_period_hours)


def _opened_message(call: MarginCall, account: Account, policy: RiskPolicy) -> tuple[str, str]:
    deposit = _deposit_to_meet(
        adjusted_equity=call.adjusted_equity_at_open,
        used_margin=call.used_margin_at_open,
        policy=policy,
    )
    return (
        f"Margin call on account {account.public_id}",
        (
            f"Margin Health of account {account.public_id} fell to "
            f"{_health(call.health_at_open)}, below the maintenance requirement of "
            f"{ratio(policy.maintenance_threshold)} (Used Margin "
            f"{usdc(call.used_margin_at_open)}, Adjusted Equity "
            f"{usdc(call.adjusted_equity_at_open)}).\n\n"
            f"Deposit at least {usdc(deposit)} or reduce positions "
            f"to meet the call. If Margin Health falls below "
            f"{ratio(policy.liquidation_threshold)}, or the call is still open at "
            f"{when(_deadline(call, policy))}, positions will be liquidated."
        ),
    )


def _reminder_message(
    call: MarginCall, *, number: int, policy: RiskPolicy, now: datetime
) -> tuple[str, str]:
    figures = portfolio_load(accounts=[call.account]).evaluate(margin_params_get(policy))
    health = ratio_decimal(figures.health[0])
    deposit = _deposit_to_meet(
        adjusted_equity=money_decimal(figures.adjusted_equity[0]),
        used_margin=money_decimal(figures.used_margin[0]),
        policy=policy,
    )
    deadline = _deadline(call, policy)
    hours_left = max(0, math.ceil((deadline - now).total_seconds() / 3600))
    if hours_left <= policy.reminder_interval_hours:
        level = "Final notice"
    elif number == 1:
        level = "Reminder"
    else:
        level = "Urgent"
    public_id = call.account.public_id
    shown = "unbounded" if health is None else _health(health)
    return (
        f"{level}: margin call on {public_id} still open",
        (
            f"The margin call on account {public_id}, open since "
            f"{when(call.opened_at)}, is still open: Margin Health is {shown}, "
            f"below {ratio(policy.maintenance_threshold)} (reminder {number}).\n\n"
            f"Deposit at least {usdc(deposit)} or reduce positions now. Unless Margin "
            f"Health is back at "
            f"{ratio(policy.maintenance_threshold)} by {when(deadline)} "
            f"(about {hours_left} h from now), positions will be liquidated."
        ),
    )
