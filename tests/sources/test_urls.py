from __future__ import annotations

import ipaddress
import pickle
import socket
from collections.abc import Callable

import httpx
import pytest

from pipeline.sources.urls import (
    RefusedHost,
    RefusedUrl,
    Resolver,
    checked_addresses,
    redact_url,
    resolve_host,
    validate_url_syntax,
)

DEFAULT_PORTS = {"http": 80, "https": 443}


def check_url(url: str, *, allow_private: bool, resolve: Resolver = resolve_host) -> None:
    """The fetcher's checks of a URL: its syntax, then (as its transport does) every address of its host."""
    parsed = httpx.URL(validate_url_syntax(url))
    host, port = parsed.raw_host.decode("ascii"), parsed.port or DEFAULT_PORTS[parsed.scheme]
    try:
        checked_addresses(host, port, allow_private=allow_private, resolve=resolve)
    except RefusedHost as exc:
        raise RefusedUrl(url, exc.reason) from exc


def resolving_to(*addresses: str) -> Callable[[str, int], list[str]]:
    """A resolver that answers every host with ``addresses``, recording what it was asked."""

    def resolve(host: str, port: int) -> list[str]:
        resolve.asked.append((host, port))  # type: ignore[attr-defined]
        return list(addresses)

    resolve.asked = []  # type: ignore[attr-defined]
    return resolve


def never_resolve(host: str, port: int) -> list[str]:
    raise AssertionError(f"no DNS lookup expected, got {host}:{port}")


def test_a_public_https_url_passes() -> None:
    # Given a host resolving to public IPv4 and IPv6 addresses
    resolve = resolving_to("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")

    # When I check a URL on it
    check_url("https://example.com/jumbo/chats", allow_private=False, resolve=resolve)

    # Then I expect it accepted, after resolving the host on the scheme's default port
    assert resolve.asked == [("example.com", 443)]  # type: ignore[attr-defined]


def test_the_resolver_is_asked_for_the_explicit_port() -> None:
    # Given a public host
    resolve = resolving_to("93.184.215.14")

    # When I check a URL with an explicit port
    check_url("http://example.com:8080/chats", allow_private=False, resolve=resolve)

    # Then I expect the lookup to be for that port
    assert resolve.asked == [("example.com", 8080)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("198.18.0.1", "private"),
        ("100.64.0.1", "non-global"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("4000::1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::", "loopback"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    # Given a host resolving to a non-public address
    resolve = resolving_to(address)

    # When I check a URL on it
    with pytest.raises(RefusedUrl) as raised:
        check_url("http://internal.example/", allow_private=False, resolve=resolve)

    # Then I expect it refused, naming the address and its kind
    shown = ipaddress.ip_address(address)
    assert raised.value.reason == f"host 'internal.example' resolves to {shown}, a {kind} address"


def test_an_ipv4_mapped_public_address_passes() -> None:
    # Given a host resolving to an IPv4-mapped public address (which Python 3.11 calls "reserved")
    # When I check a URL on it
    # Then I expect it accepted
    check_url("http://example.com/", allow_private=False, resolve=resolving_to("::ffff:8.8.8.8"))


def test_a_host_is_refused_when_any_of_its_addresses_is_private() -> None:
    # Given a host resolving to a public and a private address
    resolve = resolving_to("93.184.215.14", "10.0.0.7")

    # When I check a URL on it
    # Then I expect it refused for the private one
    with pytest.raises(RefusedUrl, match=r"10\.0\.0\.7, a private address"):
        check_url("http://example.com/", allow_private=False, resolve=resolve)


def test_the_system_resolver_refuses_localhost_and_ip_literals() -> None:
    # Given the default resolver
    # When I check localhost and a loopback literal
    # Then I expect both refused as loopback
    for url in ("http://localhost:5672/", "http://127.0.0.1/", "http://[::1]/"):
        with pytest.raises(RefusedUrl, match="loopback"):
            check_url(url, allow_private=False)


def test_an_unresolvable_host_is_refused() -> None:
    # Given a resolver that fails, and one that finds nothing
    def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # When I check a URL with each
    # Then I expect it refused as unresolvable
    for resolve in (failing, resolving_to()):
        with pytest.raises(RefusedUrl, match=r"cannot resolve host 'nowhere\.example'"):
            check_url("https://nowhere.example/", allow_private=False, resolve=resolve)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "link-local"),
        ("169.254.170.2", "link-local"),
        ("fe80::1", "link-local"),
        ("100.100.100.200", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("192.0.0.192", "cloud metadata"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:a9fe:a9fe::", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_link_local_and_metadata_addresses_are_refused_even_with_private_networks_allowed(
    address: str, kind: str
) -> None:
    # Given a host resolving to a metadata, link-local or otherwise never legitimate address
    resolve = resolving_to(address)

    # When I check a URL on it with private networks allowed
    with pytest.raises(RefusedUrl) as raised:
        check_url("http://internal.example/", allow_private=True, resolve=resolve)

    # Then I expect it refused for its kind
    shown = ipaddress.ip_address(address)
    assert raised.value.reason == f"host 'internal.example' resolves to {shown}, a {kind} address"


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "100.100.100.200", "[fd00:ec2::254]", "[fe80::1]", "[::ffff:a9fe:a9fe]"]
)
def test_a_metadata_address_literal_is_refused_with_private_networks_allowed(address: str) -> None:
    # Given a URL naming a metadata or link-local address directly
    # When I check it with private networks allowed
    # Then I expect it refused without a DNS lookup
    with pytest.raises(RefusedUrl):
        check_url(f"http://{address}/latest/meta-data/", allow_private=True, resolve=never_resolve)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "192.168.1.1", "100.64.0.1", "fd12::1", "::1"])
def test_private_networks_allowed_accept_private_and_loopback_addresses(address: str) -> None:
    # Given a host resolving to a private or loopback address
    # When I check a URL on it with private networks allowed
    # Then I expect it accepted
    check_url("http://internal.example/", allow_private=True, resolve=resolving_to(address))


def test_allow_private_accepts_internal_hosts_without_resolving() -> None:
    # Given a resolver that must not be called
    # When I check an internal URL with private addresses allowed
    # Then I expect it accepted without a DNS lookup
    check_url("http://10.0.0.7:8080/export.csv", allow_private=True, resolve=never_resolve)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.csv",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://example.com/",
        "example.com",
    ],
)
def test_only_http_and_https_are_accepted(url: str) -> None:
    # Given a URL of another scheme, or none
    # When I check it, even with private addresses allowed
    # Then I expect it refused for its scheme
    with pytest.raises(RefusedUrl, match="is not http or https"):
        check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["http:///path", "https://:443/", "http://"])
def test_a_host_is_required(url: str) -> None:
    # Given an http URL without a host
    # When I check it
    # Then I expect it refused
    with pytest.raises(RefusedUrl, match="has no host"):
        check_url(url, allow_private=True)


def test_a_port_out_of_range_is_refused() -> None:
    # Given a URL with port 99999
    # When I check it
    # Then I expect it refused before any lookup
    with pytest.raises(RefusedUrl, match="port 99999 is out of range"):
        check_url("http://example.com:99999/", allow_private=False, resolve=never_resolve)


def test_credentials_never_appear_in_a_refusal() -> None:
    # Given URLs with credentials: one refused for its address, one that does not even parse
    urls = ["http://alice:s3cret@127.0.0.1/export.csv", "http://alice:s3/cret@example.com/"]

    # When I check them
    refusals = []
    for url in urls:
        with pytest.raises(RefusedUrl) as raised:
            check_url(url, allow_private=False)
        refusals.append(raised.value)

    # Then I expect neither the user nor the password anywhere in the errors
    for refusal in refusals:
        for text in (str(refusal), refusal.reason, refusal.url):
            assert "alice" not in text
            assert "s3" not in text
    assert refusals[0].url == "http://127.0.0.1/export.csv"


def test_redact_url_removes_only_the_userinfo() -> None:
    # Given URLs with and without credentials
    # When I redact them
    # Then I expect the userinfo gone and the rest intact
    assert redact_url("https://bob:pw@example.com:8443/a.csv?x=1") == "https://example.com:8443/a.csv?x=1"
    assert redact_url("https://example.com/a.csv") == "https://example.com/a.csv"


def test_validate_url_syntax_checks_without_dns() -> None:
    # Given a well-formed URL on a host that does not exist, padded with whitespace
    # When I validate its syntax
    url = validate_url_syntax("  https://does-not-exist.invalid/export.csv \n")

    # Then I expect it accepted and stripped
    assert url == "https://does-not-exist.invalid/export.csv"


def test_validate_url_syntax_refuses_what_check_url_refuses() -> None:
    # Given URLs with a bad scheme and with no host
    # When I validate them
    # Then I expect the same RefusedUrl, which is a ValueError
    for url in ("ftp://example.com/", "https://"):
        with pytest.raises(RefusedUrl):
            validate_url_syntax(url)
    assert issubclass(RefusedUrl, ValueError)


def test_a_refusal_survives_pickling() -> None:
    # Given a refusal
    refusal = RefusedUrl("ftp://bob:pw@example.com/", "scheme 'ftp' is not http or https")

    # When it travels to another process
    copy = pickle.loads(pickle.dumps(refusal))

    # Then I expect it whole, still without the credentials
    assert (copy.url, copy.reason, str(copy)) == (
        "ftp://example.com/",
        "scheme 'ftp' is not http or https",
        "refused URL ftp://example.com/: scheme 'ftp' is not http or https",
    )
