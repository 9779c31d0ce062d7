"""The Accounts page: all of the user's accounts together (`overview.accounts_overview_get`:
kind, status and link status, cash, positions value, Adjusted Equity, health, available
margin, and totals), each with a button to view it (`accounts.web_views.account_switch_view`)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.web import account_current_get, accounts_of, portal_page
from trading.web.overview import accounts_overview_get


@portal_page
def account_list_view(request: HttpRequest) -> HttpResponse:
    accounts = accounts_of(request)
    overview = accounts_overview_get(accounts=accounts, current=account_current_get(request))
    return render(
        request,
        "trading/account_list.html",
        {"rows": overview.rows, "totals": overview.totals, "accounts_count": len(accounts)},
    )
