"""URL safety: keep a company-supplied URL from reaching the pipeline's own network.

A company's CSV URL (and every transcript URL in its CSV) is data from outside. Fetched naively, a URL such as
``http://169.254.169.254/`` or ``http://localhost:15672/`` would turn the importer against the cloud metadata
service or the broker's management API. The rules live here, in two tiers:

* always refused, whatever the settings: unspecified, link-local (``169.254.0.0/16``, ``fe80::/10``),
  multicast and reserved addresses, and the cloud metadata addresses that fall outside those ranges
  (:data:`METADATA_ADDRESSES`);
* refused unless private networks are allowed (globally or for the company): loopback, private, carrier-grade
  NAT and every other address that is not globally routable.

IPv4-mapped, 6to4 and NAT64 IPv6 addresses are judged by the IPv4 address they carry.
:func:`checked_addresses` resolves a host once and applies the rules; the fetcher's transport
(:mod:`pipeline.sources.transport`) calls it for every connection it opens and connects only to the addresses
it returned, so DNS rebinding between the check and the connection is not possible. An egress firewall remains
the outer boundary (``docs/security.md``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Protocol

import httpx

from pipeline.errors import PermanentError

__all__ = [
    "METADATA_ADDRESSES",
    "AddressRules",
    "IPAddress",
    "RefusedHost",
    "RefusedUrl",
    "Resolver",
    "checked_addresses",
    "redact_url",
    "refused_kind",
    "resolve_host",
    "validate_url_syntax",
]

#: Resolves ``(host, port)`` to the IP address strings a connection could go to.
Resolver = Callable[[str, int], Iterable[str]]

_DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata and platform endpoints outside the link-local ranges: Alibaba Cloud, the AWS IPv6 instance
#: metadata service, Azure's WireServer and Oracle Cloud. Refused even when private networks are allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("100.100.100.200", "fd00:ec2::254", "168.63.129.16", "192.0.0.192")
)


class AddressRules(Protocol):
    """Names the class of an address that refuses it, or returns ``None``; :func:`refused_kind` is the one."""

    def __call__(self, address: IPAddress, *, allow_private: bool) -> str | None: ...


#: IPv6 prefix of NAT64 (RFC 6052): its last 32 bits are the IPv4 address actually reached.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class RefusedHost(PermanentError, ValueError):
    """Raised when a host must not be connected to.

    Parameters:
      host(str): The host name or address.
      reason(str): Why, for a human, such as "host 'x' resolves to 10.0.0.1, a private address".
    """

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(host, reason)

    def __str__(self) -> str:
        return self.reason


class RefusedUrl(PermanentError, ValueError):
    """Raised when a URL must not be fetched.

    Parameters:
      url(str): The refused URL, with any ``user:password@`` part removed.
      reason(str): Why, for a human; never holds credentials.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = redact_url(url)
        self.reason = reason
        # Both in args, so that the error survives pickling (to another process) whole.
        super().__init__(self.url, reason)

    def __str__(self) -> str:
        return f"refused URL {self.url}: {self.reason}"


def redact_url(url: str) -> str:
    """Return ``url`` without its userinfo (``user:password@``), for messages and logs."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        # An unparseable URL may hold a password with "/" or "?" in it, so cut up to the very last "@".
        scheme, sep, rest = url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}" if sep and "@" in rest else url
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url


def resolve_host(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver; the default :data:`Resolver`."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def validate_url_syntax(url: str) -> str:
    """Check scheme and host only (no DNS), as a command-line input check.

    Returns:
      The URL with surrounding whitespace removed.

    Raises:
      RefusedUrl: When the scheme is not http/https, the host is missing or the URL does not parse.
    """
    url = url.strip()
    _parse(url)
    return url


def checked_addresses(
    host: str, port: int, *, allow_private: bool, resolve: Resolver, rules: AddressRules | None = None
) -> list[IPAddress]:
    """Resolve ``host`` once and return its addresses, if every one of them may be connected to.

    ``host`` is the raw (IDNA-encoded, unbracketed) host, exactly what a connection would look up. An IP
    address is taken as it is, without asking the resolver.

    Raises:
      RefusedHost: When the host cannot be resolved or any of its addresses is refused.
    """
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(address) for address in resolve(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise RefusedHost(host, f"cannot resolve host {host!r}: {exc}") from exc
    if not addresses:
        raise RefusedHost(host, f"cannot resolve host {host!r}: no addresses")
    for address in addresses:
        kind = (rules or refused_kind)(address, allow_private=allow_private)
        if kind is not None:
            raise RefusedHost(host, f"host {host!r} resolves to {address}, a {kind} address")
    return addresses


def refused_kind(address: IPAddress, *, allow_private: bool) -> str | None:
    """Name the class of ``address`` that refuses it ("link-local", "private"...), or ``None`` to allow it."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return refused_kind(embedded, allow_private=allow_private)
    always = (
        ("cloud metadata", address in METADATA_ADDRESSES),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        # ::1 lies in the reserved ::/8, yet is the loopback address that private networks allow.
        ("reserved", address.is_reserved and not address.is_loopback),
    )
    kind = next((kind for kind, matches in always if matches), None)
    if kind is not None or allow_private:
        return kind
    unless_allowed = (
        ("loopback", address.is_loopback),
        ("private", address.is_private),
        # Catches what the flags above miss, such as the carrier-grade NAT range 100.64.0.0/10.
        ("non-global", not address.is_global),
    )
    return next((kind for kind, matches in unless_allowed if matches), None)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or NAT64 IPv6 address reaches, if it is one."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    # Python 3.11 judges ::ffff:a.b.c.d as "reserved" whatever a.b.c.d is; judge the IPv4 address instead.
    return address.ipv4_mapped or address.sixtofour


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        # httpx quotes the offending part, which in "user:pa/ss@host" would be a piece of the password.
        detail = "" if "@" in url else f": {exc}"
        raise RefusedUrl(url, f"malformed URL{detail}") from exc
    if parsed.scheme not in _DEFAULT_PORTS:
        raise RefusedUrl(url, f"scheme {parsed.scheme!r} is not http or https")
    if not parsed.raw_host:
        raise RefusedUrl(url, "the URL has no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise RefusedUrl(url, f"port {parsed.port} is out of range")
    return parsed
