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
    assertContains(response, "only be bound to its owner")
    response = issue(ops_client, account, ip_allowlist="300.1.1.1")
    assertContains(response, "is not an IP address")
    assert not ApiKey.objects.exists()


def test_revoking_from_the_list(ops_client):
    account = open_account()
    key = issue(ops_client, account).context["key"]
    row = ApiKey.objects.get()
    run_action(ops_client, "admin:accounts_apikey_changelist", "revoke", [row])
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert AuditLog.objects.filter(action="api_key_revoked").count() == 1
    response = client_for(key).get("/v1/intelligence/positions")
    assert response.status_code == 401


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
