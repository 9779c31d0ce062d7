"""CSV downloads of the portal's tables: `/exports/<table>.csv` with the page's filters.

Every table (transactions, orders, fills, positions) is written by the reports'
own writer (`trading.services.reports.report_write`) from `export_table`, the
same machinery and formats as a report, with the filters of the page it is
downloaded from, parsed by that page's filter form. Filters that do not parse
send the reader back to the page, whose form says what is wrong.
"""

import tempfile
from dataclasses import replace

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.models import Account
from accounts.web import with_current_account
from accounts.web_forms import TransactionFilterForm
from trading.models import Report
from trading.selectors import contracts_traded
from trading.services.reports import (
    EXPORT_TABLES,
    ExportFilters,
    export_file_name,
    export_table,
    report_write,
)
from trading.web.order_forms import OrderFilterForm

SPOOL_BYTES = 4 << 20  # written in memory up to this size, then to a temporary file

# Where each table is shown (an export whose filters do not parse goes back there).
PAGES = {
    "transactions": "transaction_list",
    "orders": "order_list",
    "fills": "order_list",
    "positions": "position_list",
}


def _filters(request: HttpRequest, account: Account, table: str) -> ExportFilters | None:
    """The page's filters for `table`, or None when they do not parse."""
    if table == "positions":
        return ExportFilters()
    if table == "transactions":
        form = TransactionFilterForm(request.GET)
        if not form.is_valid():
            return None
        data = form.cleaned_data
        return ExportFilters(
            kind=data.get("kind") or None,
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )
    form = OrderFilterForm(request.GET, contracts=contracts_traded(account=account))
    if not form.is_valid():
        return None
    chosen = form.filters(with_status=table == "orders")
    if table == "fills":
        order_id = request.GET.get("order", "").strip()
        chosen = replace(chosen, order_id=order_id or None)
    return chosen


@with_current_account
@require_GET
def export_csv_view(request: HttpRequest, account: Account, table: str) -> HttpResponse:
    """The current account's `table` with the page's filters, as a CSV attachment."""
    if table not in EXPORT_TABLES:
        raise Http404(f"There is no {table} table to download.")
    filters = _filters(request, account, table)
    if filters is None:
        messages.error(request, "The filters are not valid, so nothing was downloaded.")
        query = request.GET.copy()
        if table in ("orders", "fills"):
            query["tab"] = "history" if table == "orders" else "fills"
        return redirect(f"{reverse(PAGES[table])}?{query.urlencode()}")
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by the response
    report_write(
        table=export_table(account=account, table=table, filters=filters),
        format=Report.Format.CSV,
        out=out,
    )
    out.seek(0)
    response = FileResponse(
        out,
        as_attachment=True,
        filename=export_file_name(account=account, table=table, at=timezone.now()),
        content_type="text/csv; charset=utf-8",
    )
    response["Cache-Control"] = "no-store"
    return response
