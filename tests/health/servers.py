"""A real HTTP server on 127.0.0.1 for the health sources: answers by path (query string apart), or stalls."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = ["Answer", "FakeHttpServer", "Route", "serving"]

#: Status, content type and body.
Answer = tuple[int, str, str]
#: Answers a GET of ``path`` with ``query`` (one value per name); returning None stalls until shutdown.
Route = Callable[[str, dict[str, str]], Answer | None]


class FakeHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, route: Route) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.route = route
        self.stopping = threading.Event()
        self.seen: list[tuple[str, dict[str, str], str | None]] = []

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeHttpServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        self.server.seen.append((parts.path, query, self.headers.get("Authorization")))
        answer = self.server.route(parts.path, query)
        if answer is None:
            self.server.stopping.wait(30)
            return
        status, content_type, body = answer
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@contextmanager
def serving(route: Route) -> Iterator[FakeHttpServer]:
    server = FakeHttpServer(route)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
