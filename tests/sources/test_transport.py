"""Outgoing connections go to the address that was checked: rebinding, SNI and Host, refusal before connect.

Real servers on 127.0.0.2 and 127.0.0.3. A scripted resolver plays DNS; where a test needs a public server,
127.0.0.2 is taken for one (``taken_for_public``), so that no test ever connects outside 127.0.0.0/8.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpcore
import pytest

from pipeline.sources.http_fetch import Fetcher, FetchLimits, PermanentFetchError
from pipeline.sources.transport import CheckedNetworkBackend
from pipeline.sources.urls import RefusedHost
from tests.sources.egress import (
    ScriptedResolver,
    running_tls_server,
    self_signed_certificate,
    servers_on_one_port,
    taken_for_public,
)
from tests.sources.httpserver import respond, running_server


def ok(handler: Any) -> None:
    respond(handler, 200, b"a,b\n")


@pytest.fixture
def tcp_connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Every TCP connection httpcore opens, as (address, port), recorded before it is made."""
    made: list[tuple[str, int]] = []
    connect = httpcore.SyncBackend.connect_tcp

    def recording(self: httpcore.SyncBackend, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        made.append((host, port))
        return connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", recording)
    yield made


def body_of(fetcher: Fetcher, url: str, **kwargs: Any) -> bytes:
    with fetcher.stream(url, **kwargs) as response:
        return b"".join(response.iter_bytes())


def test_a_rebinding_host_is_connected_to_at_its_checked_address_then_refused() -> None:
    # Given "rebind.test", whose first answer is 127.0.0.2 (taken for public) and every later one 127.0.0.3
    resolve = ScriptedResolver({"rebind.test": [["127.0.0.2"], ["127.0.0.3"]]})
    rules = taken_for_public("127.0.0.2")
    with servers_on_one_port("127.0.0.2", "127.0.0.3") as (public, internal):
        public.route("/export.csv", ok)
        internal.route("/export.csv", ok)
        url = public.url("/export.csv", host="rebind.test")

        # When a fetcher that allows no private address fetches it, then a new fetcher fetches it again
        with Fetcher(FetchLimits(allow_private=False), resolve=resolve, rules=rules) as first:
            body = body_of(first, url)
        with (
            Fetcher(FetchLimits(allow_private=False), resolve=resolve, rules=rules) as second,
            pytest.raises(PermanentFetchError) as refused,
        ):
            body_of(second, url)

    # Then the first connection went to the checked answer, after a single lookup
    assert body == b"a,b\n"
    assert public.paths_seen() == ["/export.csv"]
    # And the second, answered 127.0.0.3, was refused before connecting: the internal server saw nothing
    assert "resolves to 127.0.0.3, a loopback address" in refused.value.reason
    assert internal.requests == []
    assert resolve.asked == ["rebind.test", "rebind.test"]


def test_the_address_resolved_for_the_connection_is_the_one_connected_to() -> None:
    # Given "rebind.test", answered 127.0.0.2 once and 127.0.0.3 afterwards, and private networks allowed
    resolve = ScriptedResolver({"rebind.test": [["127.0.0.2"], ["127.0.0.3"]]})
    with servers_on_one_port("127.0.0.2", "127.0.0.3") as (checked, other):
        checked.route("/export.csv", ok)
        other.route("/export.csv", ok)

        # When a fetcher fetches it
        with Fetcher(FetchLimits(allow_private=True), resolve=resolve) as fetcher:
            body = body_of(fetcher, checked.url("/export.csv", host="rebind.test"))

    # Then the host was resolved once, by the fetcher's resolver, and the request went to that answer
    assert body == b"a,b\n"
    assert resolve.asked == ["rebind.test"]
    assert checked.paths_seen() == ["/export.csv"]
    assert other.requests == []


def test_tls_keeps_the_host_name_for_sni_the_certificate_and_the_host_header(tmp_path: Path) -> None:
    # Given an https server on 127.0.0.2 with a certificate for "secure.test" only, trusted by the client
    certificate, key = self_signed_certificate(tmp_path, "secure.test")
    trusted = ssl.create_default_context(cafile=str(certificate))
    resolve = ScriptedResolver({"secure.test": [["127.0.0.2"]]})
    with running_tls_server("127.0.0.2", certificate, key) as (server, server_names):
        server.route("/export.csv", ok)

        # When it is fetched by name through the checked transport
        with Fetcher(FetchLimits(allow_private=True), resolve=resolve, verify=trusted) as fetcher:
            body = body_of(fetcher, server.url("/export.csv", host="secure.test"))

    # Then the connection went to the checked address, yet TLS and HTTP still named the host
    assert body == b"a,b\n"
    assert server_names == ["secure.test"]
    [request] = server.requests
    assert request.headers["host"] == f"secure.test:{server.port}"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.100.100.200", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("::ffff:169.254.169.254", "link-local"),
    ],
)
def test_metadata_and_link_local_addresses_are_refused_before_connecting_even_with_private_allowed(
    tcp_connects: list[tuple[str, int]], address: str, kind: str
) -> None:
    # Given a host resolving to a metadata or link-local address, and private networks allowed
    resolve = ScriptedResolver({"metadata.test": [[address]]})

    # When it is fetched
    with (
        Fetcher(FetchLimits(allow_private=True), resolve=resolve) as fetcher,
        pytest.raises(PermanentFetchError) as refused,
    ):
        body_of(fetcher, "http://metadata.test/latest/meta-data/")

    # Then it is refused for its kind, and no TCP connection was even attempted
    assert f"a {kind} address" in refused.value.reason
    assert tcp_connects == []


def test_an_address_literal_of_the_metadata_service_is_refused_before_connecting(
    tcp_connects: list[tuple[str, int]],
) -> None:
    # Given private networks allowed
    # When the metadata service is fetched by address
    with (
        Fetcher(FetchLimits(allow_private=True)) as fetcher,
        pytest.raises(PermanentFetchError, match="link-local"),
    ):
        body_of(fetcher, "http://169.254.169.254/latest/meta-data/")

    # Then no TCP connection was attempted
    assert tcp_connects == []


def test_a_fetch_may_allow_private_networks_for_itself_only(tcp_connects: list[tuple[str, int]]) -> None:
    # Given a server on 127.0.0.2, and a fetcher that allows no private address by default
    with running_server("127.0.0.2") as server, Fetcher(FetchLimits(allow_private=False)) as fetcher:
        url = server.route("/export.csv", ok)

        # When one fetch allows private networks (a company's own setting) and the next follows the default
        allowed = body_of(fetcher, url, allow_private=True)
        with pytest.raises(PermanentFetchError, match="loopback"):
            body_of(fetcher, url)

    # Then only the allowed fetch reached the server: the pooled connection was not reused for the other
    assert allowed == b"a,b\n"
    assert server.paths_seen() == ["/export.csv"]
    # And the one TCP connection went to the checked address (which also shows that tcp_connects records)
    assert tcp_connects == [("127.0.0.2", server.port)]


def test_a_fetch_may_deny_private_networks_the_default_allows() -> None:
    # Given a server on 127.0.0.2, and a fetcher that allows private addresses by default
    with running_server("127.0.0.2") as server, Fetcher(FetchLimits(allow_private=True)) as fetcher:
        url = server.route("/export.csv", ok)

        # When a fetch denies them (a company's own setting)
        with pytest.raises(PermanentFetchError, match="loopback"):
            body_of(fetcher, url, allow_private=False)

    # Then the server was never asked
    assert server.requests == []


def test_the_backend_tries_the_next_checked_address_when_one_refuses_the_connection() -> None:
    # Given a host answered with two loopback addresses, only the second of which has a server on the port
    with running_server("127.0.0.3") as server:
        resolve = ScriptedResolver({"two.test": [["127.0.0.2", "127.0.0.3"]]})
        backend = CheckedNetworkBackend(allow_private=True, resolve=resolve)

        # When the backend connects to it
        stream = backend.connect_tcp("two.test", server.port, timeout=5)
        stream.close()

    # Then it reached the second address, after one lookup
    assert resolve.asked == ["two.test"]


def test_one_refused_address_refuses_the_whole_answer() -> None:
    # Given a host answered with a public-looking address and a loopback one
    resolve = ScriptedResolver({"mixed.test": [["127.0.0.2", "127.0.0.3"]]})
    backend = CheckedNetworkBackend(allow_private=False, resolve=resolve, rules=taken_for_public("127.0.0.2"))

    # When the backend is asked to connect
    # Then it refuses, naming the bad address
    with pytest.raises(RefusedHost, match=re.escape("127.0.0.3, a loopback address")):
        backend.connect_tcp("mixed.test", 80)


def test_unix_sockets_are_never_connected_to() -> None:
    backend = CheckedNetworkBackend(allow_private=True, resolve=ScriptedResolver({}))
    with pytest.raises(RefusedHost, match="unix sockets"):
        backend.connect_unix_socket("/var/run/docker.sock")
