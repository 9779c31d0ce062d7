"""Form fields every page shares: what a person may type, strictly (the API's twins are
in `portal.api.fields`, the rules in `portal.money` and `portal.validators`).

- `DecimalInputField` / `MoneyField`: ASCII digits with an optional sign and
  decimal point, plus what people write around amounts: thousands commas
  ("1,000.50"), a "$" in front, "USDC" after; never underscores, spaces inside
  or other scripts' digits ("١٢٣"), which Python's Decimal would take.
- `WholeNumberField`: ASCII digits ("10", not "١٠" or "1_0").
- `TextField`: printable text, on one line unless `multiline`.
- `DayField`: a day from DATE_MIN to DATE_MAX.
"""

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from portal.money import MONEY_DECIMAL_PLACES, decimal_typed_parse
from portal.validators import (
    DATE_MAX,
    DATE_MIN,
    day_in_range,
    day_text_ok,
    printable_multiline_text,
    printable_text,
    whole_number_parse,
)


class DecimalInputField(forms.DecimalField):
    widget = forms.TextInput
    default_error_messages = {"invalid": "Enter a number in ASCII digits, e.g. 1,000.50."}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.widget.attrs.update({"inputmode": "decimal", "autocomplete": "off"})

    def to_python(self, value) -> Decimal | None:
        if value in self.empty_values:
            return None
        parsed = decimal_typed_parse(value) if isinstance(value, str) else None
        if parsed is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return parsed


class MoneyField(DecimalInputField):
    """A USDC amount as typed by a person: "12,345.67", "$250", "250 USDC" all work."""

    default_error_messages = {"invalid": "Enter an amount in ASCII digits, e.g. 1,000.00."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 20)
        kwargs.setdefault("decimal_places", MONEY_DECIMAL_PLACES)
        kwargs.setdefault("min_value", Decimal("0.000001"))
        super().__init__(**kwargs)


class WholeNumberField(forms.IntegerField):
    default_error_messages = {"invalid": "Enter a whole number in ASCII digits, e.g. 10."}

    def to_python(self, value) -> int | None:
        if value in self.empty_values:
            return None
        parsed = whole_number_parse(value.strip() if isinstance(value, str) else value)
        if parsed is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return parsed


class TextField(forms.CharField):
    """Free text without control characters or bidirectional overrides."""

    def __init__(self, *, multiline: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(printable_multiline_text if multiline else printable_text)


class DayField(forms.DateField):
    # The browser's date picker shows the day in the reader's locale and sends it as
    # YYYY-MM-DD, the one form read here; the value is written back the same way
    # (whatever LANGUAGE_CODE says), and a browser without a picker shows the hint.
    widget = forms.DateInput(format="%Y-%m-%d", attrs={"type": "date", "placeholder": "YYYY-MM-DD"})
    default_error_messages = {
        "invalid": f"Enter a day as YYYY-MM-DD, from {DATE_MIN} to {DATE_MAX}.",
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(day_in_range)

    def to_python(self, value):
        if isinstance(value, str) and value.strip() and not day_text_ok(value.strip()):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)
