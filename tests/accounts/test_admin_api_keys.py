"""Ops issue partner API keys in the admin: the key is shown once, then only its prefix."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from accounts.models import ApiKey, AuditLog
from tests.accounts.test_admin import login_ops, run_action
from tests.api.conftest import client_for
from tests.factories import open_account

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
