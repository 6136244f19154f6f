"""Bounded HTTP GETs for company CSVs and transcripts.

Every fetch has a connect timeout, a read timeout (a stalled server), a total wall-clock budget (a server that
drips bytes just fast enough), a body size cap, and an address check: every connection is opened by
:class:`pipeline.sources.transport.CheckedTransport`, which resolves the host once, checks its addresses and
connects to a checked one, on the first URL and on every redirect hop. A failure raises a :class:`FetchError`
with a short human reason, classified as transient (worth retrying later) or permanent by its place in
:mod:`pipeline.errors`. There is no retry loop here: the calling actor owns retries and backoff, and
:func:`pipeline.errors.is_transient` tells it which failures to retry.

Choices made here:

* Redirects (at most :data:`MAX_REDIRECTS`) are followed here rather than by httpx, which reads a
  redirect's whole body into memory, past any size cap. Credentials are scoped
  (:class:`pipeline.sources.credentials.Credentials`): sent only to the company's origins, and after a
  redirect to another origin (other than the https upgrade of the same host) never again in that chain.
* Private networks are allowed per fetch (the company's setting, or the fetcher's default); each policy has
  its own connection pool, so a connection checked under one is never reused under the other.
* Only gzip is asked for, and it is inflated in bounded steps, so a tiny compressed body cannot expand into
  gigabytes in one go; the size cap and the SHA-256 apply to the decoded body.
* Cookies are never kept: one client serves many companies, and none may see another's cookies.
* Proxies are not taken from the environment: the transport vets the address actually connected to.
* The total timeout is a wall-clock deadline from the start of :meth:`Fetcher.stream` to the end of its
  block, the time the caller spends on each chunk included. Every socket operation (connect, TLS, each read
  of the headers and of the body) is given at most the time left (:mod:`pipeline.sources.deadlines`), so a
  server that trickles its headers or its body a byte at a time is cut off when it runs out, not later.
"""

from __future__ import annotations

import hashlib
import ssl
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from pipeline import __version__
from pipeline.errors import PermanentError, PipelineError, TransientError
from pipeline.sources.credentials import Credentials, CredentialsOverHttp, origin_of
from pipeline.sources.deadlines import DeadlineBackend, deadline, past_deadline
from pipeline.sources.transport import CheckedNetworkBackend, CheckedTransport
from pipeline.sources.urls import (
    AddressRules,
    RefusedHost,
    RefusedUrl,
    Resolver,
    refused_kind,
    resolve_host,
    validate_url_syntax,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_REDIRECTS",
    "FetchError",
    "FetchLimits",
    "FetchResponse",
    "FetchTimeout",
    "Fetcher",
    "PermanentFetchError",
    "ResponseTooLarge",
    "TransientFetchError",
]

#: The default body cap. A company CSV of 200k rows is about 50 MB.
DEFAULT_MAX_BYTES = 100 * 1024 * 1024

#: Redirect hops followed before giving up.
MAX_REDIRECTS = 5

_TRANSIENT_STATUSES = (httpx.codes.REQUEST_TIMEOUT, httpx.codes.TOO_MANY_REQUESTS)

#: Largest piece inflated from a gzip body in one step.
_INFLATE_STEP = 64 * 1024


class FetchError(PipelineError):
    """A fetch failed.

    Parameters:
      reason(str): A short human reason, such as "HTTP 401 Unauthorized"; never holds credentials.
      status_code(int | None): The HTTP status, when a response was received.
    """

    def __init__(self, reason: str, status_code: int | None = None) -> None:
        # Both in args, so that the error survives pickling (to another process) whole.
        super().__init__(reason, status_code)
        self.reason = reason
        self.status_code = status_code

    def __str__(self) -> str:
        return self.reason


class TransientFetchError(FetchError, TransientError):
    """A failure that may go away: timeouts, connection errors, truncated bodies, HTTP 5xx, 429 and 408."""


class PermanentFetchError(FetchError, PermanentError):
    """A failure that retrying will not fix: other 4xx, a refused URL, a body over the cap, bad encodings."""


class FetchTimeout(TransientFetchError):
    """The connect, read or total timeout elapsed."""


class ResponseTooLarge(PermanentFetchError):
    """The body is larger than the cap, by its Content-Length or by counting."""


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """The bounds of every fetch a :class:`Fetcher` makes. Times are in seconds.

    Parameters:
      connect_timeout(float): To establish a connection. Defaults to 5.
      read_timeout(float): Between two reads; a server silent this long is given up on. Defaults to 30.
      total_timeout(float): Wall clock for the whole fetch, redirects and body included. Defaults to 300.
      max_bytes(int): Largest decoded body accepted. Defaults to :data:`DEFAULT_MAX_BYTES`.
      allow_private(bool): Allow private, loopback and other internal addresses (never link-local or cloud
        metadata ones), unless a fetch says otherwise. Defaults to False.
      user_agent(str): The User-Agent header.
    """

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    total_timeout: float = 300.0
    max_bytes: int = DEFAULT_MAX_BYTES
    allow_private: bool = False
    user_agent: str = f"LiveDash-Pipeline/{__version__}"

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "total_timeout", "max_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")


class FetchResponse:
    """A received response, whose body is read with :meth:`iter_bytes`.

    Attributes:
      status_code(int): 2xx, or 304 when the conditional request found the resource unchanged.
      not_modified(bool): True for 304; the body is then empty.
      etag(str | None): The ETag header, to send back as ``etag`` next time.
      last_modified(str | None): The Last-Modified header, to send back as ``last_modified`` next time.
      content_length(int | None): The Content-Length header, when there is a valid one (bytes on the wire).
      content_type(str | None): The Content-Type header, for the caller's check of what the body is.
      bytes_read(int): Decoded bytes read so far.
    """

    def __init__(self, response: httpx.Response, limits: FetchLimits, deadline: float) -> None:
        self.status_code = response.status_code
        self.not_modified = response.status_code == httpx.codes.NOT_MODIFIED
        self.etag = response.headers.get("ETag")
        self.last_modified = response.headers.get("Last-Modified")
        length = response.headers.get("Content-Length", "")
        self.content_length = int(length) if length.isdigit() else None
        self.content_type = response.headers.get("Content-Type")
        self.bytes_read = 0
        self._response = response
        self._limits = limits
        self._deadline = deadline
        self._digest = hashlib.sha256()
        self._complete = False

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the decoded body, once :meth:`iter_bytes` has run to the end."""
        if not self._complete:
            raise RuntimeError("the body has not been read to the end")
        return self._digest.hexdigest()

    def iter_bytes(self) -> Iterator[bytes]:
        """Yield the decoded body in chunks, counting and hashing them.

        Raises:
          ResponseTooLarge: Once more than ``max_bytes`` would have been yielded.
          FetchTimeout: When the total timeout has elapsed (checked between chunks) or a read times out.
          TransientFetchError: When the connection breaks or the body ends early.
        """
        limits = self._limits
        try:
            for chunk in _decoded(self._response):
                self.bytes_read += len(chunk)
                if self.bytes_read > limits.max_bytes:
                    raise ResponseTooLarge(
                        f"body exceeds {limits.max_bytes} bytes", status_code=self.status_code
                    )
                if time.monotonic() > self._deadline:
                    raise FetchTimeout(
                        f"total timeout after {limits.total_timeout}s", status_code=self.status_code
                    )
                self._digest.update(chunk)
                yield chunk
        except (httpx.HTTPError, zlib.error) as exc:
            raise _failure(exc, limits) from exc
        self._complete = True


class Fetcher:
    """Makes bounded GETs over one connection pool; a context manager that closes it.

    Parameters:
      limits(FetchLimits | None): The bounds of every fetch. Defaults to ``FetchLimits()``.
      resolve(Resolver): How hosts are resolved, once per connection; tests inject their own.
      rules(AddressRules): Which addresses are refused; tests inject their own.
      verify(ssl.SSLContext | bool): TLS verification; tests pass a context trusting their own CA.

    Examples::

      credentials = Credentials.scoped(csv_url, user, password)
      with Fetcher(FetchLimits(max_bytes=10 * 1024 * 1024)) as fetcher:
          with fetcher.stream(url, credentials=credentials, etag=etag) as response:
              if not response.not_modified:
                  for row in parse_session_rows(response.iter_bytes()):
                      ...
    """

    def __init__(
        self,
        limits: FetchLimits | None = None,
        *,
        resolve: Resolver = resolve_host,
        rules: AddressRules = refused_kind,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.limits = limits or FetchLimits()
        self._resolve = resolve
        self._rules = rules
        self._verify = verify
        self._clients: dict[bool, httpx.Client] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _client(self, allow_private: bool) -> httpx.Client:
        """The client (and connection pool) of one private-network policy, made on first use."""
        with self._lock:
            client = self._clients.get(allow_private)
            if client is None:
                backend = CheckedNetworkBackend(
                    allow_private=allow_private, resolve=self._resolve, rules=self._rules
                )
                client = self._clients[allow_private] = httpx.Client(
                    transport=CheckedTransport(DeadlineBackend(backend), verify=self._verify),
                    timeout=httpx.Timeout(
                        connect=self.limits.connect_timeout,
                        read=self.limits.read_timeout,
                        write=self.limits.read_timeout,
                        pool=self.limits.connect_timeout,
                    ),
                    headers={"User-Agent": self.limits.user_agent, "Accept-Encoding": "gzip"},
                    cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
                    follow_redirects=False,
                    trust_env=False,
                )
            return client

    @contextmanager
    def stream(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        allow_private: bool | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Iterator[FetchResponse]:
        """GET ``url``, yielding the response once its headers are in; the body is read inside the block.

        ``credentials`` go only where their scope allows. ``allow_private`` overrides the limits' default for
        this fetch (a company's own setting). ``etag`` and ``last_modified`` (from an earlier response) make
        the request conditional, answered by a 304.

        Raises:
          FetchError: A :class:`TransientFetchError` or :class:`PermanentFetchError`, on entry or while the
            body is read.
        """
        ends_at = time.monotonic() + self.limits.total_timeout
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        client = self._client(self.limits.allow_private if allow_private is None else allow_private)
        with deadline(ends_at):
            response = self._open(client, url, headers, credentials, ends_at)
            try:
                yield FetchResponse(response, self.limits, ends_at)
            finally:
                response.close()

    def _open(
        self,
        client: httpx.Client,
        url: str,
        headers: dict[str, str],
        credentials: Credentials | None,
        deadline: float,
    ) -> httpx.Response:
        """Send the GET, following redirects, and return an accepted response with its body unread."""
        target = url
        for _ in range(MAX_REDIRECTS + 1):
            if time.monotonic() > deadline:
                raise FetchTimeout(f"total timeout after {self.limits.total_timeout}s")
            response, withheld = self._send(client, target, headers, credentials)
            if not response.has_redirect_location:
                try:
                    _check_response(response, self.limits)
                except FetchError as exc:
                    response.close()
                    if withheld and exc.status_code == httpx.codes.UNAUTHORIZED:
                        raise PermanentFetchError(
                            f"{exc.reason} (the company's credentials are not sent to {origin_of(target)}: "
                            "list it with --transcript-origin to send them there)",
                            status_code=exc.status_code,
                        ) from exc
                    raise
                return response
            # A redirect's body is never read: dropping the connection beats reading an unbounded body.
            response.close()
            try:
                location = response.url.join(response.headers["Location"])
            except httpx.InvalidURL as exc:
                raise PermanentFetchError(f"HTTP {response.status_code} to a malformed Location") from exc
            if not _keeps_credentials(response.url, location):
                credentials = None
            target = str(location)
        raise PermanentFetchError(f"more than {MAX_REDIRECTS} redirects")

    def _send(
        self, client: httpx.Client, target: str, headers: dict[str, str], credentials: Credentials | None
    ) -> tuple[httpx.Response, bool]:
        """Send one hop; returns its response and whether the credentials were withheld from its origin."""
        try:
            validate_url_syntax(target)
            request = client.build_request("GET", target, headers=headers)
            auth = credentials.auth_for(request.url) if credentials is not None else None
            return client.send(request, auth=auth, stream=True), credentials is not None and auth is None
        except RefusedUrl as exc:
            raise PermanentFetchError(str(exc)) from exc
        except RefusedHost as exc:
            raise PermanentFetchError(str(RefusedUrl(target, exc.reason))) from exc
        except CredentialsOverHttp as exc:
            raise PermanentFetchError(str(exc)) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _failure(exc, self.limits) from exc


def _check_response(response: httpx.Response, limits: FetchLimits) -> None:
    """Refuse a response that is neither 2xx nor 304, or whose declared length is over the cap."""
    status = response.status_code
    if not (httpx.codes.is_success(status) or status == httpx.codes.NOT_MODIFIED):
        reason = f"HTTP {status} {response.reason_phrase}".rstrip()
        if httpx.codes.is_server_error(status) or status in _TRANSIENT_STATUSES:
            raise TransientFetchError(reason, status_code=status)
        raise PermanentFetchError(reason, status_code=status)
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limits.max_bytes:
        raise ResponseTooLarge(
            f"body exceeds {limits.max_bytes} bytes (Content-Length {length})", status_code=status
        )
    encoding = _content_encoding(response)
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise PermanentFetchError(f"unsupported Content-Encoding {encoding!r}", status_code=status)


def _decoded(response: httpx.Response) -> Iterator[bytes]:
    """The body with any gzip coding undone, inflated at most :data:`_INFLATE_STEP` bytes at a time."""
    raw: Iterable[bytes] = response.iter_raw()
    if _content_encoding(response) == "identity":
        yield from raw
        return
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    received = False
    for chunk in raw:
        received = received or bool(chunk)
        data = chunk
        while data:
            piece = inflater.decompress(data, _INFLATE_STEP)
            data = inflater.unconsumed_tail
            if piece:
                yield piece
    if received and not inflater.eof:
        raise zlib.error("the gzip stream ends early")


def _content_encoding(response: httpx.Response) -> str:
    encoding: str = response.headers.get("Content-Encoding", "identity")
    return encoding.strip().lower()


def _keeps_credentials(origin: httpx.URL, location: httpx.URL) -> bool:
    """Whether Basic auth may follow a redirect: same origin, or the same host upgraded from http to https."""
    if origin.host != location.host:
        return False
    if (origin.scheme, origin.port) == (location.scheme, location.port):
        return True
    return (origin.scheme, origin.port, location.scheme, location.port) == ("http", None, "https", None)


def _failure(exc: Exception, limits: FetchLimits) -> FetchError:
    """Classify an httpx or zlib exception; httpx's messages carry no URL or credentials."""
    if isinstance(exc, httpx.TimeoutException) and past_deadline():
        return FetchTimeout(f"total timeout after {limits.total_timeout}s")
    if isinstance(exc, httpx.ConnectTimeout):
        return FetchTimeout(f"connect timeout after {limits.connect_timeout}s")
    if isinstance(exc, httpx.ReadTimeout):
        return FetchTimeout(f"read timeout after {limits.read_timeout}s")
    if isinstance(exc, httpx.TimeoutException):
        return FetchTimeout(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return TransientFetchError(f"truncated or malformed response: {exc}")
    if isinstance(exc, httpx.NetworkError | httpx.ProxyError):
        return TransientFetchError(f"connection failed: {exc}")
    if isinstance(exc, zlib.error):
        return PermanentFetchError(f"corrupt gzip body: {exc}")
    return PermanentFetchError(f"{type(exc).__name__}: {exc}")
