"""The reports pages: request a report of the current account, list them, download one.

Thin views (ARCHITECTURE "Where logic lives"): the form parses, the reports
service decides (`trading.services.reports`), a selector reads; a DomainError
becomes a form error. A report named by id is looked up among the user's own
accounts, so another customer's id is a 404 like one that does not exist.
"""

from urllib.parse import quote

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

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
from portal.errors import DomainError, NotFound
from trading import selectors
from trading.models import Report
from trading.services.reports import report_download_link, report_request
from trading.web_forms import ReportRequestForm

LAST_REPORT = "reports.last_request"  # session key: the type and format last requested


@with_current_account
@require_http_methods(["GET", "POST"])
def report_list_view(request: HttpRequest, account: Account) -> HttpResponse:
    """The current account's reports with their status, and the form to request one."""
    # The form keeps the last report type and format asked for (this session).
    form = ReportRequestForm(request.POST or None, initial=request.session.get(LAST_REPORT, {}))
    if request.method == "POST" and form.is_valid():
        try:
            report = report_request(
                account=account,
                type=form.cleaned_data["type"],
                date_from=form.cleaned_data["date_from"],
                date_to=form.cleaned_data["date_to"],
                format=form.cleaned_data["format"],
            )
        except DomainError as error:
            form_error_add(form, error)
        else:
            request.session[LAST_REPORT] = {
                "type": form.cleaned_data["type"],
                "format": form.cleaned_data["format"],
            }
            messages.success(
                request,
                f"Report {report.public_id} requested. It is generated in the background; "
                "this page shows when it is ready.",
            )
            return redirect("report_list")
    number = page_number(request)
    page = selectors.report_list(account=account, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    context = {
        "account": account,
        "form": form,
        "reports": page.items,
        "pager": pager(request, page, number),
        "has_unfinished": any(
            r.status in (Report.Status.PENDING, Report.Status.RUNNING) for r in page.items
        ),
    }
    return render(request, "trading/report_list.html", context)


@portal_page
def report_download_view(request: HttpRequest, report_id: str) -> HttpResponse:
    """Send the user on to a fresh signed download link of their own ready report.

    The link (valid 15 minutes) is the one the partner API hands out
    (`trading.services.reports.report_download_link`); links on the page never
    go stale because each click signs a new one.
    """
    try:
        report = selectors.report_get(account_ids=own_account_ids(request), public_id=report_id)
    except NotFound as error:
        raise Http404(error.message) from error
    if report.status != Report.Status.READY:
        messages.info(
            request,
            f"Report {report.public_id} is {report.get_status_display().lower()}, not ready yet.",
        )
        return redirect("report_list")
    link = report_download_link(report=report)
    path = reverse("api-report-download", args=[report.public_id])
    return HttpResponseRedirect(f"{path}?token={quote(link.token)}")
