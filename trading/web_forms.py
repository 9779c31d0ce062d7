"""Forms of the trading pages: the shape of what the browser sends.

They check types and ranges only (numbers and text through the portal's strict
fields, `portal.forms`); every decision (margin, liquidity, market state,
leverage limits) is the services', whose DomainErrors the views show.
"""

import uuid
from datetime import date
from decimal import Decimal

from django import forms
from django.utils import timezone

from accounts.web_forms import DateRangeMixin, PortalForm
from portal.forms import DayField, DecimalInputField, MoneyField, TextField, WholeNumberField
from trading.catalog import instrument_get
from trading.models import Instrument, Report

SLIPPAGE_BPS_DEFAULT = 50
SLIPPAGE_BPS_MAX = 10_000


def order_form_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The markets the order ticket offers (grouped for its <select>): each open
    binary (its YES / NO contract is the ticket's Outcome), then each open
    perpetual."""
    instruments = Instrument.objects.filter(status=Instrument.Status.OPEN).order_by("symbol")
    binaries, perps = [], []
    for instrument in instruments.only("symbol", "title", "kind"):
        label = f"{instrument.symbol} — {instrument.title}"
        (binaries if instrument.is_binary else perps).append((instrument.symbol, label))
    groups = []
    if binaries:
        groups.append(("Prediction markets", binaries))
    if perps:
        groups.append(("Perpetuals", perps))
    return groups


def _in_cents(value: Decimal | None) -> Decimal | None:
    return None if value is None else value / 100


class TicketForm(forms.Form):
    """The dashboard's order ticket: what the browser sends.

    A market order sized by notional goes to execute (`order_execute`); one
    sized in contracts, and every limit order, to `order_place` (time in
    force, take-profit / stop-loss, a perp's leverage). Prices are typed as
    the market quotes them: in cents for a prediction market (46 = 46¢ =
    0.46 USDC a contract), in USDC for a perpetual; `clean` turns them into
    USDC per contract. `confirmed` is the confirmation of a large order (the
    ticket's dialog, or its checkbox without scripts).
    """

    symbol = TextField(max_length=80, label="Market")
    outcome = forms.ChoiceField(
        choices=[("yes", "YES"), ("no", "NO")], initial="yes", required=False, label="Outcome"
    )
    side = forms.ChoiceField(choices=[("buy", "Buy"), ("sell", "Sell")], initial="buy")
    order_type = forms.ChoiceField(
        label="Order type",
        choices=[("market", "Market"), ("limit", "Limit")],
        initial="market",
        required=False,
    )
    size_mode = forms.ChoiceField(
        label="Size in",
        choices=[("notional", "USDC"), ("quantity", "Contracts")],
        initial="notional",
        required=False,
    )
    notional_usdc = MoneyField(label="Notional (USDC)", max_digits=18, required=False)
    quantity = DecimalInputField(
        label="Contracts",
        max_digits=24,
        decimal_places=6,
        min_value=Decimal("0.000001"),
        required=False,
    )
    price = DecimalInputField(label="Limit price", max_digits=24, decimal_places=8, required=False)
    time_in_force = forms.ChoiceField(
        label="Time in force",
        choices=[
            ("gtc", "Good till cancelled"),
            ("ioc", "Immediate or cancel"),
            ("fok", "Fill or kill"),
        ],
        initial="gtc",
        required=False,
    )
    take_profit = DecimalInputField(
        label="Take-profit", max_digits=24, decimal_places=8, required=False
    )
    stop_loss = DecimalInputField(
        label="Stop-loss", max_digits=24, decimal_places=8, required=False
    )
    leverage = WholeNumberField(label="Leverage", min_value=1, required=False)
    slippage_bps = WholeNumberField(
        label="Max slippage (bps)",
        min_value=0,
        max_value=SLIPPAGE_BPS_MAX,
        initial=SLIPPAGE_BPS_DEFAULT,
        required=False,
    )
    confirmed = forms.BooleanField(required=False, label="I confirm this order")
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

    def clean(self):
        data = super().clean()
        data["order_type"] = data.get("order_type") or "market"
        data["size_mode"] = data.get("size_mode") or "notional"
        data["time_in_force"] = data.get("time_in_force") or "gtc"
        symbol = data.get("symbol")
        if not symbol:
            return data
        base, _, suffix = symbol.partition(":")
        instrument = instrument_get(symbol=base.strip())
        if instrument is None:
            self.add_error("symbol", f"There is no market called {base.strip()}.")
            return data
        binary = instrument.is_binary
        if binary and not suffix and data.get("outcome") == "no":
            symbol = f"{base}:NO"
        data["contract"] = symbol
        data["binary"] = binary
        if data["order_type"] == "limit" and data["size_mode"] == "notional":
            self.add_error("quantity", "A limit order is sized in contracts.")
        elif data["size_mode"] == "notional":
            if data.get("notional_usdc") is None:
                self.add_error("notional_usdc", "Enter the amount to trade, in USDC.")
        elif data.get("quantity") is None:
            self.add_error("quantity", "Enter the number of contracts.")
        if data["order_type"] == "limit" and data.get("price") is None:
            self.add_error("price", "A limit order needs a price.")
        if data["order_type"] == "market" and (
            data.get("take_profit") is not None or data.get("stop_loss") is not None
        ):
            self.add_error("take_profit", "Take-profit and stop-loss need a limit order.")
        if binary:
            if data.get("leverage") is not None:
                self.add_error("leverage", "Leverage applies to perpetuals only.")
            for name in ("price", "take_profit", "stop_loss"):
                data[name] = _in_cents(data.get(name))
        return data


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
