"""The demo data source: an HTTP server that serves a generated data set the way a company's server would.

Routes::

    GET /<slug>/sessions.csv                the company's CSV         (Basic auth: that company's credentials)
    GET /<slug>/transcripts/<id>.txt        one transcript            (same credentials)
    POST/GET/DELETE /_control/faults        fault rules for a path prefix, N times or until cleared (no auth)
    GET/DELETE /_control/stats              request counts per path (no auth)

Files are streamed from disk with a strong ``ETag`` and ``Last-Modified``, and conditional requests get 304.
Any data request can carry ``?fault=...`` (see pipeline.devtools.faults). The manifest is re-read whenever it
changes, so a server may be started on an empty directory and the data set generated afterwards with the
server's URL as its base URL.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.client import responses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.devtools.faults import Delay, FaultBook, FaultRule, Reset, Status, Truncate, parse_fault
from pipeline.devtools.foreground import run_until_stopped
from pipeline.devtools.manifest import MANIFEST_NAME, CompanyManifest, DatasetManifest, load_manifest

__all__ = ["RequestStats", "SourceServer", "serve_forever"]

logger = logging.getLogger(__name__)

#: Only these two shapes are data. The character sets leave no room for ``..``, ``%`` or ``/`` inside a
#: segment, so no request can name a file outside the data set.
_DATA_PATH = re.compile(
    r"/(?P<slug>[a-z0-9][a-z0-9-]*)/(?:sessions\.csv|transcripts/(?P<session>[A-Za-z0-9][A-Za-z0-9_-]*)\.txt)"
)
_CONTROL_PREFIX = "/_control/"
_MAX_CONTROL_BODY = 64 * 1024
_RETRY_AFTER_STATUSES = {HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE}


class RequestStats:
    """How many data requests arrived per path, faulted ones included. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def count(self, path: str) -> None:
        with self._lock:
            self._counts[path] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class _FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path_prefix: str = Field(pattern=r"^/")
    fault: str
    times: int | None = Field(default=None, ge=1)


class _Catalog:
    """The data set's manifest, re-read when the file changes."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._version: tuple[int, int, int] | None = None
        self._manifest: DatasetManifest | None = None

    def company(self, slug: str) -> CompanyManifest | None:
        try:
            status = (self._root / MANIFEST_NAME).stat()
        except FileNotFoundError:
            return None
        version = (status.st_ino, status.st_mtime_ns, status.st_size)
        with self._lock:
            if version != self._version:
                self._manifest, self._version = load_manifest(self._root), version
            manifest = self._manifest
        return manifest.company(slug) if manifest is not None else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], root: Path, faults: FaultBook, stats: RequestStats) -> None:
        self.root = root
        self.catalog = _Catalog(root)
        self.faults = faults
        self.stats = stats
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: Any) -> None:
        # Clients hanging up is routine here, and faults provoke it; anything else is worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("%s hung up", client_address)
        else:
            logger.exception("error serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "LiveDashDemoSource/1.0"
    # Headers and body go out in separate writes; with Nagle's algorithm the body would wait for the client's
    # delayed ACK, some 40 ms per response.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith(_CONTROL_PREFIX):
            self._control(url.path)
            return
        self.server.stats.count(url.path)
        requested = parse_qs(url.query).get("fault")
        try:
            fault = parse_fault(requested[-1]) if requested else self.server.faults.take(url.path)
        except ValueError as exc:
            self._send_text(HTTPStatus.BAD_REQUEST, str(exc))
            return
        match fault:
            case Reset():
                self._reset()
                return
            case Status(code):
                self._send_status(code)
                return
            case Delay(seconds):
                time.sleep(seconds)
        if self.command != "GET":
            # A body we do not read would be parsed as the next request: close instead.
            self.close_connection = True
            self._send_text(HTTPStatus.METHOD_NOT_ALLOWED, "only GET is served here", {"Allow": "GET"})
            return
        self._serve(url.path, fault.size if isinstance(fault, Truncate) else None)

    def _serve(self, path: str, truncate: int | None) -> None:
        match = _DATA_PATH.fullmatch(path)
        company = self.server.catalog.company(match["slug"]) if match else None
        if match is None or company is None:
            self._send_text(HTTPStatus.NOT_FOUND, "not found")
            return
        # Credentials before existence: a stranger must not learn which session ids exist.
        if not self._authorised(company):
            self._send_status(HTTPStatus.UNAUTHORIZED)
            return
        if match["session"] is None:
            target, content_type = self.server.root / company.csv_path, "text/csv; charset=utf-8"
        else:
            target = self.server.root / company.slug / "transcripts" / f"{match['session']}.txt"
            content_type = "text/plain; charset=utf-8"
        try:
            handle = target.open("rb")
        except FileNotFoundError:
            self._send_text(HTTPStatus.NOT_FOUND, "not found")
            return
        with handle:
            # Stat the open file, not the path: a regenerated file replaces the path, not what we send.
            status = os.fstat(handle.fileno())
            etag = f'"{status.st_size:x}-{status.st_mtime_ns:x}"'
            validators = {"ETag": etag, "Last-Modified": formatdate(status.st_mtime, usegmt=True)}
            if self._not_modified(etag, status.st_mtime):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self._send_headers(validators)
                return
            self.send_response(HTTPStatus.OK)
            self._send_headers(
                {
                    "Content-Type": content_type,
                    "Content-Length": str(status.st_size),
                    "Cache-Control": "no-cache",
                    **validators,
                }
            )
            count = status.st_size if truncate is None else min(truncate, status.st_size)
            try:
                if count:
                    self.connection.sendfile(handle, 0, count)
            except ConnectionError:
                self.close_connection = True
                return
        if count < status.st_size:
            self.close_connection = True

    def _authorised(self, company: CompanyManifest) -> bool:
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except binascii.Error:
            return False
        username, colon, password = decoded.partition(b":")
        return (
            bool(colon)
            and hmac.compare_digest(username, company.username.encode())
            and hmac.compare_digest(password, company.password.encode())
        )

    def _not_modified(self, etag: str, mtime: float) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            # If-None-Match compares weakly, and when it is present If-Modified-Since is ignored (RFC 9110).
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return "*" in tags or etag in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since is None:
            return False
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        # HTTP dates have whole seconds; the file's sub-second part must not count as a change.
        return int(mtime) <= since.timestamp()

    def _control(self, path: str) -> None:
        faults, stats = self.server.faults, self.server.stats
        match (self.command, path):
            case ("POST", "/_control/faults"):
                try:
                    request = _FaultRequest.model_validate_json(self._read_body())
                    rule = faults.add(request.path_prefix, request.fault, request.times)
                except (ValidationError, ValueError) as exc:
                    self._send_text(HTTPStatus.BAD_REQUEST, str(exc))
                    return
                self._send_json(HTTPStatus.CREATED, _rule_json(rule))
            case ("GET", "/_control/faults"):
                self._send_json(HTTPStatus.OK, {"faults": [_rule_json(rule) for rule in faults.rules()]})
            case ("DELETE", "/_control/faults"):
                faults.clear()
                self._send_headers_only(HTTPStatus.NO_CONTENT)
            case ("GET", "/_control/stats"):
                counts = stats.snapshot()
                self._send_json(HTTPStatus.OK, {"total": sum(counts.values()), "paths": counts})
            case ("DELETE", "/_control/stats"):
                stats.reset()
                self._send_headers_only(HTTPStatus.NO_CONTENT)
            case _:
                self._send_text(HTTPStatus.NOT_FOUND, "not found")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= _MAX_CONTROL_BODY:
            self.close_connection = True
            raise ValueError(f"the body must be JSON of at most {_MAX_CONTROL_BODY} bytes")
        return self.rfile.read(length)

    def _reset(self) -> None:
        # A zero linger turns close() into a TCP reset. Closing here, before the server's own shutdown of the
        # socket, keeps it from sending an orderly FIN first.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _send_status(self, code: int) -> None:
        headers = {}
        if code == HTTPStatus.UNAUTHORIZED:
            headers["WWW-Authenticate"] = 'Basic realm="livedash-demo", charset="UTF-8"'
        if code in _RETRY_AFTER_STATUSES:
            headers["Retry-After"] = "1"
        self._send_text(code, responses.get(code, "Error"), headers)

    def _send_text(self, code: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._send_body(code, (text + "\n").encode(), "text/plain; charset=utf-8", headers or {})

    def _send_json(self, code: int, payload: object) -> None:
        self._send_body(code, json.dumps(payload).encode(), "application/json", {})

    def _send_body(self, code: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(code)
        self._send_headers({"Content-Type": content_type, "Content-Length": str(len(body)), **headers})
        self.wfile.write(body)

    def _send_headers_only(self, code: int) -> None:
        self.send_response(code)
        self._send_headers({})

    def _send_headers(self, headers: dict[str, str]) -> None:
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()


def _rule_json(rule: FaultRule) -> dict[str, object]:
    """A rule as the control API shows it: ``times`` is what is left of it."""
    return {"path_prefix": rule.path_prefix, "fault": rule.fault, "times": rule.remaining}


class SourceServer:
    """The demo data source over ``directory``, run in a background thread.

    ``faults`` and ``stats`` are the same objects the control API works on, for tests in the same process.
    """

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = Path(directory)
        self.faults = FaultBook()
        self.stats = RequestStats()
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``; the port is known once started."""
        if self._server is None:
            raise RuntimeError("the source server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SourceServer:
        """Bind, listen, and serve in a daemon thread; connections are accepted once this returns."""
        if self._server is not None:
            raise RuntimeError("the source server is already started")
        self._server = _Server(self._address, self.directory, self.faults, self.stats)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="demo-source", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket; requests in flight are abandoned."""
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> SourceServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(
    directory: Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``directory`` until Ctrl-C or SIGTERM; ``on_ready`` gets the URL once it listens.

    Signals reach only the main thread, so call this from there.
    """
    server = SourceServer(directory, host, port)
    run_until_stopped(server, lambda: server.url, on_ready)
