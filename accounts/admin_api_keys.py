"""Partner API keys in the ops console: issue (shown once), list, revoke with a reason.

- Issuing: the owner first; the accounts offered are that owner's only (the
  page's script, static/js/admin-api-keys.js, reloads them from
  `owner-accounts/<owner id>/` when the owner changes; without it, "Show the
  owner's accounts" re-renders the form for the chosen owner). An account of
  another customer sent anyway is a form error.
- The one-time display has a copy button (the same script: the clipboard,
  with a "Copied" status, or the key selected to copy by hand).
- Revoking is a page per key (`<id>/revoke/`): a confirmation with a reason,
  which the audit log keeps with the revocation.

Registered here and imported by accounts.admin (the console's autodiscovery).
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin_site import AuditedModelAdmin
from accounts.models import Account, ApiKey, User
from accounts.services.api_keys import api_key_issue, api_key_revoke
from portal import format as fmt
from portal.errors import DomainError
from portal.forms import TextField

CHOOSE_OWNER_FIRST = "Choose the owner first: the key can only read and act on their accounts."


def account_label(account: Account) -> str:
    name = f" “{account.name}”" if account.name else ""
    return f"{account.public_id}{name} ({account.get_kind_display()})"


class ApiKeyIssueForm(forms.Form):
    owner = forms.ModelChoiceField(
        User.objects.filter(kyb_status=User.KybStatus.APPROVED).order_by("email"),
        help_text="Only customers whose KYB is approved can hold keys. Choose the owner "
        "first: the accounts below are theirs.",
    )
    accounts = forms.ModelMultipleChoiceField(
        Account.objects.select_related("owner"),
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

    def __init__(self, *args, accounts_url: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        owner = self._owner_chosen()
        field = self.fields["accounts"]
        # Every account validates (so another customer's is refused with a sentence,
        # not "not one of the available choices"); only the owner's are offered.
        field.widget.choices = [
            (account.pk, account_label(account))
            for account in (owner.accounts.order_by("index") if owner else Account.objects.none())
        ]
        field.widget.attrs.update({"data-accounts-for-owner": "", "size": 6})
        self.fields["owner"].widget.attrs.update({"data-owner-select": ""})
        if accounts_url:
            # The owner's id is appended by the script: .../owner-accounts/<id>/
            self.fields["owner"].widget.attrs["data-accounts-url"] = accounts_url
        if owner is None:
            field.help_text = CHOOSE_OWNER_FIRST

    def _owner_chosen(self) -> User | None:
        raw = self.data.get("owner") if self.is_bound else self.initial.get("owner")
        if not raw:
            return None
        try:
            return self.fields["owner"].queryset.filter(pk=int(str(raw))).first()
        except ValueError:
            return None

    def clean(self):
        data = super().clean()
        owner, accounts = data.get("owner"), data.get("accounts")
        if owner and accounts:
            foreign = [account for account in accounts if account.owner_id != owner.pk]
            if foreign:
                self.add_error(
                    "accounts",
                    f"{', '.join(a.public_id for a in foreign)} "
                    f"{'belongs' if len(foreign) == 1 else 'belong'} to another customer: "
                    f"a key for {owner.email} can only be bound to their accounts.",
                )
        return data


class RevokeForm(forms.Form):
    reason = TextField(
        multiline=True,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why the key is revoked (e.g. 'leaked in a support ticket'): kept in the "
        "audit log.",
    )


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedModelAdmin):
    """Issue (the full key is shown once, on the page that follows), list, revoke.

    The key itself is never stored, so no page can show it again; lists show
    its prefix, scopes and last use.
    """

    list_display = ("prefix", "name", "owner", "environment", "scope_list", "status", "last_used")
    list_filter = ("environment", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("prefix", "name", "owner__email", "accounts__public_id")
    list_select_related = ("owner",)
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
        "created",
        "status",
        "last_used",
        "last_used_ip",
    )
    readonly_fields = fields
    actions = None  # revoking is one key at a time, confirmed, with a reason

    @admin.display(description="scopes")
    def scope_list(self, api_key: ApiKey) -> str:
        return ", ".join(scope.capitalize() for scope in api_key.scopes)

    @admin.display(description="accounts")
    def account_list(self, api_key: ApiKey) -> str:
        return ", ".join(account.public_id for account in api_key.accounts.all())

    @admin.display(description="status")
    def status(self, api_key: ApiKey) -> str:
        if not api_key.is_active:
            return f"Revoked {fmt.when(api_key.revoked_at)}"
        url = reverse("admin:accounts_apikey_revoke", args=[api_key.pk])
        return format_html('Active · <a href="{}">Revoke…</a>', url)

    @admin.display(description="last used", ordering="last_used_at")
    def last_used(self, api_key: ApiKey) -> str:
        return fmt.when(api_key.last_used_at) if api_key.last_used_at else "Never"

    @admin.display(description="issued", ordering="created_at")
    def created(self, api_key: ApiKey) -> str:
        return fmt.when(api_key.created_at)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # keys are issued and revoked, never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked keys stay, for the audit trail

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("accounts.change_apikey")

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "owner-accounts/<int:owner_id>/",
                wrap(self.owner_accounts_view),
                name="accounts_apikey_owner_accounts",
            ),
            path("<int:key_id>/revoke/", wrap(self.revoke_view), name="accounts_apikey_revoke"),
            *super().get_urls(),
        ]

    def owner_accounts_view(self, request, owner_id: int):
        """JSON: the accounts a key for this owner may be bound to (the issue form's script)."""
        if not self.has_add_permission(request):
            return JsonResponse(
                {"code": "forbidden", "message": "You may not issue API keys."}, status=403
            )
        owner = User.objects.filter(pk=owner_id, kyb_status=User.KybStatus.APPROVED).first()
        if owner is None:
            return JsonResponse(
                {"code": "not_found", "message": "No customer with approved KYB has this id."},
                status=404,
            )
        return JsonResponse(
            {
                "owner": owner.email,
                "accounts": [
                    {"id": account.pk, "label": account_label(account)}
                    for account in owner.accounts.order_by("index")
                ],
            }
        )

    def revoke_view(self, request, key_id: int):
        if not self.has_revoke_permission(request):
            raise PermissionDenied
        api_key = ApiKey.objects.select_related("owner").filter(pk=key_id).first()
        if api_key is None:
            raise Http404("There is no such API key.")
        form = RevokeForm(request.POST or None)
        if api_key.is_active and request.method == "POST" and form.is_valid():
            api_key_revoke(
                api_key=api_key,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                request=request,
            )
            self.message_user(
                request,
                f"Revoked {api_key.prefix}… ({api_key.name}): it stops working at once.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:accounts_apikey_changelist"))
        return TemplateResponse(
            request,
            "admin/accounts/apikey/revoke.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Revoke API key {api_key.prefix}…",
                "opts": self.opts,
                "api_key": api_key,
                "form": form,
            },
        )

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        accounts_url = reverse("admin:accounts_apikey_owner_accounts", args=[0]).removesuffix("0/")
        choosing = "_choose_owner" in request.POST
        if choosing:  # the owner chosen without the script: offer their accounts, no errors
            post = request.POST
            form = ApiKeyIssueForm(
                initial={
                    **{name: post.get(name, "") for name in ("owner", "name", "environment")},
                    **{name: post.get(name, "") for name in ("ip_allowlist", "signing_public_key")},
                    "scopes": post.getlist("scopes"),
                },
                accounts_url=accounts_url,
            )
        else:
            form = ApiKeyIssueForm(
                request.POST or None,
                initial={"owner": request.GET.get("owner")},
                accounts_url=accounts_url,
            )
        if request.method == "POST" and not choosing and form.is_valid():
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
                "choosing": choosing,
            },
        )
