"""Ops issue partner API keys in the admin: the key is shown once, then only its prefix."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from accounts.models import ApiKey, AuditLog
from accounts.services.api_keys import api_key_identify
from portal.demo_logins import DEMO_OPS_EMAIL
from tests.accounts.test_admin import login_ops, run_action
from tests.api.conftest import client_for
from tests.factories import StaffFactory, UserFactory, open_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_client(client, staff):
    login_ops(client, staff)
    return client


def issue(ops_client, account, **extra):
    return ops_client.post(
        reverse("admin:accounts_apikey_add"),
        {
            "owner": account.owner.pk,
            "accounts": [account.pk],
            "name": "risk desk",
            "environment": "live",
            "scopes": ["intelligence", "read"],
            "ip_allowlist": "",
            "signing_public_key": "",
            **extra,
        },
    )


def test_the_key_is_shown_once_and_works(ops_client):
    account = open_account()
    response = issue(ops_client, account)
    assert response.status_code == 200
    key = response.context["key"]
    assertContains(response, key)
    assert "no-store" in response["Cache-Control"]
    row = ApiKey.objects.get()
    assert row.scopes == ["intelligence", "read"] and list(row.accounts.all()) == [account]
    assert client_for(key).get("/v1/intelligence/positions").status_code == 200
    for page in (
        ops_client.get(reverse("admin:accounts_apikey_changelist")),
        ops_client.get(reverse("admin:accounts_apikey_change", args=[row.pk])),
        ops_client.get(reverse("admin:accounts_auditlog_changelist")),
    ):
        assert page.status_code == 200
        assertNotContains(page, key)
        assertNotContains(page, row.key_hash)
    assertContains(ops_client.get(reverse("admin:accounts_apikey_changelist")), row.prefix)


def test_refusals_are_form_errors(ops_client):
    account, stranger = open_account(), open_account()
    response = issue(ops_client, account, accounts=[stranger.pk])
    assertContains(response, f"{stranger.public_id} belongs to another customer")
    assertContains(response, "can only be bound to their accounts")
    response = issue(ops_client, account, ip_allowlist="300.1.1.1")
    assertContains(response, "is not an IP address")
    assert not ApiKey.objects.exists()


def revoke_url(row: ApiKey) -> str:
    return reverse("admin:accounts_apikey_revoke", args=[row.pk])


def test_revoking_asks_for_a_confirmation_and_a_reason(ops_client, staff):
    account = open_account()
    key = issue(ops_client, account).context["key"]
    row = ApiKey.objects.get()
    listed = ops_client.get(reverse("admin:accounts_apikey_changelist"))
    assertContains(listed, revoke_url(row))
    # No bulk action: one key at a time, confirmed.
    assertNotContains(listed, 'name="action"')
    run_action(ops_client, "admin:accounts_apikey_changelist", "revoke", [row])
    row.refresh_from_db()
    assert row.revoked_at is None

    page = ops_client.get(revoke_url(row))
    assertContains(page, "Yes, revoke this key")
    assertContains(page, f"{row.prefix}…")
    refused = ops_client.post(revoke_url(row), {"reason": "  "})
    assertContains(refused, "This field is required.")
    row.refresh_from_db()
    assert row.revoked_at is None

    done = ops_client.post(revoke_url(row), {"reason": "Leaked in a support ticket."})
    assert done.status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None
    entry = AuditLog.objects.get(action="api_key_revoked")
    assert (entry.actor, entry.changes) == (staff, {"reason": "Leaked in a support ticket."})
    assert client_for(key).get("/v1/intelligence/positions").status_code == 401
    again = ops_client.get(revoke_url(row))
    assertContains(again, "was revoked")
    assertNotContains(again, "Yes, revoke this key")
    assert AuditLog.objects.filter(action="api_key_revoked").count() == 1


def test_the_issue_form_offers_only_the_owners_accounts(ops_client):
    alice = UserFactory(kyb_status="approved")
    mine, other = open_account(owner=alice), open_account()
    add = reverse("admin:accounts_apikey_add")
    blank = ops_client.get(add)
    assertContains(blank, "Choose the owner first")
    assertNotContains(blank, mine.public_id)
    assertNotContains(blank, other.public_id)
    assertContains(blank, "js/admin-api-keys.js")

    chosen = ops_client.post(add, {"owner": alice.pk, "_choose_owner": "1", "name": "desk"})
    assert chosen.status_code == 200
    assertContains(chosen, mine.public_id)
    assertNotContains(chosen, other.public_id)
    assertNotContains(chosen, "This field is required.")
    assert not ApiKey.objects.exists()

    url = reverse("admin:accounts_apikey_owner_accounts", args=[alice.pk])
    answer = ops_client.get(url)
    assert answer.status_code == 200
    assert answer.json()["accounts"] == [
        {"id": mine.pk, "label": f"{mine.public_id} “{mine.name}” (Custodial)"}
        if mine.name
        else {"id": mine.pk, "label": f"{mine.public_id} (Custodial)"}
    ]
    missing = ops_client.get(reverse("admin:accounts_apikey_owner_accounts", args=[999999]))
    assert missing.status_code == 404 and missing.json()["message"].endswith(".")


def test_the_owners_accounts_endpoint_is_for_staff(client):
    owner = UserFactory(kyb_status="approved")
    url = reverse("admin:accounts_apikey_owner_accounts", args=[owner.pk])
    assert client.get(url).status_code == 302  # to the admin's sign-in
    client.force_login(owner)
    assert client.get(url).status_code == 302
    client.force_login(StaffFactory())  # staff without the one-time code
    assert client.get(url).status_code == 302


def test_the_one_time_display_has_a_copy_button(ops_client):
    response = issue(ops_client, open_account())
    assertContains(response, 'data-copy-target="api-key"')
    assertContains(response, 'id="api-key"')
    assertContains(response, "data-copy-status")
    assertContains(response, "js/admin-api-keys.js")


def test_make_api_key_issues_a_fresh_demo_key_and_revokes_the_last(settings):
    StaffFactory(email=DEMO_OPS_EMAIL)
    account = open_account(owner=UserFactory(email="alice@prime.local"))

    def issue() -> str:
        out = StringIO()
        call_command("demo_api_key", stdout=out)
        return out.getvalue().strip()

    with pytest.raises(CommandError, match="DEBUG"):
        issue()
    settings.DEBUG = True
    first = issue()
    identity = api_key_identify(first)
    assert identity.account_public_ids == (account.public_id,)
    assert identity.scopes == {"intelligence", "read", "trade", "reports"}
    second = issue()
    assert first.startswith("lev_test_") and second != first
    assert api_key_identify(first) is None and api_key_identify(second) is not None
