"""Forms of the customer pages: they parse what was typed; the services decide.

Business checks (limits, funds, account kind, KYB) live in the services; a
DomainError they raise is put on the form with `form_error_add`, on the field
it is about when there is one. Amounts, free text and days use the portal's
strict fields (`portal.forms`).
"""

from django import forms

from accounts.models import Deposit, Journal
from portal import format as fmt
from portal.errors import DomainError, ErrorCode
from portal.forms import DayField, MoneyField, TextField

# Which field a service's error code is about (else it is a form-wide error).
ERROR_FIELDS = {
    ErrorCode.INSUFFICIENT_FUNDS: "amount",
    ErrorCode.INVALID_TOKEN: "code",
}


def form_error_add(form: forms.Form, error: DomainError, *, field: str | None = None) -> None:
    """Show a service's refusal on the form: on `field`, or the field its code names; as
    a sentence, never with a machine code."""
    field = field or ERROR_FIELDS.get(error.error)
    form.add_error(field if field in form.fields else None, fmt.sentence(error.message))


class PortalForm(forms.Form):
    """Labels without Django's trailing colon."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class NoEchoTextInput(forms.TextInput):
    """A text box that never writes a submitted value back into the page (card numbers)."""

    def format_value(self, value):
        return None


class LoginForm(PortalForm):
    email = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def clean_email(self) -> str:
        # One spelling per address, so "Alice@…" and "alice@…" share a lockout count.
        return self.cleaned_data["email"].strip().lower()


class OtpCodeForm(PortalForm):
    code = forms.CharField(
        label="Authentication code",
        max_length=16,
        help_text="The 6-digit code from your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "spellcheck": "false",
            }
        ),
    )


class DepositForm(PortalForm):
    amount = MoneyField(label="Amount (USDC)", help_text="Cards: 1 to 25,000. Bank: up to 1M.")
    method = forms.ChoiceField(
        label="Pay by",
        choices=Deposit.Method.choices,
        initial=Deposit.Method.CARD,
        widget=forms.RadioSelect,
    )
    card_number = TextField(
        label="Card number",
        required=False,
        max_length=23,
        help_text="Cards only. Test mode: any valid number, e.g. 4242 4242 4242 4242; numbers "
        "ending in 0002 are declined.",
        widget=NoEchoTextInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric"}),
    )

    def clean(self):
        cleaned = super().clean()
        method = cleaned.get("method")
        if method == Deposit.Method.CARD and not cleaned.get("card_number", "").strip():
            self.add_error("card_number", "Enter the card number to pay by card.")
        if method == Deposit.Method.BANK_TRANSFER:
            cleaned["card_number"] = ""  # a number typed before switching is not sent
        return cleaned


class WithdrawalForm(PortalForm):
    amount = MoneyField(label="Amount (USDC)")
    destination = TextField(
        label="Destination",
        max_length=120,
        help_text="Where the money goes, e.g. the label of your bank account on file.",
    )


class DateRangeMixin:
    def _range_check(self, cleaned: dict, start: str, end: str) -> None:
        if cleaned.get(start) and cleaned.get(end) and cleaned[start] > cleaned[end]:
            self.add_error(end, "The end date must be on or after the start date.")


class TransactionFilterForm(DateRangeMixin, PortalForm):
    kind = forms.ChoiceField(
        label="Type", required=False, choices=[("", "All types"), *Journal.Kind.choices]
    )
    date_from = DayField(label="From (UTC day)", required=False)
    date_to = DayField(label="To (UTC day, included)", required=False)

    def clean(self):
        cleaned = super().clean()
        self._range_check(cleaned, "date_from", "date_to")
        return cleaned


class TotpConfirmForm(PortalForm):
    code = forms.CharField(
        label="Code from your app",
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )


class TotpDisableForm(OtpCodeForm):
    pass
