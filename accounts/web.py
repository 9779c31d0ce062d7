"""What every browser page needs: the signed-in customer and the account they are viewing.

`portal_page` guards a page: signed in (else the login page), KYB approved
(else the KYB-pending page). `account_current_get` is the account the page
shows: the one chosen with the account switcher (kept in the session by public
id), else the user's first; only ever one of the user's own accounts.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.models import Account

SESSION_ACCOUNT = "account_public_id"


def accounts_of(request: HttpRequest) -> list[Account]:
    """The signed-in user's accounts, main account first."""
    return list(Account.objects.filter(owner=request.user).order_by("index"))


def account_current_get(request: HttpRequest) -> Account | None:
    """The account the user is viewing (their own only), or None if they have none."""
    accounts = accounts_of(request)
    chosen = request.session.get(SESSION_ACCOUNT)
    for account in accounts:
        if account.public_id == chosen:
            return account
    return accounts[0] if accounts else None


def account_current_set(request: HttpRequest, public_id: str) -> Account | None:
    """Switch to one of the user's accounts by public id; None (nothing changed) if not theirs."""
    account = Account.objects.filter(owner=request.user, public_id=public_id).first()
    if account is not None:
        request.session[SESSION_ACCOUNT] = account.public_id
    return account


def portal_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A customer page: signed in, and KYB approved (else the KYB-pending page)."""

    @login_required
    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_kyb_approved:
            return redirect("kyb_pending")
        return view(request, *args, **kwargs)

    return guarded
