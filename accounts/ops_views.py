"""Staff pages of accounts' data in the ops area (/ops/, URLs in trading.ops_urls).

- KYB review (/ops/kyb/<user id>/): the customer's details, approve / reject with a
  reason (required to reject), a confirmation step, the customer notified.
- Withdrawal review (/ops/withdrawals/<public id>/): the account's figures before and
  after the payout, approval refused when it would breach the margin rules, four-eyes
  above the threshold.
- Approvals queue (/ops/approvals/) and one approval (/ops/approvals/<public id>/):
  approve / reject someone else's proposal, withdraw one's own.

Every write is a POST with CSRF, confirmed on a second page (the first POST shows
what will happen; the confirmation POSTs it again with `confirmed`), done by a
service that writes the audit entry; refusals come back as messages.
"""

from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.contrib import messages
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.audit_labels import action_label
from accounts.models import Approval, AuditLog, User, WithdrawalRequest
from accounts.services.approvals import (
    REASON_MAX,
    approval_approve,
    approval_kind_get,
    approval_reject,
)
from accounts.services.kyb import KYB_REASON_MAX, kyb_decide
from accounts.services.withdrawal_review import (
    withdrawal_effect_get,
    withdrawal_four_eyes_threshold,
    withdrawal_needs_four_eyes,
    withdrawal_pending_approval,
    withdrawal_review_approve,
    withdrawal_review_reject,
)
from accounts.services.withdrawals import REJECTION_REASON_MAX_LENGTH
from accounts.staff import account_ops_href, staff_link, staff_page, staff_render
from portal import format as fmt
from portal.errors import DomainError
from portal.forms import TextField

RECENT_DECIDED = 30
KYB_PERMISSION = "accounts.change_user"
WITHDRAWAL_PERMISSION = "accounts.change_withdrawalrequest"
NO_PERMISSION = "Your staff account may not {}: ask an administrator for the permission."
AUDIT_ROWS = 50
STATUS_LABELS = {"healthy": "Healthy", "caution": "Caution", "margin_call": "Margin call"}


def _age(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return fmt.duration((timezone.now() - moment).total_seconds())


def _next_url(request: HttpRequest, default: str) -> str:
    candidate = request.POST.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def _form_error(form: forms.Form) -> str:
    """A refused form's first message, as a sentence."""
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        text = errors[0]
        return f"{label}: {text}" if label and field != "__all__" else text
    return "Check the form and try again."


def _confirm_page(
    request: HttpRequest,
    *,
    title: str,
    lines: list[str],
    fields: dict[str, str],
    button: str,
    back: str,
    danger: bool = False,
) -> HttpResponse:
    """The confirmation step: what will happen, and the same POST again with `confirmed`."""
    return staff_render(
        request,
        "ops/decision_confirm.html",
        {
            "title": title,
            "lines": lines,
            "fields": fields,
            "button": button,
            "back": back,
            "danger": danger,
            "action": request.path,
        },
    )


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    actor: str
    action: str
    changes: list[tuple[str, str]]


def _change_text(value, labels: dict[str, str]) -> str:
    """One audited change as words: [old, new] as "old → new", codes by their labels."""

    def word(part) -> str:
        if part is None or part == "":
            return "—"
        return labels.get(part, str(part)) if isinstance(part, str) else str(part)

    if isinstance(value, list) and len(value) == 2:
        return f"{word(value[0])} → {word(value[1])}"
    return word(value)


def _audit_trail(obj, labels: dict[str, dict[str, str]] | None = None) -> list[AuditRow]:
    """`obj`'s audit entries, newest first; `labels`: per field, its codes' labels."""
    labels = labels or {}
    entries = AuditLog.objects.filter(object_type=obj._meta.label, object_id=str(obj.pk)).order_by(
        "-created_at", "-id"
    )[:AUDIT_ROWS]
    return [
        AuditRow(
            at=entry.created_at,
            actor=entry.actor_email or "System",
            action=action_label(entry.action),
            changes=[
                (name.replace("_", " ").capitalize(), _change_text(value, labels.get(name, {})))
                for name, value in (entry.changes or {}).items()
            ],
        )
        for entry in entries
    ]


def _decision_field(*more: tuple[str, str]) -> forms.ChoiceField:
    """Approve or reject (and `more` choices), refused with a sentence."""
    message = "Choose Approve or Reject."
    return forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject"), *more],
        error_messages={"required": message, "invalid_choice": message},
    )


def _reason_field(max_length: int, **extra) -> TextField:
    """The decision's reason: optional to the field (each form's `clean` says when
    it is required), in a three-line box."""
    return TextField(
        label="Reason",
        multiline=True,
        required=False,
        max_length=max_length,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        **extra,
    )


# --- KYB review ---------------------------------------------------------------------------


class KybDecisionForm(forms.Form):
    decision = _decision_field()
    reason = _reason_field(
        KYB_REASON_MAX,
        help_text="Required to reject: the customer is told it. Kept in the audit log.",
    )
    confirmed = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if data.get("decision") == "reject" and not (data.get("reason") or "").strip():
            raise forms.ValidationError(
                "Give the reason for rejecting the KYB: the customer is told it."
            )
        return data


@staff_page
@require_http_methods(["GET", "POST"])
def kyb_review_page(request: HttpRequest, user_id: int) -> HttpResponse:
    customer = get_object_or_404(User.objects.select_related("kyb_reviewed_by"), pk=user_id)
    here = reverse("ops_kyb_review", args=[customer.pk])
    form = KybDecisionForm(request.POST or None)
    if request.method == "POST":
        if not request.user.has_perm(KYB_PERMISSION):
            messages.error(request, NO_PERMISSION.format("decide KYB"))
        elif not form.is_valid():
            messages.error(request, _form_error(form))
        elif not form.cleaned_data["confirmed"]:
            decision, reason = form.cleaned_data["decision"], form.cleaned_data["reason"]
            verb = "Approve" if decision == "approve" else "Reject"
            lines = [
                f"{verb} the KYB of {customer.email} ({customer.full_name or 'no name given'})."
            ]
            if reason:
                lines.append(f"Reason: {reason}")
            lines.append("The customer is told at once, in the portal and by e-mail.")
            return _confirm_page(
                request,
                title=f"{verb} KYB?",
                lines=lines,
                fields={"decision": decision, "reason": reason},
                button=f"{verb} KYB",
                back=here,
                danger=decision == "reject",
            )
        else:
            try:
                kyb_decide(
                    user=customer,
                    decision=form.cleaned_data["decision"],
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    request=request,
                )
            except DomainError as error:
                messages.error(request, error.message)
            else:
                customer.refresh_from_db()
                messages.success(
                    request,
                    f"KYB of {customer.email} {customer.get_kyb_status_display().lower()}; "
                    "the customer has been notified.",
                )
                return redirect(here)
    accounts = list(customer.accounts.order_by("index"))
    for account in accounts:
        account.ops_href = account_ops_href(account)
    return staff_render(
        request,
        "ops/kyb_review.html",
        {
            "title": f"KYB review: {customer.email}",
            "customer": customer,
            "accounts": accounts,
            "form": form,
            "audit": _audit_trail(customer, {"kyb_status": dict(User.KybStatus.choices)}),
            "admin_href": staff_link("admin:accounts_user_change", customer.pk),
            "own": customer.pk == request.user.pk,
        },
    )


# --- Withdrawal review --------------------------------------------------------------------


@dataclass(frozen=True)
class FigureRow:
    label: str
    before: str
    after: str
    worse: bool = False


def _health_text(figures) -> str:
    return fmt.ratio(figures.health, unbounded="∞ (no borrowing)")


def _status_text(figures) -> str:
    if figures.health is None:
        return "No borrowing"
    return STATUS_LABELS.get(figures.status, figures.status.replace("_", " ").capitalize())


def _figure_rows(effect) -> list[FigureRow]:
    before, after = effect.before, effect.after
    return [
        FigureRow("Cash", fmt.usdc(before.cash), fmt.usdc(after.cash), after.cash < 0),
        FigureRow(
            "Adjusted Equity", fmt.usdc(before.adjusted_equity), fmt.usdc(after.adjusted_equity)
        ),
        FigureRow(
            "Used Margin (borrowed)",
            fmt.usdc(before.used_margin),
            fmt.usdc(after.used_margin),
            after.used_margin > before.used_margin,
        ),
        FigureRow(
            "Available Margin", fmt.usdc(before.available_margin), fmt.usdc(after.available_margin)
        ),
        FigureRow(
            "Margin Health",
            _health_text(before),
            _health_text(after),
            after.health is not None and (before.health is None or after.health < before.health),
        ),
        FigureRow(
            "Status",
            _status_text(before),
            _status_text(after),
            _status_text(before) != _status_text(after),
        ),
    ]


class WithdrawalDecisionForm(forms.Form):
    decision = _decision_field()
    reason = _reason_field(REJECTION_REASON_MAX_LENGTH)
    confirmed = forms.BooleanField(required=False)

    def __init__(self, *args, four_eyes: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.four_eyes = four_eyes

    def clean(self):
        data = super().clean()
        reason = (data.get("reason") or "").strip()
        if data.get("decision") == "reject" and not reason:
            raise forms.ValidationError("Give the customer a reason for the rejection.")
        if data.get("decision") == "approve" and self.four_eyes and not reason:
            raise forms.ValidationError(
                "Give a reason for the second approver: this withdrawal is above the "
                "four-eyes threshold, and the reason is kept in the audit log."
            )
        return data


@staff_page
@require_http_methods(["GET", "POST"])
def withdrawal_review_page(request: HttpRequest, withdrawal_id: str) -> HttpResponse:
    withdrawal = get_object_or_404(
        WithdrawalRequest.objects.select_related("account__owner", "reviewed_by"),
        public_id=withdrawal_id,
    )
    here = reverse("ops_withdrawal_review", args=[withdrawal.public_id])
    pending = withdrawal.status == WithdrawalRequest.Status.PENDING
    four_eyes = withdrawal_needs_four_eyes(withdrawal)
    effect = withdrawal_effect_get(withdrawal=withdrawal) if pending else None
    form = WithdrawalDecisionForm(request.POST or None, four_eyes=four_eyes)
    if request.method == "POST":
        if not request.user.has_perm(WITHDRAWAL_PERMISSION):
            messages.error(request, NO_PERMISSION.format("review withdrawals"))
        elif not form.is_valid():
            messages.error(request, _form_error(form))
        elif form.cleaned_data["decision"] == "approve" and effect and effect.refusal:
            messages.error(request, f"Approval refused: {effect.refusal_message}")
        elif not form.cleaned_data["confirmed"]:
            return _withdrawal_confirm(request, withdrawal, form, four_eyes=four_eyes, back=here)
        else:
            response = _withdrawal_decide(request, withdrawal, form)
            if response is not None:
                return response
            return redirect(here)
    account = withdrawal.account
    waiting = withdrawal_pending_approval(withdrawal) if pending else None
    return staff_render(
        request,
        "ops/withdrawal_review.html",
        {
            "title": f"Withdrawal {withdrawal.public_id}",
            "withdrawal": withdrawal,
            "account": account,
            "account_href": account_ops_href(account),
            "pending": pending,
            "effect": effect,
            "rows": _figure_rows(effect) if effect else [],
            "four_eyes": four_eyes,
            "threshold": withdrawal_four_eyes_threshold(),
            "waiting": waiting,
            "waiting_own": waiting is not None and waiting.proposed_by_id == request.user.pk,
            "form": form,
            "audit": _audit_trail(withdrawal, {"status": dict(WithdrawalRequest.Status.choices)}),
            "admin_href": staff_link("admin:accounts_withdrawalrequest_change", withdrawal.pk),
        },
    )


def _withdrawal_confirm(
    request: HttpRequest,
    withdrawal: WithdrawalRequest,
    form: WithdrawalDecisionForm,
    *,
    four_eyes: bool,
    back: str,
) -> HttpResponse:
    decision, reason = form.cleaned_data["decision"], form.cleaned_data["reason"]
    amount = fmt.usdc(withdrawal.amount)
    what = (
        f"{amount} from {withdrawal.account.public_id} ({withdrawal.account.owner.email}) "
        f"to {withdrawal.destination}"
    )
    if decision == "reject":
        title, button = "Reject this withdrawal?", "Reject withdrawal"
        lines = [
            f"Reject withdrawal {withdrawal.public_id}: {what}.",
            f"Reason given to the customer: {reason}",
            "The held amount goes back to the customer's cash; nothing is paid out.",
        ]
    elif four_eyes:
        title, button = "Propose this withdrawal for approval?", "Propose for approval"
        lines = [
            f"Withdrawal {withdrawal.public_id}: {what}.",
            f"It is above {fmt.usdc(withdrawal_four_eyes_threshold())}, so your approval "
            "proposes it: another staff member must approve it before it is paid out.",
            f"Reason: {reason}",
        ]
    else:
        title, button = "Approve this withdrawal?", "Approve and pay out"
        lines = [
            f"Approve withdrawal {withdrawal.public_id}: {what}.",
            "The amount leaves the customer's cash now and the payout is sent.",
        ]
        if reason:
            lines.append(f"Note: {reason}")
    return _confirm_page(
        request,
        title=title,
        lines=lines,
        fields={"decision": decision, "reason": reason},
        button=button,
        back=back,
        danger=decision == "reject",
    )


def _withdrawal_decide(
    request: HttpRequest, withdrawal: WithdrawalRequest, form: WithdrawalDecisionForm
) -> HttpResponse | None:
    """Do the confirmed decision; a message says what happened (None: back to the page)."""
    decision, reason = form.cleaned_data["decision"], form.cleaned_data["reason"]
    try:
        if decision == "reject":
            withdrawal_review_reject(
                withdrawal=withdrawal, actor=request.user, reason=reason, request=request
            )
        else:
            done = withdrawal_review_approve(
                withdrawal=withdrawal, actor=request.user, reason=reason, request=request
            )
    except DomainError as error:
        prefix = "Approval refused" if decision == "approve" else "Rejection refused"
        messages.error(request, f"{prefix}: {error.message}")
        return None
    amount = fmt.usdc(withdrawal.amount)
    if decision == "reject":
        messages.success(
            request,
            f"Withdrawal {withdrawal.public_id} of {amount} rejected; the customer is told.",
        )
    elif isinstance(done, Approval):
        messages.success(
            request,
            f"Withdrawal {withdrawal.public_id} of {amount} proposed for approval "
            f"({done.public_id}): another staff member must approve it.",
        )
        return redirect("ops_approval", done.public_id)
    else:
        messages.success(
            request,
            f"Withdrawal {withdrawal.public_id} of {amount} approved: the payout is on its way.",
        )
    return None


# --- Approvals ----------------------------------------------------------------------------


def _kind_label(kind: str) -> str:
    try:
        return approval_kind_get(kind).label
    except DomainError:
        return kind.replace("_", " ").capitalize()


def _approval_rows(approvals, user: User) -> list[Approval]:
    for approval in approvals:
        approval.kind_label = _kind_label(approval.kind)
        approval.age = _age(approval.proposed_at)
        approval.own = approval.proposed_by_id == user.pk
        approval.is_pending = approval.status == Approval.Status.PENDING
        approval.account_href = account_ops_href(approval.account) if approval.account else ""
    return list(approvals)


@staff_page
@require_http_methods(["GET"])
def approvals_page(request: HttpRequest) -> HttpResponse:
    base = Approval.objects.select_related("proposed_by", "decided_by", "account__owner")
    pending = base.filter(status=Approval.Status.PENDING).order_by("proposed_at", "id")
    decided = base.exclude(status=Approval.Status.PENDING).order_by(
        Case(
            When(Q(decided_at__isnull=True), then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        ),
        "-decided_at",
        "-proposed_at",
    )[:RECENT_DECIDED]
    return staff_render(
        request,
        "ops/approvals.html",
        {
            "title": "Approvals",
            "pending": _approval_rows(pending, request.user),
            "decided": _approval_rows(decided, request.user),
            "recent": RECENT_DECIDED,
            "reason_max": REASON_MAX,
        },
    )


@staff_page
@require_http_methods(["GET"])
def approval_page(request: HttpRequest, approval_id: str) -> HttpResponse:
    approval = get_object_or_404(
        Approval.objects.select_related("proposed_by", "decided_by", "account__owner"),
        public_id=approval_id,
    )
    _approval_rows([approval], request.user)
    withdrawal_href = ""
    if isinstance(approval.payload, dict) and isinstance(approval.payload.get("withdrawal"), str):
        withdrawal_href = staff_link("ops_withdrawal_review", approval.payload["withdrawal"])
    return staff_render(
        request,
        "ops/approval_detail.html",
        {
            "title": f"{approval.kind_label} {approval.public_id}",
            "approval": approval,
            "withdrawal_href": withdrawal_href,
            "audit": _audit_trail(
                approval,
                {
                    "status": dict(Approval.Status.choices),
                    "kind": {approval.kind: approval.kind_label},
                },
            ),
            "reason_max": REASON_MAX,
        },
    )


class ApprovalDecisionForm(forms.Form):
    decision = _decision_field(("withdraw", "Withdraw"))
    note = TextField(label="Reason", multiline=True, required=False, max_length=REASON_MAX)
    confirmed = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if data.get("decision") == "reject" and not (data.get("note") or "").strip():
            raise forms.ValidationError(
                "Give the reason for rejecting it: it is kept in the audit log."
            )
        return data


@staff_page
@require_POST
def approval_decide(request: HttpRequest, approval_id: str) -> HttpResponse:
    approval = get_object_or_404(
        Approval.objects.select_related("proposed_by", "account"), public_id=approval_id
    )
    back = _next_url(request, reverse("ops_approvals"))
    form = ApprovalDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error(form))
        return redirect(back)
    decision, note = form.cleaned_data["decision"], form.cleaned_data["note"]
    label = _kind_label(approval.kind)
    if not form.cleaned_data["confirmed"]:
        verbs = {"approve": "Approve", "reject": "Reject", "withdraw": "Withdraw"}
        lines = [f"{label} {approval.public_id}: {approval.summary}.", f"Why: {approval.reason}"]
        if decision == "approve":
            lines.append("It is applied as soon as you confirm.")
        if note:
            lines.append(f"Your note: {note}")
        return _confirm_page(
            request,
            title=f"{verbs[decision]} this proposal?",
            lines=lines,
            fields={"decision": decision, "note": note, "next": back},
            button=f"{verbs[decision]} {label.lower()}",
            back=back,
            danger=decision != "approve",
        )
    try:
        if decision == "approve":
            done = approval_approve(
                approval_id=approval.public_id, approver=request.user, note=note, request=request
            )
        else:
            if decision == "withdraw" and approval.proposed_by_id != request.user.pk:
                messages.error(request, "Only the staff member who proposed it can withdraw it.")
                return redirect(back)
            if decision == "reject" and approval.proposed_by_id == request.user.pk:
                decision = "withdraw"  # one's own proposal is withdrawn, not rejected
            done = approval_reject(
                approval_id=approval.public_id, staff=request.user, note=note, request=request
            )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(back)
    if decision == "approve":
        if done.status == Approval.Status.APPLIED:
            messages.success(request, f"{approval.public_id} approved and applied: {done.result}")
        elif done.status == Approval.Status.FAILED:
            messages.error(
                request,
                f"{approval.public_id} was approved but could not be applied: {done.result}",
            )
        else:
            messages.warning(
                request,
                f"{approval.public_id} is approved; applying it did not finish and is retried "
                "within a minute.",
            )
    elif decision == "withdraw":
        messages.success(request, f"You withdrew your proposal {approval.public_id}.")
    else:
        messages.success(request, f"{approval.public_id} rejected.")
    return redirect(back)
