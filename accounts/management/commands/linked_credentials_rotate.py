"""`manage.py linked_credentials_rotate`: re-seal linked credentials with the newest key.

Rotating the key that seals users' exchange credentials (LINKED_CREDENTIAL_KEYS):

1. Generate a key: python -c 'from cryptography.fernet import Fernet;
   print(Fernet.generate_key().decode())'.
2. Put it at the FRONT of LINKED_CREDENTIAL_KEYS, keeping the old keys after
   it (newest first), and deploy every process (web, worker, beat). New and
   changed credentials are now sealed with it; old rows still open.
3. Run this command. It re-seals every row not yet on the newest key, in
   batches, each row under its lock; run it again at any time: rows already
   on the newest key are left alone.
4. Once it reports no row left on an old key (and exits 0), drop the old key
   from LINKED_CREDENTIAL_KEYS and deploy again.

A row no configured key opens is reported by id and left untouched, and the
command exits non-zero: do not drop a key while it fails.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.credential_keys import (
    CredentialKeyError,
    secret_is_current,
    secret_reseal,
)
from accounts.models import LinkedCredential


class Command(BaseCommand):
    help = (
        "Re-seal every linked exchange credential with the newest LINKED_CREDENTIAL_KEYS key. "
        "Rotation: put a new key at the front of LINKED_CREDENTIAL_KEYS (keep the old ones "
        "after it), deploy, run this command until it exits 0, then drop the old key and "
        "deploy again. Idempotent; rows no key opens are listed by id and left untouched "
        "(exit status 1)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Rows locked and re-sealed per transaction (default 500).",
        )

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            resealed, current, unopenable = _reseal_all(batch_size=batch_size)
        except CredentialKeyError as error:  # empty or malformed key set
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Re-sealed {resealed} linked credential(s) with the newest key; "
            f"{current} already on it."
        )
        if unopenable:
            ids = ", ".join(str(pk) for pk in unopenable)
            raise CommandError(
                f"{len(unopenable)} linked credential(s) open with no configured key and were "
                f"left untouched: id {ids}. Keep the old keys until these are resolved."
            )


def _reseal_all(*, batch_size: int) -> tuple[int, int, list[int]]:
    """(re-sealed, already current, ids no key opens), walking rows by id.

    Each batch is one transaction holding its rows' locks (select_for_update),
    so a credential the user replaces meanwhile is never overwritten with a
    re-seal of its old value. Raises CredentialKeyError for an empty or
    malformed key set, before any row is written.
    """
    resealed = current = 0
    unopenable: list[int] = []
    last_id = 0
    while True:
        with transaction.atomic():
            batch = list(
                LinkedCredential.objects.select_for_update()
                .filter(pk__gt=last_id)
                .exclude(sealed_secret="")
                .order_by("pk")
                .only("pk", "sealed_secret")[:batch_size]
            )
            if not batch:
                return resealed, current, unopenable
            changed = []
            for row in batch:
                if secret_is_current(row.sealed_secret):
                    current += 1
                    continue
                try:
                    row.sealed_secret = secret_reseal(row.sealed_secret)
                except CredentialKeyError:
                    unopenable.append(row.pk)
                    continue
                changed.append(row)
            LinkedCredential.objects.bulk_update(changed, ["sealed_secret"])
            resealed += len(changed)
            last_id = batch[-1].pk
