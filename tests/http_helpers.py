"""A throw-away HTTP server on 127.0.0.1 for tests: routes, redirects, delays and a log of every request."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from pathlib import Path


class _RouteHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (status, body, extra_headers)``, by full path, then without the query."""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        server = self.server
        server.requests.append((self.path, dict(self.headers)))
        route = self.path if self.path in server.routes else self.path.split("?")[0]
        time.sleep(server.delays.get(route, 0))
        status, body, extra_headers = server.routes.get(route, (404, b"not found", {}))
        self.send_response(status)
        headers = {"Content-Length": str(len(body))} | extra_headers
        for key, value in headers.items():
            if value is not None:  # None leaves a header out, e.g. Content-Length
                self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts, size limits)
            pass

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


class LocalServer:
    """Set ``routes``, ``delays`` (seconds before answering a path); read ``requests`` as ``(path, headers)``."""

    def __init__(self) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RouteHandler)
        self.httpd.routes, self.httpd.requests, self.httpd.delays = {}, [], {}
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def routes(self) -> dict:
        return self.httpd.routes

    @property
    def requests(self) -> list:
        return self.httpd.requests

    @property
    def delays(self) -> dict:
        return self.httpd.delays

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """``host`` may be ``localhost``: the same server under another origin."""
        return f"http://{host}:{self.port}{path}"

    def serve_folder(self, prefix: str, folder) -> None:
        """Every file of ``folder`` at ``prefix/<name>``."""
        for path in Path(folder).iterdir():
            self.routes[f"{prefix}/{path.name}"] = (200, path.read_bytes(), {})

    def redirect(self, path: str, target: str, status: int = 302) -> None:
        self.routes[path] = (status, b"", {"Location": target})

    def headers_sent_to(self, host: str) -> list[dict]:
        """Request headers of every request that named ``host`` (e.g. ``localhost``) in its Host header."""
        return [headers for _, headers in self.requests if headers.get("Host") == f"{host}:{self.port}"]


@contextlib.contextmanager
def local_server():
    server = LocalServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
