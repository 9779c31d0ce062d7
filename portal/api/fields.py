"""Serializer fields every /v1 app shares: strict inputs, and money outputs.

Inputs take one form each (SPEC §2, §7), so what a client sends is what it
means:
- decimals (`decimal_input`, `money_input`, …): a JSON string of ASCII digits
  with an optional sign and decimal point, e.g. "1500.00"; a JSON number, an
  exponent, spaces, underscores or non-ASCII digits are `invalid_params`;
- whole numbers (`WholeNumberField`): a JSON integer, or ASCII digits in a
  query string;
- free text (`TextField`): printable, on one line (`portal.validators`);
- days (`DayField`): "YYYY-MM-DD" from DATE_MIN to DATE_MAX.
"""

from rest_framework import serializers

from portal.money import (
    DECIMAL_FORMAT,
    MONEY_DECIMAL_PLACES,
    MONEY_MAX_DIGITS,
    PRICE_DECIMAL_PLACES,
    PRICE_MAX_DIGITS,
    QUANTITY_DECIMAL_PLACES,
    QUANTITY_MAX_DIGITS,
    decimal_text_parse,
)
from portal.validators import (
    DATE_MAX,
    DATE_MIN,
    day_in_range,
    day_text_ok,
    printable_text,
    whole_number_parse,
)


def money_field(**kwargs) -> serializers.DecimalField:
    """A USDC amount in a response, rendered as a decimal string with 6 places."""
    return serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        coerce_to_string=True,
        **kwargs,
    )


class DecimalInputField(serializers.DecimalField):
    """A decimal sent as a string of ASCII digits (`portal.money.decimal_text_parse`)."""

    def __init__(self, *, example: str, **kwargs):
        self.example = example
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)
        message = DECIMAL_FORMAT.format(example=example)
        self.error_messages["format"] = f"{message[0].upper()}{message[1:]}."

    def to_internal_value(self, data):
        parsed = decimal_text_parse(data) if isinstance(data, str) else None
        if parsed is None:
            self.fail("format")
        return super().to_internal_value(parsed)


def money_input(**kwargs) -> DecimalInputField:
    """A USDC amount: at most 6 decimal places."""
    kwargs.setdefault("help_text", 'USDC, as a decimal string, e.g. "1500.00".')
    return DecimalInputField(
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        example="1500.00",
        **kwargs,
    )


def price_input(**kwargs) -> DecimalInputField:
    """A price: at most 8 decimal places."""
    return DecimalInputField(
        max_digits=PRICE_MAX_DIGITS, decimal_places=PRICE_DECIMAL_PLACES, example="0.55", **kwargs
    )


def quantity_input(**kwargs) -> DecimalInputField:
    """A contract quantity: at most 6 decimal places."""
    return DecimalInputField(
        max_digits=QUANTITY_MAX_DIGITS,
        decimal_places=QUANTITY_DECIMAL_PLACES,
        example="10",
        **kwargs,
    )


class WholeNumberField(serializers.IntegerField):
    """A whole number: a JSON integer, or ASCII digits (query strings); not a float, a
    bool, "1_0" or "١٠"."""

    default_error_messages = {"invalid": 'Must be a whole number of ASCII digits such as "10".'}

    def to_internal_value(self, data):
        parsed = whole_number_parse(data)
        if parsed is None:
            self.fail("invalid")
        return super().to_internal_value(parsed)


class TextField(serializers.CharField):
    """Free text on one line: a JSON string (not a number), without control characters or
    bidirectional overrides, checked before surrounding whitespace is trimmed (so "id\n"
    is refused, not cut to "id")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        printable_text(data)
        return super().to_internal_value(data)


class DayField(serializers.DateField):
    """A UTC day, "YYYY-MM-DD" in ASCII digits, from DATE_MIN to DATE_MAX."""

    default_error_messages = {
        "invalid": f"Must be a day as YYYY-MM-DD, from {DATE_MIN} to {DATE_MAX}.",
    }

    def __init__(self, **kwargs):
        help_text = kwargs.pop("help_text", "A UTC day (ISO 8601).")
        kwargs["help_text"] = f"{help_text} From {DATE_MIN} to {DATE_MAX}."
        super().__init__(**kwargs)
        self.validators.append(day_in_range)

    def to_internal_value(self, value):
        if not day_text_ok(value):
            self.fail("invalid")
        return super().to_internal_value(value)
