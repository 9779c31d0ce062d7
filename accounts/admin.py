"""Ops console for users (KYB), accounts, the ledger, payments, notifications
and the audit log.

KYB decisions and withdrawal reviews go through their services, which record
the reviewer; accounts open through `account_open`; the ledger, deposits,
notifications and the audit log are read-only for everyone. Margin eligibility
is trading's rule: `trading.admin` registers the account admin again with it
(granting, revoking, handing back to the volume rule).
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_permission_codename
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.db import router, transaction
from django.db.models import Case, Value, When
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from accounts import admin_api_keys, admin_audit  # noqa: F401  (they register their admins)
from accounts.admin_format import money_column
from accounts.admin_site import AuditedAdminMixin, AuditedModelAdmin, ReadOnlyAdminMixin
from accounts.models import (
    Account,
    Approval,
    Deposit,
    Journal,
    LedgerAccount,
    LinkedCredential,
    Notification,
    OutboxItem,
    PaymentWebhookEvent,
    Posting,
    User,
    WithdrawalRequest,
)
from accounts.models.users import MAX_ACCOUNTS_PER_USER
from accounts.services.accounts import account_freeze_set, account_open
from accounts.services.approvals import approval_kind_get
from accounts.services.audit import audit_changes
from accounts.services.withdrawal_review import withdrawal_review_reject
from portal.errors import DomainError
from portal.forms import TextField

# --- Users and KYB -----------------------------------------------------------


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this email address already exists.")
        return email


class UserForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    form = UserForm
    add_form = UserCreationForm
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        (
            "KYB",
            {
                "fields": ("kyb_status", "kyb_reviewed_by", "kyb_reviewed_at", "kyb_note"),
                "description": "Decided on the KYB review screen (the Review KYB button "
                "above), which records the reviewer and the reason and tells the customer.",
            },
        ),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = (
        "kyb_status",
        "kyb_reviewed_by",
        "kyb_reviewed_at",
        "kyb_note",
        "last_login",
        "date_joined",
    )
    # Only superusers hand out staff access and permissions.
    privilege_fields = ("is_staff", "is_superuser", "groups", "user_permissions")
    list_display = (
        "email",
        "full_name",
        "kyb_status",
        "kyb_review",
        "is_staff",
        "is_active",
        "date_joined",
    )
    list_filter = ("kyb_status", "is_staff", "is_superuser", "is_active")
    search_fields = ("email", "full_name")
    ordering = ("-date_joined",)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return readonly
        return (*readonly, *self.privilege_fields)

    @admin.display(description="KYB review")
    def kyb_review(self, user: User) -> str:
        """A link to the user's KYB review screen (ops area): decisions are taken there,
        one user at a time, with a reason and a confirmation."""
        label = "Review KYB" if user.kyb_status == User.KybStatus.PENDING else "Open review"
        return format_html('<a href="{}">{}</a>', reverse("ops_kyb_review", args=[user.pk]), label)

    def user_change_password(self, request, id, form_url=""):
        # Django's password view saves outside the change form: record it here.
        with transaction.atomic(using=router.db_for_write(self.model)):
            user = self.get_object(request, unquote(id))
            response = super().user_change_password(request, id, form_url)
            if user is not None:
                before = user.password
                user.refresh_from_db(fields=["password"])
                if changes := audit_changes({"password": before}, {"password": user.password}):
                    self.audit(request, user, "password_change", changes)
        return response


# --- Accounts ----------------------------------------------------------------


class AccountOpenForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = ("owner", "kind", "name")
        field_classes = {"name": TextField}

    def clean_owner(self) -> User:
        owner = self.cleaned_data["owner"]
        if owner.accounts.count() >= MAX_ACCOUNTS_PER_USER:
            raise forms.ValidationError(
                f"This user already holds the maximum of {MAX_ACCOUNTS_PER_USER} accounts."
            )
        return owner


class AccountForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = ("name",)
        field_classes = {"name": TextField}


@admin.register(Account)
class AccountAdmin(AuditedModelAdmin):
    form = AccountForm
    add_form = AccountOpenForm
    add_fieldsets = ((None, {"fields": ("owner", "kind", "name")}),)
    fieldsets = (
        (None, {"fields": ("public_id", "owner", "index", "kind", "name", "created_at")}),
        (
            "Status and margin",
            {
                "fields": ("status", "margin_override", "margin_enabled"),
                "description": "Freeze and unfreeze with the actions of the account list. "
                "Margin enabled follows the eligibility chosen here (and, when automatic, "
                "lifetime volume); every change is audited with its effect.",
            },
        ),
        (
            "Balances",
            {
                "fields": ("cash_balance", "lifetime_volume"),
                "description": "Cash is the sum of the account's ledger postings; "
                "money moves only through journals.",
            },
        ),
    )
    readonly_fields = (
        "public_id",
        "owner",
        "index",
        "kind",
        "created_at",
        "status",
        "margin_override",
        "margin_enabled",
        "cash_balance",
        "lifetime_volume",
    )
    list_display = (
        "public_id",
        "owner",
        "name",
        "kind",
        "status",
        "margin_enabled",
        money_column("cash_balance", "cash (USDC)"),
        money_column("lifetime_volume", "lifetime volume (USDC)"),
    )
    list_filter = ("kind", "status", "margin_enabled", "margin_override")
    search_fields = ("public_id", "name", "owner__email")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    actions = ("freeze", "unfreeze")
    # Fields a service writes and audits itself (with their effect): not saved or
    # audited again by the form (`trading.admin`'s margin eligibility).
    service_fields: tuple[str, ...] = ()

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else super().get_readonly_fields(request, obj)

    def has_delete_permission(self, request, obj=None):
        # The ledger refers to every account: accounts are frozen or closed, never deleted.
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            opened = account_open(owner=obj.owner, kind=obj.kind, name=obj.name)
            obj.pk = opened.pk
            obj.refresh_from_db()
            return
        # Only what the form changed: the ledger keeps cash_balance current
        # under the account's lock, and a full save would write back a stale copy.
        fields = [name for name in form.changed_data if name not in self.service_fields]
        if fields:
            obj.save(update_fields=fields)

    def audit(self, request, obj, action, changes=None):
        if action == "change" and changes:
            changes = {
                name: change for name, change in changes.items() if name not in self.service_fields
            }
            if not changes:
                return
        super().audit(request, obj, action, changes)

    @admin.action(description="Freeze selected accounts", permissions=["change"])
    def freeze(self, request, queryset):
        self._freeze_set(request, queryset, frozen=True, done="Frozen")

    @admin.action(description="Unfreeze selected accounts", permissions=["change"])
    def unfreeze(self, request, queryset):
        self._freeze_set(request, queryset, frozen=False, done="Unfrozen")

    def _freeze_set(self, request, queryset, *, frozen: bool, done: str) -> None:
        """Each account through `account_freeze_set` (its row lock, audited), as the
        ops account page does."""
        self.apply_each(
            request,
            queryset,
            lambda account: account_freeze_set(
                account=account, frozen=frozen, actor=request.user, request=request
            ),
            done=done,
        )


# --- Ledger (read-only) ------------------------------------------------------


class PostingInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Posting
    fields = ("ledger_account", "amount", "created_at")


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("code", "name", "purpose", "account", "created_at")
    list_filter = ("purpose",)
    search_fields = ("code", "name", "account__public_id", "account__owner__email")
    list_select_related = ("account__owner",)


@admin.register(Journal)
class JournalAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("id", "kind", "account", "memo", "created_by", "created_at")
    list_filter = ("kind",)
    search_fields = ("memo", "idempotency_key", "account__public_id")
    list_select_related = ("account__owner", "created_by")
    date_hierarchy = "created_at"
    inlines = (PostingInline,)


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("id", "journal", "ledger_account", "amount", "created_at")
    list_filter = ("ledger_account__purpose", "journal__kind")
    search_fields = ("ledger_account__code", "journal__memo")
    list_select_related = ("journal", "ledger_account")


# --- Payments ----------------------------------------------------------------


@admin.register(Deposit)
class DepositAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = (
        "public_id",
        "account",
        money_column("amount"),
        "method",
        "status",
        "provider",
        "provider_reference",
        "created_at",
        "confirmed_at",
    )
    list_filter = ("status", "method", "provider")
    search_fields = (
        "public_id",
        "provider_reference",
        "account__public_id",
        "account__owner__email",
    )
    list_select_related = ("account__owner",)
    date_hierarchy = "created_at"


@admin.register(PaymentWebhookEvent)
class PaymentWebhookEventAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("provider", "event_id", "event_type", "received_at")
    list_filter = ("provider", "event_type")
    search_fields = ("event_id",)


class RejectionForm(forms.Form):
    reason = TextField(
        multiline=True,
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Kept with each request and shown to the customer.",
    )


@admin.register(WithdrawalRequest)
class WithdrawalRequestAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = (
        "public_id",
        "account",
        money_column("amount"),
        "destination",
        "status",
        "created_at",
        "reviewed_by",
        "review",
    )
    list_filter = ("status",)
    search_fields = ("public_id", "destination", "account__public_id", "account__owner__email")
    list_select_related = ("account__owner", "reviewed_by")
    # Pending requests first (the review queue), newest first within each group.
    ordering = (
        Case(When(status=WithdrawalRequest.Status.PENDING, then=Value(0)), default=Value(1)).asc(),
        "-created_at",
    )
    # Approval is on the review screen only (the effect on the account's margin, the
    # margin check, four-eyes above the threshold); rejecting in bulk stays here.
    actions = ("reject",)

    def has_review_permission(self, request) -> bool:
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.display(description="review")
    def review(self, withdrawal: WithdrawalRequest) -> str:
        label = "Review" if withdrawal.status == WithdrawalRequest.Status.PENDING else "Open"
        url = reverse("ops_withdrawal_review", args=[withdrawal.public_id])
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.action(description="Reject selected withdrawals…", permissions=["review"])
    def reject(self, request, queryset):
        form = RejectionForm(request.POST if "reason" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/accounts/withdrawalrequest/reject.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Reject withdrawals",
                    "opts": self.opts,
                    "form": form,
                    "queryset": queryset,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                },
            )
        reason = form.cleaned_data["reason"]
        self.apply_each(
            request,
            queryset,
            lambda withdrawal: withdrawal_review_reject(
                withdrawal=withdrawal, actor=request.user, reason=reason, request=request
            ),
            done="Rejected",
        )
        return None


# --- Four-eyes approvals (read-only: decided on the approvals page) ------------------------


def _approval_kind_label(kind: str) -> str:
    try:
        return approval_kind_get(kind).label
    except DomainError:
        return kind.replace("_", " ").capitalize()


class ApprovalKindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        kinds = Approval.objects.order_by("kind").values_list("kind", flat=True).distinct()
        return [(kind, _approval_kind_label(kind)) for kind in kinds]

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    """Proposals that need a second staff member; decided on /ops/approvals/."""

    list_display = (
        "public_id",
        "kind_label",
        "summary",
        "status",
        "proposed_by",
        "proposed_at",
        "decided_by",
        "decided_at",
        "decide",
    )
    list_filter = ("status", ApprovalKindFilter)
    search_fields = ("public_id", "summary", "reason", "proposed_by__email", "account__public_id")
    list_select_related = ("proposed_by", "decided_by")
    date_hierarchy = "proposed_at"
    fields = (
        "public_id",
        "kind_label",
        "summary",
        "reason",
        "account",
        "status",
        "proposed_by",
        "proposed_at",
        "decided_by",
        "decided_at",
        "decision_note",
        "applied_at",
        "attempts",
        "result",
    )
    readonly_fields = fields

    @admin.display(description="kind", ordering="kind")
    def kind_label(self, approval: Approval) -> str:
        return _approval_kind_label(approval.kind)

    @admin.display(description="decision")
    def decide(self, approval: Approval) -> str:
        label = "Decide" if approval.status == Approval.Status.PENDING else "Open"
        url = reverse("ops_approval", args=[approval.public_id])
        return format_html('<a href="{}">{}</a>', url, label)


# --- Notifications (read-only) -----------------------------------------------


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = (
        "created_at",
        "user",
        "account",
        "kind",
        "title",
        "email",
        "emailed_at",
        "read_at",
    )
    list_filter = ("kind", "email", "created_at")
    search_fields = ("title", "user__email", "account__public_id", "dedupe_key")
    list_select_related = ("user", "account__owner")
    date_hierarchy = "created_at"


# --- Outbox (read-only) ------------------------------------------------------


class OutboxStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("unfinished", "Unfinished"), ("failing", "Failing"), ("done", "Done")]

    def queryset(self, request, queryset):
        if self.value() == "unfinished":
            return queryset.filter(done_at__isnull=True)
        if self.value() == "failing":
            return queryset.filter(done_at__isnull=True).exclude(last_error="")
        if self.value() == "done":
            return queryset.filter(done_at__isnull=False)
        return queryset


@admin.register(OutboxItem)
class OutboxItemAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    """Background work and whether it is done; a stuck item shows its attempts and last error."""

    list_display = (
        "created_at",
        "task",
        "key",
        "attempts",
        "due_at",
        "sent_at",
        "done_at",
        "last_error",
    )
    list_filter = (OutboxStateFilter, "task")
    search_fields = ("task", "key")
    date_hierarchy = "created_at"


# --- Audit log ---------------------------------------------------------------


# accounts.admin_audit (imported above): in words, narrow enough for 1280 px.


# --- Partner API keys: accounts.admin_api_keys (imported above) --------------------


# --- Linked exchange credentials (read-only) -----------------------------------


@admin.register(LinkedCredential)
class LinkedCredentialAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    """What ops may see of a user's linked Kalshi/Polymarket credential.

    Users link (the venue verifies the credential), rotate and unlink in the
    portal; here everything is read-only and nothing is added or deleted. The
    sealed secret is no field of any form or list and is not even loaded:
    pages show the masked identity only.
    """

    list_display = (
        "account",
        "venue",
        "environment",
        "identity_masked",
        "status",
        "scopes",
        "warning",
        "last_synced_at",
        "last_error",
    )
    list_filter = ("venue", "environment", "status")
    search_fields = ("account__public_id", "account__owner__email")
    list_select_related = ("account__owner",)
    exclude = ("sealed_secret",)
    fields = (
        "account",
        "venue",
        "environment",
        "identity_masked",
        "status",
        "scopes",
        "warning",
        "cash_balance",
        "last_verified_at",
        "last_synced_at",
        "last_sync_attempt_at",
        "last_error",
        "consecutive_failures",
        "next_sync_at",
        "created_at",
        "rotated_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("sealed_secret")

    @admin.display(description="identity")
    def identity_masked(self, credential: LinkedCredential) -> str:
        return credential.identity_masked
