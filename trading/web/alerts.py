"""Health alerts: the customer sets a Margin Health level per margin account (in-app, and
by email if they like) and deletes it. Thin views over trading.services.health_alerts;
the margin engine fires them."""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Account
from accounts.web import account_label, accounts_of, portal_page
from accounts.web_forms import PortalForm, form_error_add
from portal.errors import DomainError, NotFound
from portal.format import ratio
from portal.forms import DecimalInputField
from trading.services.health_alerts import (
    HYSTERESIS,
    health_alert_create,
    health_alert_delete,
    health_alert_list,
)

CHANNELS = [
    ("email", "In the portal and by email"),
    ("in_app", "In the portal only"),
]


class HealthAlertForm(PortalForm):
    account = forms.ChoiceField(label="Account")
    level = DecimalInputField(
        label="Alert when Margin Health falls below",
        max_digits=6,
        decimal_places=2,
        help_text="A ratio such as 1.30. A margin call opens below 1.00.",
        error_messages={
            "max_decimal_places": "Give the level with at most 2 decimal places, e.g. 1.30.",
            "max_digits": "Choose a level of at most 10.00.",
            "max_whole_digits": "Choose a level of at most 10.00.",
        },
    )
    channels = forms.ChoiceField(
        label="Tell me", choices=CHANNELS, initial="email", widget=forms.RadioSelect
    )

    def __init__(self, *args, accounts: list[Account], **kwargs):
        super().__init__(*args, **kwargs)
        self.accounts = {account.public_id: account for account in accounts}
        self.fields["account"].choices = [
            (account.public_id, account_label(account)) for account in accounts
        ]

    def clean_level(self) -> Decimal:
        level = self.cleaned_data["level"]
        if level <= 0:
            raise forms.ValidationError("Enter a level greater than 0, such as 1.30.")
        return level


def _margin_accounts(request: HttpRequest) -> list[Account]:
    return [a for a in accounts_of(request) if a.kind == Account.Kind.CUSTODIAL]


def _page(request: HttpRequest, form: HealthAlertForm, *, status: int = 200) -> HttpResponse:
    alerts = health_alert_list(user=request.user)
    for alert in alerts:
        alert.rearm_at = ratio(alert.level + HYSTERESIS)
        alert.account_label = account_label(alert.account)
    context = {"form": form, "alerts": alerts, "here": "health_alerts"}
    return render(request, "trading/health_alerts.html", context, status=status)


@portal_page
@require_http_methods(["GET", "POST"])
def health_alerts_view(request: HttpRequest) -> HttpResponse:
    accounts = _margin_accounts(request)
    if request.method != "POST":
        return _page(request, HealthAlertForm(accounts=accounts))
    form = HealthAlertForm(request.POST, accounts=accounts)
    if form.is_valid():
        account = form.accounts[form.cleaned_data["account"]]
        try:
            alert = health_alert_create(
                user=request.user,
                account=account,
                level=form.cleaned_data["level"],
                email=form.cleaned_data["channels"] == "email",
            )
        except DomainError as error:
            form_error_add(form, error, field="level")
        else:
            messages.success(
                request,
                f"Alert set: we will tell you when Margin Health of {account.public_id} falls "
                f"below {ratio(alert.level)}.",
            )
            return redirect("health_alerts")
    return _page(request, form, status=400)


@portal_page
@require_POST
def health_alert_delete_view(request: HttpRequest, alert_id: int) -> HttpResponse:
    try:
        alert = health_alert_delete(user=request.user, alert_id=alert_id)
    except NotFound as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, f"Alert at {ratio(alert.level)} on {alert.account.public_id} deleted."
        )
    return redirect("health_alerts")
