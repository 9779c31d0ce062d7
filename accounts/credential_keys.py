"""The key set that seals linked exchange credentials at rest (SPEC §1).

Users' own venue credentials (a Kalshi RSA private key, Polymarket CLOB
secrets) are stored only as Fernet tokens made with a key set of their own,
`settings.LINKED_CREDENTIAL_KEYS`: a list of Fernet keys, newest first (the
environment variable of the same name, comma-separated). Sealing always uses
the newest key; opening tries every key, so a new key can be put in front
without breaking the rows sealed with an older one. `SECRET_KEY` is not used:
rotating it (sessions, signed links) must not lose the credentials, and
leaking it must not expose them.

Rotation: see `manage.py linked_credentials_rotate --help`.

Nothing in this module logs, and no message it raises carries a token, a
key or a plaintext.
"""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

SETTING = "LINKED_CREDENTIAL_KEYS"

# Keys written in this repository (portal/settings/local.py and test.py). Anyone
# can read them, so `check --deploy` refuses them: production brings its own.
PUBLISHED_KEYS = frozenset(
    {
        "oRAsd2PtbXPcVDG4AuUU2ZegPd4yjZ_4JlARZj6ucYU=",  # local.py, development only
        "yujalpDL2RbTJ7SInjFYmiBZKIMnaXDJ95jxwgYt6X0=",  # test.py
        "QCOkrOJbFl10yPFfkkcfsCkb8HGKleMiU3hmYPQ1DlU=",  # test.py
    }
)


class CredentialKeyError(Exception):
    """The key set cannot seal or open a credential: no keys configured, a
    malformed key, or a token that none of the keys opens (sealed with a key
    since dropped, or damaged). Messages never carry the token, a key or the
    plaintext."""


def configured_keys() -> tuple[str, ...]:
    """The keys of `LINKED_CREDENTIAL_KEYS`, newest first, blanks dropped."""
    keys = getattr(settings, SETTING, None) or ()
    if isinstance(keys, str):
        keys = keys.split(",")
    return tuple(key.strip() for key in keys if key and key.strip())


@lru_cache(maxsize=8)
def _fernets(keys: tuple[str, ...]) -> tuple[Fernet, ...]:
    fernets = []
    for position, key in enumerate(keys):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            # Fernet's own message names no key; ours says which entry, not its value.
            raise CredentialKeyError(
                f"{SETTING}[{position}] is not a Fernet key (32 url-safe base64-encoded bytes)."
            ) from None
    return tuple(fernets)


def _key_set() -> tuple[MultiFernet, Fernet]:
    """(all keys, the newest key) for the current settings.

    Raises CredentialKeyError when the setting is empty or a key is malformed.
    """
    keys = configured_keys()
    if not keys:
        raise CredentialKeyError(f"{SETTING} is empty: linked credentials cannot be sealed.")
    fernets = _fernets(keys)
    return MultiFernet(list(fernets)), fernets[0]


def secret_seal(payload: dict[str, str]) -> str:
    """Encrypt `payload` (a JSON object of strings) with the newest key.

    Returns an ASCII Fernet token; a new one on every call (random IV), so
    equal payloads do not produce equal tokens. Raises TypeError when the
    payload is not a dict of strings, CredentialKeyError when the key set is
    empty or malformed.
    """
    if not isinstance(payload, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in payload.items()
    ):
        raise TypeError("A sealed credential is a dict of strings.")
    _, newest = _key_set()
    plaintext = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return newest.encrypt(plaintext).decode("ascii")


def secret_open(token: str) -> dict[str, str]:
    """Decrypt a token made by `secret_seal` with any key of the set.

    Raises CredentialKeyError when the key set is empty or malformed, or when
    no key opens the token (or it does not hold a JSON object of strings).
    """
    key_set, _ = _key_set()
    try:
        plaintext = key_set.decrypt(_token_bytes(token))
    except InvalidToken:
        raise CredentialKeyError(
            f"No key in {SETTING} opens this sealed credential "
            "(sealed with a key since removed, or damaged)."
        ) from None
    try:
        payload = json.loads(plaintext)
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in payload.items()
    ):
        raise CredentialKeyError("The sealed credential does not hold a JSON object of strings.")
    return payload


def secret_reseal(token: str) -> str:
    """Re-encrypt a token with the newest key (MultiFernet.rotate).

    The payload and the token's original timestamp are kept. Raises
    CredentialKeyError when the key set is empty or malformed, or no key
    opens the token.
    """
    key_set, _ = _key_set()
    try:
        return key_set.rotate(_token_bytes(token)).decode("ascii")
    except InvalidToken:
        raise CredentialKeyError(
            f"No key in {SETTING} opens this sealed credential "
            "(sealed with a key since removed, or damaged)."
        ) from None


def secret_is_current(token: str) -> bool:
    """Whether the newest key alone opens the token (no re-seal needed).

    Raises CredentialKeyError when the key set is empty or malformed.
    """
    _, newest = _key_set()
    try:
        newest.decrypt(_token_bytes(token))
    except InvalidToken:
        return False
    return True


def _token_bytes(token: str) -> bytes:
    if isinstance(token, bytes):
        return token
    if not isinstance(token, str):
        raise TypeError("A sealed credential is a string.")
    try:
        return token.encode("ascii")
    except UnicodeEncodeError:
        # Fernet tokens are ASCII; anything else is damage, reported like a wrong key.
        return b"!"


@register(Tags.security)
def linked_credential_keys_check(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Errors when LINKED_CREDENTIAL_KEYS is empty or holds a malformed key.

    Messages name the position of a bad key, never its value.
    """
    keys = configured_keys()
    if not keys:
        return [
            Error(
                f"{SETTING} is empty: linked exchange credentials cannot be sealed or opened.",
                hint="Set the LINKED_CREDENTIAL_KEYS environment variable to one or more "
                "Fernet keys, newest first, comma-separated (make one with: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())').",
                id="accounts.E101",
            )
        ]
    errors: list[CheckMessage] = []
    for position, key in enumerate(keys):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            errors.append(
                Error(
                    f"{SETTING}[{position}] is not a Fernet key.",
                    hint="A Fernet key is 32 url-safe base64-encoded bytes "
                    "(Fernet.generate_key()).",
                    id="accounts.E102",
                )
            )
    if len(set(keys)) != len(keys):
        errors.append(
            Error(
                f"{SETTING} lists the same key twice.",
                hint="List each key once, newest first.",
                id="accounts.E103",
            )
        )
    return errors


@register(Tags.security, deploy=True)
def linked_credential_keys_deploy_check(app_configs=None, **kwargs) -> list[CheckMessage]:
    """`check --deploy`: refuse the development and test keys written in this repository."""
    published = [
        position for position, key in enumerate(configured_keys()) if key in PUBLISHED_KEYS
    ]
    return [
        Error(
            f"{SETTING}[{position}] is a development or test key published in the repository.",
            hint="Generate production keys of your own; never reuse the keys in portal/settings.",
            id="accounts.E104",
        )
        for position in published
    ]
