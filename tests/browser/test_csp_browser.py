"""The Content-Security-Policy in a real browser: the portal's pages, the dashboard's
live socket, the API docs (Swagger UI) and the ops console all work under it, and the
browser reports no violation (Debian's Chromium through Playwright)."""

import pytest
from django_celery_beat.models import CrontabSchedule

from tests.browser.ops_helpers import ops_sign_in
from tests.browser.test_dashboard_browser import alice, log_in  # noqa: F401 (fixture)
from tests.factories import StaffFactory

pytestmark = pytest.mark.browser

# Runs before any page script and is not itself subject to the page's policy.
LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def watched(page):
    """The page, with every CSP violation it reports (events and console) collected."""
    reports: list[str] = []
    page.add_init_script(LISTEN)
    page.on(
        "console",
        lambda message: (
            reports.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.csp_reports = reports
    return page


def violations(page) -> list[str]:
    return page.csp_reports + page.evaluate("window.__violations || []")


def test_the_dashboard_and_its_live_socket_work_under_the_policy(portal, watched, alice):  # noqa: F811
    response = watched.goto(f"{portal}/login/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    log_in(watched, portal, alice.owner.email)  # waits for the socket to be open
    watched.wait_for_selector("#account-summary [data-field=adjusted_equity]")
    watched.goto(f"{portal}/accounts/")
    watched.goto(f"{portal}/deposits/")
    assert violations(watched) == []


def test_the_api_docs_work_under_the_policy(portal, watched):
    response = watched.goto(f"{portal}/v1/docs/")
    assert "content-security-policy" in response.headers
    watched.wait_for_selector(".swagger-ui .opblock", state="attached")
    assert watched.locator(".swagger-ui .opblock").count() > 10
    assert watched.locator(".swagger-ui .info .title").inner_text().startswith("Prime Portal API")
    assert violations(watched) == []


def test_the_ops_console_works_under_the_policy(portal, watched):
    ops_sign_in(watched, portal, StaffFactory(), "/admin/")
    watched.goto(f"{portal}/admin/accounts/apikey/add/")
    watched.wait_for_selector("form")
    watched.goto(f"{portal}/admin/accounts/user/")
    watched.wait_for_selector("#result_list")
    assert violations(watched) == []


def test_the_periodic_task_form_reads_its_crontab_under_the_policy(portal, watched):
    """django_celery_beat's form shows the chosen crontab in words with an inline script;
    ours does it from a static file (templates/admin/djcelery/)."""
    crontab = CrontabSchedule.objects.create(minute="0", hour="4")
    ops_sign_in(watched, portal, StaffFactory(is_superuser=True), "/admin/")
    watched.goto(f"{portal}/admin/django_celery_beat/periodictask/add/")
    help_text = watched.locator(".field-crontab .help")
    help_text.wait_for()
    assert "Translation" not in help_text.inner_text()
    watched.select_option("#id_crontab", str(crontab.pk))
    assert "Translation: At 04:00" in help_text.inner_text()
    assert violations(watched) == []
