"""WebSocket routing that is not an app's: refusing handshakes no route serves.

The routes themselves are the apps' (settings.WEBSOCKET_URLCONF: a module with
`browser_urlpatterns` and `partner_urlpatterns`, mounted by portal.asgi). A path
none of them serves is refused at the handshake by `UnroutedWebsocketRefusal`
(HTTP 404 with a JSON body, or close code 4404), where Channels' router would
raise (a 500 and a traceback in the log).
"""

import json

from django.urls import Resolver404

from portal.api.errors import error_body
from portal.errors import ErrorCode

CLOSE_NOT_FOUND = 4404


def _routed(scope: dict, routes: list) -> bool:
    """Whether one of `routes` serves the scope's path (matched as Channels' URLRouter does)."""
    route_path = scope.get("path", "")
    root_path = scope.get("root_path", "")
    if root_path and route_path.startswith(root_path):
        route_path = route_path[len(root_path) :]
    route_path = route_path.lstrip("/")
    for route in routes:
        try:
            if route.pattern.match(route_path):
                return True
        except Resolver404:
            continue
    return False


class UnroutedWebsocketRefusal:
    """ASGI middleware: a WebSocket handshake for a path none of `routes` serves is
    answered HTTP 404 with `{"code": "not_found", "message"}` where the server supports
    the `websocket.http.response` extension (uvicorn does), else closed with 4404.
    Everything else goes to `app` untouched."""

    def __init__(self, app, routes: list):
        self.app, self.routes = app, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket" or _routed(scope, self.routes):
            return await self.app(scope, receive, send)
        message = await receive()
        if message["type"] != "websocket.connect":
            return None  # the client left before the handshake
        error = ErrorCode.NOT_FOUND
        body = json.dumps(
            error_body(error, f"No WebSocket endpoint {scope.get('path', '')}.")
        ).encode()
        if "websocket.http.response" in scope.get("extensions") or {}:
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": error.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": CLOSE_NOT_FOUND})
        return None


def unrouted_websockets_refused(app, routes: list):
    """`app` with handshakes for paths outside `routes` refused (404)."""
    return UnroutedWebsocketRefusal(app, routes)
