"""Health alerts: a customer's own Margin Health level per account (e.g. 1.30), in-app
and optionally by email.

The margin engine (`trading.engine`) holds every alert beside its book (loaded
with the accounts it reloads, so no query per account per tick) and compares
them with the health it has just computed. Only alerts that cross come here,
to `health_alerts_act`, which decides under the alerts' row locks:

- armed, and health below the level: fire (one notification, dedupe key
  `health_alert:<id>:<n>` for the n-th firing) and disarm;
- disarmed, and health back at the level plus HYSTERESIS: re-arm, silently.

So a health hovering around the level notifies once, not on every tick. A
price marked stale decides nothing (as for margin calls). Creating or deleting
an alert marks the account changed, so the engine reloads its alerts (and
evaluates the account) within a second.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, Notification, User
from accounts.services.ledger import accounts_changed_mark
from accounts.services.notifications import notification_create, notification_email_send_on_commit
from portal.errors import Conflict, Forbidden, InvalidParams, NotFound
from portal.format import ratio, when
from trading.models import HealthAlert
from trading.selectors import ratio_decimal, risk_policy_get

logger = logging.getLogger(__name__)

HYSTERESIS = Decimal("0.05")  # re-armed once health is back at level + this
LEVEL_MAX = Decimal("10")
LEVEL_PLACES = Decimal("0.01")
ALERTS_PER_ACCOUNT_MAX = 5


# --- The customer's alerts ------------------------------------------------------------------


def health_alert_list(*, user: User) -> list[HealthAlert]:
    """The user's alerts, with their accounts, account by account, highest level first."""
    return list(
        HealthAlert.objects.filter(account__owner=user)
        .select_related("account")
        .order_by("account__index", "-level")
    )


def health_alert_level_clean(level: Decimal) -> Decimal:
    """`level` as an alert level, or InvalidParams saying what would do.

    Above the liquidation threshold (below it the account is being liquidated:
    an alert there comes too late), at most LEVEL_MAX, two decimal places.
    """
    floor = risk_policy_get().liquidation_threshold
    if level <= floor:
        raise InvalidParams(
            f"Choose a level above {ratio(floor)}: below that the account is liquidated, "
            "so an alert would come too late."
        )
    if level > LEVEL_MAX:
        raise InvalidParams(
            f"Choose a level of at most {ratio(LEVEL_MAX)}; Margin Health above that "
            "leaves a wide margin."
        )
    if level.quantize(LEVEL_PLACES) != level:
        raise InvalidParams("Give the level with at most 2 decimal places, e.g. 1.30.")
    return level


def health_alert_create(
    *, user: User, account: Account, level: Decimal, email: bool = True
) -> HealthAlert:
    """Set an alert on one of the user's margin accounts; return it (armed).

    Raises Forbidden (not the user's account; a non-custodial account, which
    never borrows and so has no Margin Health to watch), InvalidParams (the
    level, `health_alert_level_clean`; too many alerts on the account) or
    Conflict (an alert at this level already).
    """
    if account.owner_id != user.pk:
        raise Forbidden("This is not your account.")
    if account.kind != Account.Kind.CUSTODIAL:
        raise Forbidden(
            f"Account {account.public_id} never borrows, so its Margin Health cannot fall: "
            "health alerts are for margin accounts."
        )
    level = health_alert_level_clean(level)
    with transaction.atomic():
        Account.objects.select_for_update().filter(pk=account.pk).first()
        if HealthAlert.objects.filter(account=account).count() >= ALERTS_PER_ACCOUNT_MAX:
            raise InvalidParams(
                f"Account {account.public_id} already has {ALERTS_PER_ACCOUNT_MAX} alerts, "
                "the most it can have: delete one first."
            )
        try:
            with transaction.atomic():
                alert = HealthAlert.objects.create(account=account, level=level, email=email)
        except IntegrityError:
            raise Conflict(
                f"Account {account.public_id} already has an alert at {ratio(level)}."
            ) from None
        transaction.on_commit(lambda: accounts_changed_mark(account_ids=[account.pk]), robust=True)
    logger.info("Health alert %s at %s set on %s.", alert.pk, level, account.public_id)
    return alert


def health_alert_delete(*, user: User, alert_id: int) -> HealthAlert:
    """Delete one of the user's alerts; return it. NotFound for another user's (or none)."""
    with transaction.atomic():
        alert = (
            HealthAlert.objects.select_for_update(of=("self",))
            .select_related("account")
            .filter(pk=alert_id, account__owner=user)
            .first()
        )
        if alert is None:
            raise NotFound("No such health alert.")
        account_id = alert.account_id
        alert.delete()
        transaction.on_commit(lambda: accounts_changed_mark(account_ids=[account_id]), robust=True)
    return alert


# --- Firing (the margin engine) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertState:
    alert_id: int
    armed: bool
    fired: bool = False


def health_alerts_act(
    *, health: Mapping[int, float], at: datetime | None = None
) -> list[AlertState]:
    """Fire and re-arm the alerts of these accounts from their health (account id →
    Margin Health as the engine computed it; +inf when not borrowing).

    Locks the accounts' alerts (select_for_update, in id order) and decides
    from the locked rows (see the module docstring): idempotent, and safe
    beside a second evaluator (the full sweep). Notifications are written in
    this transaction, their emails sent after commit. Returns every alert of
    these accounts as it stands.
    """
    if not health:
        return []
    at = at or timezone.now()
    states: list[AlertState] = []
    policy = None
    with transaction.atomic():
        alerts = list(
            HealthAlert.objects.select_for_update(of=("self",))
            .select_related("account")
            .filter(account_id__in=list(health))
            .order_by("pk")
        )
        fired: list[Notification] = []
        for alert in alerts:
            value = health[alert.account_id]
            level = float(alert.level)
            if alert.armed and value < level:
                policy = policy or risk_policy_get()
                alert.armed = False
                alert.fired_count += 1
                alert.last_fired_at = at
                alert.last_fired_health = ratio_decimal(value)
                alert.save(
                    update_fields=["armed", "fired_count", "last_fired_at", "last_fired_health"]
                )
                fired.append(_notify(alert, policy=policy))
                states.append(AlertState(alert.pk, armed=False, fired=True))
                logger.info(
                    "Health alert %s fired on %s at health %.4f.", alert.pk, alert.account_id, value
                )
                continue
            if not alert.armed and value >= level + float(HYSTERESIS):
                alert.armed = True
                alert.save(update_fields=["armed"])
            states.append(AlertState(alert.pk, armed=alert.armed))
        notification_email_send_on_commit(notifications=fired)
    return states


def _notify(alert: HealthAlert, *, policy) -> Notification:
    account = alert.account
    level = ratio(alert.level)
    health = ratio(alert.last_fired_health)
    notification, _ = notification_create(
        user_id=account.owner_id,
        account_id=account.pk,
        kind=Notification.Kind.HEALTH_ALERT,
        title=f"Margin Health of {account.public_id} fell below {level}",
        body=(
            f"Margin Health of account {account.public_id} fell to {health} at "
            f"{when(alert.last_fired_at)}, below the alert level of {level} you set. "
            f"A margin call opens below {ratio(policy.maintenance_threshold)} and positions are "
            f"liquidated below {ratio(policy.liquidation_threshold)}. Deposit funds or reduce "
            f"positions to raise it. This alert fires again after health has been back at "
            f"{ratio(alert.level + HYSTERESIS)} or above."
        ),
        dedupe_key=f"health_alert:{alert.pk}:{alert.fired_count}",
        email=alert.email,
    )
    return notification
