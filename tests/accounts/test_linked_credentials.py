"""Linked exchange credentials at rest (SPEC §1): sealed with their own rotatable
key set, never readable from the database column, the admin or an error message."""

import re
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.checks import Error
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from accounts.credential_keys import (
    PUBLISHED_KEYS,
    CredentialKeyError,
    linked_credential_keys_check,
    linked_credential_keys_deploy_check,
    secret_open,
    secret_reseal,
    secret_seal,
)
from accounts.models import Account, LinkedCredential
from tests.accounts.test_admin import login_ops
from tests.factories import open_account

pytestmark = pytest.mark.django_db

CANARY = "canary-private-key-5b1e9d7c"  # stands for a PEM body or a CLOB secret
KALSHI_KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
WALLET = "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def link(
    account: Account | None = None,
    *,
    venue: str = LinkedCredential.Venue.KALSHI,
    environment: str = LinkedCredential.Environment.PRODUCTION,
    identity: str = KALSHI_KEY_ID,
    secrets: dict[str, str] | None = None,
) -> LinkedCredential:
    credential = LinkedCredential(
        account=account or open_account(kind=Account.Kind.NON_CUSTODIAL),
        venue=venue,
        environment=environment,
        identity=identity,
        scopes="read",
    )
    credential.secrets_set({"private_key_pem": CANARY} if secrets is None else secrets)
    credential.save()
    return credential


def raw_sealed_secret(credential: LinkedCredential) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT sealed_secret FROM {LinkedCredential._meta.db_table} WHERE id = %s",  # noqa: S608
            [credential.pk],
        )
        return cursor.fetchone()[0]


def rotate() -> str:
    out = StringIO()
    call_command("linked_credentials_rotate", "--batch-size", "2", stdout=out)
    return out.getvalue()


# --- Sealing ---------------------------------------------------------------------


def test_a_sealed_payload_opens_to_itself_and_never_shows_in_the_token():
    payload = {"api_key": "k-1", "api_secret": CANARY, "api_passphrase": "p"}
    token = secret_seal(payload)
    assert secret_open(token) == payload
    assert CANARY not in token
    assert secret_seal(payload) != token  # a fresh IV each time: equal secrets look different


def test_only_a_dict_of_strings_can_be_sealed():
    with pytest.raises(TypeError):
        secret_seal({"private_key_pem": 42})
    with pytest.raises(TypeError):
        secret_seal(["private_key_pem", CANARY])


def test_a_token_of_an_unknown_key_raises_without_leaking_it(settings):
    foreign = Fernet(Fernet.generate_key()).encrypt(f'{{"private_key_pem":"{CANARY}"}}'.encode())
    token = foreign.decode()
    for call in (secret_open, secret_reseal):
        with pytest.raises(CredentialKeyError) as caught:
            call(token)
        text = f"{caught.value} {caught.value!r}"
        assert token not in text and CANARY not in text
        assert "LINKED_CREDENTIAL_KEYS" in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(CredentialKeyError):
        secret_open("not a token at all")


def test_an_empty_key_set_refuses_to_seal(settings):
    settings.LINKED_CREDENTIAL_KEYS = []
    with pytest.raises(CredentialKeyError, match="empty"):
        secret_seal({"private_key_pem": CANARY})


# --- The model -----------------------------------------------------------------


def test_the_column_holds_only_the_sealed_token():
    credential = link()
    raw = raw_sealed_secret(credential)
    assert raw and CANARY not in raw
    assert secret_open(raw) == {"private_key_pem": CANARY}
    assert LinkedCredential.objects.get().secrets() == {"private_key_pem": CANARY}
    assert CANARY not in str(credential) and CANARY not in repr(credential)
    assert raw not in str(credential)


def test_a_wallet_without_clob_keys_stores_no_secret():
    credential = link(venue="polymarket", environment="", identity=WALLET, secrets={})
    assert raw_sealed_secret(credential) == ""
    assert credential.secrets() == {}


def test_identities_are_masked_for_pages():
    kalshi = link()
    wallet = link(venue="polymarket", environment="", identity=WALLET, secrets={})
    assert kalshi.identity_masked == "…608c"
    assert wallet.identity_masked == "0x4bFb…982E"
    assert KALSHI_KEY_ID not in str(kalshi) and WALLET not in str(wallet)


@pytest.mark.parametrize(
    ("venue", "environment"),
    [("kalshi", ""), ("polymarket", "production"), ("kalshi", "staging")],
)
def test_the_database_ties_the_environment_to_the_venue(venue, environment):
    with pytest.raises(IntegrityError), transaction.atomic():
        link(venue=venue, environment=environment)


def test_one_credential_per_account_and_the_account_cannot_go_while_linked():
    credential = link()
    with pytest.raises(IntegrityError), transaction.atomic():
        link(credential.account)
    with pytest.raises(ProtectedError):
        credential.account.delete()


# --- Rotation ------------------------------------------------------------------


def test_rotation_re_seals_every_row_with_the_new_key_and_is_idempotent(settings):
    settings.LINKED_CREDENTIAL_KEYS = [OLD_KEY]
    credentials = [link(secrets={"private_key_pem": f"{CANARY}-{n}"}) for n in range(5)]
    wallet = link(venue="polymarket", environment="", identity=WALLET, secrets={})
    before = {c.pk: raw_sealed_secret(c) for c in credentials}

    settings.LINKED_CREDENTIAL_KEYS = [NEW_KEY, OLD_KEY]
    # Deployed with the new key in front: old rows still open, new ones use the new key.
    assert [c.secrets() for c in credentials] == [
        {"private_key_pem": f"{CANARY}-{n}"} for n in range(5)
    ]
    fresh = link(secrets={"private_key_pem": "fresh"})

    assert "Re-sealed 5 linked credential(s) with the newest key; 1 already on it." in rotate()

    settings.LINKED_CREDENTIAL_KEYS = [NEW_KEY]  # the old key dropped
    for n, credential in enumerate(credentials):
        credential.refresh_from_db()
        assert credential.sealed_secret != before[credential.pk]
        assert credential.secrets() == {"private_key_pem": f"{CANARY}-{n}"}
    fresh.refresh_from_db()
    assert fresh.secrets() == {"private_key_pem": "fresh"}
    assert raw_sealed_secret(wallet) == ""

    after = {c.pk: raw_sealed_secret(c) for c in [*credentials, fresh]}
    assert "Re-sealed 0 linked credential(s) with the newest key; 6 already on it." in rotate()
    assert {c.pk: raw_sealed_secret(c) for c in [*credentials, fresh]} == after


def test_rotation_reports_rows_no_key_opens_and_leaves_them_untouched(settings):
    settings.LINKED_CREDENTIAL_KEYS = [OLD_KEY]
    lost = link()
    settings.LINKED_CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    kept = link(secrets={"private_key_pem": "kept"})
    settings.LINKED_CREDENTIAL_KEYS = [NEW_KEY, settings.LINKED_CREDENTIAL_KEYS[0]]
    lost_token = raw_sealed_secret(lost)

    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("linked_credentials_rotate", stdout=out)
    message = str(caught.value)
    assert f"id {lost.pk}" in message and "left untouched" in message
    assert lost_token not in message and CANARY not in message
    assert "Re-sealed 1 linked credential(s)" in out.getvalue()
    assert raw_sealed_secret(lost) == lost_token
    settings.LINKED_CREDENTIAL_KEYS = [NEW_KEY]
    kept.refresh_from_db()
    assert kept.secrets() == {"private_key_pem": "kept"}


def test_rotation_refuses_an_empty_key_set(settings):
    link()
    settings.LINKED_CREDENTIAL_KEYS = []
    with pytest.raises(CommandError, match="empty"):
        call_command("linked_credentials_rotate", stdout=StringIO())


# --- The ops console -------------------------------------------------------------


@pytest.fixture
def ops_client(client, staff):
    login_ops(client, staff)
    return client


def test_the_admin_shows_the_credential_but_never_its_secret(ops_client):
    credential = link()
    credential.warning = "This key can also trade; a read-only key is enough."
    credential.save(update_fields=["warning"])
    token = raw_sealed_secret(credential)
    changelist = reverse("admin:accounts_linkedcredential_changelist")
    pages = [
        ops_client.get(changelist),
        ops_client.get(changelist, {"q": credential.account.owner.email}),
        ops_client.get(changelist, {"q": credential.account.public_id}),
        ops_client.get(reverse("admin:accounts_linkedcredential_change", args=[credential.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        assertContains(page, credential.account.public_id)
        assertContains(page, "…608c")
        assertContains(page, "a read-only key is enough")
        assertNotContains(page, CANARY)
        assertNotContains(page, token)
        assertNotContains(page, "sealed_secret")
        assertNotContains(page, KALSHI_KEY_ID)
    assertNotContains(ops_client.get(changelist, {"q": "nobody@example.test"}), "…608c")


def test_the_admin_cannot_add_change_or_delete(ops_client):
    credential = link()
    assert ops_client.get(reverse("admin:accounts_linkedcredential_add")).status_code == 403
    delete = reverse("admin:accounts_linkedcredential_delete", args=[credential.pk])
    assert ops_client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:accounts_linkedcredential_change", args=[credential.pk])
    response = ops_client.post(change, {"status": "unlinked", "scopes": "read,write"})
    assert response.status_code == 403
    credential.refresh_from_db()
    assert credential.status == "active" and credential.scopes == "read"


# --- System checks -----------------------------------------------------------------


def test_the_check_refuses_an_empty_key_set(settings):
    settings.LINKED_CREDENTIAL_KEYS = []
    assert [e.id for e in linked_credential_keys_check()] == ["accounts.E101"]
    assert all(isinstance(e, Error) for e in linked_credential_keys_check())
    with pytest.raises(SystemCheckError, match=r"accounts\.E101"):
        call_command("check", stdout=StringIO(), stderr=StringIO())


def test_the_check_names_a_malformed_key_by_position_only(settings):
    malformed = "not-a-fernet-key-but-a-secret-all-the-same"
    settings.LINKED_CREDENTIAL_KEYS = [NEW_KEY, malformed]
    errors = linked_credential_keys_check()
    assert [(e.id, e.msg) for e in errors] == [
        ("accounts.E102", "LINKED_CREDENTIAL_KEYS[1] is not a Fernet key.")
    ]
    with pytest.raises(SystemCheckError) as caught:
        call_command("check", stdout=StringIO(), stderr=StringIO())
    assert malformed not in str(caught.value)
    with pytest.raises(CredentialKeyError) as sealing:
        secret_seal({"private_key_pem": CANARY})
    assert malformed not in str(sealing.value)


def test_the_check_accepts_a_good_key_set(settings):
    settings.LINKED_CREDENTIAL_KEYS = [NEW_KEY, OLD_KEY]
    assert linked_credential_keys_check() == []
    assert linked_credential_keys_deploy_check() == []


def test_deploy_check_refuses_the_keys_published_in_the_repository(settings):
    local = Path(__file__).resolve().parents[2] / "portal" / "settings" / "local.py"
    local_keys = set(re.findall(r"[A-Za-z0-9_-]{43}=", local.read_text()))
    assert local_keys and local_keys <= PUBLISHED_KEYS
    assert set(settings.LINKED_CREDENTIAL_KEYS) <= PUBLISHED_KEYS
    settings.LINKED_CREDENTIAL_KEYS = [NEW_KEY, *sorted(local_keys)]
    assert [e.id for e in linked_credential_keys_deploy_check()] == ["accounts.E104"]
