"""Ops console for venues, events, instruments, listings and stored prices.

Ops list, open and halt markets here; resolving a market is a settlement and
is not an edit of the instrument, so resolution fields are read-only.
"""

from django.contrib import admin

from portal.admin import AuditedModelAdmin, ReadOnlyAdminMixin
from trading.models import EventGroup, Instrument, Listing, PriceTick, Venue

EDITABLE_STATUSES = (Instrument.Status.OPEN, Instrument.Status.HALTED)


@admin.register(Venue)
class VenueAdmin(AuditedModelAdmin):
    list_display = ("code", "name", "kind", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name")


@admin.register(EventGroup)
class EventGroupAdmin(AuditedModelAdmin):
    list_display = ("code", "title")
    search_fields = ("code", "title")


class ListingInline(admin.TabularInline):
    model = Listing
    fields = ("venue", "venue_symbol", "is_active")
    extra = 0


@admin.register(Instrument)
class InstrumentAdmin(AuditedModelAdmin):
    fieldsets = (
        (None, {"fields": ("symbol", "title", "kind", "status", "tick_size", "created_at")}),
        (
            "Binary contract",
            {
                "fields": ("event", "expires_at", "resolution", "resolved_at"),
                "description": "Binary contracts need an event and an expiry, "
                "and a tick size below 1.",
            },
        ),
        (
            "Perpetual",
            {
                "fields": (
                    "base_asset",
                    "max_leverage",
                    "default_leverage",
                    "maintenance_margin_fraction",
                    "funding_interval_hours",
                ),
                "description": "Perpetuals need leverage limits (default ≤ max), a "
                "maintenance margin fraction in (0, 1) and a funding interval; no event.",
            },
        ),
    )
    readonly_fields = ("resolution", "resolved_at", "created_at")
    list_display = ("symbol", "title", "kind", "status", "event", "expires_at", "max_leverage")
    list_filter = ("kind", "status", "event")
    search_fields = ("symbol", "title")
    list_select_related = ("event",)
    autocomplete_fields = ("event",)
    inlines = (ListingInline,)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and obj.status == Instrument.Status.RESOLVED:
            return (*readonly, "status")
        return readonly

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "status":
            kwargs["choices"] = [(status.value, status.label) for status in EDITABLE_STATUSES]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


@admin.register(Listing)
class ListingAdmin(AuditedModelAdmin):
    list_display = ("instrument", "venue", "venue_symbol", "is_active")
    list_filter = ("venue", "is_active", "instrument__kind")
    search_fields = ("instrument__symbol", "venue_symbol")
    list_select_related = ("instrument", "venue")
    autocomplete_fields = ("instrument",)


@admin.register(PriceTick)
class PriceTickAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("listing", "ts", "mark", "bid", "ask", "twap")
    list_filter = ("listing__venue", "is_binary")
    search_fields = ("listing__instrument__symbol",)
    list_select_related = ("listing__instrument", "listing__venue")
    ordering = ("-ts",)
    # The history is large: skip the unfiltered COUNT(*) on every page.
    show_full_result_count = False
