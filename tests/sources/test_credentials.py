"""A company's credentials go to its own origins only: real servers on 127.0.0.2 (its own) and 127.0.0.3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pipeline.sources.credentials import Credentials, CredentialsOverHttp, normalize_origin, origin_of
from pipeline.sources.http_fetch import Fetcher, FetchLimits, PermanentFetchError
from tests.sources.httpserver import LocalServer, respond, running_server


def ok(handler: Any) -> None:
    respond(handler, 200, b"a,b\n")


@pytest.fixture
def company() -> Iterator[LocalServer]:
    """The company's own server, on 127.0.0.2."""
    with running_server("127.0.0.2") as server:
        yield server


@pytest.fixture
def elsewhere() -> Iterator[LocalServer]:
    """Another host, on 127.0.0.3, named by a row of the company's CSV."""
    with running_server("127.0.0.3") as server:
        yield server


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchLimits(allow_private=True)) as fetcher:
        yield fetcher


def get(fetcher: Fetcher, url: str, credentials: Credentials | None) -> bytes:
    with fetcher.stream(url, credentials=credentials) as response:
        return b"".join(response.iter_bytes())


def test_credentials_reach_the_csv_origin_but_not_another_host(
    company: LocalServer, elsewhere: LocalServer, fetcher: Fetcher
) -> None:
    # Given a company whose CSV is on 127.0.0.2 (plain http allowed), and a transcript on 127.0.0.3
    csv_url = company.route("/sessions.csv", ok)
    transcript_url = elsewhere.route("/chats/1.txt", ok)
    credentials = Credentials.scoped(csv_url, "acme", "s3cret", allow_http=True)

    # When both are fetched with the company's credentials
    get(fetcher, csv_url, credentials)
    get(fetcher, transcript_url, credentials)

    # Then the header reached the company's server only
    assert company.requests[0].headers["authorization"] == httpx.BasicAuth("acme", "s3cret")._auth_header
    assert "authorization" not in elsewhere.requests[0].headers


def test_credentials_reach_a_transcript_origin_the_company_lists(
    company: LocalServer, elsewhere: LocalServer, fetcher: Fetcher
) -> None:
    # Given a company that lists 127.0.0.3 (its port included) as a transcript origin
    csv_url = company.route("/sessions.csv", ok)
    transcript_url = elsewhere.route("/chats/1.txt", ok)
    credentials = Credentials.scoped(
        csv_url, "acme", "s3cret", extra_origins=[elsewhere.url("")], allow_http=True
    )

    # When the transcript is fetched
    get(fetcher, transcript_url, credentials)

    # Then the header reached it
    assert "authorization" in elsewhere.requests[0].headers


def test_credentials_never_travel_over_plain_http_unless_allowed(
    company: LocalServer, fetcher: Fetcher
) -> None:
    # Given a company whose CSV is on plain http, with http not allowed
    csv_url = company.route("/sessions.csv", ok)
    credentials = Credentials.scoped(csv_url, "acme", "s3cret")

    # When it is fetched
    with pytest.raises(PermanentFetchError) as refused:
        get(fetcher, csv_url, credentials)

    # Then the fetch is refused before the server is asked, with the way out in the reason
    assert "not sent over plain http" in refused.value.reason
    assert "--allow-http" in refused.value.reason
    assert company.requests == []


def test_credentials_do_not_follow_a_redirect_to_another_origin_even_a_listed_one(
    company: LocalServer, elsewhere: LocalServer, fetcher: Fetcher
) -> None:
    # Given a company listing 127.0.0.3, whose CSV URL redirects there
    elsewhere.route("/sessions.csv", ok)
    csv_url = company.route(
        "/sessions.csv",
        lambda handler: respond(handler, 302, b"", {"Location": elsewhere.url("/sessions.csv")}),
    )
    credentials = Credentials.scoped(
        csv_url, "acme", "s3cret", extra_origins=[elsewhere.url("")], allow_http=True
    )

    # When it is fetched
    get(fetcher, csv_url, credentials)

    # Then the credentials went to the first hop only
    assert "authorization" in company.requests[0].headers
    assert "authorization" not in elsewhere.requests[0].headers


def test_a_401_from_a_host_that_got_no_credentials_says_why(
    company: LocalServer, elsewhere: LocalServer, fetcher: Fetcher
) -> None:
    # Given a transcript host that wants credentials the company does not send it
    transcript_url = elsewhere.route("/chats/1.txt", lambda handler: respond(handler, 401))
    credentials = Credentials.scoped(company.url("/sessions.csv"), "acme", "s3cret", allow_http=True)

    # When the transcript is fetched
    with pytest.raises(PermanentFetchError) as refused:
        get(fetcher, transcript_url, credentials)

    # Then the reason names the origin and the option that would send them
    assert refused.value.status_code == 401
    assert f"not sent to http://127.0.0.3:{elsewhere.port}" in refused.value.reason
    assert "--transcript-origin" in refused.value.reason


def test_an_http_origin_covers_its_https_upgrade_only() -> None:
    # Given credentials scoped to an http CSV URL on the default port
    credentials = Credentials.scoped("http://acme.example/s.csv", "acme", "s3cret", allow_http=True)
    assert credentials is not None

    # Then the https origin of the same host gets them, another port or host does not
    assert credentials.auth_for(httpx.URL("https://acme.example/chats/1.txt")) is not None
    assert credentials.auth_for(httpx.URL("https://acme.example:8443/chats/1.txt")) is None
    assert credentials.auth_for(httpx.URL("https://cdn.acme.example/chats/1.txt")) is None


def test_https_needs_no_permission_and_http_does() -> None:
    # Given credentials for an https origin, and others for an http one without http allowed
    secure = Credentials.scoped("https://acme.example/s.csv", "acme", "s3cret")
    plain = Credentials.scoped("http://acme.example/s.csv", "acme", "s3cret")
    assert secure is not None and plain is not None

    # Then the first are sent (whatever the spelling of the origin), the second refused over http
    assert secure.auth_for(httpx.URL("https://ACME.example:443/chats/1.txt")) is not None
    with pytest.raises(CredentialsOverHttp, match="--allow-http"):
        plain.auth_for(httpx.URL("http://acme.example/s.csv"))


@pytest.mark.parametrize(("username", "password"), [(None, "s3cret"), ("acme", None), ("acme", "")])
def test_no_credentials_without_both_parts(username: str | None, password: str | None) -> None:
    assert Credentials.scoped("https://acme.example/s.csv", username, password) is None


def test_the_password_is_not_in_the_repr() -> None:
    assert "s3cret" not in repr(Credentials.scoped("https://acme.example/s.csv", "acme", "s3cret"))


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://CDN.example.com", "https://cdn.example.com"),
        ("https://cdn.example.com:443/", "https://cdn.example.com"),
        ("http://cdn.example.com:8080", "http://cdn.example.com:8080"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
    ],
)
def test_origins_are_normalised(given: str, origin: str) -> None:
    assert normalize_origin(given) == origin
    assert origin_of(given) == origin


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("ftp://cdn.example.com", "not an http(s) origin"),
        ("cdn.example.com", "not an http(s) origin"),
        ("https://cdn.example.com/chats", "no path"),
        ("https://cdn.example.com/?a=1", "no path"),
        ("https://user:pw@cdn.example.com", "user info"),
    ],
)
def test_an_origin_must_be_only_scheme_host_and_port(given: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")) as raised:
        normalize_origin(given)
    assert "pw" not in str(raised.value)
