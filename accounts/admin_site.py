"""The ops console: the two-factor admin site and the audited ModelAdmin base.

Staff sign in with email, password and a one-time code from a confirmed
django-otp device; django-axes counts failed passwords and failed codes per
email + IP. Every ModelAdmin on the site is audited: our own derive from
`AuditedModelAdmin`, and `ops_admin_site()` wraps the ones other apps register
(auth groups, django-otp devices, django-axes, django-celery-beat) in the same
mixin, so every staff change reaches the audit log with the actor, the IP and
the fields changed.
"""

import functools
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers as admin_helpers
from django.contrib.admin.templatetags import admin_list
from django.contrib.admin.utils import model_ngettext
from django.contrib.auth.signals import user_login_failed
from django.db import models
from django.db.models import Model, QuerySet
from django.forms.models import model_to_dict
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services.audit import audit_changes, audit_record
from portal import format as fmt
from portal.errors import DomainError

NO_DEVICE_MESSAGE = (
    "This account has no two-factor device, so it cannot enter the ops console. "
    "Ask an administrator to enrol one for you (Admin › TOTP devices)."
)

# django-otp keeps a TOTP device's seed in a field called `key`. The audit
# service masks names containing its sensitive words; "key" is masked here by
# exact name, since as a part it would also hide idempotency keys.
ADMIN_SECRET_FIELDS = frozenset({"key"})


def _device_for_token(user: User, token: str) -> Device | None:
    """The device a code was typed from, when the user did not pick one.

    Digits are an authenticator (TOTP) code, anything else a backup code; a
    user without that kind of device gets their first device, so the code is
    still checked (and refused) rather than asking them to choose.
    """
    wants_totp = token.isdigit()
    fallback = None
    for device in devices_for_user(user, for_verify=True):
        if isinstance(device, TOTPDevice) == wants_totp:
            return device
        fallback = fallback or device
    return fallback


class OpsAuthenticationForm(OTPAdminAuthenticationForm):
    """Email, password and a one-time code; a wrong code is a failed login."""

    otp_token = forms.CharField(
        required=False,
        label="Authentication code",
        help_text="The code from your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )
    otp_error_messages = {
        **OTPAdminAuthenticationForm.otp_error_messages,
        "token_required": "Enter the code from your authenticator app.",
        "invalid_token": "That authentication code is not valid. Try the current one.",
    }

    def clean_otp(self, user: User | None) -> None:
        if user is not None and not any(devices_for_user(user)):
            raise forms.ValidationError(NO_DEVICE_MESSAGE, code="no_device")
        try:
            super().clean_otp(user)
        except forms.ValidationError as error:
            if error.code != "token_required":
                # Guessing codes is guessing credentials: django-axes counts it
                # towards the same email + IP lockout as a wrong password.
                user_login_failed.send(
                    sender=type(self),
                    credentials={"username": self.cleaned_data.get("username")},
                    request=self.request,
                )
            raise

    def _update_form(self, user: User) -> None:
        super()._update_form(user)
        # django-otp echoes the password back into the page; ops type it again.
        self.fields["password"].widget.render_value = False

    def _chosen_device(self, user: User) -> Device | None:
        return super()._chosen_device(user) or _device_for_token(
            user, self.cleaned_data.get("otp_token") or ""
        )


class OpsAdminSite(OTPAdminSite):
    """Only active staff verified by a confirmed OTP device get in."""

    site_header = "Prime Portal ops console"
    site_title = "Prime Portal ops"
    index_title = "Operations"
    login_form = OpsAuthenticationForm
    login_template = "admin/ops_login.html"

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        response = super().login(request, extra_context)
        if request.method == "POST" and response.status_code == 302:
            audit_record(actor=request.user, action="login", obj=request.user, request=request)
        return response


def _masked(changes: dict[str, list]) -> dict[str, list]:
    return {
        name: ["***", "***"] if name in ADMIN_SECRET_FIELDS else change
        for name, change in changes.items()
    }


def _readable(model: type[Model], values: dict[str, Any]) -> dict[str, Any]:
    """Foreign keys as the objects they point to, so the log names them, not ids."""
    readable = {}
    for name, value in values.items():
        field = model._meta.get_field(name)
        if field.is_relation and field.concrete and not field.many_to_many and value is not None:
            value = field.related_model._default_manager.filter(pk=value).first() or value
        readable[name] = value
    return readable


def form_changes(form: forms.ModelForm, *, adding: bool) -> dict[str, list]:
    """{field: [old, new]} for the model fields a saved ModelForm changed.

    Old values are the form's initial data, i.e. the row as the admin loaded it.
    """
    model = type(form.instance)
    after = model_to_dict(form.instance, fields=form.changed_data)
    before = {} if adding else {name: form.initial.get(name) for name in after}
    return _masked(audit_changes(_readable(model, before), _readable(model, after)))


def deletion_changes(obj: Model) -> dict[str, list]:
    """{field: [value, None]} for every stored field of an object about to go."""
    values = {field.name: field.value_from_object(obj) for field in obj._meta.concrete_fields}
    return _masked(audit_changes(_readable(type(obj), values), {}))


def _audited_action(func: Callable, name: str) -> Callable:
    @functools.wraps(func)
    def run(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet):
        selected = [str(pk) for pk in queryset.values_list("pk", flat=True)]
        response = func(modeladmin, request, queryset)
        # An action answering with a page (a confirmation step, a download)
        # has changed nothing yet; the completed run is the one to record.
        if not isinstance(response, HttpResponseBase):
            count = len(selected)
            audit_record(
                actor=request.user,
                action=f"action:{name}",
                object_type=modeladmin.opts.label,
                object_repr=f"{count} {model_ngettext(modeladmin.opts, count)}",
                changes={"selected": selected},
                request=request,
            )
        return response

    return run


class AuditedAdminMixin:
    """Writes the audit log for everything a ModelAdmin changes.

    Add and change (including inlines and M2M) are recorded field by field
    after the save, inside the admin's transaction; deletions with the values
    deleted; each completed admin action with the objects it was run on.
    """

    def audit(
        self, request: HttpRequest, obj: Model, action: str, changes: dict | None = None
    ) -> None:
        audit_record(actor=request.user, action=action, obj=obj, changes=changes, request=request)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        changes = form_changes(form, adding=not change)
        if changes or not change:
            self.audit(request, form.instance, "change" if change else "add", changes)

    def save_formset(self, request, form, formset, change):
        deleted_forms = formset.deleted_forms
        for deleted in deleted_forms:
            if deleted.instance.pk is not None:
                self.audit(request, deleted.instance, "delete", deletion_changes(deleted.instance))
        super().save_formset(request, form, formset, change)
        for inline_form in formset.forms:
            if inline_form in deleted_forms or not inline_form.has_changed():
                continue
            adding = inline_form in formset.extra_forms
            self.audit(
                request,
                inline_form.instance,
                "add" if adding else "change",
                form_changes(inline_form, adding=adding),
            )

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self.audit(request, obj, "delete", deletion_changes(obj))
        return super().log_deletions(request, queryset)

    def get_action(self, action):
        found = super().get_action(action)
        if found is None:
            return None
        func, name, description = found
        return _audited_action(func, name), name, description

    def apply_each(
        self,
        request: HttpRequest,
        objects: Iterable[Model],
        operation: Callable[[Any], object],
        *,
        done: str,
    ) -> None:
        """Run an action's operation on each object; a refusal is that row's error.

        Each DomainError is shown with the object it refused, the others go on.
        """
        applied = 0
        for obj in objects:
            try:
                operation(obj)
            except DomainError as error:
                self.message_user(request, f"{obj}: {error.message}", messages.ERROR)
            else:
                applied += 1
        if applied:
            self.message_user(
                request,
                f"{done}: {applied} {model_ngettext(self.opts, applied)}.",
                messages.SUCCESS,
            )


class AuditedModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """The base of every ModelAdmin in the ops console."""


class ReadOnlyAdminMixin:
    """Viewable only: nobody adds, changes or deletes these in the admin, superusers included."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _formatted_display(display: Callable[..., str]) -> Callable[..., str]:
    """Django admin's `display_for_field`, with our numbers and times: a decimal
    field reads grouped and exact without trailing zeros ("1,000,000.00",
    "0.4536", never "1000000.000000"), a moment in the reader's zone with the
    zone shown (`portal.format`)."""
    if getattr(display, "portal_readable", False):
        return display

    @functools.wraps(display)
    def readable(value, field, empty_value_display, *args, **kwargs):
        if value is not None and isinstance(field, models.DecimalField):
            return fmt.number_exact(value, min_places=2, max_places=field.decimal_places)
        if value is not None and isinstance(field, models.DateTimeField):
            return fmt.when(value)
        return display(value, field, empty_value_display, *args, **kwargs)

    readable.portal_readable = True
    return readable


def ops_admin_site() -> admin.AdminSite:
    """The default admin site, made the ops console. Called by `accounts.admin_urls`.

    By then every app's admin module is registered, so the ModelAdmins of
    other apps are wrapped in the audit mixin here, and every read-only value
    and list cell is shown through `portal.format` (`_formatted_display`). Safe to call
    again.
    """
    admin_helpers.display_for_field = _formatted_display(admin_helpers.display_for_field)
    admin_list.display_for_field = _formatted_display(admin_list.display_for_field)
    site = admin.site
    site.__class__ = OpsAdminSite
    for model, model_admin in list(site._registry.items()):
        if isinstance(model_admin, AuditedAdminMixin):
            continue
        admin_class = type(model_admin)
        site.unregister(model)
        site.register(
            model, type(f"Audited{admin_class.__name__}", (AuditedAdminMixin, admin_class), {})
        )
    return site
