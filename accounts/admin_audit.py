"""The audit log in the ops console: read-only, in words, and narrow enough for 1280 px.

Actions and object types show as people say them (`accounts.audit_labels`:
"API key issued", "API key"), times in the reader's zone, the object's name
truncated; the IP address and the field-by-field changes are on each entry's
page. Registered here and imported by accounts.admin.
"""

from django.contrib import admin
from django.utils.text import Truncator

from accounts.admin_site import AuditedModelAdmin, ReadOnlyAdminMixin
from accounts.audit_labels import action_label, object_type_label
from accounts.models import AuditLog
from portal import format as fmt

OBJECT_REPR_CHARS = 48


class _CodeFilter(admin.SimpleListFilter):
    """A filter over the codes a column holds, each shown in words."""

    field = ""
    labelled = staticmethod(str)

    def lookups(self, request, model_admin):
        codes = (
            model_admin.get_queryset(request)
            .order_by()
            .values_list(self.field, flat=True)
            .distinct()
        )
        return sorted(((code, self.labelled(code)) for code in codes if code), key=lambda c: c[1])

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class ActionFilter(_CodeFilter):
    title = "action"
    parameter_name = "action"
    field = "action"
    labelled = staticmethod(action_label)


class ObjectTypeFilter(_CodeFilter):
    title = "object type"
    parameter_name = "object_type"
    field = "object_type"
    labelled = staticmethod(object_type_label)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("when", "actor_email", "action_shown", "object_type_shown", "object_shown")
    list_display_links = ("when",)
    list_filter = (ActionFilter, ObjectTypeFilter, "created_at")
    search_fields = ("actor_email", "object_repr", "object_id", "object_type", "action")
    date_hierarchy = "created_at"
    fields = (
        "when",
        "actor_email",
        "action_shown",
        "object_type_shown",
        "object_id",
        "object_repr",
        "ip_address",
        "changes",
    )
    readonly_fields = fields

    @admin.display(description="when", ordering="created_at")
    def when(self, entry: AuditLog) -> str:
        return fmt.when(entry.created_at)

    @admin.display(description="action", ordering="action")
    def action_shown(self, entry: AuditLog) -> str:
        return action_label(entry.action)

    @admin.display(description="object type", ordering="object_type")
    def object_type_shown(self, entry: AuditLog) -> str:
        return object_type_label(entry.object_type)

    @admin.display(description="object")
    def object_shown(self, entry: AuditLog) -> str:
        return Truncator(entry.object_repr).chars(OBJECT_REPR_CHARS)
