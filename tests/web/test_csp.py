"""The Content-Security-Policy header (django-csp) and the templates it relies on: no
inline script, style or event handler anywhere (the browser tests load the pages)."""

import re
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:", re.I
)


def directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(part.strip().partition(" ")[::2] for part in header.split(";") if part.strip())


def test_pages_carry_a_policy_without_inline_code(client):
    policy = directives(client.get("/login/"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in " ".join(policy.values())


def test_the_api_docs_and_the_admin_carry_it_too(client):
    assert "script-src" in directives(client.get("/v1/docs/"))
    assert "script-src" in directives(client.get("/admin/login/"))


def test_the_api_docs_page_has_no_inline_script_or_style(client):
    page = client.get("/v1/docs/").content.decode()
    assert not INLINE.search(page), INLINE.search(page)
    script = client.get("/v1/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_no_template_has_inline_script_style_or_event_handler():
    offenders = [
        f"{path.relative_to(settings.BASE_DIR)}: {match.group(0)!r}"
        for path in sorted(Path(settings.BASE_DIR, "templates").rglob("*.html"))
        for match in INLINE.finditer(path.read_text())
    ]
    assert offenders == []
