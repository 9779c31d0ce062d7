"""Every portal page in headless Chromium, at 1280 px and at 375 px (a phone):

- no horizontal scroll (`document.documentElement.scrollWidth <= window.innerWidth`);
- no console error (a CSP violation included) and no failed request or HTTP error
  response while the page loads;
- axe-core (tests/browser/package.json, installed by `npm ci` there) run in the page:
  no serious or critical violation;
- a full-page screenshot per page and width: test-artifacts/pages/<name>-<width>.png;
- and in dark mode (`prefers-color-scheme: dark`) at 1280 px, axe's colour-contrast
  rule alone, with a screenshot test-artifacts/pages/<name>-1280-dark.png.

One server and one set of data for the module (a customer with a margin account that
holds positions, a deposit, a withdrawal, a report, notifications, an API key and a
linked Kalshi account), one signed-in browser context reused by every page.
"""

import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from accounts.models import Deposit
from accounts.payments.simulated import SimulatedPaymentProvider
from accounts.services.api_keys import api_key_issue
from accounts.services.deposits import deposit_create, payment_webhook_handle
from accounts.services.withdrawals import withdrawal_request
from tests.browser.conftest import ARTIFACTS
from tests.factories import DEFAULT_PASSWORD, StaffFactory, UserFactory, notifications_create
from tests.live_server import asgi_server
from tests.web.dashboard_fixtures import BTC, FED, TRUMP, buy, markets_open, trader
from trading.models import Report, RiskPolicy
from trading.services.linked_accounts import linked_account_link, linked_account_sync
from trading.services.reports import report_generate, report_request
from trading.venues.fakes.kalshi import FakeKalshi, seed_demo

# django_db: so that pytest-django sets the test database up for this module (the data
# itself is committed once by the module's `site` fixture and flushed after the module).
pytestmark = [pytest.mark.browser, pytest.mark.django_db]

HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ARTIFACTS / "pages"
WIDTHS = (1280, 375)
EMAIL = "pages@example.test"


# --- The data: one customer with something on every page ------------------------------------


@dataclass
class Site:
    base: str
    ids: dict[str, str] = field(default_factory=dict)


def _seed() -> dict[str, str]:
    # The quotes are put once and the module runs for minutes: past the default 15 s a
    # contract is stale and its depth (the dashboard ticket's book.json) answers 503.
    # Re-putting them would push live updates that abort the ticket's own fetches.
    policy = RiskPolicy.objects.get_or_create(pk=1)[0]
    policy.price_stale_after_seconds = 3600
    policy.save()
    user = UserFactory(email=EMAIL, full_name="Pat Pages")
    account = trader("5000", owner=user)
    order = buy(account, TRUMP, "1500")
    buy(account, FED, "300")
    buy(account, BTC, "400")
    deposit = deposit_create(
        account=account, amount=Decimal("1250.50"), method=Deposit.Method.BANK_TRANSFER
    )
    deposit.refresh_from_db()
    if deposit.status == Deposit.Status.PENDING:
        body, signature = SimulatedPaymentProvider.build_event(deposit, succeed=True)
        payment_webhook_handle(provider="simulated", body=body, signature_header=signature)
    withdrawal_request(
        account=account, amount=Decimal("100"), destination="Chase ****1234", requested_by=user
    )
    report = report_request(
        account=account, type="transactions", date_from=date(2020, 1, 1), date_to=date.today()
    )
    report_generate(report_id=report.pk)
    assert Report.objects.get(pk=report.pk).status == Report.Status.READY
    notifications_create(user, account)
    api_key_issue(
        owner=user,
        accounts=[account],
        scopes=["intelligence", "read"],
        name="Quant desk",
        actor=StaffFactory(),
        ip_allowlist=["10.0.0.0/8"],
    )
    with FakeKalshi() as fake:
        urls = {"production": fake.base_url, "demo": fake.base_url}
        with override_settings(KALSHI_BASE_URLS=urls):
            seeded = seed_demo(fake, key_id=f"key-{uuid.uuid4().hex[:12]}")
            credential = linked_account_link(
                user=user,
                venue="kalshi",
                environment="demo",
                key_id=seeded.key_id,
                private_key_pem=seeded.private_key_pem,
                name="Kalshi main",
            )
            assert linked_account_sync(credential_id=credential.pk).ok
    return {
        "account": account.public_id,
        "tracked": credential.account.public_id,
        "deposit": deposit.public_id,
        "order": order.public_id,
    }


def _axe_installed() -> Path:
    """axe-core from tests/browser/package-lock.json (`npm ci` when it is missing)."""
    lockfile = HERE / "package-lock.json"
    installed = HERE / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lockfile.stat().st_mtime:
        if shutil.which("npm") is None:
            pytest.fail("npm is needed to install axe-core (tests/browser/package.json).")
        out = subprocess.run(  # our tool, our lockfile
            ["npm", "ci", "--no-audit", "--no-fund"],  # noqa: S607
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert out.returncode == 0, out.stdout + out.stderr
    return AXE


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker) -> Iterator[Site]:
    """The portal (web + margin engine) on data committed for this module; flushed after."""
    _axe_installed()
    with django_db_blocker.unblock():
        markets = markets_open()
        try:
            next(markets)
            ids = _seed()
            with asgi_server(margin_engine=True) as base:
                yield Site(base=base, ids=ids)
        finally:
            next(markets, None)
            call_command("flush", interactive=False, verbosity=0)
            # This module's connection (opened while Playwright runs, in a context of its
            # own) would otherwise keep the test database from being dropped at the end.
            connection.close()


# --- The pages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    url_name: str | None  # None: a path no page has (the 404 page)
    args: Callable[[dict[str, str]], list[str]] = lambda ids: []
    account: str = "account"  # the current account ("account" or "tracked")
    signed_in: bool = True
    status: int = 200
    ready: str = ""  # a selector that is there once the page has finished loading


PAGES = [
    Page("dashboard", "dashboard", ready="#live-status[data-socket=open]"),
    Page(
        "dashboard-tracked",
        "dashboard",
        account="tracked",
        ready="#live-status[data-socket=open]",
    ),
    Page("accounts", "account_list"),
    Page("deposits", "deposit_list"),
    Page("deposit-detail", "deposit_detail", args=lambda ids: [ids["deposit"]]),
    Page("withdrawals", "withdrawal_list"),
    Page("transactions", "transaction_list"),
    Page("reports", "report_list"),
    Page("notifications", "notification_list"),
    Page("linked", "linked-list"),
    Page("api-keys", "api_key_list"),
    Page("security", "security"),
    Page("orders", "order_list"),
    Page("order-detail", "order_detail", args=lambda ids: [ids["order"]]),
    Page("positions", "position_list"),
    Page("alerts", "health_alerts"),
    Page("not-found", None, status=404),
    # Signed out.
    Page("home", "home", signed_in=False),
    Page("login", "login", signed_in=False),
    Page("password-reset", "password_reset", signed_in=False),
    Page("password-reset-sent", "password_reset_done", signed_in=False),
    Page("not-found-signed-out", None, signed_in=False, status=404),
]
PAGE = {page.name: page for page in PAGES}
NOT_FOUND_PATH = "/no-such-page/"


def page_path(page: Page, ids: dict[str, str]) -> str:
    if page.url_name is None:
        return NOT_FOUND_PATH
    return reverse(page.url_name, args=page.args(ids))


# --- The browser: one signed-in context, one signed-out, reused by every page -------------


class Watch:
    """What went wrong while a page loaded: console errors, failed requests, 4xx/5xx."""

    def __init__(self, page):
        self.problems: list[str] = []
        self.expected: set[str] = set()  # URLs whose error status is the point (the 404)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message):
        # Chromium logs the error status of the page itself ("Failed to load resource"):
        # expected for the 404 page.
        if message.type == "error" and message.location.get("url") not in self.expected:
            self.problems.append(f"console error: {message.text} ({message.location})")

    def _failed(self, request):
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _response(self, response):
        if response.status >= 400 and response.url not in self.expected:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def start(self, expected: str = "") -> None:
        self.problems = []
        self.expected = {expected} if expected else set()


@pytest.fixture(scope="module")
def tabs(browser, site) -> Iterator[dict]:
    """{signed_in: (page, watch)}: one context per state, signed in through the login form."""
    tabs = {}
    contexts = []
    for signed in (True, False):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        if signed:
            page.goto(f"{site.base}/login/")
            page.fill("input[name=email]", EMAIL)
            page.fill("input[name=password]", DEFAULT_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{site.base}/dashboard/")
        tabs[signed] = (page, Watch(page))
    yield tabs
    for context in contexts:
        context.close()


def account_choose(page, site: Site, which: str) -> None:
    """Make `which` the current account through the header's switcher (as a person would)."""
    wanted = site.ids[which]
    if page.locator("#account-switcher").count() == 0:
        page.goto(f"{site.base}/accounts/")
    if page.locator("#account-switcher").input_value() != wanted:
        page.select_option("#account-switcher", wanted)
        with page.expect_navigation():
            page.locator("form.switcher button[type=submit]").click()
        page.wait_for_load_state("networkidle")  # the page it lands on has finished


def axe_run(page, **options) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is.

    The script goes in through the DevTools protocol (page.evaluate), which the page's
    Content-Security-Policy does not govern: no bypass_csp, no inline <script> for the
    CSP to refuse (add_script_tag would add one, and log a CSP violation)."""
    if not page.evaluate("() => !!window.axe"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        "options => axe.run(document, options).then(r => r.violations.map(v => ({"
        "id: v.id, impact: v.impact, help: v.help,"
        "nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(' '),"
        "summary: n.failureSummary}))})))",
        {"resultTypes": ["violations"], **options},
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def described(violations: list[dict]) -> str:
    return json.dumps(violations, indent=1, ensure_ascii=False)


def page_open(tabs, site: Site, page_spec: Page, width: int):
    page, watch = tabs[page_spec.signed_in]
    path = page_path(page_spec, site.ids)
    if page_spec.signed_in:
        account_choose(page, site, page_spec.account)
    page.set_viewport_size({"width": width, "height": 900 if width > 600 else 812})
    url = f"{site.base}{path}"
    watch.start(expected=url if page_spec.status >= 400 else "")
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == page_spec.status, (
        f"{path}: HTTP {response and response.status}"
    )
    if page_spec.ready:
        page.wait_for_selector(page_spec.ready)
    page.wait_for_load_state("networkidle")
    return page, watch


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page_spec", PAGES, ids=[p.name for p in PAGES])
def test_every_page_fits_loads_cleanly_and_passes_axe(tabs, site, page_spec, width):
    page, watch = page_open(tabs, site, page_spec, width)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{page_spec.name}-{width}.png"), full_page=True)

    overflow = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,"
        "wide: [...document.querySelectorAll('body *')].filter(e => {"
        "const r = e.getBoundingClientRect(); return r.right > window.innerWidth + 1"
        " && getComputedStyle(e).position !== 'fixed'; }).slice(0, 8).map(e =>"
        " e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +"
        " (e.className && typeof e.className === 'string' ? '.' + e.className.trim()"
        ".split(/\\s+/).join('.') : '') + ' ' + Math.round(e.getBoundingClientRect().right))})"
    )
    violations = axe_run(page)

    problems = list(watch.problems)
    if overflow["scroll"] > overflow["inner"]:
        problems.append(f"horizontal scroll: {overflow}")
    if violations:
        problems.append("axe: " + described(violations))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page_spec", PAGES, ids=[p.name for p in PAGES])
def test_every_page_in_dark_mode_keeps_aa_contrast(tabs, site, page_spec):
    page, _ = tabs[page_spec.signed_in]
    page.emulate_media(color_scheme="dark")
    try:
        page, _ = page_open(tabs, site, page_spec, 1280)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{page_spec.name}-1280-dark.png"), full_page=True)
        violations = axe_run(page, runOnly={"type": "rule", "values": ["color-contrast"]})
    finally:
        page.emulate_media(color_scheme="light")
    assert not violations, described(violations)


# --- The phone's menu button and the tables' scroll cue ------------------------------------


def test_the_menu_button_folds_the_navigation_on_a_phone(tabs, site):
    page, _ = page_open(tabs, site, PAGE["accounts"], 375)
    button = page.get_by_role("button", name="Menu")
    links = page.locator("#mainnav-list")
    assert button.get_attribute("aria-expanded") == "false" and links.is_hidden()
    button.click()
    assert button.get_attribute("aria-expanded") == "true" and links.is_visible()
    assert page.get_by_role("link", name="Transactions").is_visible()
    assert not axe_run(page), "axe with the menu open"
    page.keyboard.press("Tab")  # into the list; Escape folds it and gives focus back
    page.keyboard.press("Escape")
    assert button.get_attribute("aria-expanded") == "false" and links.is_hidden()
    assert page.evaluate("document.activeElement.hasAttribute('data-menu-button')")
    page.set_viewport_size({"width": 1280, "height": 900})  # wide: no button, the list shows
    assert button.is_hidden() and links.is_visible()


def test_without_javascript_the_navigation_stays_a_visible_list(browser, site, tabs):
    context = browser.new_context(viewport={"width": 375, "height": 812}, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{site.base}/login/")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", DEFAULT_PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{site.base}{reverse('account_list')}")
        assert page.locator("[data-menu-button]").is_hidden()
        assert page.get_by_role("link", name="Transactions").is_visible()
    finally:
        context.close()


def test_a_wide_table_on_a_phone_scrolls_in_its_box_with_a_cue(tabs, site):
    # A table in the template's own box (transactions): the cue shows while it scrolls.
    page, _ = page_open(tabs, site, PAGE["transactions"], 375)
    wrap = page.locator("#main .table-wrap").first
    hint = page.locator("[data-table-hint]").first
    assert hint.is_visible() and hint.inner_text().startswith("Scroll sideways")
    wrap.focus()
    page.keyboard.press("ArrowRight")  # the keyboard scrolls it too
    page.wait_for_function("() => document.querySelector('#main .table-wrap').scrollLeft > 0")
    page.set_viewport_size({"width": 1280, "height": 900})  # room for every column: no cue
    page.wait_for_function("() => document.querySelector('[data-table-hint]').hidden")

    # A table the script wrapped itself (the dashboard's positions): it becomes a
    # focusable region named after its card while it scrolls, and stops being one after.
    page, _ = page_open(tabs, site, PAGE["dashboard"], 375)
    wrap = page.locator("#main .table-wrap--auto").first
    assert wrap.get_attribute("role") == "region" and wrap.get_attribute("tabindex") == "0"
    assert wrap.get_attribute("aria-label").endswith("(scrolls sideways)")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.wait_for_function(
        "() => !document.querySelector('#main .table-wrap--auto').hasAttribute('tabindex')"
    )
    assert wrap.get_attribute("role") is None
