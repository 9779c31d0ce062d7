"""Risk-policy changes (GET/POST /ops/risk-policy/): preview the impact, then propose.

The form holds every setting of the policy as people read it (ratios "1.50",
money "1,000,000.00", percentages "8"). "Preview" evaluates every account
under the policy in force and the proposed one with the margin engine's maths
(`trading.services.risk_policy.risk_policy_preview`) and shows the result.
A worker computes it (`risk_policy_preview_request`): until it is stored, the page
says so and its script (static/js/ops-risk-policy.js) asks `preview/<token>/` until
it is, then shows it (without scripts, "Preview the impact" again does). "Propose"
(with a reason) files a four-eyes approval of kind "risk_policy": another staff
member approves it on the approvals page, and only then does it apply.
"""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from accounts.models import Approval
from accounts.services.approvals import approval_propose
from accounts.staff import staff_json, staff_link, staff_page, staff_render
from portal.errors import DomainError
from portal.forms import TextField
from trading.services.risk_policy import (
    APPROVAL_KIND,
    POLICY_FIELDS,
    POLICY_GROUPS,
    risk_policy_changes,
    risk_policy_current,
    risk_policy_payload,
    risk_policy_preview_request,
    risk_policy_preview_stored,
)

CHANGE_PERMISSION = "trading.change_riskpolicy"
NO_PERMISSION = "Your staff account may view the risk policy but not propose changes to it."
NOTHING_CHANGED = "Nothing to propose: every value is the one in force. Change a value first."


class PolicyValueField(forms.CharField):
    """A setting typed as people read it; cleaned to the stored value."""

    def __init__(self, *, spec, **kwargs):
        self.spec = spec
        super().__init__(
            label=spec.label,
            help_text=spec.help_text,
            max_length=40,
            widget=forms.TextInput(
                attrs={"inputmode": "decimal", "autocomplete": "off", "size": 14}
            ),
            **kwargs,
        )

    def prepare_value(self, value):
        if value is None or isinstance(value, str):
            return value
        return self.spec.shown(value)

    def clean(self, value):
        text = super().clean(value)
        try:
            return self.spec.parse(text)
        except DomainError as error:
            raise forms.ValidationError(error.message) from None


class RiskPolicyForm(forms.Form):
    reason = TextField(
        multiline=True,
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why this change: kept with the proposal and in the audit log.",
    )

    def __init__(self, *args, policy, **kwargs):
        super().__init__(*args, **kwargs)
        for name, spec in POLICY_FIELDS.items():
            self.fields[name] = PolicyValueField(spec=spec, initial=getattr(policy, name))
        self.policy = policy

    def groups(self):
        """(title, [(bound field, unit, value in force)]) in the admin's order."""
        return [
            (
                title,
                [
                    (
                        self[spec.name],
                        spec.unit or ("%" if spec.kind == "percent" else ""),
                        spec.display(getattr(self.policy, spec.name)),
                    )
                    for spec in specs
                ],
            )
            for title, specs in POLICY_GROUPS
        ]

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in POLICY_FIELDS}


@staff_page
def risk_policy_page(request: HttpRequest) -> HttpResponse:
    policy = risk_policy_current()
    form = RiskPolicyForm(request.POST or None, policy=policy)
    preview = changes = preview_status_url = None
    may_propose = request.user.has_perm(CHANGE_PERMISSION)
    action = request.POST.get("action") if request.method == "POST" else None
    status = 200
    if action and form.is_valid():
        changes = risk_policy_changes(form.values(), policy)
        if not changes:
            form.add_error(None, NOTHING_CHANGED)
        elif action == "propose":
            if not may_propose:
                form.add_error(None, NO_PERMISSION)
                status = 403
            elif not form.cleaned_data["reason"]:
                form.add_error("reason", "Give a reason: it is kept in the audit log.")
            else:
                try:
                    approval = approval_propose(
                        kind=APPROVAL_KIND,
                        payload=risk_policy_payload(changes),
                        proposer=request.user,
                        reason=form.cleaned_data["reason"],
                        request=request,
                    )
                except DomainError as error:
                    form.add_error(None, error.message)
                else:
                    messages.success(
                        request,
                        f"Proposed ({approval.public_id}): {approval.summary}. Another staff "
                        "member must approve it before it applies.",
                    )
                    return HttpResponseRedirect(reverse("ops_risk_policy"))
        if changes and not form.non_field_errors():
            try:
                token, preview = risk_policy_preview_request(changes, policy)
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                if preview is None:
                    preview_status_url = reverse("ops_risk_policy_preview", args=[token])
    pending = Approval.objects.filter(
        kind=APPROVAL_KIND, status=Approval.Status.PENDING
    ).select_related("proposed_by")
    return staff_render(
        request,
        "ops/risk_policy.html",
        {
            "title": "Risk policy",
            "form": form,
            "policy": policy,
            "preview": preview,
            "preview_pending": preview_status_url,
            "changes": [
                (
                    POLICY_FIELDS[name],
                    POLICY_FIELDS[name].display(getattr(policy, name)),
                    POLICY_FIELDS[name].display(value),
                )
                for name, value in (changes or {}).items()
            ],
            "may_propose": may_propose,
            "pending": pending,
            "approvals_url": staff_link("ops_approvals"),
        },
        status=status,
    )


@staff_json
def risk_policy_preview_status(request: HttpRequest, token: str) -> HttpResponse:
    """GET: {"ready": whether the preview named `token` is stored} (the page's script
    asks until it is)."""
    return JsonResponse({"ready": risk_policy_preview_stored(token) is not None})
