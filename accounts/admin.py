"""Ops console for users (KYB), accounts, the ledger, payments, notifications
and the audit log.

KYB decisions and withdrawal reviews go through their services, which record
the reviewer; accounts open through `account_open`; the ledger, deposits,
notifications and the audit log are read-only for everyone. Margin eligibility
is trading's rule: `trading.admin` registers the account admin again with it
(granting, revoking, handing back to the volume rule).
"""

from collections.abc import Callable

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_permission_codename
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.db.models import Case, Value, When
from django.template.response import TemplateResponse

from accounts.admin_site import AuditedAdminMixin, AuditedModelAdmin, ReadOnlyAdminMixin
from accounts.models import (
    Account,
    ApiKey,
    AuditLog,
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
from accounts.services.accounts import account_open, user_kyb_set
from accounts.services.api_keys import api_key_issue, api_key_revoke
from accounts.services.audit import audit_changes
from accounts.services.withdrawals import withdrawal_approve, withdrawal_reject
from portal.errors import DomainError, InvalidParams
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
                "description": "Changed only by the Approve KYB / Reject KYB actions, "
                "which record the reviewer.",
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
    list_display = ("email", "full_name", "kyb_status", "is_staff", "is_active", "date_joined")
    list_filter = ("kyb_status", "is_staff", "is_superuser", "is_active")
    search_fields = ("email", "full_name")
    ordering = ("-date_joined",)
    actions = ("approve_kyb", "reject_kyb")

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return readonly
        return (*readonly, *self.privilege_fields)

    @admin.action(description="Approve KYB of selected users", permissions=["change"])
    def approve_kyb(self, request, queryset):
        self._kyb_set(request, queryset, User.KybStatus.APPROVED)

    @admin.action(description="Reject KYB of selected users", permissions=["change"])
    def reject_kyb(self, request, queryset):
        self._kyb_set(request, queryset, User.KybStatus.REJECTED)

    def _kyb_set(self, request, queryset, status: User.KybStatus) -> None:
        self.apply_each(
            request,
            queryset,
            lambda user: user_kyb_set(
                user=user, status=status, actor=request.user, request=request
            ),
            done=f"KYB {status.label.lower()}",
        )

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


def _refuse_closed(account: Account) -> str:
    return "The account is closed." if account.status == Account.Status.CLOSED else ""


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
        "index",
        "name",
        "kind",
        "status",
        "margin_enabled",
        "margin_override",
        "cash_balance",
        "lifetime_volume",
        "created_at",
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
        self._update_each(
            request,
            queryset,
            "account_freeze",
            "Frozen",
            _refuse_closed,
            status=Account.Status.FROZEN,
        )

    @admin.action(description="Unfreeze selected accounts", permissions=["change"])
    def unfreeze(self, request, queryset):
        self._update_each(
            request,
            queryset,
            "account_unfreeze",
            "Unfrozen",
            _refuse_closed,
            status=Account.Status.ACTIVE,
        )

    def _update_each(
        self,
        request,
        queryset,
        action: str,
        done: str,
        refuse: Callable[[Account], str],
        **values,
    ) -> None:
        """Set fields on each account under its row lock (as money movements take it), audited."""

        def update(account: Account) -> None:
            with transaction.atomic():
                locked = Account.objects.select_for_update().get(pk=account.pk)
                if reason := refuse(locked):
                    raise InvalidParams(reason)
                before = {name: getattr(locked, name) for name in values}
                if before == values:
                    return
                for name, value in values.items():
                    setattr(locked, name, value)
                locked.save(update_fields=list(values))
                self.audit(request, locked, action, audit_changes(before, values))

        self.apply_each(request, queryset, update, done=done)


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
        "amount",
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
        "amount",
        "destination",
        "status",
        "created_at",
        "reviewed_by",
        "reviewed_at",
    )
    list_filter = ("status",)
    search_fields = ("public_id", "destination", "account__public_id", "account__owner__email")
    list_select_related = ("account__owner", "reviewed_by")
    # Pending requests first (the review queue), newest first within each group.
    ordering = (
        Case(When(status=WithdrawalRequest.Status.PENDING, then=Value(0)), default=Value(1)).asc(),
        "-created_at",
    )
    actions = ("approve", "reject")

    def has_review_permission(self, request) -> bool:
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.action(description="Approve selected withdrawals", permissions=["review"])
    def approve(self, request, queryset):
        self.apply_each(
            request,
            queryset,
            lambda withdrawal: withdrawal_approve(
                withdrawal=withdrawal, actor=request.user, request=request
            ),
            done="Approved",
        )

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
            lambda withdrawal: withdrawal_reject(
                withdrawal=withdrawal, actor=request.user, reason=reason, request=request
            ),
            done="Rejected",
        )
        return None


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


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = (
        "created_at",
        "actor_email",
        "action",
        "object_type",
        "object_repr",
        "ip_address",
    )
    list_filter = ("action", "object_type", "created_at")
    search_fields = ("actor_email", "object_repr", "object_id", "object_type")
    date_hierarchy = "created_at"


# --- Partner API keys ----------------------------------------------------------


class ApiKeyIssueForm(forms.Form):
    owner = forms.ModelChoiceField(
        User.objects.filter(kyb_status=User.KybStatus.APPROVED).order_by("email"),
        help_text="Only customers whose KYB is approved can hold keys.",
    )
    accounts = forms.ModelMultipleChoiceField(
        Account.objects.select_related("owner").order_by("owner__email", "index"),
        help_text="The owner's accounts the key may read and act on.",
    )
    name = TextField(max_length=100, help_text="What the key is for (e.g. 'risk desk').")
    environment = forms.ChoiceField(choices=ApiKey.Environment.choices)
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiKey.Scope.INTELLIGENCE, ApiKey.Scope.READ],
    )
    ip_allowlist = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One IP address or network (CIDR) per line; empty: any address.",
    )
    signing_public_key = forms.CharField(
        required=False,
        max_length=64,
        help_text="Optional hex Ed25519 public key: every write must then be signed.",
    )


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedModelAdmin):
    """Issue (the full key is shown once, on the page that follows), list, revoke.

    The key itself is never stored, so no page can show it again; lists show
    its prefix, scopes and last use.
    """

    list_display = (
        "prefix",
        "name",
        "owner",
        "environment",
        "scope_list",
        "status",
        "last_used_at",
        "created_at",
    )
    list_filter = ("environment", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("prefix", "name", "owner__email", "accounts__public_id")
    fields = (
        "prefix",
        "name",
        "owner",
        "account_list",
        "environment",
        "scope_list",
        "ip_allowlist",
        "signing_public_key",
        "created_by",
        "created_at",
        "revoked_at",
        "last_used_at",
        "last_used_ip",
    )
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(description="scopes")
    def scope_list(self, api_key: ApiKey) -> str:
        return ", ".join(api_key.scopes)

    @admin.display(description="accounts")
    def account_list(self, api_key: ApiKey) -> str:
        return ", ".join(account.public_id for account in api_key.accounts.all())

    @admin.display(description="status")
    def status(self, api_key: ApiKey) -> str:
        return "active" if api_key.is_active else f"revoked {api_key.revoked_at:%Y-%m-%d %H:%M}"

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # keys are issued and revoked, never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked keys stay, for the audit trail

    @admin.action(description="Revoke the selected keys (at once, everywhere)")
    def revoke(self, request, queryset) -> None:
        self.apply_each(
            request,
            queryset,
            lambda api_key: api_key_revoke(api_key=api_key, actor=request.user, request=request),
            done="Revoked",
        )

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ApiKeyIssueForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                issued = api_key_issue(
                    owner=data["owner"],
                    accounts=list(data["accounts"]),
                    scopes=data["scopes"],
                    name=data["name"],
                    environment=data["environment"],
                    ip_allowlist=data["ip_allowlist"].split(),
                    signing_public_key=data["signing_public_key"],
                    actor=request.user,
                    request=request,
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                response = TemplateResponse(
                    request,
                    "admin/accounts/apikey/issued.html",
                    {
                        **self.admin_site.each_context(request),
                        "title": "API key issued",
                        "opts": self.opts,
                        "api_key": issued.api_key,
                        "key": issued.key,
                    },
                )
                response["Cache-Control"] = "no-store"
                return response
        return TemplateResponse(
            request,
            "admin/accounts/apikey/issue.html",
            {
                **self.admin_site.each_context(request),
                "title": "Issue an API key",
                "opts": self.opts,
                "form": form,
            },
        )


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
