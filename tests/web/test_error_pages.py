"""The portal's own 404 and 500 pages, with DEBUG off (production, tests) and on
(`make run`): never Django's technical 404 listing every URL; JSON under /v1."""

import pytest
from django.http import HttpRequest
from django.test import Client, override_settings
from django.urls import include, path

from tests.web.conftest import html

pytestmark = pytest.mark.django_db


def broken_view(request: HttpRequest):
    raise RuntimeError("boom")


# A URLconf with a view that fails (the 500 tests), the portal's own pages beside it.
urlpatterns = [
    path("broken/", broken_view),
    path("v1/broken/", broken_view),
    path("", include("portal.urls")),
]
handler404 = "portal.views.not_found"
handler500 = "portal.views.server_error"


def assert_friendly_404(response, *, debug: bool) -> str:
    assert response.status_code == 404
    page = html(response)
    assert '<h1 id="error-title">Page not found</h1>' in page
    assert "Using the URLconf" not in page and "Django tried these URL patterns" not in page
    assert 'class="skip-link"' in page  # the site's own layout (base.html)
    # django-csp leaves a 404 without its header under DEBUG (for Django's debug page).
    assert ("Content-Security-Policy" in response.headers) is not debug
    return page


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_page_shows_the_portals_404(client, debug):
    with override_settings(DEBUG=debug):
        page = assert_friendly_404(Client().get("/no-such-page/"), debug=debug)
    assert "/no-such-page/" in page
    assert 'href="/login/"' in page  # signed out: where to go


@pytest.mark.parametrize("debug", [False, True])
def test_a_signed_in_404_keeps_the_navigation(customer_client, debug):
    with override_settings(DEBUG=debug):
        page = assert_friendly_404(customer_client.get("/no-such-page/"), debug=debug)
        # An Http404 a view raises (another customer's or no deposit) too.
        assert_friendly_404(customer_client.get("/deposits/dep_0000000000000000/"), debug=debug)
    assert 'aria-label="Main"' in page
    assert "Go to your dashboard" in page


@pytest.mark.parametrize("debug", [False, True])
def test_api_paths_keep_their_json_404(client, debug):
    with override_settings(DEBUG=debug):
        response = Client().get("/v1/no-such-endpoint")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert set(response.json()) >= {"code", "message"}


def test_append_slash_still_redirects_under_debug():
    with override_settings(DEBUG=True):
        response = Client().get("/login")
    assert response.status_code == 301
    assert response.url == "/login/"


@override_settings(ROOT_URLCONF=__name__)
def test_a_failing_page_shows_the_portals_500():
    client = Client(raise_request_exception=False)
    response = client.get("/broken/")
    assert response.status_code == 500
    page = html(response)
    assert "Something went wrong on our side" in page
    assert "RuntimeError" not in page and "boom" not in page
    assert 'href="/static/css/portal.css"' in page or "css/portal" in page


@override_settings(ROOT_URLCONF=__name__)
def test_a_failing_api_call_keeps_its_json_500():
    client = Client(raise_request_exception=False)
    response = client.get("/v1/broken/")
    assert response.status_code == 500
    assert set(response.json()) >= {"code", "message"}
    assert "boom" not in response.content.decode()
