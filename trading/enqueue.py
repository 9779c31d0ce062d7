"""Celery work the trading app's services ask for, sent after commit: the twin of
trading/broadcasts.py for tasks.

Services never import tasks (ARCHITECTURE 6b). They call these helpers, which name
the task (`trading/tasks.py` registers each under the name given here) and record it
as an outbox item in the caller's transaction (`accounts.outbox`): it is sent once
that transaction commits and sent again until a run succeeds. Every task named here
is safe to run twice (idempotent by key or by state).
"""

from django.conf import settings

from accounts.models import OutboxItem
from accounts.outbox import outbox_enqueue

ACCOUNT_LIQUIDATE = "trading.account_liquidate"
MARGIN_CALLS_NOTIFY = "trading.margin_calls_notify"
MARKET_SETTLE = "trading.market_settle"
ORDER_SEND = "trading.order_send"
REPORT_GENERATE = "trading.report_generate"
LINKED_ACCOUNT_SYNC = "trading.linked_account_sync"
RISK_POLICY_PREVIEW = "trading.risk_policy_preview"


def account_liquidate_enqueue(
    *, account_id: int, reason: str, margin_call_id: int | None
) -> OutboxItem:
    """Liquidate the account. Keyed by account: while one request is unfinished a
    second joins it (the task re-checks the account under its lock)."""
    return outbox_enqueue(
        task=ACCOUNT_LIQUIDATE,
        kwargs={"account_id": account_id, "reason": reason, "margin_call_id": margin_call_id},
        key=f"liquidate:{account_id}",
    )


def margin_calls_notify_enqueue(*, margin_call_ids: list[int]) -> OutboxItem:
    """Send the notifications of these margin calls (each sent once)."""
    return outbox_enqueue(task=MARGIN_CALLS_NOTIFY, kwargs={"margin_call_ids": margin_call_ids})


def market_settle_enqueue(*, instrument_id: int, again: bool = False) -> OutboxItem:
    """Pay out the positions of a resolved market (one item per market); `again`:
    sent again after commit even when an unfinished item is joined (a position that
    changed after that item's run listed the market's positions)."""
    return outbox_enqueue(
        task=MARKET_SETTLE,
        kwargs={"instrument_id": instrument_id},
        key=f"settle:{instrument_id}",
        again=again,
    )


def order_send_enqueue(*, order_id: int, send: int) -> OutboxItem:
    """Send an order's `send`-th submission to its venue (a resting limit order the
    book reached, a take-profit or stop-loss child). Keyed by order and send; the
    venue is idempotent by the send's id, so a second run is harmless
    (`orders_reconcile` also re-sends one the venue never got)."""
    return outbox_enqueue(
        task=ORDER_SEND, kwargs={"order_id": order_id}, key=f"order_send:{order_id}:{send}"
    )


def report_generate_enqueue(*, report_id: int) -> OutboxItem:
    """Generate a requested report; its lease is the report's stale age, so a run that
    is still writing is not sent again."""
    return outbox_enqueue(
        task=REPORT_GENERATE,
        kwargs={"report_id": report_id},
        key=f"report:{report_id}",
        lease=int(settings.REPORT_STALE_SECONDS),
    )


def linked_account_sync_key(credential_id: int) -> str:
    """The outbox key of a linked account's sync (unfinished while queued or running)."""
    return f"linked_sync:{credential_id}"


def linked_account_sync_enqueue(*, credential_id: int) -> OutboxItem:
    """Sync a linked account. Keyed by credential, and sent again even when an item is
    unfinished: a repeated "Sync now" acts now (the task is idempotent)."""
    return outbox_enqueue(
        task=LINKED_ACCOUNT_SYNC,
        kwargs={"credential_id": credential_id},
        key=linked_account_sync_key(credential_id),
        again=True,
    )


def risk_policy_preview_enqueue(*, token: str, payload: dict[str, str]) -> OutboxItem:
    """Compute and store the preview of a risk-policy change (`payload`: its values as
    strings) under `token`; one item per token while it is unfinished."""
    return outbox_enqueue(
        task=RISK_POLICY_PREVIEW,
        kwargs={"token": token, "payload": payload},
        key=f"risk_policy_preview:{token}",
    )
