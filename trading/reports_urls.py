"""The reports endpoints under /v1/intelligence/ (mounted by portal.api.urls)."""

from django.urls import path

from trading import api_reports

urlpatterns = [
    path("reports", api_reports.ReportsApi.as_view(), name="api-reports"),
    path("reports/<str:report_id>", api_reports.ReportDetailApi.as_view(), name="api-report"),
    path(
        "reports/<str:report_id>/download",
        api_reports.ReportDownloadApi.as_view(),
        name="api-report-download",
    ),
]
