"""`manage.py run_fake_venues`: local fake Kalshi and Polymarket (Procfile `venues`)."""

import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.processes import stop_on_signals
from trading.demo import demo_linked_accounts
from trading.venues.fakes import kalshi, polymarket


class Command(BaseCommand):
    help = (
        "Serve a fake Kalshi and a fake Polymarket on loopback (FAKE_KALSHI_PORT, "
        "FAKE_POLYMARKET_PORT), seeded with demo markets and positions, and link the demo "
        "user's accounts to them. Does nothing (but wait) when FAKE_VENUES is off."
    )

    def handle(self, *args, **options):
        stopped = threading.Event()
        with stop_on_signals(stopped.set):
            if not settings.FAKE_VENUES:
                self.stdout.write("venues: FAKE_VENUES is off; linked accounts use the real hosts")
                stopped.wait()
                return
            with (
                kalshi.FakeKalshi(port=settings.FAKE_KALSHI_PORT) as fake_kalshi,
                polymarket.FakePolymarket(port=settings.FAKE_POLYMARKET_PORT) as fake_polymarket,
            ):
                kalshi_seed = kalshi.seed_demo(fake_kalshi, scopes=("read",))
                polymarket_seed = polymarket.seed_demo(fake_polymarket)
                self.stdout.write(
                    f"venues: fake Kalshi {fake_kalshi.base_url}, fake Polymarket "
                    f"{fake_polymarket.base_url}"
                )
                linked = demo_linked_accounts(
                    kalshi_key_id=kalshi_seed.key_id,
                    kalshi_private_key_pem=kalshi_seed.private_key_pem,
                    polymarket_wallet=polymarket_seed.wallet,
                )
                self.stdout.write(f"venues: demo linked accounts {', '.join(linked)}")
                stopped.wait()
