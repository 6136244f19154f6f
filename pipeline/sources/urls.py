"""URL safety: keep a company-supplied URL from reaching the pipeline's own network.

A company's CSV URL (and every transcript URL in its CSV) is data from outside. Fetched naively, a URL such as
``http://169.254.169.254/`` or ``http://localhost:15672/`` would turn the importer against the cloud metadata
service or the broker's management API. :func:`check_url` refuses such URLs before any connection is made;
the fetcher runs it again on every redirect hop.

URLs are parsed with :class:`httpx.URL`, the parser the fetcher itself uses, so the host that is checked is
the host that is connected to. What this does not stop is DNS rebinding between the check and httpx's own
lookup; an egress firewall remains the real boundary, and this is defence in depth.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

import httpx

from pipeline.errors import PermanentError

__all__ = ["RefusedUrl", "Resolver", "check_url", "redact_url", "resolve_host", "validate_url_syntax"]

#: Resolves ``(host, port)`` to the IP address strings a connection could go to.
Resolver = Callable[[str, int], Iterable[str]]

_DEFAULT_PORTS = {"http": 80, "https": 443}

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def check_url(url: str, *, allow_private: bool, resolve: Resolver = resolve_host) -> None:
    """Refuse ``url`` unless it is http(s) with a host whose every address is public.

    With ``allow_private`` only the syntax is checked (no DNS lookup), for deployments whose companies
    legitimately live on an internal network.

    Raises:
      RefusedUrl: When the URL is malformed, not http/https, has no host, cannot be resolved, or any of the
        addresses its host resolves to is private, loopback, link-local, multicast, reserved, unspecified or
        otherwise not globally routable (IPv4-mapped and 6to4 IPv6 addresses are judged by their IPv4 part).
    """
    parsed = _parse(url)
    if allow_private:
        return
    # The raw (IDNA-encoded, unbracketed) host is exactly what httpx hands to the resolver when it connects.
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    try:
        addresses = [ipaddress.ip_address(address) for address in resolve(host, port)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise RefusedUrl(url, f"cannot resolve host {host!r}: {exc}") from exc
    if not addresses:
        raise RefusedUrl(url, f"cannot resolve host {host!r}: no addresses")
    for address in addresses:
        kind = _non_public_kind(address)
        if kind is not None:
            raise RefusedUrl(url, f"host {host!r} resolves to {address}, a {kind} address")


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


def _non_public_kind(address: _IPAddress) -> str | None:
    """Name the non-public class ``address`` falls in, or ``None`` for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        # Python 3.11 judges ::ffff:a.b.c.d as "reserved" whatever a.b.c.d is; judge the IPv4 address instead.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return _non_public_kind(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        # Catches what the flags above miss, such as the carrier-grade NAT range 100.64.0.0/10.
        ("non-global", not address.is_global),
    )
    return next((kind for kind, matches in checks if matches), None)
