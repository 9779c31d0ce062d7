"""The accounts overview: each of the user's accounts with its margin figures and open
positions, and the switcher's buttons (`accounts.web_views.account_switch_view`)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.web import account_current_get, account_label, accounts_of, portal_page
from trading.selectors import margin_summaries_get, open_position_counts


@portal_page
def account_list_view(request: HttpRequest) -> HttpResponse:
    accounts = accounts_of(request)
    summaries = margin_summaries_get(accounts) if accounts else []
    positions = open_position_counts(accounts=accounts)
    current = account_current_get(request)
    rows = [
        {
            "account": account,
            "label": account_label(account),
            "summary": summary,
            "open_positions": positions.get(account.pk, 0),
            "is_current": current is not None and account.pk == current.pk,
        }
        for account, summary in zip(accounts, summaries, strict=True)
    ]
    return render(request, "trading/account_list.html", {"rows": rows})
