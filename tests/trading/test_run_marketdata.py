"""`manage.py run_marketdata`: the feed process (and the broker's Polymarket heartbeats)."""

import os
import signal
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from eth_account import Account

from portal.redis import Leadership
from trading.marketdata import store
from trading.models import PriceTick
from trading.venues.fakes.polymarket import FakePolymarket

MANAGE = Path(settings.BASE_DIR) / "manage.py"
BROKER_KEY = "0x" + "4c" * 32  # a test private key: it only ever signs for the fake


def test_runs_the_requested_ticks(markets, quote_store):
    out = StringIO()
    before = signal.getsignal(signal.SIGTERM)
    call_command("run_marketdata", "--iterations=3", "--interval=0.01", "--seed=5", stdout=out)
    assert set(store.quotes_all()) == {
        "TRUMP-WIN@kalshi",
        "TRUMP-WIN@polymarket",
        "BTC-PERP@leviathan",
    }
    # Each listing's first tick starts its history.
    assert PriceTick.objects.values("listing").distinct().count() == 3
    assert "stopped after 3 ticks" in out.getvalue()
    assert "heartbeats" not in out.getvalue()  # Polymarket routes to the simulated venue
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("argument", ["--interval=0", "--seed=-1", "--iterations=-2"])
def test_bad_arguments_are_refused(argument):
    with pytest.raises(CommandError):
        call_command("run_marketdata", argument)


def test_sigterm_stops_the_feed_cleanly(db):
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "PYTHONUNBUFFERED": "1",
    }
    feed = subprocess.Popen(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, str(MANAGE), "run_marketdata", "--interval=0.05"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert feed.stdout.readline().startswith("marketdata: seed")
        feed.send_signal(signal.SIGTERM)
        out, _ = feed.communicate(timeout=20)
    finally:
        feed.kill()
    assert feed.returncode == 0
    assert "marketdata: stopped after" in out


def test_a_second_feed_stands_by_while_one_runs_then_takes_over(markets, quote_store, settings):
    settings.LEADER_LOCK_TTL_SECONDS = 0.6
    holding = threading.Event()
    released_at: list[float] = []

    def first_feed() -> None:
        with Leadership("market-data feed", ttl=0.6):
            holding.set()
            time.sleep(1.5)
            released_at.append(time.time())

    thread = threading.Thread(target=first_feed)
    thread.start()
    assert holding.wait(5)
    out = StringIO()
    call_command("run_marketdata", "--iterations=2", "--interval=0.01", stdout=out)
    returned_at = time.time()
    thread.join()
    assert returned_at > released_at[0]  # its two ticks had to wait for the role
    assert "stopped after 2 ticks" in out.getvalue()
    quotes = store.quotes_all()
    assert len(quotes) == 3
    # It published nothing while the first feed held the role.
    assert min(quote.ts.timestamp() for quote in quotes.values()) >= released_at[0]


@pytest.fixture
def polymarket_broker(settings):
    """A fake Polymarket holding the broker's CLOB key, routed to the real adapter."""
    with FakePolymarket() as fake:
        registered = fake.register_credentials(address=Account.from_key(BROKER_KEY).address)
        settings.VENUE_ADAPTERS = {**settings.VENUE_ADAPTERS, "polymarket": "polymarket"}
        settings.POLYMARKET_DATA_URL = fake.data_url
        settings.POLYMARKET_GAMMA_URL = fake.gamma_url
        settings.POLYMARKET_CLOB_URL = fake.clob_url
        settings.POLYMARKET_PRIVATE_KEY = BROKER_KEY
        settings.POLYMARKET_CLOB_API_KEY = registered.api_key
        settings.POLYMARKET_CLOB_API_SECRET = registered.secret
        settings.POLYMARKET_CLOB_API_PASSPHRASE = registered.passphrase
        settings.POLYMARKET_HEARTBEAT_SECONDS = 0.02
        yield fake, registered


def test_the_feed_sends_the_brokers_polymarket_heartbeats(markets, quote_store, polymarket_broker):
    fake, registered = polymarket_broker
    out = StringIO()

    call_command("run_marketdata", "--iterations=15", "--interval=0.02", stdout=out)

    sent = fake.requests_to("clob", "/heartbeats", method="POST")
    assert len(sent) >= 3
    assert fake.last_heartbeat(registered.address) is not None  # L2-verified by the fake
    assert "Polymarket heartbeats every 0.02s" in out.getvalue()
    assert f"{len(sent)} Polymarket heartbeats acknowledged" in out.getvalue()
    assert "stopped after 15 ticks" in out.getvalue()
    count = len(sent)
    time.sleep(0.1)
    assert len(fake.requests_to("clob", "/heartbeats")) == count  # they stop with the feed


def test_a_standing_by_feed_sends_no_heartbeats(markets, quote_store, polymarket_broker, settings):
    fake, _ = polymarket_broker
    settings.LEADER_LOCK_TTL_SECONDS = 0.6
    holding = threading.Event()
    releasing_at: list[float] = []

    def first_feed() -> None:
        with Leadership("market-data feed", ttl=0.6):
            holding.set()
            time.sleep(1.0)
            releasing_at.append(time.monotonic())  # still held at this instant

    thread = threading.Thread(target=first_feed)
    thread.start()
    assert holding.wait(5)
    call_command("run_marketdata", "--iterations=10", "--interval=0.02", stdout=StringIO())
    thread.join()

    sent = fake.requests_to("clob", "/heartbeats", method="POST")
    assert sent  # once it held the role
    assert min(request.at for request in sent) > releasing_at[0]
