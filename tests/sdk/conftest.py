"""The partner SDKs' suites run against the real server: uvicorn in a subprocess."""

from collections.abc import Iterator

import pytest

from tests.live_server import asgi_server


@pytest.fixture
def live_api(transactional_db) -> Iterator[str]:
    """The ASGI app served by uvicorn (tests.live_server); its base URL, without /v1."""
    with asgi_server() as base:
        yield base
