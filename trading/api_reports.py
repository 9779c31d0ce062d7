"""Reports under /v1/intelligence/ (seed "Reports"; SPEC §7, §9).

`POST reports` records a request and answers 202 with the report, pending: a
Celery task generates the file (`trading.services.reports`). `GET
reports/{id}` answers its status and row count and, once ready, a signed
download URL valid 15 minutes (each GET signs a fresh one). `GET
reports/{id}/download?token=…` streams the file to whoever holds a valid link,
without an API key (a browser or `curl` can follow it); an expired or altered
link is 403 `forbidden`, as JSON like every /v1 error.

Requesting and reading reports needs the `intelligence` and `reports` scopes.
"""

from urllib.parse import quote

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_serializers import AccountIdField, PageQuerySerializer, page_data
from portal.api.fields import DayField
from portal.api.renderers import OrjsonRenderer
from portal.api.views import ApiView, MethodPolicyApi, Policy, validated
from portal.errors import ErrorCode
from trading import api_examples as examples
from trading import selectors
from trading.models import Report
from trading.services.reports import (
    CONTENT_TYPES,
    DownloadLink,
    report_download_link,
    report_download_open,
    report_file_name,
    report_request,
)

REPORT_SCOPES = ("intelligence", "reports")


@extend_schema_serializer(examples=examples.REPORT_REQUEST)
class ReportRequestSerializer(serializers.Serializer):
    account_id = AccountIdField()
    type = serializers.ChoiceField(choices=Report.Type.values)
    format = serializers.ChoiceField(choices=Report.Format.values, default=Report.Format.CSV)

    def get_fields(self):
        fields = super().get_fields()
        # `from` is a Python keyword: declared here rather than as class attributes.
        fields["from"] = DayField(help_text="First UTC day included, e.g. 2026-04-01.")
        fields["to"] = DayField(help_text="Last UTC day included.")
        return fields


@extend_schema_serializer(examples=examples.REPORT)
class ReportOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    account_id = serializers.CharField(source="account.public_id")
    type = serializers.ChoiceField(choices=Report.Type.values)
    format = serializers.ChoiceField(choices=Report.Format.values)
    status = serializers.ChoiceField(choices=Report.Status.values)
    rows = serializers.IntegerField(allow_null=True, help_text="Data rows, once ready.")
    error = serializers.CharField(help_text="Why it failed; empty otherwise.")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    download_url = serializers.SerializerMethodField(
        help_text="Once ready: a signed link, valid 15 minutes, that needs no API key."
    )
    download_expires_at = serializers.SerializerMethodField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(source="date_from")
        fields["to"] = serializers.DateField(source="date_to")
        return fields

    def _link(self, report: Report) -> DownloadLink | None:
        if report.status != Report.Status.READY:
            return None
        links = self.context.setdefault("links", {})
        if report.pk not in links:
            links[report.pk] = report_download_link(report=report)
        return links[report.pk]

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, report: Report) -> str | None:
        link = self._link(report)
        if link is None:
            return None
        path = reverse("api-report-download", args=[report.public_id])
        return self.context["request"].build_absolute_uri(f"{path}?token={quote(link.token)}")

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_download_expires_at(self, report: Report) -> str | None:
        link = self._link(report)
        return (
            None if link is None else serializers.DateTimeField().to_representation(link.expires_at)
        )


@extend_schema_serializer(examples=examples.REPORT_LIST)
class ReportListOutputSerializer(serializers.Serializer):
    account_id = serializers.CharField()
    reports = ReportOutputSerializer(many=True)
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next_offset = serializers.IntegerField(allow_null=True)


class ReportsApi(MethodPolicyApi):
    policies = {
        "GET": Policy(REPORT_SCOPES, "market_data", (ErrorCode.NOT_FOUND,)),
        "POST": Policy(REPORT_SCOPES, "order_management", (ErrorCode.NOT_FOUND,)),
    }

    @extend_schema(
        operation_id="reports_list",
        summary="The account's reports, newest first",
        parameters=[PageQuerySerializer],
        responses=ReportListOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        query = validated(PageQuerySerializer, request.query_params)
        account = self.account_get(request)
        page = selectors.report_list(account=account, limit=query["limit"], offset=query["offset"])
        data = page_data(account_id=account.public_id, page=page, name="reports")
        return Response(ReportListOutputSerializer(data, context={"request": request}).data)

    @extend_schema(
        operation_id="reports_create",
        examples=examples.REPORTS_CREATE,
        summary="Request a report (performance, positions or transactions) for a date range",
        request=ReportRequestSerializer,
        responses={202: ReportOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        body = validated(ReportRequestSerializer, request.data)
        account = self.account_get(request)
        report = report_request(
            account=account,
            type=body["type"],
            date_from=body["from"],
            date_to=body["to"],
            format=body["format"],
        )
        report.refresh_from_db()  # a fast worker may have finished it already
        return Response(
            ReportOutputSerializer(report, context={"request": request}).data,
            status=status.HTTP_202_ACCEPTED,
        )


class ReportDetailApi(ApiView):
    required_scopes = REPORT_SCOPES
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="reports_get",
        examples=examples.REPORTS_GET,
        summary="A report's status; once ready, its signed download URL (valid 15 minutes)",
        responses=ReportOutputSerializer,
    )
    def get(self, request: Request, report_id: str) -> Response:
        report = selectors.report_get(account_ids=request.auth.account_ids, public_id=report_id)
        return Response(ReportOutputSerializer(report, context={"request": request}).data)


class _AnyAccept(BaseContentNegotiation):
    """Downloads answer whatever the client accepts: the file, or a JSON error."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ReportDownloadApi(APIView):
    """The file behind a signed link: the link is the credential, no API key."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    renderer_classes = [OrjsonRenderer]
    content_negotiation_class = _AnyAccept
    # An expired or altered link, no such ready report, a bug, the database away.
    error_codes = (
        ErrorCode.FORBIDDEN,
        ErrorCode.NOT_FOUND,
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.SERVICE_UNAVAILABLE,
    )

    @extend_schema(
        operation_id="reports_download",
        examples=examples.REPORTS_DOWNLOAD,
        summary="Download a ready report through its signed link (no API key)",
        auth=[],
        parameters=[
            OpenApiParameter(
                "token",
                str,
                OpenApiParameter.QUERY,
                required=True,
                description="The signature from the report's download_url.",
            )
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV report"),
            (200, "application/json"): OpenApiResponse(
                {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": True},
                    "description": "One object a row, keyed by the CSV's column names.",
                },
                description="JSON report (an array of objects)",
            ),
        },
    )
    def get(self, request: Request, report_id: str) -> FileResponse:
        report = report_download_open(
            report_id=report_id, token=request.query_params.get("token", "")
        )
        return FileResponse(
            report.file.open("rb"),
            as_attachment=True,
            filename=report_file_name(report),
            content_type=CONTENT_TYPES[report.format],
        )
