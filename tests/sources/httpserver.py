"""A real HTTP/1.1 server on a loopback address, run in a thread, answering each path with a handler."""

from __future__ import annotations

import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Handler", "LocalServer", "SeenRequest", "respond", "running_server", "trickle_headers"]

#: Answers one request by writing to the handler's ``wfile`` (see :func:`respond`).
Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class SeenRequest:
    """A request as the server received it."""

    path: str
    headers: dict[str, str]
    client_port: int


class LocalServer(ThreadingHTTPServer):
    """Records every request and dispatches it by path; unknown paths get a 404.

    ``stopping`` is set when the server shuts down, so that a handler that stalls on purpose can wait on it
    instead of sleeping past the end of its test.
    """

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        super().__init__((host, port), _RequestHandler)
        self.host = host
        self.scheme = "http" if tls is None else "https"
        if tls is not None:
            # The handshake runs in the handler's thread, on its first read.
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.routes: dict[str, Handler] = {}
        self.requests: list[SeenRequest] = []
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> str:
        """Answer ``path`` with ``handler``; returns the path's URL."""
        self.routes[path] = handler
        return self.url(path)

    def paths_seen(self) -> list[str]:
        return [request.path for request in self.requests]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up on purpose (timeouts, size caps); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalServer

    def do_GET(self) -> None:
        self.server.requests.append(
            SeenRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, self.client_address[1])
        )
        handler = self.server.routes.get(self.path)
        if handler is None:
            respond(self, 404, b"no such path")
        else:
            handler(self)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


def respond(
    handler: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> None:
    """Write a complete response with a Content-Length."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@contextmanager
def running_server(
    host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> Iterator[LocalServer]:
    """A server on ``host`` (any address of 127.0.0.0/8) and ``port`` (0: an ephemeral one), TLS if given."""
    server = LocalServer(host, port, tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def trickle_headers(server: LocalServer) -> Handler:
    """A handler that sends its status line and headers one byte every 0.2 s, well within any read timeout."""

    def trickle(handler: BaseHTTPRequestHandler) -> None:
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"p" * 400 + b"\r\nContent-Length: 2\r\n\r\nok"
        for byte in head:
            if server.stopping.wait(0.2):
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()

    return trickle
