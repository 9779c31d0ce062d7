"""WebSocket URL routes (browser dashboard and partner streams join here)."""

websocket_urlpatterns: list = []
