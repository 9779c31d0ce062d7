"""A health alert in a real browser: set on the Health alerts page, fired by the margin
engine when a price tick lowers the account's Margin Health below it, and counted in the
navigation's unread notifications.

Headless Chromium against uvicorn and the margin engine (subprocesses) on this test's
committed data; the price moves through the same Redis the engine listens to. With 1,000
USDC and 1,500 USDC of TRUMP-WIN bought at 61¢, Margin Health is about 1.52 at a 60¢ bid
and 1.24 at 50¢ (above the margin call at 1.00: only the alert speaks).
"""

import time
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Notification
from tests.browser.test_dashboard_browser import alice, log_in, quote  # noqa: F401
from trading.models import HealthAlert

pytestmark = pytest.mark.browser

UNREAD = "nav a[href='/notifications/'] .count"


def notification_after_reloads(page, portal: str, title: str, *, seconds: float = 20.0):
    """The notification titled `title`, reloading the notifications page until it shows."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(f"{portal}/notifications/")
        note = page.locator(".notification", has_text=title)
        if note.count() or time.monotonic() > deadline:
            return note
        time.sleep(0.5)


def test_an_alert_set_on_the_page_fires_when_health_drops(portal, page, alice):  # noqa: F811
    Notification.objects.update(read_at=timezone.now())  # the purchase's fill: already read
    log_in(page, portal, "alice@example.test")
    assert page.locator(UNREAD).count() == 0

    page.goto(f"{portal}/notifications/")
    page.click("#health-alerts-link a")
    page.wait_for_url(f"{portal}/alerts/")
    page.select_option("#id_account", alice.public_id)
    page.fill("#id_level", "1.30")
    page.check("input[name=channels][value=email]")
    page.click("#health-alert-form button[type=submit]")
    page.wait_for_url(f"{portal}/alerts/")
    assert "Alert set" in page.locator("main").inner_text()
    alert = HealthAlert.objects.get(account=alice)
    assert (alert.level, alert.armed) == (Decimal("1.30"), True)
    assert page.locator(f"[data-alert='{alert.pk}']").inner_text().count("Watching") == 1

    # Health about 1.52 → 1.24: the engine fires the alert once.
    time.sleep(1.0)  # the engine has loaded the new alert (changed accounts: every 0.25 s)
    quote("0.50", "0.51")
    title = f"Margin Health of {alice.public_id} fell below 1.30"
    note = notification_after_reloads(page, portal, title)
    assert note.count() == 1
    assert int(page.locator(UNREAD).inner_text().split()[0]) >= 1  # unread in the navigation
    assert "Health alert" in note.inner_text()
    assert "fell to 1.2" in note.inner_text()
    told = Notification.objects.get(kind=Notification.Kind.HEALTH_ALERT)
    assert told.user == alice.owner and told.email

    quote("0.49", "0.50")  # lower still: no second alert
    time.sleep(1.5)
    assert Notification.objects.filter(kind=Notification.Kind.HEALTH_ALERT).count() == 1
    page.goto(f"{portal}/alerts/")
    assert "Fired" in page.locator(f"[data-alert='{alert.pk}']").inner_text()
