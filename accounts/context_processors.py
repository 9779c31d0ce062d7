"""What every page's header needs: the signed-in user's accounts and the current one.

Listed in settings TEMPLATES context_processors. The values are lazy, so pages
that never show the header (the ops console, JSON views) cost no query.
"""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.selectors import notifications_unread_count
from accounts.web import account_current_get, accounts_of


def portal(request: HttpRequest) -> dict:
    """`portal_accounts` (the user's accounts, main first), `current_account` (the one
    the pages show, or None) and `unread_notifications` (a count) for signed-in users."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "portal_accounts": SimpleLazyObject(lambda: accounts_of(request)),
        "current_account": SimpleLazyObject(lambda: account_current_get(request)),
        "unread_notifications": SimpleLazyObject(lambda: notifications_unread_count(user=user)),
    }
