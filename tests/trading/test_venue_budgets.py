"""Venue request budgets per credential (issue 16): Kalshi keys' tiers and costs read
as they are linked and daily, the shared buckets shown to ops, a 429 on the record."""

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from tests.accounts.test_admin import login_ops
from tests.trading.test_linked_accounts import fake, link, owner, seeded  # noqa: F401 (fixtures)
from trading.services.linked_accounts import credential_tracking_client
from trading.services.venue_budgets import venue_budgets, venue_budgets_refresh
from trading.venues import kalshi
from trading.venues.fakes.kalshi import rsa_key_pair

pytestmark = pytest.mark.django_db


def test_linking_a_kalshi_key_reads_its_tier_and_costs(fake, owner, seeded):  # noqa: F811
    fake.limits_set(read=(1000, 1000), write=(1000, 2000), tier="premier", enforce=False)

    link(owner, seeded)

    budget = kalshi.stored_budget(kalshi.budget_key_for(seeded.key_id))
    assert budget.tier == "premier" and budget.read == (1000.0, 1000.0)
    assert budget.cost("GET", "/portfolio/orders/o-1") == 2


def test_the_daily_refresh_rereads_the_broker_and_every_linked_key(
    fake,  # noqa: F811
    owner,  # noqa: F811
    seeded,  # noqa: F811
    settings,
):
    link(owner, seeded)
    broker_key, (broker_pem, public) = "broker-key", rsa_key_pair()
    fake.key_add(broker_key, public, scopes=("read", "write"), account="broker")
    settings.VENUE_ADAPTERS = {**settings.VENUE_ADAPTERS, "kalshi": "kalshi"}
    settings.KALSHI_BROKER_KEY_ID, settings.KALSHI_BROKER_PRIVATE_KEY_PEM = broker_key, broker_pem
    settings.KALSHI_BROKER_ENVIRONMENT = "demo"
    fake.limits_set(read=(600, 600), write=(600, 600), tier="expert", enforce=False)

    assert venue_budgets_refresh() == 2
    assert venue_budgets_refresh() == 2  # safe to run twice

    for key_id in (broker_key, seeded.key_id):
        assert kalshi.stored_budget(kalshi.budget_key_for(key_id)).tier == "expert"


def test_ops_see_each_credentials_buckets_and_its_last_429(
    fake,  # noqa: F811
    owner,  # noqa: F811
    seeded,  # noqa: F811
    client,
    staff,
):
    credential = link(owner, seeded)
    fake.fail_next(429, path="/portfolio/balance")
    tracker = credential_tracking_client(credential)
    tracker.client.backoff_seconds = 0.01
    tracker.client.balance()

    rows = [row for row in venue_budgets() if row.credential.startswith("linked")]
    (read,) = [row for row in rows if row.bucket == "read"]
    assert credential.account.public_id in read.credential
    assert seeded.key_id not in read.credential  # the masked identity only
    assert read.count_429 == 1 and read.last_429 is not None and read.capacity == 400

    login_ops(client, staff)
    changelist = client.get(reverse("admin:trading_venue_changelist"))
    assertContains(changelist, reverse("admin:trading_venue_budgets"))
    page = client.get(reverse("admin:trading_venue_budgets"))
    assertContains(page, credential.account.public_id)
    assertContains(page, "Last 429")
    assertNotContains(page, seeded.key_id)
