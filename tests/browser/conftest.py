"""Browser tests: Debian's headless Chromium driven by Playwright, against the real
ASGI server (uvicorn) and margin engine in subprocesses, on the test database.

Screenshots of every browser test land in test-artifacts/ (kept by CI as artifacts).
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.live_server import asgi_server

CHROMIUM = "/usr/bin/chromium"
# As the machine's own probe runs it: no sandbox (root), and no background traffic to
# hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"

# Playwright's sync API runs an event loop in this thread; the test's own database
# calls (fixtures, assertions) are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def browser():
    # Module-scoped: Playwright's sync API runs an event loop in this thread until it
    # stops, and later tests (async_to_sync) must not find one running.
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def portal(transactional_db) -> Iterator[str]:
    """The site (web + margin engine) on this test's committed data; its base URL."""
    with asgi_server(margin_engine=True) as base:
        yield base


@pytest.fixture
def page(browser, request):
    """A fresh browser context and page; a full-page screenshot is saved after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
