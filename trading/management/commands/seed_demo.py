"""`manage.py seed_demo`: load the demo data (safe to run again)."""

from django.core.management.base import BaseCommand

from trading.demo import demo_seed


class Command(BaseCommand):
    help = "Create demo users, accounts, markets and perps (idempotent)."

    def handle(self, *args, **options):
        demo_seed()
        self.stdout.write("Demo data is in place.")
