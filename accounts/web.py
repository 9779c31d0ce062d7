"""What every browser page needs: the signed-in customer and the account they are viewing.

`portal_page` guards a page: signed in (else the login page), KYB approved
(else the KYB-pending page). `account_current_get` is the account the page
shows: the one chosen with the account switcher (kept in the session by public
id), else the user's first; only ever one of the user's own accounts.
`with_current_account` guards a page about that account; `page_number` and
`pager` page a list. The trading app's pages use the same.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.models import Account
from portal.pagination import Page
from portal.validators import whole_number_parse

SESSION_ACCOUNT = "account_public_id"
PAGE_SIZE = 50
MAX_PAGE = 100_000


def accounts_of(request: HttpRequest) -> list[Account]:
    """The signed-in user's accounts, main account first (with their linked credential,
    whose status the account switcher shows)."""
    return list(
        Account.objects.filter(owner=request.user)
        .select_related("linked_credential")
        .order_by("index")
    )


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


def with_current_account(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A customer page about the current account: portal_page, plus the account
    (or a page saying there is none yet)."""

    @portal_page
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        account = account_current_get(request)
        if account is None:
            return render(request, "accounts/no_account.html", status=200)
        return view(request, account, *args, **kwargs)

    return wrapped


def own_account_ids(request: HttpRequest) -> list[int]:
    """The signed-in user's account primary keys: where a record named by id is looked up."""
    return [account.pk for account in accounts_of(request)]


def account_label(account: Account) -> str:
    name = account.name or (
        "Main account" if account.index == 0 else f"Sub-account {account.index}"
    )
    return f"{name} ({account.public_id})"


def page_number(request: HttpRequest) -> int:
    """The `page` query parameter (1 when missing or not a whole number)."""
    number = whole_number_parse(request.GET.get("page", "1").strip())
    return 1 if number is None else min(max(number, 1), MAX_PAGE)


def pager(request: HttpRequest, page: Page, number: int) -> dict:
    """Previous/next links that keep the page's other query parameters."""
    query = request.GET.copy()
    query.pop("page", None)

    def link(to: int) -> str:
        query["page"] = str(to)
        return f"?{query.urlencode()}"

    return {
        "number": number,
        "previous_url": link(number - 1) if number > 1 else None,
        "next_url": link(number + 1) if page.has_more else None,
    }
