"""Haircut add-ons: an extra haircut for one instrument (SPEC §4).

h = min(h_max, a·4p(1−p) + b·exp(−τ/τ0) + add-on). An add-on belongs to an
instrument, not to an account: every account holding the instrument is
margined with it. Ops set one on the risk policy's admin page (its inline) or
from an account's positions on the ops account page, through
`instrument_haircut_addon_set` (audited with the reason). Checks and pages read
it at once (`portal.refdata`: saving an InstrumentHaircut drops every
process's cached copy); the margin engine at its next full sweep.
"""

from decimal import Decimal

from django.db import transaction
from django.http import HttpRequest

from accounts.models import Account, User
from accounts.services.audit import audit_record
from portal.errors import Forbidden, InvalidParams
from trading.models import Instrument, InstrumentHaircut, RiskPolicy
from trading.selectors import risk_policy_get
from trading.services.simulation import decimal_clean

ADDON_PLACES = 6
NOTE_MAX = InstrumentHaircut._meta.get_field("note").max_length
REASON_MAX = 2000


def instrument_haircut_addon_set(
    *,
    instrument: Instrument,
    addon: Decimal | str,
    actor: User,
    reason: str,
    note: str = "",
    account: Account | None = None,
    request: HttpRequest | None = None,
) -> InstrumentHaircut:
    """Set `instrument`'s haircut add-on (0 to 1; 0: none), audited with the reason
    and, when set from an account's page, that account's id.

    Raises Forbidden (not staff) or InvalidParams (a bad add-on, no reason).
    """
    if not (actor.is_active and actor.is_staff):
        raise Forbidden("Only ops staff can set a haircut add-on.")
    value = decimal_clean(addon, name="The add-on", places=ADDON_PLACES)
    if not Decimal(0) <= value <= Decimal(1):
        raise InvalidParams("A haircut add-on lies between 0 and 1 (0.05 adds 5 points).")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidParams("Give a reason: it is kept in the audit log.")
    if len(reason) > REASON_MAX:
        raise InvalidParams(f"The reason is too long: at most {REASON_MAX} characters.")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise InvalidParams(f"The note is too long: at most {NOTE_MAX} characters.")
    policy_id = risk_policy_get().pk
    with transaction.atomic():
        RiskPolicy.objects.select_for_update().filter(pk=policy_id).first()
        row = InstrumentHaircut.objects.filter(instrument=instrument).first()
        before = None if row is None else row.addon
        if row is None:
            row = InstrumentHaircut(policy_id=policy_id, instrument=instrument)
        row.addon, row.note = value, note or row.note
        row.save()
        changes: dict = {
            "haircut_addon": [None if before is None else str(before), str(value)],
            "reason": reason,
        }
        if note:
            changes["note"] = note
        if account is not None:
            changes["account"] = account.public_id
        audit_record(
            actor=actor,
            action="haircut_addon_set",
            obj=instrument,
            changes=changes,
            request=request,
        )
    return row
