"""Local fake venue servers: loopback HTTP servers speaking the venues' real wire
formats (tests and `make run`)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LoopbackServer:
    """A fake venue's HTTP lifecycle: `handler_class` served on 127.0.0.1 (`port`, or a
    free one) by a daemon thread; each request's handler sees the fake as `self.fake`."""

    handler_class: type[BaseHTTPRequestHandler]

    def __init__(self, *, port: int = 0):
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Start serving (once); return self."""
        if self._server is not None:
            return self
        handler = type("Handler", (self.handler_class,), {"fake": self})
        server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        server.daemon_threads = True
        self._server = server
        # A short poll interval: stop() waits up to one interval for the loop to notice.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:<port>` of the running server."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started.")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"
