"""Ops console for venues, events, instruments, listings, stored prices,
orders and fills, fees, perps and margin, and accounts' margin eligibility.

Ops list, open and halt markets here; resolving a market is a settlement and
is not an edit of the instrument, so resolution fields are read-only and a
market resolves only through the "Resolve market…" action
(`instrument_resolve`, after a confirmation page). The risk policy (SPEC §4's
parameters) is shown read-only: a change is previewed and proposed at
/ops/risk-policy/ and applies after a second staff member's approval; its
per-instrument haircut add-ons and the fee policy (broker commission, with
per-venue fee schedules) are edited here, audited field by field; orders,
fills, leverage settings, funding payments, positions, margin snapshots,
margin calls and liquidations are written only by their services and are
read-only here. The account admin (`accounts.admin`)
is registered again with margin eligibility, trading's rule: granted, revoked or
handed back to the volume rule through `account_margin_override_set`, which keeps
`margin_enabled` in line and audits both with their effect.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from redis import RedisError

from accounts.admin import AccountAdmin as BaseAccountAdmin
from accounts.admin import AccountForm as BaseAccountForm
from accounts.admin_site import AuditedModelAdmin, ReadOnlyAdminMixin
from accounts.models import Account
from portal.errors import DomainError
from trading.models import (
    EventGroup,
    FeePolicy,
    Fill,
    FundingPayment,
    HealthAlert,
    Instrument,
    InstrumentHaircut,
    LeverageSetting,
    Liquidation,
    Listing,
    MarginCall,
    MarginSnapshot,
    Order,
    Position,
    PriceTick,
    RiskPolicy,
    Venue,
    VenueFeeSchedule,
)
from trading.services.eligibility import MARGIN_FIELDS, account_margin_override_set
from trading.services.fees import fee_policy_get
from trading.services.risk_policy import POLICY_FIELDS, POLICY_GROUPS, risk_policy_current
from trading.services.settlement import instrument_resolve
from trading.services.venue_budgets import venue_budgets

EDITABLE_STATUSES = (Instrument.Status.OPEN, Instrument.Status.HALTED)
MARGIN_CUSTODIAL_ONLY = "Margin is available to custodial accounts only."


# --- Accounts: margin eligibility --------------------------------------------


class AccountForm(BaseAccountForm):
    class Meta(BaseAccountForm.Meta):
        fields = ("name", "margin_override")
        labels = {"margin_override": "Margin eligibility"}
        help_texts = {
            "margin_override": "Automatic: margin turns on when lifetime traded volume reaches "
            "the risk policy's threshold. Granted or Revoked: ops decide, whatever the volume. "
            "Revoking does not repay a loan: a borrowing account can only reduce risk.",
        }

    def clean_margin_override(self) -> str:
        override = self.cleaned_data["margin_override"]
        if override == Account.MarginOverride.GRANTED and not self.instance.is_custodial:
            raise forms.ValidationError(MARGIN_CUSTODIAL_ONLY)
        return override


admin.site.unregister(Account)


@admin.register(Account)
class AccountAdmin(BaseAccountAdmin):
    form = AccountForm
    readonly_fields = (
        "ops_view",
        *(name for name in BaseAccountAdmin.readonly_fields if name != "margin_override"),
    )
    actions = (*BaseAccountAdmin.actions, "grant_margin", "revoke_margin", "automatic_margin")
    # account_margin_override_set saves and audits these, with their effect.
    service_fields = MARGIN_FIELDS

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        (name, options), *rest = fieldsets
        return ((name, {**options, "fields": ("ops_view", *options["fields"])}), *rest)

    @admin.display(description="Ops view")
    def ops_view(self, obj: Account) -> str:
        """The account's page in the staff area: figures, history and staff actions."""
        url = reverse("ops_account", args=[obj.public_id])
        return format_html('<a href="{}" class="ops-view-link">View in ops</a>', url)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "margin_override" in form.changed_data:
            updated = account_margin_override_set(
                account=obj, override=obj.margin_override, actor=request.user, request=request
            )
            obj.margin_enabled = updated.margin_enabled

    @admin.action(description="Grant margin to selected accounts", permissions=["change"])
    def grant_margin(self, request, queryset):
        self._margin_override_set(
            request, queryset, Account.MarginOverride.GRANTED, "Margin granted"
        )

    @admin.action(description="Revoke margin on selected accounts", permissions=["change"])
    def revoke_margin(self, request, queryset):
        self._margin_override_set(
            request, queryset, Account.MarginOverride.REVOKED, "Margin revoked"
        )

    @admin.action(
        description="Margin by lifetime volume (automatic) on selected accounts",
        permissions=["change"],
    )
    def automatic_margin(self, request, queryset):
        self._margin_override_set(
            request, queryset, Account.MarginOverride.AUTOMATIC, "Margin set to automatic"
        )

    def _margin_override_set(
        self, request, queryset, override: Account.MarginOverride, done: str
    ) -> None:
        self.apply_each(
            request,
            queryset,
            lambda account: account_margin_override_set(
                account=account, override=override, actor=request.user, request=request
            ),
            done=done,
        )


# --- Markets ------------------------------------------------------------------


@admin.register(Venue)
class VenueAdmin(AuditedModelAdmin):
    list_display = ("code", "name", "kind", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name")
    change_list_template = "admin/trading/venue/change_list.html"

    def get_urls(self):
        budgets = path(
            "budgets/",
            self.admin_site.admin_view(self.budgets_view),
            name="trading_venue_budgets",
        )
        return [budgets, *super().get_urls()]

    def budgets_view(self, request):
        """Every credential's request budget at the venues: tokens left, last 429."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            rows, error = venue_budgets(), ""
        except RedisError:
            rows, error = [], "Redis cannot be read: the budgets are unknown right now."
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Venue request budgets",
            "rows": rows,
            "error": error,
        }
        return TemplateResponse(request, "admin/trading/venue/budgets.html", context)


@admin.register(EventGroup)
class EventGroupAdmin(AuditedModelAdmin):
    list_display = ("code", "title")
    search_fields = ("code", "title")


class ResolveForm(forms.Form):
    """The resolve action's confirmation step: the outcome, and a deliberate yes."""

    resolution = forms.ChoiceField(
        choices=Instrument.Resolution.choices,
        widget=forms.RadioSelect,
        help_text="YES or NO pays 1 USDC per winning contract; void refunds each "
        "position's cost at its average price.",
    )
    confirm = forms.BooleanField(
        label="I confirm this outcome",
        help_text="Resolving stops trading, cancels the market's active orders and "
        "settles every position. It cannot be undone.",
    )


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
    actions = ("resolve_market",)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and obj.status == Instrument.Status.RESOLVED:
            return (*readonly, "status")
        return readonly

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "status":
            kwargs["choices"] = [(status.value, status.label) for status in EDITABLE_STATUSES]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    @admin.action(description="Resolve market…", permissions=["change"])
    def resolve_market(self, request, queryset):
        """One binary market at a time: a confirmation page, then `instrument_resolve`."""
        instruments = list(queryset[:2])
        if len(instruments) != 1:
            self.message_user(
                request,
                "Select exactly one market to resolve: markets resolve one at a time.",
                messages.ERROR,
            )
            return None
        (instrument,) = instruments
        if not instrument.is_binary:
            self.message_user(
                request,
                f"{instrument.symbol} is a perpetual: only binary markets resolve.",
                messages.ERROR,
            )
            return None
        form = ResolveForm(request.POST if "resolve" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/trading/instrument/resolve.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"Resolve {instrument.symbol}",
                    "opts": self.opts,
                    "form": form,
                    "instrument": instrument,
                    "active_orders": instrument.orders.filter(
                        status__in=Order.ACTIVE_STATUSES
                    ).count(),
                    "open_positions": instrument.positions.filter(quantity__gt=0).count(),
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                },
            )
        try:
            resolved = instrument_resolve(
                instrument=instrument,
                resolution=form.cleaned_data["resolution"],
                actor=request.user,
                request=request,
            )
        except DomainError as error:
            self.message_user(request, f"{instrument.symbol}: {error.message}", messages.ERROR)
            return None
        self.message_user(
            request,
            f"{resolved.symbol} resolved {resolved.get_resolution_display()}: trading has "
            "stopped, its active orders are cancelled and settlement is queued.",
            messages.SUCCESS,
        )
        return None


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


# --- Orders, fills and fees -------------------------------------------------


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = (
        "public_id",
        "account",
        "instrument",
        "outcome",
        "side",
        "order_type",
        "time_in_force",
        "status",
        "quantity",
        "notional_usdc",
        "limit_price",
        "filled_quantity",
        "average_fill_price",
        "fees",
        "venue",
        "created_at",
    )
    list_filter = ("status", "order_type", "venue", "time_in_force", "side", "instrument__kind")
    search_fields = (
        "public_id",
        "client_order_id",
        "venue_order_id",
        "account__public_id",
        "account__owner__email",
        "instrument__symbol",
    )
    list_select_related = ("account__owner", "instrument", "venue")
    date_hierarchy = "created_at"
    # The order history is large: skip the unfiltered COUNT(*) on every page.
    show_full_result_count = False


@admin.register(Fill)
class FillAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = (
        "public_id",
        "order",
        "account",
        "instrument",
        "outcome",
        "side",
        "quantity",
        "price",
        "notional",
        "venue_fee",
        "commission",
        "realized_pnl",
        "liquidity",
        "venue",
        "created_at",
    )
    list_filter = ("venue", "liquidity", "side", "order__status", "order__order_type")
    search_fields = (
        "public_id",
        "venue_fill_id",
        "order__public_id",
        "order__client_order_id",
        "account__public_id",
        "account__owner__email",
        "instrument__symbol",
    )
    list_select_related = ("order", "account__owner", "instrument", "venue")
    date_hierarchy = "created_at"
    show_full_result_count = False


class VenueFeeScheduleInline(admin.TabularInline):
    model = VenueFeeSchedule
    fields = ("venue", "model", "kalshi_rate", "taker_bps", "maker_bps")
    extra = 0
    verbose_name = "venue fee schedule"
    verbose_name_plural = "Venue fee schedules (a venue without one charges no fee)"


@admin.register(FeePolicy)
class FeePolicyAdmin(AuditedModelAdmin):
    """The one fee policy: its list is its change form, created with its defaults on
    first visit; never added by hand, never deleted."""

    fields = ("broker_commission_bps", "updated_at")
    readonly_fields = ("updated_at",)
    inlines = (VenueFeeScheduleInline,)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # the admin's 403
        policy = fee_policy_get()
        return HttpResponseRedirect(reverse("admin:trading_feepolicy_change", args=[policy.pk]))


# --- Perpetuals ---------------------------------------------------------------


@admin.register(LeverageSetting)
class LeverageSettingAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("account", "instrument", "leverage", "updated_at")
    list_filter = ("instrument",)
    search_fields = ("account__public_id", "account__owner__email", "instrument__symbol")
    list_select_related = ("account__owner", "instrument")


@admin.register(FundingPayment)
class FundingPaymentAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = (
        "period_start",
        "instrument",
        "account",
        "position_quantity",
        "mark_price",
        "rate",
        "amount",
        "journal",
        "created_at",
    )
    list_filter = ("instrument", "period_start")
    search_fields = ("account__public_id", "account__owner__email", "instrument__symbol")
    list_select_related = ("account__owner", "instrument", "journal")
    date_hierarchy = "period_start"
    show_full_result_count = False


# --- Margin Portfolio -------------------------------------------------------


class InstrumentHaircutInline(admin.TabularInline):
    model = InstrumentHaircut
    fields = ("instrument", "addon", "note")
    autocomplete_fields = ("instrument",)
    extra = 0
    verbose_name = "instrument haircut add-on"
    verbose_name_plural = "Instrument haircut add-ons (added to h before the h_max cap)"


def _policy_shown(spec):
    """A read-only display of one policy setting, formatted ("1.50", "8%", "1,000,000.00 USDC")."""

    @admin.display(description=spec.label)
    def shown(self, policy: RiskPolicy) -> str:
        return spec.display(getattr(policy, spec.name))

    return shown


POLICY_NOTES = {
    "Margin Health thresholds": "Always 0 < liquidation < maintenance ≤ initial ≤ healthy.",
    "Stale prices": "While a market's price is older than this, the portal shows it as "
    "delayed, refuses orders in it, and defers margin calls and liquidations of the "
    "accounts holding it.",
    "Haircut and concentration": "h = min(h_max, a·4p(1−p) + b·exp(−τ/τ0) + add-on); "
    "D = 1 − c·HHI.",
    "Order ticket": "The dashboard's order ticket asks the customer to confirm an order "
    "whose notional is above this share of the account's Adjusted Equity.",
}


@admin.register(RiskPolicy)
class RiskPolicyAdmin(AuditedModelAdmin):
    """The one risk policy, read-only here: a change is previewed and proposed at
    /ops/risk-policy/ and applies once another staff member approves it (four eyes).
    Its list is its change form; never added (the defaults are created on first
    use), never deleted. The instrument haircut add-ons stay editable inline."""

    change_form_template = "admin/trading/riskpolicy/change_form.html"
    fieldsets = tuple(
        (
            title,
            {
                "fields": tuple(f"{spec.name}_shown" for spec in specs)
                + (("updated_at",) if title == "Interest and eligibility" else ()),
                "description": POLICY_NOTES.get(title, ""),
            },
        )
        for title, specs in POLICY_GROUPS
    )
    readonly_fields = (*(f"{name}_shown" for name in POLICY_FIELDS), "updated_at")
    inlines = (InstrumentHaircutInline,)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # the admin's 403
        policy = risk_policy_current()
        return HttpResponseRedirect(reverse("admin:trading_riskpolicy_change", args=[policy.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "propose_url": reverse("ops_risk_policy")}
        return super().change_view(request, object_id, form_url, extra_context)


for _name, _spec in POLICY_FIELDS.items():
    setattr(RiskPolicyAdmin, f"{_name}_shown", _policy_shown(_spec))


class PositionOpenFilter(admin.SimpleListFilter):
    title = "open or closed"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return (("yes", "Open"), ("no", "Closed (quantity 0)"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(~Q(quantity=0))
        if self.value() == "no":
            return queryset.filter(quantity=0)
        return queryset


@admin.register(Position)
class PositionAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = (
        "account",
        "instrument",
        "outcome",
        "quantity",
        "average_price",
        "realized_pnl",
        "isolated_margin",
        "leverage",
        "opened_at",
        "updated_at",
    )
    list_filter = (PositionOpenFilter, "instrument__kind", "outcome", "instrument__status")
    search_fields = ("account__public_id", "account__owner__email", "instrument__symbol")
    list_select_related = ("account__owner", "instrument")


@admin.register(MarginSnapshot)
class MarginSnapshotAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("account", "ts", "status", "health", "adjusted_equity", "used_margin", "cash")
    list_filter = ("status", "ts")
    search_fields = ("account__public_id", "account__owner__email")
    list_select_related = ("account__owner",)
    date_hierarchy = "ts"
    ordering = ("-ts", "-id")
    # The health history is large: skip the unfiltered COUNT(*) on every page.
    show_full_result_count = False


@admin.register(HealthAlert)
class HealthAlertAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    """Customers set their alerts on the portal's Alerts page; ops read them here."""

    list_display = ("account", "level", "email", "armed", "fired_count", "last_fired_at")
    list_filter = ("armed", "email")
    search_fields = ("account__public_id", "account__owner__email")
    list_select_related = ("account__owner",)


class LiquidationInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Liquidation
    fields = ("created_at", "reason", "status", "health_before", "health_after", "proceeds")
    show_change_link = True


@admin.register(MarginCall)
class MarginCallAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = (
        "id",
        "account",
        "status",
        "opened_at",
        "health_at_open",
        "lowest_health",
        "used_margin_at_open",
        "adjusted_equity_at_open",
        "notified_at",
        "reminders_sent",
        "resolved_at",
    )
    list_filter = ("status", "opened_at")
    search_fields = ("account__public_id", "account__owner__email")
    list_select_related = ("account__owner",)
    date_hierarchy = "opened_at"
    inlines = (LiquidationInline,)


# A liquidation step's fields (trading.services.liquidation), in table order.
LIQUIDATION_STEP_COLUMNS = (
    ("venue", "Venue"),
    ("order_id", "Order"),
    ("quantity", "Quantity sold"),
    ("average_price", "Average price"),
    ("proceeds", "Proceeds (USDC, net of fees)"),
    ("fees", "Fees (USDC)"),
    ("remaining", "Quantity left"),
)


@admin.register(Liquidation)
class LiquidationAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = (
        "id",
        "account",
        "reason",
        "status",
        "created_at",
        "health_before",
        "health_after",
        "used_margin_before",
        "used_margin_after",
        "proceeds",
        "margin_call",
    )
    list_filter = ("reason", "status", "created_at")
    search_fields = ("account__public_id", "account__owner__email")
    list_select_related = ("account__owner", "margin_call")
    date_hierarchy = "created_at"
    fields = (
        "account",
        "margin_call",
        "reason",
        "status",
        "created_at",
        "health_before",
        "health_after",
        "used_margin_before",
        "used_margin_after",
        "proceeds",
        "sales",
    )
    readonly_fields = ("sales",)

    @admin.display(description="Sales")
    def sales(self, obj: Liquidation) -> str:
        """The steps as a table: one row per sale, each with its ledger journal."""
        if obj.status == Liquidation.Status.SELLING:
            return "Selling: its orders are at the venues."
        if not obj.steps:
            return "Nothing was sold."
        header = format_html_join(
            "", "<th>{}</th>", [("Contract",), *((label,) for _, label in LIQUIDATION_STEP_COLUMNS)]
        )
        header = format_html("{}<th>Journal</th>", header)
        rows = format_html_join(
            "",
            "<tr><td>{} {}</td>{}<td>{}</td></tr>",
            (
                (
                    step.get("symbol", "—"),
                    str(step.get("outcome", "")).upper(),
                    format_html_join(
                        "",
                        "<td>{}</td>",
                        ((step.get(key, "—"),) for key, _ in LIQUIDATION_STEP_COLUMNS),
                    ),
                    self._journal_link(step.get("journal_id")),
                )
                for step in obj.steps
            ),
        )
        return format_html(
            "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, rows
        )

    @staticmethod
    def _journal_link(journal_id: str | None) -> str:
        if not journal_id:
            return "—"
        url = reverse("admin:accounts_journal_change", args=[journal_id])
        return format_html('<a href="{}">J{}</a>', url, journal_id)
