"""Forms of the trading pages: the shape of what the browser sends.

They check types and ranges only (numbers and text through the portal's strict
fields, `portal.forms`); every decision (margin, liquidity, market state,
leverage limits) is the services', whose DomainErrors the views show.
"""

import uuid
from datetime import date

from django import forms
from django.utils import timezone

from accounts.web_forms import DateRangeMixin, PortalForm
from portal.forms import DayField, MoneyField, TextField, WholeNumberField
from trading.models import Instrument, Report
from trading.selectors import contract_symbol

SLIPPAGE_BPS_DEFAULT = 50
SLIPPAGE_BPS_MAX = 10_000


def order_form_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The instruments the order form offers: each open binary's YES and NO contract,
    then each open perpetual (grouped for a <select>)."""
    instruments = Instrument.objects.filter(status=Instrument.Status.OPEN).order_by("symbol")
    binaries, perps = [], []
    for instrument in instruments.only("symbol", "title", "kind"):
        if instrument.is_binary:
            for outcome in ("yes", "no"):
                binaries.append(
                    (
                        contract_symbol(instrument.symbol, outcome),
                        f"{instrument.symbol} {outcome.upper()} — {instrument.title}",
                    )
                )
        else:
            perps.append((instrument.symbol, f"{instrument.symbol} — {instrument.title}"))
    groups = []
    if binaries:
        groups.append(("Prediction markets", binaries))
    if perps:
        groups.append(("Perpetuals", perps))
    return groups


class TradeForm(forms.Form):
    """A market order for a USDC notional (execute)."""

    symbol = TextField(max_length=80, label="Instrument")
    side = forms.ChoiceField(choices=[("buy", "Buy"), ("sell", "Sell")], initial="buy")
    notional_usdc = MoneyField(label="Notional (USDC)", max_digits=18)
    slippage_bps = WholeNumberField(
        label="Max slippage (bps)",
        min_value=0,
        max_value=SLIPPAGE_BPS_MAX,
        initial=SLIPPAGE_BPS_DEFAULT,
        required=False,
    )
    # A fresh id per rendered form: a double submit (or a retry after a lost
    # answer) returns the first order instead of placing a second.
    client_order_id = TextField(max_length=64, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("client_order_id", f"web-{uuid.uuid4().hex}")

    def clean_slippage_bps(self) -> int:
        value = self.cleaned_data.get("slippage_bps")
        return SLIPPAGE_BPS_DEFAULT if value is None else value

    def clean_client_order_id(self) -> str | None:
        return self.cleaned_data.get("client_order_id") or None


class LeverageForm(forms.Form):
    """A new leverage for one perp market (its range, [1, max], is the service's to check)."""

    leverage = WholeNumberField()


class SecretTextarea(forms.Textarea):
    """A textarea that never writes a submitted value back into the page (a form
    shown again after an error asks for the secret again)."""

    def format_value(self, value):
        return None


class KalshiLinkForm(forms.Form):
    environment = forms.ChoiceField(
        choices=[("production", "Production"), ("demo", "Demo")],
        help_text="Kalshi keys work only in the environment that issued them.",
    )
    key_id = TextField(label="API key id", max_length=100)
    private_key_pem = TextField(
        multiline=True,
        label="RSA private key (PEM)",
        max_length=20_000,
        strip=False,
        widget=SecretTextarea(attrs={"rows": 6, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Stored encrypted and never shown again. A read-only key is enough.",
    )
    name = TextField(label="Account name", max_length=100, required=False)


class PolymarketLinkForm(forms.Form):
    wallet = TextField(label="Wallet address", max_length=42)
    clob_api_key = TextField(label="CLOB API key (optional)", max_length=200, required=False)
    clob_api_secret = TextField(
        label="CLOB API secret (optional)",
        max_length=200,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    clob_api_passphrase = TextField(
        label="CLOB API passphrase (optional)",
        max_length=200,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="With CLOB keys we can also read the wallet's cash; the address alone "
        "is enough for positions.",
    )
    name = TextField(label="Account name", max_length=100, required=False)


class KalshiRotateForm(forms.Form):
    key_id = TextField(label="New API key id", max_length=100)
    private_key_pem = KalshiLinkForm.base_fields["private_key_pem"]


class PolymarketRotateForm(forms.Form):
    clob_api_key = PolymarketLinkForm.base_fields["clob_api_key"]
    clob_api_secret = PolymarketLinkForm.base_fields["clob_api_secret"]
    clob_api_passphrase = PolymarketLinkForm.base_fields["clob_api_passphrase"]


def _month_start() -> date:
    return timezone.now().date().replace(day=1)


def _today() -> date:
    return timezone.now().date()


class ReportRequestForm(DateRangeMixin, PortalForm):
    type = forms.ChoiceField(label="Report", choices=Report.Type.choices)
    date_from = DayField(label="From (UTC day)", initial=_month_start)
    date_to = DayField(label="To (UTC day, included)", initial=_today)
    format = forms.ChoiceField(
        label="Format",
        choices=Report.Format.choices,
        initial=Report.Format.CSV,
        widget=forms.RadioSelect,
    )

    def clean(self):
        cleaned = super().clean()
        self._range_check(cleaned, "date_from", "date_to")
        return cleaned
