"""The orders page (open orders, order history, fills) and one order's page.

Thin views (ARCHITECTURE "Where logic lives"): the selectors read
(`order_list`, `fill_list`, filtered as the CSV exports are), the order
services cancel and modify (`order_cancel`, `order_modify`, as the partner
API calls them) and remove an order's take-profit / stop-loss
(`order_triggers_cancel`), the presenters shape each order and fill with the API's
names. A service's refusal is a message on the page, never a 500.

An order named by id is looked up among the signed-in user's own accounts
(`portal.db.owned_get`), so another customer's order is a 404 like one that
does not exist. Cancel and modify are POSTs behind the CSRF check; both ask
first (cancel: a confirmation dialog; modify: a review step showing the
change before it is sent).
"""

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Account
from accounts.web import (
    PAGE_SIZE,
    own_account_ids,
    page_number,
    pager,
    portal_page,
    with_current_account,
)
from accounts.web_forms import form_error_add
from portal import format as fmt
from portal.db import owned_get
from portal.errors import DomainError, NotFound
from portal.money import money
from portal.pagination import PAGE_LIMIT_MAX
from trading import selectors
from trading.models import Order
from trading.presenters import fill_present, order_of, order_present, order_row
from trading.services.orders import (
    TRIGGERS,
    order_cancel,
    order_modify,
    order_triggers_cancel,
)
from trading.web.order_forms import OrderFilterForm, OrderModifyForm

TABS = (("open", "Open orders"), ("history", "Order history"), ("fills", "Fills"))


# How each status is shown: its words and its badge colour.
STATUS_BADGES = {
    Order.Status.SUBMITTED: "pending",
    Order.Status.PENDING: "pending",
    Order.Status.OPEN: "active",
    Order.Status.PARTIALLY_FILLED: "pending",
    Order.Status.FILLED: "confirmed",
    Order.Status.CANCELLED: "cancelled",
    Order.Status.REJECTED: "rejected",
}


TRIGGER_WORDS = {"take_profit": "take-profit", "stop_loss": "stop-loss"}


def _order_out(row: dict[str, Any]) -> dict[str, Any]:
    """An order_list row as the order object, with what the page needs beside it."""
    status = row["status"]
    order = order_present(row)
    return order | {
        # (field, words, price) of each trigger, for the tables' Remove forms.
        "triggers": [(name, TRIGGER_WORDS[name], order[name]) for name in TRIGGERS],
        "binary": bool(row["outcome"]),
        "status_label": Order.Status(status).label if status in Order.Status.values else status,
        "status_badge": STATUS_BADGES.get(status, "pending"),
        "active": status in Order.ACTIVE_STATUSES,
        "modifiable": status in (Order.Status.OPEN, Order.Status.PARTIALLY_FILLED)
        and row["order_type"] == Order.Type.LIMIT,
    }


def _fill_out(row: dict[str, Any]) -> dict[str, Any]:
    """A fill_list row as the fill object, with its fees in one figure."""
    return fill_present(row) | {
        "binary": bool(row["outcome"]),
        "fees": money(row["venue_fee"] + row["commission"]),
    }


def _export_query(request: HttpRequest, form: OrderFilterForm) -> str:
    """The filters of the page's query string (only those: nothing else is echoed into
    the page), for its Download CSV link."""
    query = QueryDict(mutable=True)
    for name in form.fields:
        if request.GET.get(name):
            query[name] = request.GET[name]
    return query.urlencode()


@with_current_account
@require_GET
def order_list_view(request: HttpRequest, account: Account) -> HttpResponse:
    """The current account's orders: open (resting and at the venue, with cancel and
    modify; armed take-profit / stop-loss), the filtered history, or the fills."""
    tab = request.GET.get("tab", "open")
    if tab not in dict(TABS):
        tab = "open"
    filters = OrderFilterForm(request.GET, contracts=selectors.contracts_traded(account=account))
    chosen = filters.filters(with_status=tab == "history")
    number = page_number(request)
    context: dict[str, Any] = {
        "account": account,
        "tab": tab,
        "tabs": TABS,
        "filters": filters,
        "pager": None,
        "export_query": _export_query(request, filters),
        "open_count": selectors.orders_filtered(
            account=account, filters=selectors.TradeFilters(status=selectors.ACTIVE)
        ).count(),
        "can_trade": account.is_custodial,
        "next": request.get_full_path(),
    }
    if tab == "open":
        context["orders"], context["armed"] = (
            [
                _order_out(row)
                for row in selectors.order_list(
                    account=account,
                    filters=selectors.TradeFilters(status=status),
                    limit=PAGE_LIMIT_MAX,
                ).items
            ]
            for status in (selectors.ACTIVE, selectors.ARMED)
        )
    else:
        history = tab == "history"
        read, out = (
            (selectors.order_list, _order_out) if history else (selectors.fill_list, _fill_out)
        )
        page = read(
            account=account, filters=chosen, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
        context["orders" if history else "fills"] = [out(row) for row in page.items]
        context["pager"] = pager(request, page, number)
    return render(request, "trading/order_list.html", context)


def _own_order(request: HttpRequest, order_id: str) -> Order:
    """One of the signed-in user's orders (any of their accounts), else 404."""
    try:
        return owned_get(
            Order, account_ids=own_account_ids(request), public_id=order_id, what="order"
        )
    except NotFound as error:
        raise Http404(error.message) from error


def _detail(
    request: HttpRequest,
    order: Order,
    *,
    form: OrderModifyForm | None = None,
    review: dict | None = None,
    status: int = 200,
) -> HttpResponse:
    row = _order_out(selectors.order_get(account=order.account, order_id=order.public_id))
    fills = selectors.fill_list(
        account=order.account,
        filters=selectors.TradeFilters(order_id=order.public_id),
        limit=PAGE_LIMIT_MAX,
    )
    context = {
        "account": order.account,
        "order": row,
        "fills": [_fill_out(fill) for fill in fills.items],
        "children": [
            order_of(child)
            for child in order.children.select_related("instrument", "venue", "parent")
        ],
        "can_trade": order.account.is_custodial and row["active"],
        "form": form or OrderModifyForm(binary=row["binary"]),
        "review": review,
    }
    return render(request, "trading/order_detail.html", context, status=status)


@portal_page
@require_GET
def order_detail_view(request: HttpRequest, order_id: str) -> HttpResponse:
    """One order as the API shows it, its fills, and (while it rests) cancel and modify."""
    return _detail(request, _own_order(request, order_id))


def _back(request: HttpRequest, order: Order) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("order_detail", order_id=order.public_id)


def _described(row: dict[str, Any]) -> str:
    """ "buy 10 TRUMP-WIN at 45¢": an order in a sentence."""
    price = fmt.price(row["price"], binary=row["binary"]) if row["price"] else "market"
    return f"{row['side']} {fmt.quantity(row['quantity'])} {row['symbol']} at {price}"


@portal_page
@require_POST
def order_cancel_view(request: HttpRequest, order_id: str) -> HttpResponse:
    """Cancel one resting order (`order_cancel`); what has filled stays filled."""
    order = _own_order(request, order_id)
    try:
        cancelled = order_cancel(account=order.account, order_id=order.public_id)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        row = _order_out(order_row(cancelled))
        filled = (
            f" {fmt.quantity(row['filled_quantity'])} had filled and stay filled."
            if cancelled.filled_quantity
            else ""
        )
        messages.success(request, f"Order {row['id']} cancelled ({_described(row)}).{filled}")
    return _back(request, order)


@portal_page
@require_POST
def order_triggers_cancel_view(request: HttpRequest, order_id: str) -> HttpResponse:
    """Remove an order's take-profit (`which=take_profit`), stop-loss (`stop_loss`) or
    both (`order_triggers_cancel`) before they fire."""
    order = _own_order(request, order_id)
    which = request.POST.get("which", "")
    try:
        order_triggers_cancel(account=order.account, order_id=order.public_id, which=which or None)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        words = TRIGGER_WORDS.get(which, "take-profit and stop-loss")
        messages.success(request, f"Order {order.public_id}'s {words} removed: it will not fire.")
    return _back(request, order)


@portal_page
@require_POST
def order_modify_view(request: HttpRequest, order_id: str) -> HttpResponse:
    """Change a resting limit order's price and/or quantity (`order_modify`).

    Two steps: the form's values are shown as a change to review (nothing is
    sent); the review's Confirm (`confirm=yes`) sends them. The margin check
    runs again in the service; a refusal is shown on the form.
    """
    order = _own_order(request, order_id)
    binary = bool(order.outcome)
    form = OrderModifyForm(request.POST, binary=binary)
    if not form.is_valid():
        return _detail(request, order, form=form, status=400)
    if request.POST.get("confirm") != "yes":
        current = _order_out(order_row(order))
        new_price = form.price_usdc()
        new_quantity = form.cleaned_data.get("quantity")
        review = {
            "price_before": fmt.price(current["price"], binary=binary),
            "price_after": None if new_price is None else fmt.price(new_price, binary=binary),
            "quantity_before": fmt.quantity(current["quantity"]),
            "quantity_after": None if new_quantity is None else fmt.quantity(new_quantity),
        }
        return _detail(request, order, form=form, review=review)
    try:
        modified = order_modify(
            account=order.account,
            order_id=order.public_id,
            price=form.price_usdc(),
            quantity=form.cleaned_data.get("quantity"),
        )
    except DomainError as error:
        form_error_add(form, error)
        return _detail(request, order, form=form, status=400)
    row = _order_out(order_row(modified))
    messages.success(request, f"Order {row['id']} changed: now {_described(row)}.")
    return redirect(reverse("order_detail", args=[modified.public_id]))
