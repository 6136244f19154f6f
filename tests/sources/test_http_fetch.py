from __future__ import annotations

import base64
import gzip
import hashlib
import pickle
import socket
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from pipeline import __version__
from pipeline.errors import is_transient
from pipeline.sources.credentials import Credentials
from pipeline.sources.http_fetch import (
    Fetcher,
    FetchError,
    FetchLimits,
    FetchResponse,
    FetchTimeout,
    PermanentFetchError,
    ResponseTooLarge,
    TransientFetchError,
)
from pipeline.sources.urls import AddressRules, refused_kind, resolve_host
from tests.sources.egress import ScriptedResolver, taken_for_public
from tests.sources.httpserver import LocalServer, respond, running_server, trickle_headers

MakeFetcher = Callable[..., Fetcher]

#: Room for a loaded machine on top of any timeout, so no test depends on tight timing.
SLACK = 3.0


@pytest.fixture
def make_fetcher() -> Iterator[MakeFetcher]:
    """Build fetchers (private addresses allowed unless told otherwise, as the server is on 127.0.0.1)."""
    fetchers: list[Fetcher] = []

    def make(
        *,
        resolve: Callable[[str, int], list[str]] = resolve_host,
        rules: AddressRules = refused_kind,
        **limits: Any,
    ) -> Fetcher:
        limits.setdefault("allow_private", True)
        fetcher = Fetcher(FetchLimits(**limits), resolve=resolve, rules=rules)
        fetchers.append(fetcher)
        return fetcher

    yield make
    for fetcher in fetchers:
        fetcher.close()


def fetch(
    fetcher: Fetcher, url: str, *, username: str | None = None, password: str | None = None, **kwargs: Any
) -> tuple[FetchResponse, bytes]:
    """Fetch ``url``, with credentials scoped to its origin (plain http allowed: the test servers use it)."""
    credentials = Credentials.scoped(url, username, password, allow_http=True)
    with fetcher.stream(url, credentials=credentials, **kwargs) as response:
        body = b"".join(response.iter_bytes())
    return response, body


def start_chunked(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()


def write_chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


def body_handler(
    body: bytes, headers: dict[str, str] | None = None
) -> Callable[[BaseHTTPRequestHandler], None]:
    return lambda handler: respond(handler, 200, body, headers)


def redirect_handler(location: str, status: int = 302) -> Callable[[BaseHTTPRequestHandler], None]:
    return lambda handler: respond(handler, status, b"", {"Location": location})


def test_a_fetch_yields_the_body_with_its_size_and_sha256(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a CSV served by the server
    body = b"a,b,c\n" * 1000
    url = server.route("/export.csv", body_handler(body))

    # When I fetch it
    response, received = fetch(make_fetcher(), url)

    # Then I expect the whole body, counted and hashed
    assert received == body
    assert response.status_code == 200
    assert not response.not_modified
    assert response.bytes_read == len(body)
    assert response.sha256 == hashlib.sha256(body).hexdigest()


def test_the_sha256_is_only_known_once_the_body_is_read(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a served body
    url = server.route("/export.csv", body_handler(b"x" * 100))

    # When I open it without reading the body, and ask for its hash
    # Then I expect an error rather than the hash of a partial body
    with make_fetcher().stream(url) as response, pytest.raises(RuntimeError):
        _ = response.sha256


def test_the_user_agent_names_the_pipeline_and_its_version(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a served path
    url = server.route("/export.csv", body_handler(b""))

    # When I fetch it
    fetch(make_fetcher(), url)

    # Then I expect the request to carry our User-Agent
    assert server.requests[0].headers["user-agent"] == f"LiveDash-Pipeline/{__version__}"


def test_basic_auth_is_sent_when_both_username_and_password_are_set(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a served path
    url = server.route("/export.csv", body_handler(b""))

    # When I fetch it with a username and a password
    fetch(make_fetcher(), url, username="alice", password="s3cret")

    # Then I expect a Basic Authorization header with both
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert server.requests[0].headers["authorization"] == expected


@pytest.mark.parametrize(
    ("username", "password"), [(None, None), ("alice", None), (None, "s3cret"), ("alice", "")]
)
def test_no_authorization_is_sent_unless_both_are_set(
    server: LocalServer, make_fetcher: MakeFetcher, username: str | None, password: str | None
) -> None:
    # Given a served path
    url = server.route("/export.csv", body_handler(b""))

    # When I fetch it with at most one of username and password
    fetch(make_fetcher(), url, username=username, password=password)

    # Then I expect no Authorization header at all
    assert "authorization" not in server.requests[0].headers


def test_an_unchanged_resource_is_reported_not_modified(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a server that answers 304 when the validators it handed out come back
    etag, last_modified = '"v1"', "Wed, 21 Oct 2026 07:28:00 GMT"

    def conditional(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("If-None-Match") == etag:
            respond(handler, 304, b"", {"ETag": etag})
        else:
            respond(handler, 200, b"a,b\n", {"ETag": etag, "Last-Modified": last_modified})

    url = server.route("/export.csv", conditional)
    fetcher = make_fetcher()

    # When I fetch it, then fetch it again with the validators of the first response
    first, _ = fetch(fetcher, url)
    second, body = fetch(fetcher, url, etag=first.etag, last_modified=first.last_modified)

    # Then I expect the first to carry the validators and the second to be a bodiless 304
    assert (first.etag, first.last_modified) == (etag, last_modified)
    assert second.not_modified
    assert second.status_code == 304
    assert body == b""
    # And I expect both validators to have been sent the second time
    assert server.requests[1].headers["if-none-match"] == etag
    assert server.requests[1].headers["if-modified-since"] == last_modified
    assert "if-none-match" not in server.requests[0].headers


def test_a_content_length_over_the_cap_is_refused_before_reading_the_body(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a server that announces a large body and then sends nothing
    def announce_only(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(50_000))
        handler.end_headers()
        server.stopping.wait(30)

    url = server.route("/big.csv", announce_only)
    fetcher = make_fetcher(max_bytes=10_000, read_timeout=10.0)

    # When I fetch it
    started = time.monotonic()
    with pytest.raises(ResponseTooLarge) as raised, fetcher.stream(url):
        pass

    # Then I expect a permanent refusal from the headers alone, without waiting for the body
    assert time.monotonic() - started < 10.0
    assert raised.value.reason == "body exceeds 10000 bytes (Content-Length 50000)"
    assert raised.value.status_code == 200
    assert not is_transient(raised.value)


def test_a_body_without_content_length_is_capped_while_streaming(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a server that sends a body delimited by closing the connection
    def until_close(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b"x" * 50_000)
        handler.close_connection = True

    url = server.route("/big.csv", until_close)
    fetcher = make_fetcher(max_bytes=10_000)

    # When I read it
    received = 0
    with pytest.raises(ResponseTooLarge) as raised, fetcher.stream(url) as response:
        for chunk in response.iter_bytes():
            received += len(chunk)

    # Then I expect the cap to stop it, having handed out no more than the cap
    assert raised.value.reason == "body exceeds 10000 bytes"
    assert received <= 10_000


def test_a_chunked_body_is_capped_while_streaming(server: LocalServer, make_fetcher: MakeFetcher) -> None:
    # Given a server that streams a chunked body with no end in sight
    def endless(handler: BaseHTTPRequestHandler) -> None:
        start_chunked(handler)
        while not server.stopping.is_set():
            write_chunk(handler, b"x" * 1000)

    url = server.route("/endless.csv", endless)
    fetcher = make_fetcher(max_bytes=100_000)

    # When I read it
    with pytest.raises(ResponseTooLarge), fetcher.stream(url) as response:
        for _ in response.iter_bytes():
            pass

    # Then I expect to have stopped just past the cap
    assert 100_000 < response.bytes_read <= 100_000 + 64 * 1024


def test_a_slow_drip_is_stopped_by_the_total_timeout(server: LocalServer, make_fetcher: MakeFetcher) -> None:
    # Given a server that sends one byte every 50 ms, well within any read timeout
    def drip(handler: BaseHTTPRequestHandler) -> None:
        start_chunked(handler)
        while not server.stopping.wait(0.05):
            write_chunk(handler, b"x")

    url = server.route("/drip.csv", drip)
    fetcher = make_fetcher(total_timeout=1.0, read_timeout=5.0)

    # When I read it
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as raised, fetcher.stream(url) as response:
        for _ in response.iter_bytes():
            pass
    elapsed = time.monotonic() - started

    # Then I expect the total timeout to end it: not before it elapsed, and not much after
    assert raised.value.reason == "total timeout after 1.0s"
    assert is_transient(raised.value)
    assert 1.0 <= elapsed < 1.0 + SLACK


def test_a_server_stalling_in_the_body_is_stopped_by_the_read_timeout(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a server that sends its headers and part of the body, then goes silent
    def stall(handler: BaseHTTPRequestHandler) -> None:
        start_chunked(handler)
        write_chunk(handler, b"a,b\n")
        server.stopping.wait(30)

    url = server.route("/stall.csv", stall)
    fetcher = make_fetcher(read_timeout=0.5)

    # When I read it
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as raised, fetcher.stream(url) as response:
        for _ in response.iter_bytes():
            pass
    elapsed = time.monotonic() - started

    # Then I expect a transient read timeout
    assert raised.value.reason == "read timeout after 0.5s"
    assert is_transient(raised.value)
    assert 0.5 <= elapsed < 0.5 + SLACK


def test_a_server_that_never_answers_is_stopped_by_the_read_timeout(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a server that accepts the request and never answers
    def never_answer(handler: BaseHTTPRequestHandler) -> None:
        server.stopping.wait(30)

    url = server.route("/silent.csv", never_answer)
    fetcher = make_fetcher(read_timeout=0.5)

    # When I fetch it
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as raised, fetcher.stream(url):
        pass

    # Then I expect a read timeout, raised on entry
    assert raised.value.reason == "read timeout after 0.5s"
    assert time.monotonic() - started < 0.5 + SLACK


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
def test_server_errors_and_throttling_are_transient(
    server: LocalServer, make_fetcher: MakeFetcher, status: int
) -> None:
    # Given a server answering with the status
    url = server.route("/export.csv", lambda handler: respond(handler, status, b"try later"))

    # When I fetch it
    with pytest.raises(TransientFetchError) as raised, make_fetcher().stream(url):
        pass

    # Then I expect a transient error naming the status
    assert raised.value.status_code == status
    assert raised.value.reason.startswith(f"HTTP {status} ")
    assert is_transient(raised.value)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "HTTP 400 Bad Request"),
        (401, "HTTP 401 Unauthorized"),
        (403, "HTTP 403 Forbidden"),
        (404, "HTTP 404 Not Found"),
        (410, "HTTP 410 Gone"),
    ],
)
def test_client_errors_are_permanent(
    server: LocalServer, make_fetcher: MakeFetcher, status: int, reason: str
) -> None:
    # Given a server answering with the status
    url = server.route("/export.csv", lambda handler: respond(handler, status))

    # When I fetch it
    with pytest.raises(PermanentFetchError) as raised, make_fetcher().stream(url):
        pass

    # Then I expect a permanent error with the status and its phrase
    assert raised.value.status_code == status
    assert raised.value.reason == reason
    assert not is_transient(raised.value)


def test_a_truncated_body_is_transient(server: LocalServer, make_fetcher: MakeFetcher) -> None:
    # Given a server that announces 100 bytes, sends 50 and hangs up
    def truncate(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b"x" * 50)
        handler.close_connection = True

    url = server.route("/export.csv", truncate)

    # When I read it
    with pytest.raises(TransientFetchError) as raised, make_fetcher().stream(url) as response:
        for _ in response.iter_bytes():
            pass

    # Then I expect a transient error saying the response was cut short
    assert raised.value.reason.startswith("truncated or malformed response")


def test_a_refused_connection_is_transient(make_fetcher: MakeFetcher) -> None:
    # Given a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    # When I fetch from it
    with pytest.raises(TransientFetchError) as raised, make_fetcher().stream(f"http://127.0.0.1:{port}/"):
        pass

    # Then I expect a transient connection failure
    assert raised.value.reason.startswith("connection failed")
    assert raised.value.status_code is None


def test_a_private_address_is_refused_before_connecting(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a fetcher that does not allow private addresses, and a served path on 127.0.0.1
    url = server.route("/export.csv", body_handler(b"a,b\n"))
    fetcher = make_fetcher(allow_private=False)

    # When I fetch it
    with pytest.raises(PermanentFetchError) as raised, fetcher.stream(url):
        pass

    # Then I expect a permanent refusal, and the server never to have been asked
    assert "loopback" in raised.value.reason
    assert server.requests == []


def test_a_redirect_is_followed_with_the_credentials_on_the_same_origin(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a path that redirects to another path of the same server
    server.route("/final.csv", body_handler(b"a,b\n"))
    url = server.route("/export.csv", redirect_handler("/final.csv", status=301))

    # When I fetch it with credentials
    response, body = fetch(make_fetcher(), url, username="alice", password="s3cret")

    # Then I expect the final body, and the credentials sent on both hops
    assert body == b"a,b\n"
    assert response.status_code == 200
    assert server.paths_seen() == ["/export.csv", "/final.csv"]
    assert all("authorization" in request.headers for request in server.requests)


def test_a_redirect_to_another_origin_drops_the_credentials(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a path that redirects to another origin ("localhost" rather than "127.0.0.1")
    server.route("/final.csv", body_handler(b"a,b\n"))
    url = server.route("/export.csv", redirect_handler(server.url("/final.csv", host="localhost")))

    # When I fetch it with credentials
    _, body = fetch(make_fetcher(), url, username="alice", password="s3cret")

    # Then I expect the credentials on the first hop only
    assert body == b"a,b\n"
    first, second = server.requests
    assert "authorization" in first.headers
    assert "authorization" not in second.headers


def test_a_redirect_to_a_private_address_is_refused(make_fetcher: MakeFetcher) -> None:
    # Given a server on 127.0.0.2, taken for a public address, whose name "public.test" resolves to it
    resolve = ScriptedResolver({"public.test": [["127.0.0.2"]]})
    fetcher = make_fetcher(allow_private=False, resolve=resolve, rules=taken_for_public("127.0.0.2"))
    with running_server("127.0.0.2") as public:
        # And a path there that redirects to "localhost", a loopback address
        public.route("/export.csv", redirect_handler(public.url("/secret", host="localhost")))

        # When I fetch it
        with (
            pytest.raises(PermanentFetchError) as raised,
            fetcher.stream(public.url("/export.csv", "public.test")),
        ):
            pass

    # Then I expect the hop refused before it was made
    assert "loopback" in raised.value.reason
    assert public.paths_seen() == ["/export.csv"]


def test_at_most_five_redirects_are_followed(server: LocalServer, make_fetcher: MakeFetcher) -> None:
    # Given a chain of redirects /hop/0 -> /hop/1 -> ... -> /hop/6, which answers
    for hop in range(6):
        server.route(f"/hop/{hop}", redirect_handler(f"/hop/{hop + 1}"))
    server.route("/hop/6", body_handler(b"end"))
    fetcher = make_fetcher()

    # When I fetch from five redirects away, then from six
    _, body = fetch(fetcher, server.url("/hop/1"))
    with pytest.raises(PermanentFetchError) as raised, fetcher.stream(server.url("/hop/0")):
        pass

    # Then I expect the first to arrive and the second to be refused
    assert body == b"end"
    assert raised.value.reason == "more than 5 redirects"


def test_a_redirect_body_is_never_read(server: LocalServer, make_fetcher: MakeFetcher) -> None:
    # Given a redirect that announces a huge body and never sends it
    def redirect_with_body(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", "/final.csv")
        handler.send_header("Content-Length", str(10**12))
        handler.end_headers()
        server.stopping.wait(30)

    server.route("/final.csv", body_handler(b"a,b\n"))
    url = server.route("/export.csv", redirect_with_body)

    # When I fetch it, with a read timeout longer than the test may take
    _, body = fetch(make_fetcher(read_timeout=30.0), url)

    # Then I expect the redirect to have been followed without waiting for its body
    assert body == b"a,b\n"


def test_a_gzip_body_is_decoded(server: LocalServer, make_fetcher: MakeFetcher) -> None:
    # Given a gzip-encoded CSV
    body = b"a068d62a,30.04.2025 11:38:14\n" * 500
    url = server.route("/export.csv", body_handler(gzip.compress(body), {"Content-Encoding": "gzip"}))

    # When I fetch it
    response, received = fetch(make_fetcher(), url)

    # Then I expect it decoded, with the size and hash of the decoded body, having asked only for gzip
    assert received == body
    assert response.bytes_read == len(body)
    assert response.sha256 == hashlib.sha256(body).hexdigest()
    assert server.requests[0].headers["accept-encoding"] == "gzip"


def test_a_gzip_bomb_is_capped_without_inflating_it_in_memory(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given 50 MB of zeros gzipped into about 50 kB
    bomb = gzip.compress(b"\0" * 50_000_000)
    url = server.route("/export.csv", body_handler(bomb, {"Content-Encoding": "gzip"}))
    fetcher = make_fetcher(max_bytes=1_000_000)

    # When I read it
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLarge), fetcher.stream(url) as response:
            for _ in response.iter_bytes():
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # Then I expect the cap to stop it with little memory used along the way
    assert peak < 4_000_000


def test_an_unsupported_content_encoding_is_permanent(server: LocalServer, make_fetcher: MakeFetcher) -> None:
    # Given a body in a coding we did not ask for
    url = server.route("/export.csv", body_handler(b"\x00\x01", {"Content-Encoding": "br"}))

    # When I fetch it
    with pytest.raises(PermanentFetchError) as raised, make_fetcher().stream(url):
        pass

    # Then I expect a permanent error naming the coding
    assert raised.value.reason == "unsupported Content-Encoding 'br'"


def test_cookies_are_not_kept_between_fetches(server: LocalServer, make_fetcher: MakeFetcher) -> None:
    # Given one company's server setting a cookie
    url = server.route("/export.csv", body_handler(b"", {"Set-Cookie": "session=company-a; Path=/"}))
    fetcher = make_fetcher()

    # When the same fetcher fetches twice
    fetch(fetcher, url)
    fetch(fetcher, url)

    # Then I expect no cookie to have been sent back
    assert all("cookie" not in request.headers for request in server.requests)


def test_connections_are_reused_between_fetches(server: LocalServer, make_fetcher: MakeFetcher) -> None:
    # Given a served path
    url = server.route("/export.csv", body_handler(b"a,b\n"))
    fetcher = make_fetcher()

    # When one fetcher fetches it twice
    fetch(fetcher, url)
    fetch(fetcher, url)

    # Then I expect both requests on the same connection
    first, second = server.requests
    assert first.client_port == second.client_port


def test_passwords_never_appear_in_errors(server: LocalServer, make_fetcher: MakeFetcher) -> None:
    # Given a server refusing the credentials, and a URL carrying credentials to a private address
    url = server.route("/export.csv", lambda handler: respond(handler, 401))
    private_url = server.url("/export.csv").replace("http://", "http://alice:s3cret@")

    # When I fetch both
    errors: list[FetchError] = []
    for fetcher, target in ((make_fetcher(), url), (make_fetcher(allow_private=False), private_url)):
        with (
            pytest.raises(FetchError) as raised,
            fetcher.stream(
                target, credentials=Credentials.scoped(target, "alice", "s3cret", allow_http=True)
            ),
        ):
            pass
        errors.append(raised.value)

    # Then I expect neither error to mention the password
    assert errors[0].reason == "HTTP 401 Unauthorized"
    assert all("s3cret" not in str(error) and "s3cret" not in error.reason for error in errors)


def test_only_transient_fetch_errors_are_transient() -> None:
    # Given errors of each kind
    # When I classify them
    # Then I expect only the transient fetch errors, timeouts included, to be retried
    assert is_transient(TransientFetchError("HTTP 503 Service Unavailable", status_code=503))
    assert is_transient(FetchTimeout("read timeout after 30.0s"))
    assert not is_transient(PermanentFetchError("HTTP 404 Not Found", status_code=404))
    assert not is_transient(ResponseTooLarge("body exceeds 10 bytes"))
    assert not is_transient(ValueError("not a fetch error"))


def test_fetch_errors_survive_pickling() -> None:
    # Given a fetch error with a status code
    error = TransientFetchError("HTTP 503 Service Unavailable", status_code=503)

    # When it travels to another process
    copy = pickle.loads(pickle.dumps(error))

    # Then I expect it whole
    assert (type(copy), copy.reason, copy.status_code, str(copy)) == (
        TransientFetchError,
        "HTTP 503 Service Unavailable",
        503,
        "HTTP 503 Service Unavailable",
    )


@pytest.mark.parametrize("field", ["connect_timeout", "read_timeout", "total_timeout", "max_bytes"])
def test_limits_must_be_positive(field: str) -> None:
    # Given a zero limit
    # When I build limits with it
    # Then I expect a ValueError naming it
    limits: dict[str, Any] = {field: 0}
    with pytest.raises(ValueError, match=field):
        FetchLimits(**limits)


def test_headers_trickled_a_byte_at_a_time_are_stopped_by_the_total_timeout(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a server that sends its response headers a byte at a time, each byte within the read timeout
    url = server.route("/trickle.csv", trickle_headers(server))
    fetcher = make_fetcher(total_timeout=1.0, read_timeout=5.0)

    # When I fetch it
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as raised, fetcher.stream(url):
        pass

    # Then I expect the total timeout to end it while the headers are still coming (they take 80 s)
    assert raised.value.reason == "total timeout after 1.0s"
    assert is_transient(raised.value)
    assert time.monotonic() - started < 1.0 + SLACK


def test_the_deadline_bounds_each_fetch_not_the_fetcher(
    server: LocalServer, make_fetcher: MakeFetcher
) -> None:
    # Given a fetcher whose first fetch ran out of time on a trickling server
    url = server.route("/trickle.csv", trickle_headers(server))
    server.route("/ok.csv", body_handler(b"a,b\n"))
    fetcher = make_fetcher(total_timeout=1.0, read_timeout=5.0)
    with pytest.raises(FetchTimeout), fetcher.stream(url):
        pass

    # When I fetch a quick resource with it afterwards
    _, body = fetch(fetcher, server.url("/ok.csv"))

    # Then I expect it to be read whole: the deadline of the first fetch does not outlive it
    assert body == b"a,b\n"
