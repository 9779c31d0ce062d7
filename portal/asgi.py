"""ASGI entry point: Django for HTTP, Channels for WebSockets.

`get_asgi_application()` runs first so the app registry is ready before any
consumer module (which imports models) is loaded. The routes are the apps'
(settings.WEBSOCKET_URLCONF, named by dotted path as ROOT_URLCONF is: portal
imports no app). The partner stream (/v1/stream) authenticates with an API
key and is routed before the browser's origin-checked (scheme, host and port:
portal.origins), session-authenticated routes.
"""

import os
from importlib import import_module

from django.core.asgi import get_asgi_application

from portal.tracing import tracing_setup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
tracing_setup()  # before the handler loads the middleware (OTEL_ENABLED only)
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddleware  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import CookieMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from portal.origins import SiteOriginValidator  # noqa: E402
from portal.processes import startup_objects_freeze  # noqa: E402
from portal.routing import unrouted_websockets_refused  # noqa: E402
from portal.sessions import SocketSessionMiddleware  # noqa: E402

routes = import_module(settings.WEBSOCKET_URLCONF)
browser_urlpatterns, partner_urlpatterns = routes.browser_urlpatterns, routes.partner_urlpatterns

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                *partner_urlpatterns,
                re_path(
                    r"^",
                    SiteOriginValidator(
                        # channels' AuthMiddlewareStack, with the session middleware that
                        # leaves a socket's send as it is (portal.sessions).
                        CookieMiddleware(
                            SocketSessionMiddleware(AuthMiddleware(URLRouter(browser_urlpatterns)))
                        )
                    ),
                ),
            ]
        ),
    }
)

# Unknown WebSocket paths: 404 at the handshake, not the router's ValueError (a 500).
application = unrouted_websockets_refused(application, [*partner_urlpatterns, *browser_urlpatterns])

startup_objects_freeze()  # last: what was built while starting is kept out of collections
