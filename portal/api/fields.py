"""Serializer fields every /v1 app shares."""

from rest_framework import serializers

from portal.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


def money_field(**kwargs) -> serializers.DecimalField:
    """A USDC amount, rendered as a decimal string with 6 places."""
    return serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        coerce_to_string=True,
        **kwargs,
    )
