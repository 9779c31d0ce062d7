"""The linked-exchanges page and API against the fake Kalshi, and the canary check:
a linked account's secret never appears in any page, API response, admin page or
log line once it has been submitted."""

import logging
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import LinkedCredential
from tests.accounts.test_admin import login_ops
from tests.api.conftest import client_for, key_issue
from tests.factories import UserFactory, open_account
from tests.web.conftest import signed_in
from trading.services.linked_accounts import linked_account_link
from trading.venues.fakes.kalshi import FakeKalshi, rsa_key_pair, seed_demo


@pytest.fixture
def fake(settings):
    with FakeKalshi() as server:
        settings.KALSHI_BASE_URLS = {"production": server.base_url, "demo": server.base_url}
        yield server


@pytest.fixture
def seeded(fake):
    return seed_demo(fake, key_id=f"key-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def owner(db):
    return UserFactory()


@pytest.fixture
def browser(client, owner) -> Client:
    return signed_in(client, owner)


def link_form(seeded, **extra) -> dict:
    return {
        "kalshi-environment": "demo",
        "kalshi-key_id": seeded.key_id,
        "kalshi-private_key_pem": seeded.private_key_pem,
        "kalshi-name": "Kalshi main",
        **extra,
    }


def canaries(pem: str) -> list[str]:
    """Distinctive pieces of the secret: each base64 line of the key body."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def assert_no_canary(text: str, pem: str) -> None:
    for canary in canaries(pem):
        assert canary not in text


def test_link_sync_and_see_the_positions(
    browser, owner, seeded, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the first sync runs (eager)
        response = browser.post(reverse("linked-link", args=["kalshi"]), link_form(seeded))
    assert response.status_code == 302
    credential = LinkedCredential.objects.get(account__owner=owner)
    assert credential.last_synced_at is not None
    page = browser.get(reverse("linked-list"))
    text = page.content.decode()
    assert "Kalshi main" in text and credential.identity_masked in text
    assert "1,250.00" in text  # the venue cash of the sync
    assert "can place orders" in text  # the write-scope warning
    dashboard = browser.get("/dashboard/").content.decode()  # the new account is current
    assert "KXFEDDECISION-26DEC-H0" in dashboard


def test_a_refused_key_shows_the_venues_reason_and_never_the_key(browser, fake, seeded):
    other_pem, _ = rsa_key_pair()
    response = browser.post(
        reverse("linked-link", args=["kalshi"]),
        link_form(seeded, **{"kalshi-private_key_pem": other_pem}),
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "Kalshi refused" in text
    assert_no_canary(text, other_pem)  # not written back into the form
    assert not LinkedCredential.objects.exists()


def test_another_users_linked_account_is_a_404(client, owner, seeded, browser):
    mine = _link(owner, seeded)
    intruder = signed_in(Client(), UserFactory())
    for name in ("linked-sync", "linked-unlink", "linked-rotate"):
        response = intruder.post(reverse(name, args=[mine.account.public_id]), {})
        assert response.status_code == 404
    assert mine.account.public_id not in intruder.get(reverse("linked-list")).content.decode()
    mine.refresh_from_db()
    assert mine.status == LinkedCredential.Status.ACTIVE


def _link(owner, seeded) -> LinkedCredential:
    return linked_account_link(
        user=owner,
        venue="kalshi",
        environment="demo",
        key_id=seeded.key_id,
        private_key_pem=seeded.private_key_pem,
    )


def test_the_api_reports_sync_status_and_syncs_on_request(
    owner, seeded, django_capture_on_commit_callbacks
):
    credential = _link(owner, seeded)
    api = client_for(key_issue([credential.account]))
    url = "/v1/intelligence/linked-account"
    status = api.get(url).json()
    assert status["venue"] == "kalshi" and status["identity"] == credential.identity_masked
    assert status["last_synced_at"] is None
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{url}/sync", {}, format="json")
    assert response.status_code == 202
    assert api.get(url).json()["last_synced_at"] is not None  # eager task ran after commit
    other = client_for(key_issue([open_account()]))
    assert other.get(url, {"account_id": credential.account.public_id}).status_code == 404


def test_the_secret_never_appears_in_pages_api_admin_or_logs(
    client, owner, seeded, caplog, capsys, django_capture_on_commit_callbacks, staff
):
    caplog.set_level(logging.DEBUG)
    pem = seeded.private_key_pem
    browser = signed_in(client, owner)
    seen: list[str] = []
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(reverse("linked-link", args=["kalshi"]), link_form(seeded))
    credential = LinkedCredential.objects.get(account__owner=owner)
    account = credential.account
    # A failed rotation (a key the venue refuses) and a bad one: error paths too.
    browser.post(
        reverse("linked-rotate", args=[account.public_id]),
        {
            f"{account.public_id}-key_id": "unknown-key-id",
            f"{account.public_id}-private_key_pem": pem,
        },
    )
    browser.post(
        reverse("linked-rotate", args=[account.public_id]),
        {f"{account.public_id}-key_id": "x", f"{account.public_id}-private_key_pem": pem},
    )
    for path in (
        reverse("linked-list"),
        "/dashboard/",
        f"/dashboard/{account.public_id}/snapshot.json",
        reverse("account_list"),
    ):
        seen.append(browser.get(path).content.decode())
    api = client_for(key_issue([account]))
    for path in ("linked-account", "account", "positions", "margin", "balances"):
        seen.append(api.get(f"/v1/intelligence/{path}").content.decode())
    seen.append(
        api.post("/v1/intelligence/linked-account/sync", {}, format="json").content.decode()
    )
    ops = Client()
    login_ops(ops, staff)
    for path in (
        reverse("admin:accounts_linkedcredential_changelist"),
        reverse("admin:accounts_linkedcredential_change", args=[credential.pk]),
        reverse("admin:accounts_account_change", args=[account.pk]),
        reverse("admin:accounts_auditlog_changelist"),
    ):
        response = ops.get(path)
        assert response.status_code == 200, path
        seen.append(response.content.decode())
    captured = capsys.readouterr()
    seen += [captured.out, captured.err, caplog.text]
    seen += [record.getMessage() for record in caplog.records]
    for text in seen:
        assert_no_canary(text, pem)
    assert credential.identity_masked in seen[0]  # the pages do show the credential, masked
