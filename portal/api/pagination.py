"""The query of every paged /v1 list: `limit` and `offset`, with the maxima documented in
the OpenAPI schema (`portal.pagination` holds the numbers and checks them again)."""

from rest_framework import serializers

from portal.api.fields import WholeNumberField
from portal.pagination import PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, PAGE_OFFSET_MAX


class PageQuerySerializer(serializers.Serializer):
    limit = WholeNumberField(
        required=False,
        default=PAGE_LIMIT_DEFAULT,
        min_value=1,
        max_value=PAGE_LIMIT_MAX,
        help_text=f"Items per page, 1–{PAGE_LIMIT_MAX} (default {PAGE_LIMIT_DEFAULT}).",
    )
    offset = WholeNumberField(
        required=False,
        default=0,
        min_value=0,
        max_value=PAGE_OFFSET_MAX,
        help_text=f"Items to skip, 0–{PAGE_OFFSET_MAX:,}: the previous page's next_offset.",
    )
