"""One account as ops see it (GET /ops/accounts/<public_id>/) and its staff actions.

The page is read-only: the customer's dashboard figures exactly as the
dashboard computes them (`trading.web.figures.dashboard_snapshot`, no maths of
its own), the open positions (the snapshot's breakdown and perps), recent
orders, the cash account's latest ledger postings (and a link to the admin's
full list), margin-call episodes, the notifications sent about the account,
the linked credential's status (never its secret: the sealed field is not even
loaded) and the audit trail of the account and its objects.

Actions (POST /ops/accounts/<public_id>/actions/<action>/), each with a reason,
a confirmation page and an audit entry written by the service that makes the
change, in its transaction:

- freeze / unfreeze: `account_freeze_set` (the admin's Freeze / Unfreeze actions);
- force-close a position: a four-eyes change (`force_close_propose`: a pending
  approval another staff member must approve; applied through `position_close`);
- margin eligibility: `account_margin_override_set` (the admin's);
- a haircut add-on: `instrument_haircut_addon_set`. An add-on is per
  instrument, for every account holding it, so it is offered from the
  account's positions (each row's instrument), not set on the account.

A GET of an action's URL shows its form (prefilled from ?symbol=); a POST
without `confirmed` shows what it will do and asks to confirm; a POST with it
does it and returns to the account page with the outcome.
"""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.audit_labels import action_label, object_type_label
from accounts.models import (
    Account,
    Approval,
    AuditLog,
    LinkedCredential,
    Notification,
    Posting,
    WithdrawalRequest,
)
from accounts.services.accounts import account_freeze_set
from accounts.services.ledger import cash_ledger_account
from accounts.staff import staff_page, staff_render
from portal import format as fmt
from portal.errors import DomainError
from trading.models import Instrument, InstrumentHaircut, MarginCall, Order
from trading.services.eligibility import account_margin_override_set
from trading.services.force_close import ALL, force_close_check, force_close_propose
from trading.services.haircuts import instrument_haircut_addon_set
from trading.web import figures

ORDERS_SHOWN = 25
POSTINGS_SHOWN = 50
MARGIN_CALLS_SHOWN = 20
NOTIFICATIONS_SHOWN = 25
AUDIT_SHOWN = 50
REASON_MAX = 2000

ACCOUNT_PERMISSION = "accounts.change_account"
HAIRCUT_PERMISSION = "trading.change_instrumenthaircut"


def _account_get(public_id: str) -> Account:
    account = Account.objects.select_related("owner").filter(public_id=public_id).first()
    if account is None:
        raise Http404(f"There is no account {public_id}.")
    return account


def _refused(request: HttpRequest, message: str) -> HttpResponse:
    return staff_render(
        request, "ops/refused.html", {"title": "Not allowed", "message": message}, status=403
    )


# --- What the page shows ------------------------------------------------------------


def _positions(account: Account, snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """The snapshot's binary breakdown and perps as one table, each row with its
    instrument (admin link, current haircut add-on)."""
    rows = [{"binary": True, **row} for row in snapshot["breakdown"]] + [
        {"binary": False, **row} for row in snapshot["perps"]
    ]
    symbols = {row["symbol"].partition(":")[0] for row in rows}
    instruments = {
        instrument.symbol: instrument
        for instrument in Instrument.objects.filter(symbol__in=symbols).select_related(
            "haircut_addon"
        )
    }
    for row in rows:
        instrument = instruments.get(row["symbol"].partition(":")[0])
        row["instrument"] = instrument
        addon = getattr(instrument, "haircut_addon", None) if instrument else None
        row["haircut_addon"] = addon.addon if addon is not None else None
        base, _, outcome = row["symbol"].partition(":")
        row["label"] = fmt.contract(base, (outcome or "yes") if row["binary"] else "")
    return rows


def _audit_rows(account: Account, credential: LinkedCredential | None) -> list[dict[str, Any]]:
    """The latest audit entries about the account, its approvals, withdrawals and
    linked credential, and haircut add-ons set from its page (`changes.account`)."""
    # Each branch names an object_type, so the (object_type, object_id) index serves it;
    # a haircut add-on set from this page is the instrument's, marked with the account.
    about = Q(object_type="accounts.Account", object_id=str(account.pk)) | Q(
        object_type="trading.Instrument", changes__account=account.public_id
    )
    approvals = [
        str(pk) for pk in Approval.objects.filter(account=account).values_list("pk", flat=True)
    ]
    if approvals:
        about |= Q(object_type="accounts.Approval", object_id__in=approvals)
    withdrawals = [
        str(pk)
        for pk in WithdrawalRequest.objects.filter(account=account).values_list("pk", flat=True)
    ]
    if withdrawals:
        about |= Q(object_type="accounts.WithdrawalRequest", object_id__in=withdrawals)
    if credential is not None:
        about |= Q(object_type="accounts.LinkedCredential", object_id=str(credential.pk))
    rows = []
    for entry in AuditLog.objects.filter(about).order_by("-created_at", "-id")[:AUDIT_SHOWN]:
        changes = dict(entry.changes or {})
        reason = changes.pop("reason", "")
        changes.pop("account", None)
        rows.append(
            {
                "entry": entry,
                "action": action_label(entry.action),
                "object": object_type_label(entry.object_type),
                "reason": reason,
                "changes": [
                    {
                        "field": name.replace("_", " ").capitalize(),
                        "change": change,
                        "pair": isinstance(change, list) and len(change) == 2,
                    }
                    for name, change in changes.items()
                ],
            }
        )
    return rows


def account_view_get(account: Account) -> dict[str, Any]:
    """Everything the page shows of `account` (a freshly read row)."""
    snapshot = figures.dashboard_snapshot(account=account, history=False)
    credential = (
        LinkedCredential.objects.filter(account=account).defer("sealed_secret").first()
        if not account.is_custodial
        else None
    )
    ledger = cash_ledger_account(account)
    postings = list(
        Posting.objects.filter(ledger_account=ledger)
        .select_related("journal")
        .order_by("-id")[:POSTINGS_SHOWN]
    )
    return {
        "snapshot": snapshot,
        "positions": _positions(account, snapshot),
        "orders": list(
            Order.objects.filter(account=account)
            .select_related("instrument", "venue")
            .order_by("-created_at", "-id")[:ORDERS_SHOWN]
        ),
        "orders_total": Order.objects.filter(account=account).count(),
        "postings": postings,
        "postings_url": reverse("admin:accounts_posting_changelist")
        + f"?ledger_account__id__exact={ledger.pk}",
        "margin_calls": list(
            MarginCall.objects.filter(account=account)
            .prefetch_related("liquidations")
            .order_by("-opened_at")[:MARGIN_CALLS_SHOWN]
        ),
        "notifications": list(
            Notification.objects.filter(account=account).order_by("-created_at", "-id")[
                :NOTIFICATIONS_SHOWN
            ]
        ),
        "credential": credential,
        "approvals": list(
            Approval.objects.filter(account=account)
            .select_related("proposed_by", "decided_by")
            .order_by("-proposed_at", "-id")[:20]
        ),
        "audit": _audit_rows(account, credential),
    }


@staff_page
@require_http_methods(["GET"])
def account_page(request: HttpRequest, public_id: str) -> HttpResponse:
    account = _account_get(public_id)
    context = {
        "title": f"Account {account.public_id}",
        "account": account,
        "freeze_form": ReasonForm(auto_id="id_freeze_%s"),
        "margin_form": MarginForm(
            initial={"override": account.margin_override}, auto_id="id_margin_%s"
        ),
        "can_change": request.user.has_perm(ACCOUNT_PERMISSION),
        "can_set_haircut": request.user.has_perm(HAIRCUT_PERMISSION),
        **account_view_get(account),
    }
    return staff_render(request, "ops/account.html", context)


# --- Actions ----------------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why: kept in the audit log with the change.",
        error_messages={"required": "Give a reason: it is kept in the audit log."},
    )


class MarginForm(ReasonForm):
    override = forms.ChoiceField(
        label="Margin eligibility", choices=Account.MarginOverride.choices, required=False
    )
    field_order = ("override", "reason")


class ForceCloseForm(ReasonForm):
    symbol = forms.CharField(label="Contract", max_length=64)
    quantity = forms.DecimalField(
        required=False,
        min_value=Decimal("0.000001"),
        decimal_places=6,
        max_digits=24,
        help_text="Contracts to close; leave empty to close all of it.",
    )
    field_order = ("symbol", "quantity", "reason")


class HaircutForm(ReasonForm):
    symbol = forms.CharField(label="Instrument", max_length=64)
    addon = forms.DecimalField(
        label="Haircut add-on",
        min_value=Decimal(0),
        max_value=Decimal(1),
        decimal_places=6,
        max_digits=12,
        help_text="Added to the instrument's haircut h before the h_max cap: 0.05 adds "
        "5 percentage points; 0 removes it. Applies to every account holding it.",
    )
    note = forms.CharField(
        required=False, max_length=200, help_text="Shown with the add-on in the risk policy."
    )
    field_order = ("symbol", "addon", "note", "reason")


def _form_errors(form: forms.Form) -> str:
    return " ".join(
        " ".join(errors)
        if name == "__all__"
        else f"{form.fields[name].label or name.capitalize()}: {' '.join(errors)}"
        for name, errors in form.errors.items()
    )


class Action:
    """One staff action on the account page: its form, what it will do (the confirm
    page's sentence), and doing it (the outcome's sentence)."""

    title = ""
    form_class: type[forms.Form] = ReasonForm
    permission = ACCOUNT_PERMISSION
    confirm_label = "Confirm"
    danger = False

    def __init__(self, account: Account) -> None:
        self.account = account

    def initial(self, request: HttpRequest) -> dict[str, Any]:
        return {}

    def describe(self, data: dict[str, Any]) -> str:
        raise NotImplementedError

    def perform(self, request: HttpRequest, data: dict[str, Any]) -> str:
        raise NotImplementedError


class FreezeAction(Action):
    frozen = True
    title = "Freeze trading"
    confirm_label = "Freeze"
    danger = True

    def describe(self, data):
        if self.frozen:
            return (
                f"Freeze account {self.account.public_id}: new orders, deposits and "
                "withdrawals are refused until it is unfrozen (deposits already under way "
                "are still credited). Open positions stay as they are."
            )
        return f"Unfreeze account {self.account.public_id}: its owner can trade again."

    def perform(self, request, data):
        changed = account_freeze_set(
            account=self.account,
            frozen=self.frozen,
            actor=request.user,
            reason=data["reason"],
            request=request,
        )
        state = "frozen" if self.frozen else "active"
        if not changed:
            return f"Account {self.account.public_id} was already {state}: nothing changed."
        return f"Account {self.account.public_id} is now {state}."


class UnfreezeAction(FreezeAction):
    frozen = False
    title = "Unfreeze trading"
    confirm_label = "Unfreeze"
    danger = False


class MarginAction(Action):
    title = "Margin eligibility"
    form_class = MarginForm
    confirm_label = "Change eligibility"

    def initial(self, request):
        return {"override": self.account.margin_override}

    def describe(self, data):
        label = Account.MarginOverride(data["override"]).label
        before = self.account.get_margin_override_display()
        text = f"Set margin eligibility of {self.account.public_id} to “{label}” (now “{before}”)."
        if data["override"] == Account.MarginOverride.REVOKED:
            text += " Revoking does not repay a loan: a borrowing account can only reduce risk."
        return text

    def perform(self, request, data):
        updated = account_margin_override_set(
            account=self.account,
            override=data["override"],
            actor=request.user,
            reason=data["reason"],
            request=request,
        )
        enabled = "on" if updated.margin_enabled else "off"
        label = updated.get_margin_override_display()
        return f"Margin eligibility of {updated.public_id} is “{label}”; margin is {enabled}."


class ForceCloseAction(Action):
    title = "Force-close a position"
    form_class = ForceCloseForm
    confirm_label = "Propose the force-close"
    danger = True

    def initial(self, request):
        return {"symbol": request.GET.get("symbol", "")}

    def _payload(self, data):
        quantity = data.get("quantity")
        return {
            "account": self.account.public_id,
            "symbol": data["symbol"],
            "quantity": ALL if quantity in (None, "") else str(quantity),
        }

    def describe(self, data):
        summary = force_close_check(self._payload(data))
        return (
            f"{summary}, through the order path (an immediate-or-cancel order at the "
            "protective price). This is a four-eyes change: it becomes a proposal that "
            "another staff member must approve before anything is sold."
        )

    def perform(self, request, data):
        approval = force_close_propose(
            account=self.account,
            symbol=data["symbol"],
            quantity=data.get("quantity"),
            proposer=request.user,
            reason=data["reason"],
            request=request,
        )
        return (
            f"Proposed {approval.public_id}: {approval.summary}. Another staff member must "
            "approve it in the approvals queue; nothing is sold until then."
        )


class HaircutAction(Action):
    title = "Haircut add-on"
    form_class = HaircutForm
    permission = HAIRCUT_PERMISSION
    confirm_label = "Set the add-on"

    def initial(self, request):
        symbol = request.GET.get("symbol", "").partition(":")[0]
        row = InstrumentHaircut.objects.filter(instrument__symbol=symbol).first()
        return {
            "symbol": symbol,
            "addon": row.addon if row else None,
            "note": row.note if row else "",
        }

    def _instrument(self, data) -> Instrument:
        symbol = data["symbol"].partition(":")[0].strip()
        instrument = Instrument.objects.filter(symbol=symbol).first()
        if instrument is None:
            raise DomainError(f"There is no instrument {symbol}.")
        return instrument

    def describe(self, data):
        instrument = self._instrument(data)
        row = InstrumentHaircut.objects.filter(instrument=instrument).first()
        now = "none" if row is None else fmt.percent(row.addon, 2)
        holders = instrument.positions.exclude(quantity=0).values("account").distinct().count()
        return (
            f"Set the haircut add-on of {instrument.symbol} to {fmt.percent(data['addon'], 2)} "
            f"(now {now}). It is per instrument: it changes the margin of every account "
            f"holding {instrument.symbol} ({holders} now), not only {self.account.public_id}."
        )

    def perform(self, request, data):
        instrument = self._instrument(data)
        row = instrument_haircut_addon_set(
            instrument=instrument,
            addon=data["addon"],
            note=data.get("note", ""),
            actor=request.user,
            reason=data["reason"],
            account=self.account,
            request=request,
        )
        return (
            f"{instrument.symbol} now has a haircut add-on of {fmt.percent(row.addon, 2)}; "
            "the margin engine applies it on its next sweep."
        )


ACTIONS: dict[str, type[Action]] = {
    "freeze": FreezeAction,
    "unfreeze": UnfreezeAction,
    "margin": MarginAction,
    "force-close": ForceCloseAction,
    "haircut": HaircutAction,
}


def _hidden_fields(form: forms.Form) -> list[tuple[str, str]]:
    """The cleaned values the confirm page posts back, as strings."""
    return [
        (name, "" if value is None else str(value)) for name, value in form.cleaned_data.items()
    ]


@staff_page
@require_http_methods(["GET", "POST"])
def account_action(request: HttpRequest, public_id: str, action: str) -> HttpResponse:
    account = _account_get(public_id)
    if action not in ACTIONS:
        raise Http404(f"There is no action {action!r}.")
    handler = ACTIONS[action](account)
    if not request.user.has_perm(handler.permission):
        return _refused(request, f"You do not have the permission to do this ({handler.title}).")
    page_url = reverse("ops_account", args=[account.public_id])
    context: dict[str, Any] = {
        "title": f"{handler.title} · {account.public_id}",
        "account": account,
        "action": handler,
        "action_url": reverse("ops_account_action", args=[account.public_id, action]),
        "page_url": page_url,
    }
    if request.method == "GET":
        form = handler.form_class(initial=handler.initial(request))
        return staff_render(request, "ops/account_action.html", context | {"form": form})

    form = handler.form_class(request.POST)
    if not form.is_valid():
        context |= {"form": form, "error": _form_errors(form)}
        return staff_render(request, "ops/account_action.html", context, status=400)
    data = form.cleaned_data
    try:
        if request.POST.get("confirmed") != "yes":
            context |= {
                "summary": handler.describe(data),
                "hidden": _hidden_fields(form),
                "reason": data["reason"],
            }
            return staff_render(request, "ops/account_confirm.html", context)
        outcome = handler.perform(request, data)
    except DomainError as error:
        context |= {"form": form, "error": fmt.sentence(error.message)}
        return staff_render(request, "ops/account_action.html", context, status=409)
    messages.success(request, outcome)
    return redirect(f"{page_url}#actions")
