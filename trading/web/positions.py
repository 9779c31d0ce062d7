"""The positions page: every open position of the current account, priced now, and
kept so: static/js/positions.js follows the account's dashboard socket and re-reads
the page (its parts marked data-refresh) after pushes, at most every 2 s.

One read (`position_book_get`: the positions query and one Redis round trip for
the quotes), each position shaped by the positions table's presenter
(`position_row_present`: the API's position object plus cost and P&L over
cost). Totals are sums of the rows shown. Close / Reduce is the dashboard's
Close… panel (templates/trading/_close_panel.html, static/js/close-panel.js),
which simulates with `position-close-simulation` and closes with
`position-close`: one close path.
"""

from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import Account
from accounts.web import with_current_account
from portal.money import ZERO, dec, money
from trading.catalog import venue_name
from trading.models import Instrument
from trading.presenters import position_row_present
from trading.selectors import RATIO_QUANTUM, PositionView, position_book_get
from trading.web.figures import dashboard_socket_path


def _totals(views: list[PositionView]) -> dict[str, Any]:
    """Cost, value and P&L summed over `views` (positions without a price count in
    cost only, and make value and P&L partial: `complete` False)."""
    cost = sum((view.cost for view in views), ZERO)
    priced = [view for view in views if view.unrealized_pnl is not None]
    value = sum((view.notional for view in priced), ZERO)
    pnl = sum((view.unrealized_pnl for view in priced), ZERO)
    priced_cost = sum((view.cost for view in priced), ZERO)
    return {
        "count": len(views),
        "cost": money(cost),
        "notional": money(value),
        "pnl": money(pnl),
        "pnl_percent": dec((pnl / priced_cost).quantize(RATIO_QUANTUM)) if priced_cost else None,
        "complete": len(priced) == len(views),
    }


def _row(view: PositionView) -> dict[str, Any]:
    return position_row_present(view) | {
        "position_id": view.position_id,
        "venue_name": venue_name(view.venue),
        "binary": view.kind != Instrument.Kind.PERPETUAL,
    }


@never_cache
@with_current_account
@require_GET
def position_list_view(request: HttpRequest, account: Account) -> HttpResponse:
    """Binary positions and perps with side, size, average entry, cost, price, value,
    P&L and % P&L, totals, and (custodial accounts) Close / Reduce."""
    views = position_book_get(account=account).positions
    binaries = [view for view in views if view.kind != Instrument.Kind.PERPETUAL]
    perps = [view for view in views if view.kind == Instrument.Kind.PERPETUAL]
    config = {
        "account_id": account.public_id,
        "ws_path": dashboard_socket_path(account.public_id),
        "urls": {
            "close": reverse("position-close-simulation", args=[account.public_id, 0]).replace(
                "/0/", "/{id}/"
            ),
        },
    }
    context = {
        "account": account,
        "binaries": [_row(view) for view in binaries],
        "perps": [_row(view) for view in perps],
        "binary_totals": _totals(binaries),
        "perp_totals": _totals(perps),
        "totals": _totals(views),
        "stale": any(view.stale for view in views),
        "can_trade": account.is_custodial,
        "page_config": config,
        "zero": Decimal(0),
    }
    return render(request, "trading/position_list.html", context)
