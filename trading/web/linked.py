"""Linked exchange accounts: link a Kalshi key or a Polymarket wallet, see each one's
sync status, sync now, replace the credential, unlink (SPEC §1, §11).

Thin views over trading.services.linked_accounts. Secret fields never come
back into a page (the forms' widgets do not render them), and the views are
`sensitive_post_parameters()` (every field hidden), so an error report cannot
carry them either.
"""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from accounts.models import LinkedCredential
from accounts.web import account_current_set, portal_page
from accounts.web_forms import form_error_add
from portal.errors import DomainError, NotFound
from trading import selectors
from trading.services.linked_accounts import (
    linked_account_link,
    linked_account_sync_request,
    linked_account_unlink,
    linked_credential_rotate,
)
from trading.web import figures
from trading.web_forms import (
    KalshiLinkForm,
    KalshiRotateForm,
    PolymarketLinkForm,
    PolymarketRotateForm,
)

LINK_FORMS = {"kalshi": KalshiLinkForm, "polymarket": PolymarketLinkForm}
LINK_PREFIXES = {"kalshi": "kalshi", "polymarket": "pm"}
ROTATE_FORMS = {"kalshi": KalshiRotateForm, "polymarket": PolymarketRotateForm}


def _page(
    request: HttpRequest,
    *,
    bound: dict | None = None,
    rotating: tuple[str, object] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The page; `bound` replaces a link form by a submitted one, `rotating` names
    (account public id, bound form) whose rotate form shows the submitted one."""
    credentials = selectors.linked_credential_list(user=request.user)
    syncing = selectors.linked_syncs_pending(credential_ids=[c.pk for c in credentials])
    rows = []
    for credential in credentials:
        form = ROTATE_FORMS[credential.venue](prefix=credential.account.public_id)
        if rotating and rotating[0] == credential.account.public_id:
            form = rotating[1]
        rows.append(
            {"credential": credential, "rotate_form": form, "syncing": credential.pk in syncing}
        )
    forms = {
        "kalshi": KalshiLinkForm(prefix="kalshi"),
        "polymarket": PolymarketLinkForm(prefix="pm"),
    }
    forms.update(bound or {})
    context = {
        "rows": rows,
        "kalshi_form": forms["kalshi"],
        "polymarket_form": forms["polymarket"],
        "here": "linked_list",
    }
    return render(request, "trading/linked_accounts.html", context, status=status)


@portal_page
@require_GET
def linked_list(request: HttpRequest) -> HttpResponse:
    return _page(request)


@portal_page
@require_POST
@sensitive_post_parameters()
def linked_link(request: HttpRequest, venue: str) -> HttpResponse:
    if venue not in LINK_FORMS:
        raise Http404("Unknown venue.")
    form = LINK_FORMS[venue](request.POST, prefix=LINK_PREFIXES[venue])
    if form.is_valid():
        try:
            credential = linked_account_link(
                user=request.user, venue=venue, request=request, **form.cleaned_data
            )
        except DomainError as error:
            form_error_add(form, error)
        else:
            account_current_set(request, credential.account)
            messages.success(
                request,
                f"{credential.get_venue_display()} linked as account "
                f"{credential.account.public_id}. The first sync is on its way.",
            )
            if credential.warning:
                messages.warning(request, credential.warning)
            return redirect("linked-list")
    return _page(request, bound={venue: form}, status=400)


def _credential(request: HttpRequest, account_id: str) -> LinkedCredential:
    try:
        return selectors.linked_credential_get(user=request.user, account_public_id=account_id)
    except NotFound as error:
        raise Http404(error.message) from None


@portal_page
@require_POST
@sensitive_post_parameters()
def linked_rotate(request: HttpRequest, account_id: str) -> HttpResponse:
    credential = _credential(request, account_id)
    form = ROTATE_FORMS[credential.venue](request.POST, prefix=account_id)
    if form.is_valid():
        try:
            credential = linked_credential_rotate(
                credential=credential, actor=request.user, request=request, **form.cleaned_data
            )
        except DomainError as error:
            form_error_add(form, error)
        else:
            messages.success(request, f"Credential of {account_id} replaced; syncing now.")
            if credential.warning:
                messages.warning(request, credential.warning)
            return redirect("linked-list")
    return _page(request, rotating=(account_id, form), status=400)


@portal_page
@require_POST
def linked_unlink(request: HttpRequest, account_id: str) -> HttpResponse:
    credential = _credential(request, account_id)
    linked_account_unlink(credential=credential, actor=request.user, request=request)
    messages.success(
        request,
        f"{account_id} unlinked: its credential is erased and it is no longer synced. "
        "Its last synced positions stay visible.",
    )
    return redirect("linked-list")


@portal_page
@require_POST
def linked_sync(request: HttpRequest, account_id: str) -> HttpResponse:
    """ "Sync now": queue the sync (a Celery task, run after this request commits).

    The page's script (static/js/linked.js) posts with `Accept: application/json`
    and gets 202 with the row's status (`figures.link_status_get`; `syncing` true
    until the task has run) and `requested_at`, then polls `linked-status` until
    the row shows the outcome. A plain form post is redirected back to the page,
    which polls the same way while the sync is pending.
    """
    credential = _credential(request, account_id)
    wants_json = "application/json" in request.headers.get("Accept", "")
    requested_at = timezone.now()
    try:
        linked_account_sync_request(credential=credential, actor=request.user)
    except DomainError as error:
        if wants_json:
            return JsonResponse(error.as_dict(), status=error.status)
        messages.error(request, error.message)
        return redirect("linked-list")
    if wants_json:
        body = _status(credential) | {"requested_at": requested_at.isoformat()}
        return JsonResponse(body, status=202, headers={"Cache-Control": "no-store"})
    messages.success(request, f"Sync of {account_id} requested: its row updates when it is done.")
    return redirect("linked-list")


def _status(credential: LinkedCredential) -> dict:
    credential.refresh_from_db()
    return figures.link_status_get(credential) | {
        "status_url": reverse("linked-status", args=[credential.account.public_id])
    }


@require_GET
@never_cache
def linked_status(request: HttpRequest, account_id: str) -> JsonResponse:
    """One linked account's sync status, for the Linked page's "Sync now" poll:
    `figures.link_status_get` (status, venue cash, last sync, last error, `syncing`).
    JSON errors (401 signed out, 404 not one of the user's linked accounts)."""
    if not request.user.is_authenticated:
        return JsonResponse(
            {"code": "unauthorized", "message": "Sign in to see this account."}, status=401
        )
    if not request.user.is_kyb_approved:
        return JsonResponse(
            {"code": "kyb_required", "message": "Your business verification is pending."},
            status=403,
        )
    try:
        credential = selectors.linked_credential_get(
            user=request.user, account_public_id=account_id
        )
    except NotFound as error:
        return JsonResponse(error.as_dict(), status=error.status)
    response = JsonResponse(_status(credential))
    response["Cache-Control"] = "no-store"
    return response
