"""Columns of the admin's lists formatted with portal.format: money "1,234.57" under a
"(USDC)" header, ratios "1.53", percentages "8.0%", times with their zone — never
"1234.570000". `list_display = (..., money_column("amount", "amount (USDC)"))`."""

from collections.abc import Callable

from django.contrib import admin

from portal import format as fmt


def _column(field: str, header: str, shown: Callable[[object], str]):
    @admin.display(description=header, ordering=field)
    def column(obj) -> str:
        return shown(getattr(obj, field))

    column.__name__ = f"{field}_shown"
    return column


def money_column(field: str, header: str | None = None):
    return _column(field, header or f"{field.replace('_', ' ')} (USDC)", fmt.amount)


def ratio_column(field: str, header: str | None = None):
    return _column(field, header or field.replace("_", " "), fmt.ratio)


def percent_column(field: str, header: str | None = None):
    return _column(field, header or field.replace("_", " "), fmt.percent)


def when_column(field: str, header: str | None = None):
    return _column(field, header or field.replace("_", " "), fmt.when)
