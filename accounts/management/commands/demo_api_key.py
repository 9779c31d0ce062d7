"""`manage.py demo_api_key [EMAIL]`: issue a demo partner API key and print it (DEBUG only).

For local development (`make api-key`): the README's REST and stream examples
need a key, and keys are shown once. Each run revokes the previous demo key
of that user and issues a new one (all scopes, every account of the user),
through the same service and audit trail as ops use in the admin.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiKey, User
from accounts.services.api_keys import api_key_issue, api_key_revoke
from portal.demo_logins import DEMO_OPS_EMAIL

DEMO_KEY_NAME = "demo (make api-key)"


class Command(BaseCommand):
    help = "Issue (and print) a demo API key for a demo user (DEBUG only)."

    def add_arguments(self, parser):
        parser.add_argument("email", nargs="?", default="alice@prime.local")

    def handle(self, *args, email: str, **options):
        if not settings.DEBUG:
            raise CommandError("demo_api_key is for local development: it runs only with DEBUG on.")
        owner = User.objects.filter(email__iexact=email).first()
        ops = User.objects.filter(email__iexact=DEMO_OPS_EMAIL, is_staff=True).first()
        if owner is None or ops is None:
            raise CommandError("Load the demo data first (make run).")
        accounts = list(owner.accounts.all())
        if not accounts:
            raise CommandError(f"{email} has no accounts.")
        for old in ApiKey.objects.filter(owner=owner, name=DEMO_KEY_NAME, revoked_at=None):
            api_key_revoke(api_key=old, actor=ops)
        issued = api_key_issue(
            owner=owner,
            accounts=accounts,
            scopes=ApiKey.Scope.values,
            name=DEMO_KEY_NAME,
            actor=ops,
            environment=ApiKey.Environment.TEST,
        )
        self.stdout.write(issued.key)
