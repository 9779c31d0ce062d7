"""Changing the risk policy: its impact first, then four eyes, then the engine at once.

- `risk_policy_preview(values)` builds the margin engine's book once (every
  account's cash and positions, `MarginBook.load`) and evaluates it twice with
  the engine's own vectorised maths (`MarginBook.evaluate` →
  `margin.margin_evaluate`): under the policy in force and under the proposed
  one. No per-account loop: the counts per band, who would enter a margin call
  or liquidation and the largest movers are array operations; only the rows
  shown are read from the database.
- That is work for every account, so the ops page does not do it in its request:
  `risk_policy_preview_request` answers a preview a worker stored (in Redis, for
  PREVIEW_MAX_AGE_SECONDS, under a token of the policy in force and the proposed
  values), or asks a worker for it (`trading.risk_policy_preview`, an outbox item
  per token: sent again until it has run) and the page checks back.
- A change is proposed as a four-eyes Approval of kind "risk_policy"
  (`risk_policy_change_check` / `risk_policy_change_apply`, registered in
  trading.apps): the payload is the changed fields as strings.
- Applying saves the one RiskPolicy row (setting the values it already has
  changes nothing), audited. The save bumps the reference data
  (`portal.refdata`), through which the margin engine reads the policy on every
  batch: a change in the margin maths makes it re-evaluate every account in its
  next batch (a quarter of a second when no tick comes).
"""

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import orjson
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Approval
from accounts.services.approvals import ApprovalKind
from accounts.services.audit import audit_record
from portal import format as fmt
from portal.errors import InvalidParams
from portal.redis import redis_client, redis_key
from trading import margin
from trading.enqueue import risk_policy_preview_enqueue
from trading.models import RiskPolicy
from trading.selectors import margin_params_get, price_max_age
from trading.services.margin_book import BookFigures, MarginBook

APPROVAL_KIND = "risk_policy"
PREVIEW_MAX_AGE_SECONDS = 120  # a stored preview is shown this long, then computed again


@dataclass(frozen=True)
class PolicyField:
    """One editable field of the risk policy and how people read and type it."""

    name: str
    kind: str  # "ratio", "coefficient", "days", "integer", "money", "percent"
    unit: str = ""

    @property
    def label(self) -> str:
        text = str(RiskPolicy._meta.get_field(self.name).verbose_name)
        return text[:1].upper() + text[1:]

    @property
    def help_text(self) -> str:
        return str(RiskPolicy._meta.get_field(self.name).help_text)

    def shown(self, value: object) -> str:
        """The value as the page shows it (and as its input holds it)."""
        if self.kind == "percent":
            number = fmt.decimal_or_none(value)
            return fmt.number_exact(None if number is None else number * 100, 0, 4)
        if self.kind in ("integer", "days"):
            return fmt.number_exact(value, 0, 6)
        return fmt.number_exact(value)

    def display(self, value: object) -> str:
        """The value with its unit, for tables and sentences: "1.50", "8%", "24 hours"."""
        text = self.shown(value)
        if self.kind == "percent":
            return f"{text}%"
        return f"{text} {self.unit}" if self.unit else text

    def parse(self, text: object) -> Decimal | int:
        """What a person typed ("1,000,000", "8 %", "1.5") as the stored value."""
        raw = str(text).replace(",", "").replace("%", "").replace(fmt.CURRENCY, "").strip()
        number = self._number(raw)
        return self.stored(number / 100 if self.kind == "percent" else number)

    def stored(self, value: object) -> Decimal | int:
        """A stored value (a payload's string: "0.08" for 8%) as the field holds it."""
        number = self._number(str(value).strip())
        if self.kind == "integer":
            if number != number.to_integral_value():
                raise InvalidParams(f"{self.label}: enter a whole number.")
            return int(number)
        return number

    def _number(self, raw: str) -> Decimal:
        try:
            number = Decimal(raw)
        except (InvalidOperation, ValueError):
            raise InvalidParams(f"{self.label}: enter a number.") from None
        if not number.is_finite():
            raise InvalidParams(f"{self.label}: enter a number.")
        return number


POLICY_GROUPS: tuple[tuple[str, tuple[PolicyField, ...]], ...] = (
    (
        "Margin Health thresholds",
        (
            PolicyField("healthy_threshold", "ratio"),
            PolicyField("initial_margin_threshold", "ratio"),
            PolicyField("maintenance_threshold", "ratio"),
            PolicyField("liquidation_threshold", "ratio"),
        ),
    ),
    (
        "Margin calls",
        (
            PolicyField("grace_period_hours", "integer", "hours"),
            PolicyField("reminder_interval_hours", "integer", "hours"),
        ),
    ),
    ("Stale prices", (PolicyField("price_stale_after_seconds", "integer", "seconds"),)),
    (
        "Haircut and concentration",
        (
            PolicyField("haircut_uncertainty_a", "coefficient"),
            PolicyField("haircut_expiry_b", "coefficient"),
            PolicyField("haircut_tau0_days", "days", "days"),
            PolicyField("haircut_max", "coefficient"),
            PolicyField("concentration_c", "coefficient"),
        ),
    ),
    (
        "Interest and eligibility",
        (
            PolicyField("interest_rate_annual", "percent"),
            PolicyField("margin_volume_threshold", "money", fmt.CURRENCY),
        ),
    ),
    ("Order ticket", (PolicyField("ticket_confirm_fraction", "percent"),)),
)
POLICY_FIELDS: dict[str, PolicyField] = {
    field.name: field for _, fields in POLICY_GROUPS for field in fields
}


def _canonical(value: Decimal | int) -> str:
    """The payload's string for a value: "1.5", "0.08", "1000000", "24"."""
    if isinstance(value, int):
        return str(value)
    return format(value.normalize(), "f")


def risk_policy_current() -> RiskPolicy:
    """The policy row as the database has it now (not the per-process cache)."""
    return RiskPolicy.objects.get_or_create(pk=1)[0]


def _with_values(policy: RiskPolicy, values: dict[str, Decimal | int]) -> RiskPolicy:
    """A copy of `policy` with `values`, validated as the database would (ranges, order)."""
    proposed = RiskPolicy(
        **{field.attname: getattr(policy, field.attname) for field in RiskPolicy._meta.fields}
    )
    for name, value in values.items():
        setattr(proposed, name, value)
    try:
        proposed.full_clean(validate_unique=False)
    except ValidationError as error:
        messages = []
        for name, problems in error.message_dict.items():
            field = POLICY_FIELDS.get(name)
            prefix = f"{field.label}: " if field else ""
            messages += [f"{prefix}{problem}" for problem in problems]
        raise InvalidParams(" ".join(messages)) from None
    return proposed


def risk_policy_changes(
    values: dict[str, Decimal | int], policy: RiskPolicy | None = None
) -> dict[str, Decimal | int]:
    """The fields of `values` that differ from the policy (in force, unless given)."""
    policy = policy or risk_policy_current()
    return {name: value for name, value in values.items() if getattr(policy, name) != value}


def risk_policy_payload(changes: dict[str, Decimal | int]) -> dict[str, str]:
    return {name: _canonical(value) for name, value in changes.items()}


def _payload_values(payload: dict[str, Any]) -> dict[str, Decimal | int]:
    """A payload's stored values (strings, as `risk_policy_payload` wrote them)."""
    if not isinstance(payload, dict) or not payload:
        raise InvalidParams("A risk-policy change names at least one setting.")
    values = {}
    for name, text in payload.items():
        field = POLICY_FIELDS.get(name)
        if field is None:
            raise InvalidParams(f"The risk policy has no setting called {name!r}.")
        values[name] = field.stored(text)
    return values


def _describe(changes: dict[str, Decimal | int], policy: RiskPolicy) -> str:
    return "; ".join(
        f"{POLICY_FIELDS[name].label} {POLICY_FIELDS[name].display(getattr(policy, name))}"
        f" → {POLICY_FIELDS[name].display(value)}"
        for name, value in changes.items()
    )


def risk_policy_change_check(payload: dict[str, Any]) -> str:
    """The approval kind's check: the change is valid now; its one-line summary."""
    values = _payload_values(payload)
    policy = risk_policy_current()
    _with_values(policy, values)
    changes = risk_policy_changes(values, policy)
    if not changes:
        return "Risk policy: already has these values (nothing to change)."
    return f"Risk policy: {_describe(changes, policy)}"


def risk_policy_change_apply(approval: Approval) -> str:
    """The approval kind's apply: save the policy (idempotent), audited; the margin
    engine reads the new policy in its next batch (see the module docstring)."""
    values = _payload_values(approval.payload)
    with transaction.atomic():
        RiskPolicy.objects.get_or_create(pk=1)
        policy = RiskPolicy.objects.select_for_update().get(pk=1)
        changes = risk_policy_changes(values, policy)
        if not changes:
            return "The risk policy already had these values: nothing changed."
        described = _describe(changes, policy)
        before = {name: str(getattr(policy, name)) for name in changes}
        proposed = _with_values(policy, changes)
        for name in changes:
            setattr(policy, name, getattr(proposed, name))
        # The save's signal drops the cached policy here and, after commit, everywhere.
        policy.save(update_fields=[*changes, "updated_at"])
        audit_record(
            actor=approval.decided_by,
            action="risk_policy_changed",
            obj=policy,
            changes={
                **{name: [before[name], _canonical(value)] for name, value in changes.items()},
                "approval": approval.public_id,
                "proposed_by": approval.proposed_by.email,
            },
        )
    return f"Risk policy changed: {described}. The margin engine re-evaluates every account now."


# --- The preview ---------------------------------------------------------------

# Bands: the engine's statuses, with "below the liquidation threshold" apart.
HEALTHY, CAUTION, CALL, LIQUIDATION = 0, 1, 2, 3
BAND_LABELS = ("Healthy", "Caution", "Margin call", "Liquidation")


def _bands(figures: BookFigures, params: margin.MarginParams) -> np.ndarray:
    band = figures.status.astype(np.int8, copy=True)  # HEALTHY, CAUTION, MARGIN_CALL
    with np.errstate(invalid="ignore"):
        band[figures.health < params.liquidation] = LIQUIDATION
    return band


@dataclass(frozen=True)
class BandCount:
    label: str
    before: int
    after: int

    @property
    def change(self) -> int:
        return self.after - self.before


@dataclass(frozen=True)
class AccountImpact:
    public_id: str
    owner_email: str
    kind: str
    custodial: bool
    health_before: Decimal | None  # None: not borrowing (unbounded)
    health_after: Decimal | None
    band_before: str
    band_after: str


@dataclass(frozen=True)
class PolicyPreview:
    at: datetime
    accounts: int
    counts: tuple[BandCount, ...]
    entering_call: tuple[AccountImpact, ...]  # below maintenance after, not before
    entering_call_total: int
    entering_liquidation: tuple[AccountImpact, ...]  # below liquidation after, not before
    entering_liquidation_total: int
    movers: tuple[AccountImpact, ...]  # the largest health changes, largest first
    stale: int  # accounts priced on a stale price: the engine defers their calls
    # Account ids, for tests and the engine comparison: in margin call after (custodial).
    call_after_ids: frozenset[int]
    liquidation_after_ids: frozenset[int]


def _health(value: float) -> Decimal | None:
    return None if not np.isfinite(value) else Decimal(repr(round(float(value), 6)))


def risk_policy_preview(
    values: dict[str, Decimal | int],
    *,
    at: datetime | None = None,
    listed: int = 50,
    movers: int = 10,
) -> PolicyPreview:
    """How every account's health and band would change under the policy with `values`."""
    current = risk_policy_current()
    proposed = _with_values(current, values)
    at = at or timezone.now()
    book = MarginBook()
    book.load(consume_changes=False)  # the engine's own loader; leaves its changed set alone
    figures = []
    for policy in (current, proposed):
        book.params = margin_params_get(policy)
        book.price_max_age = price_max_age(policy)
        figures.append((book.evaluate(None, at=at), book.params))
    (before, before_params), (after, after_params) = figures
    band_before = _bands(before, before_params)
    band_after = _bands(after, after_params)
    counts_before = np.bincount(band_before, minlength=4)
    counts_after = np.bincount(band_after, minlength=4)
    entering_call = (band_after >= CALL) & (band_before < CALL)
    entering_liquidation = (band_after == LIQUIDATION) & (band_before < LIQUIDATION)
    with np.errstate(invalid="ignore"):
        delta = after.health - before.health
    delta[~np.isfinite(delta)] = 0.0
    order = np.argsort(-np.abs(delta), kind="stable")
    moving = order[np.abs(delta[order]) > 1e-9][:movers]

    call_rows = np.flatnonzero(entering_call)
    liquidation_rows = np.flatnonzero(entering_liquidation)
    # Worst first: the lowest health after the change.
    call_rows = call_rows[np.argsort(after.health[call_rows], kind="stable")][:listed]
    liquidation_rows = liquidation_rows[np.argsort(after.health[liquidation_rows], kind="stable")][
        :listed
    ]
    shown = np.unique(np.concatenate([call_rows, liquidation_rows, moving]))
    accounts = Account.objects.select_related("owner").in_bulk(before.account_id[shown].tolist())

    def impacts(rows: np.ndarray) -> tuple[AccountImpact, ...]:
        out = []
        for row in rows.tolist():
            account = accounts.get(int(before.account_id[row]))
            if account is None:  # gone since the book loaded
                continue
            out.append(
                AccountImpact(
                    public_id=account.public_id,
                    owner_email=account.owner.email,
                    kind=account.get_kind_display(),
                    custodial=bool(before.custodial[row]),
                    health_before=_health(before.health[row]),
                    health_after=_health(after.health[row]),
                    band_before=BAND_LABELS[band_before[row]],
                    band_after=BAND_LABELS[band_after[row]],
                )
            )
        return tuple(out)

    custodial = before.custodial
    return PolicyPreview(
        at=at,
        accounts=len(before),
        counts=tuple(
            BandCount(label, int(counts_before[band]), int(counts_after[band]))
            for band, label in enumerate(BAND_LABELS)
        ),
        entering_call=impacts(call_rows),
        entering_call_total=int(entering_call.sum()),
        entering_liquidation=impacts(liquidation_rows),
        entering_liquidation_total=int(entering_liquidation.sum()),
        movers=impacts(moving),
        stale=int(after.stale.sum()),
        call_after_ids=frozenset(
            after.account_id[(band_after >= CALL) & custodial & ~after.stale].tolist()
        ),
        liquidation_after_ids=frozenset(
            after.account_id[(band_after == LIQUIDATION) & custodial & ~after.stale].tolist()
        ),
    )


def _preview_key(token: str) -> str:
    return redis_key("risk-policy-preview", token)


def risk_policy_preview_token(
    changes: dict[str, Decimal | int], policy: RiskPolicy | None = None
) -> str:
    """Names the preview of `changes` against the policy in force (`policy`, read now
    unless given)."""
    current = policy or risk_policy_current()
    both = {
        "in_force": risk_policy_payload({name: getattr(current, name) for name in POLICY_FIELDS}),
        "proposed": risk_policy_payload(changes),
    }
    return hashlib.sha256(json.dumps(both, sort_keys=True).encode()).hexdigest()[:32]


def risk_policy_preview_stored(token: str) -> PolicyPreview | None:
    """The preview a worker stored under `token` (None: none, or older than
    PREVIEW_MAX_AGE_SECONDS)."""
    raw = redis_client().get(_preview_key(token))
    if raw is None:
        return None
    data = orjson.loads(raw)

    def impacts(rows: list[dict]) -> tuple[AccountImpact, ...]:
        return tuple(
            AccountImpact(
                **row
                | {
                    name: None if row[name] is None else Decimal(row[name])
                    for name in ("health_before", "health_after")
                }
            )
            for row in rows
        )

    return PolicyPreview(
        at=datetime.fromisoformat(data["at"]),
        accounts=data["accounts"],
        counts=tuple(BandCount(**count) for count in data["counts"]),
        entering_call=impacts(data["entering_call"]),
        entering_call_total=data["entering_call_total"],
        entering_liquidation=impacts(data["entering_liquidation"]),
        entering_liquidation_total=data["entering_liquidation_total"],
        movers=impacts(data["movers"]),
        stale=data["stale"],
        call_after_ids=frozenset(data["call_after_ids"]),
        liquidation_after_ids=frozenset(data["liquidation_after_ids"]),
    )


def _json_default(value: object) -> object:
    return sorted(value) if isinstance(value, frozenset) else str(value)


def risk_policy_preview_store(*, token: str, payload: dict[str, str]) -> PolicyPreview:
    """The worker's part: compute the preview of the changes in `payload` and store it
    under `token` for PREVIEW_MAX_AGE_SECONDS. A second run within that time finds it
    and computes nothing."""
    stored = risk_policy_preview_stored(token)
    if stored is not None:
        return stored
    preview = risk_policy_preview(_payload_values(payload))
    body = orjson.dumps(asdict(preview), default=_json_default)
    redis_client().set(_preview_key(token), body, ex=PREVIEW_MAX_AGE_SECONDS)
    return preview


def risk_policy_preview_request(
    changes: dict[str, Decimal | int], policy: RiskPolicy | None = None
) -> tuple[str, PolicyPreview | None]:
    """(token, the stored preview of `changes`), or (token, None) after asking a worker
    for it (joining the request already made for this token); `policy`: the policy in
    force, read now unless given. Raises InvalidParams for values the policy refuses, at
    once rather than in the worker."""
    policy = policy or risk_policy_current()
    _with_values(policy, changes)
    token = risk_policy_preview_token(changes, policy)
    preview = risk_policy_preview_stored(token)
    if preview is None:
        with transaction.atomic():
            risk_policy_preview_enqueue(token=token, payload=risk_policy_payload(changes))
        preview = risk_policy_preview_stored(token)  # a worker run at once (tests) stored it
    return token, preview


RISK_POLICY_KIND = ApprovalKind(
    name=APPROVAL_KIND,
    label="Risk-policy change",
    check=risk_policy_change_check,
    apply=risk_policy_change_apply,
    permission="trading.change_riskpolicy",
)
