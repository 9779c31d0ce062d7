"""Forms of the orders and positions pages: they parse what was typed; the services decide.

- `OrderFilterForm`: the filters of the order history and the fills (status, side,
  contract, whole UTC days), also the filters of their CSV exports;
- `OrderModifyForm`: a resting limit order's new price and/or quantity, the price
  of a binary contract typed in cents as the page shows it ("47" = 0.47 USDC).
"""

from decimal import Decimal

from django import forms

from accounts.web_forms import DateRangeMixin, PortalForm
from portal.forms import DayField, DecimalInputField
from trading.models import Order
from trading.services.reports import ExportFilters

STATUS_CHOICES = [
    ("", "All statuses"),
    ("active", "Open (working)"),
    *[(value, label) for value, label in Order.Status.choices],
]
SIDE_CHOICES = [("", "Buy and sell"), *Order.Side.choices]


class OrderFilterForm(DateRangeMixin, PortalForm):
    """Status, side, contract (one the account has traded) and a range of UTC days."""

    status = forms.ChoiceField(label="Status", required=False, choices=STATUS_CHOICES)
    side = forms.ChoiceField(label="Side", required=False, choices=SIDE_CHOICES)
    symbol = forms.ChoiceField(label="Contract", required=False)
    date_from = DayField(label="From (UTC day)", required=False)
    date_to = DayField(label="To (UTC day)", required=False)

    def __init__(self, *args, contracts: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["symbol"].choices = [("", "All contracts")] + [(c, c) for c in contracts]

    def clean(self):
        cleaned = super().clean()
        self._range_check(cleaned, "date_from", "date_to")
        return cleaned

    def filters(self, *, with_status: bool = True) -> ExportFilters:
        """What was chosen (call after is_valid; nothing when the form is not valid)."""
        data = self.cleaned_data if self.is_valid() else {}
        return ExportFilters(
            status=(data.get("status") or None) if with_status else None,
            side=data.get("side") or None,
            symbol=data.get("symbol") or None,
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


class OrderModifyForm(PortalForm):
    """A resting limit order's new limit price and/or quantity (blank: unchanged).

    A binary contract's price is typed in cents (1–99); a perpetual's in USDC.
    The service checks the tick grid, the filled quantity and the margin.
    """

    price = DecimalInputField(label="New limit price", required=False, min_value=Decimal("0"))
    quantity = DecimalInputField(
        label="New quantity (contracts)", required=False, min_value=Decimal("0")
    )

    def __init__(self, *args, binary: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.binary = binary
        if binary:
            self.fields["price"].label = "New limit price (¢)"

    def clean_price(self) -> Decimal | None:
        price = self.cleaned_data.get("price")
        if price is not None and self.binary and not Decimal("0") < price < Decimal("100"):
            raise forms.ValidationError("A binary contract's price is between 0¢ and 100¢.")
        return price

    def clean(self):
        cleaned = super().clean()
        if not self.errors and cleaned.get("price") is None and cleaned.get("quantity") is None:
            raise forms.ValidationError("Enter a new price, a new quantity, or both.")
        return cleaned

    def price_usdc(self) -> Decimal | None:
        """The new price as the service takes it (a binary's cents as a fraction of 1)."""
        price = self.cleaned_data.get("price")
        if price is None:
            return None
        return price / 100 if self.binary else price
