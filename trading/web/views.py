"""The margin dashboard and its JSON endpoints (thin: figures and services decide).

Pages are guarded by `accounts.web.portal_page`; the JSON endpoints the
page's scripts call are session-authenticated too, but answer
`{"code", "message"}` with 401/403/404 instead of redirecting, and name the
account in the URL (one of the user's own, else 404), so a page open on one
account keeps talking about that account whatever another tab switches to.
Writes are POSTs behind Django's CSRF check.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Account
from accounts.services.accounts import account_check_can_order
from accounts.web import account_current_get, portal_page
from portal.errors import DomainError, ErrorCode
from trading.presenters import leverage_result_present
from trading.services.orders import position_close as position_close_order
from trading.services.perps import LeverageStatus, leverage_set
from trading.web import figures, ticket
from trading.web_forms import LeverageForm, TicketForm, order_form_choices


def _error(error: ErrorCode, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"code": error.code, "message": message, **extra}, status=error.status)


def account_json(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """A JSON endpoint of one of the signed-in, KYB-approved user's accounts.

    The view gets the Account row (read now) instead of its public id; a
    DomainError it raises becomes `{"code", "message"}` with its status.
    """

    @wraps(view)
    def guarded(request: HttpRequest, account_id: str, *args, **kwargs) -> JsonResponse:
        if not request.user.is_authenticated:
            return _error(ErrorCode.UNAUTHORIZED, "Sign in to see this account.")
        if not request.user.is_kyb_approved:
            return _error(ErrorCode.KYB_REQUIRED, "Your business verification (KYB) is pending.")
        account = Account.objects.filter(owner=request.user, public_id=account_id).first()
        if account is None:
            return _error(ErrorCode.NOT_FOUND, f"No account {account_id!r}.")
        try:
            response = view(request, account, *args, **kwargs)
        except DomainError as exc:
            return JsonResponse(exc.as_dict(), status=exc.status)
        response["Cache-Control"] = "no-store"
        return response

    return never_cache(guarded)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _form_errors(form) -> str:
    return " ".join(
        f"{form.fields[name].label if name in form.fields else name}: {' '.join(errors)}"
        if name != "__all__"
        else " ".join(errors)
        for name, errors in form.errors.items()
    )


# --- The page --------------------------------------------------------------------


@portal_page
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The margin dashboard of the account being viewed (`account_current_get`)."""
    account = account_current_get(request)
    if account is None:
        return render(request, "trading/dashboard.html", {"account": None})
    snapshot = figures.dashboard_snapshot(account=account)
    account_id = account.public_id
    config = {
        "account_id": account_id,
        "ws_path": figures.dashboard_socket_path(account_id),
        "urls": {
            "snapshot": reverse("dashboard-snapshot", args=[account_id]),
            "projection": reverse("trade-projection", args=[account_id]),
            "order": reverse("order-place", args=[account_id]),
            "ticket_markets": reverse("ticket-markets", args=[account_id]),
            "ticket_book": reverse("ticket-book", args=[account_id]),
            "position_close": reverse("position-close", args=[account_id]),
            "add_funds": reverse("add-funds-simulation", args=[account_id]),
            # Templates for per-row URLs: the placeholder is replaced in the script.
            "close": reverse("position-close-simulation", args=[account_id, 0]).replace(
                "/0/", "/{id}/"
            ),
            "leverage_preview": reverse("leverage-preview", args=[account_id, "SYMBOL"]).replace(
                "SYMBOL", "{symbol}"
            ),
            "leverage_apply": reverse("leverage-apply", args=[account_id, "SYMBOL"]).replace(
                "SYMBOL", "{symbol}"
            ),
        },
    }
    context = {
        "account": account,
        "snapshot": snapshot,
        "config": config,
        "trade_form": TicketForm() if account.is_custodial else None,
        "ticket_confirm": ticket.confirm_get(account=account) if account.is_custodial else None,
        "instrument_choices": order_form_choices() if account.is_custodial else [],
        "perp_markets": figures.perp_markets_get(account=account) if account.is_custodial else [],
    }
    return render(request, "trading/dashboard.html", context)


# --- JSON reads --------------------------------------------------------------------


@require_GET
@account_json
def dashboard_snapshot(request: HttpRequest, account: Account) -> JsonResponse:
    """Everything the dashboard shows, for a (re)connected page to start from."""
    return JsonResponse(figures.dashboard_snapshot(account=account))


def _ticket_form(data) -> TicketForm:
    """The ticket's fields; `notional` is the older name of `notional_usdc`."""
    data = data.copy()
    if "notional_usdc" not in data and "notional" in data:
        data["notional_usdc"] = data["notional"]
    return TicketForm(data)


@require_GET
@account_json
def trade_projection(request: HttpRequest, account: Account) -> JsonResponse:
    """The ticket's live projection of the order its fields describe (`ticket_projection`:
    execute's check for a market order by notional, order_place's otherwise), with the
    confirmation it needs. Bad fields: 400 with the fields named in words."""
    account_check_can_order(account)
    form = _ticket_form(request.GET)
    if not form.is_valid():
        return _error(
            ErrorCode.INVALID_PARAMS, _form_errors(form), fields=form.errors.get_json_data()
        )
    try:
        return JsonResponse(ticket.ticket_projection(account=account, data=form.cleaned_data))
    except DomainError as exc:
        return JsonResponse(
            {"code": exc.code, "message": ticket.readable(exc.message)}, status=exc.status
        )


@require_GET
@account_json
def ticket_markets(request: HttpRequest, account: Account) -> JsonResponse:
    """The ticket's contract search: `?q=` words of a symbol or title; open markets
    with their live bid / ask (YES and NO)."""
    query = request.GET.get("q", "")[:80]
    return JsonResponse(ticket.ticket_markets(account=account, query=query))


@require_GET
@account_json
def ticket_book(request: HttpRequest, account: Account) -> JsonResponse:
    """`?symbol=`: the contract's live depth (all venues, merged) and bid / ask."""
    return JsonResponse(ticket.ticket_book(symbol=request.GET.get("symbol", "")))


@require_GET
@account_json
def position_close_simulation(
    request: HttpRequest, account: Account, position_id: int
) -> JsonResponse:
    """Closing all (or `?quantity=`) of one binary position: health before and after,
    and what the books can absorb now (`figures.position_close_projection`)."""
    quantity = request.GET.get("quantity", "").strip() or None
    return JsonResponse(
        figures.position_close_projection(
            account=account, position_id=position_id, quantity=quantity
        )
    )


@require_GET
@account_json
def add_funds_simulation(request: HttpRequest, account: Account) -> JsonResponse:
    return JsonResponse(figures.add_funds_projection(account=account))


@require_GET
@account_json
def leverage_preview(request: HttpRequest, account: Account, symbol: str) -> JsonResponse:
    """`?leverage=N`: the margin and liquidation price N would give, and the verdict."""
    return JsonResponse(
        figures.leverage_preview(
            account=account, symbol=symbol, leverage=request.GET.get("leverage", "")
        )
    )


# --- Writes --------------------------------------------------------------------------


@require_POST
@account_json
def order_place(request: HttpRequest, account: Account) -> HttpResponse:
    """Place the ticket's order (`ticket.ticket_order_place`).

    JSON (`Accept: application/json`, the page's script): 201 with the order and
    the sentence and link of `figures.order_result_out` (202 while the venue has
    not confirmed, 200 for a retry of the same client_order_id, answered before
    any other check, so a retry after the account was frozen still gets its
    order), or
    `{"code", "message"}` with the service's status. An order above the
    confirmation size without `confirmed=1` is refused (409 `conflict`,
    `confirm_required`): a form without scripts cannot skip the confirmation.
    A plain form post is redirected back to the dashboard with the outcome as a
    message.
    """
    form = TicketForm(request.POST)
    wants_json = _wants_json(request)
    if not form.is_valid():
        message = _form_errors(form)
        if wants_json:
            return _error(ErrorCode.INVALID_PARAMS, message, fields=form.errors.get_json_data())
        messages.error(request, message)
        return redirect("dashboard")
    data = form.cleaned_data
    try:
        if not ticket.ticket_retry(account=account, data=data):
            account_check_can_order(account)
            refusal = ticket.confirmation_refusal(account=account, data=data)
            if refusal is not None:
                if wants_json:
                    return _error(ErrorCode.CONFLICT, refusal, confirm_required=True)
                messages.error(request, refusal)
                return redirect("dashboard")
        order = ticket.ticket_order_place(account=account, data=data)
    except DomainError as exc:
        message = ticket.readable(exc.message)
        if wants_json:
            return JsonResponse({"code": exc.code, "message": message}, status=exc.status)
        messages.error(request, message)
        return redirect("dashboard")
    result = figures.order_result_out(order)
    if wants_json:
        status = 200 if order.replayed else 202 if order.status == order.Status.PENDING else 201
        return JsonResponse(result, status=status)
    messages.success(request, result["message"])
    return redirect("dashboard")


def _posted(request: HttpRequest, name: str) -> str | None:
    """A POSTed field, stripped; None when absent or blank."""
    return request.POST.get(name, "").strip() or None


@require_POST
@account_json
def position_close(request: HttpRequest, account: Account) -> HttpResponse:
    """Close all, a `quantity` or a `percent` of the position in `symbol` (a row's
    Close… panel) with `position_close`: an immediate-or-cancel limit at the
    protective price. Idempotent by `client_order_id`: 201 with the order (202
    while the venue has not confirmed), 200 with the original for a retry of
    the same close, 409 `duplicate_order` for another body under the same id;
    a refusal is the service's `{"code", "message"}` and status. Custodial
    accounts only (403 `custodial_required`).
    """
    account_check_can_order(account)
    symbol = _posted(request, "symbol")
    if symbol is None:
        return _error(ErrorCode.INVALID_PARAMS, "Which position? symbol is required.")
    order = position_close_order(
        account=account,
        symbol=symbol,
        quantity=_posted(request, "quantity"),
        percent=_posted(request, "percent"),
        client_order_id=_posted(request, "client_order_id"),
    )
    status = 200 if order.replayed else 202 if order.status == order.Status.PENDING else 201
    return JsonResponse(figures.order_result_out(order), status=status)


@require_POST
@account_json
def leverage_apply(request: HttpRequest, account: Account, symbol: str) -> HttpResponse:
    """Set the leverage of one perp market (`leverage_set`): 200 APPLIED, 422 REJECTED
    with the reason explained, an account that may not trade refused as an order is;
    a plain form post is redirected with a message."""
    form = LeverageForm(request.POST)
    leverage = form.cleaned_data["leverage"] if form.is_valid() else request.POST.get("leverage")
    try:
        result = leverage_set(account=account, symbol=symbol, leverage=leverage)
    except DomainError as exc:
        if _wants_json(request):
            raise
        messages.error(request, f"Leverage not changed: {exc.message}")
        return redirect("dashboard")
    explanation = (
        figures.REJECT_EXPLANATIONS.get(result.reject_reason, "")
        if result.reject_reason is not None
        else ""
    )
    body = leverage_result_present(result) | {"explanation": explanation}
    applied = result.status == LeverageStatus.APPLIED
    if _wants_json(request):
        return JsonResponse(body, status=200 if applied else 422)
    if applied:
        messages.success(request, result.message)
    else:
        messages.error(request, f"Leverage not changed: {result.message} {explanation}".strip())
    return redirect("dashboard")
