"""An httpx transport whose connections go to the addresses that were checked.

httpx resolves a host itself when it connects. A URL check that resolved the host earlier could be answered
with a public address and httpx, a moment later, with an internal one (DNS rebinding). Here the network
backend is the only place a host is resolved: for every connection it opens, it resolves the host once, checks
every address (:func:`pipeline.sources.urls.checked_addresses`) and connects to a checked address, never to a
second answer.

Only the TCP connection changes. TLS still uses the URL's host name, for SNI and for the certificate check
(httpcore starts TLS on the returned stream with ``server_hostname`` set to the request's host), and the Host
header comes from the request as before.

A pool serves one policy: a connection checked with private networks allowed is never reused by a request
that does not allow them, because such requests use another transport (see
:class:`pipeline.sources.http_fetch.Fetcher`).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable

import httpcore
import httpx

from pipeline.sources.urls import AddressRules, RefusedHost, Resolver, checked_addresses, refused_kind

__all__ = ["CheckedNetworkBackend", "CheckedTransport"]

_SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class CheckedNetworkBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to checked addresses of a host, resolved once per connection.

    Parameters:
      allow_private(bool): Allow private, loopback and other internal addresses (never link-local or
        metadata addresses).
      resolve(Resolver): The one resolver of every connection.
      rules(AddressRules): Which addresses are refused; tests inject their own.

    Raises:
      RefusedHost: From :meth:`connect_tcp`, before any connection is attempted, when the host cannot be
        resolved or one of its addresses is refused.
    """

    def __init__(self, *, allow_private: bool, resolve: Resolver, rules: AddressRules = refused_kind) -> None:
        self.allow_private = allow_private
        self._resolve = resolve
        self._rules = rules
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = checked_addresses(
            host, port, allow_private=self.allow_private, resolve=self._resolve, rules=self._rules
        )
        options = list(socket_options or ())
        failure: httpcore.ConnectError | None = None
        # Like socket.create_connection: each checked address in turn, the first to accept wins.
        for address in addresses:
            try:
                return self._sockets.connect_tcp(str(address), port, timeout, local_address, options)
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None, "checked_addresses returns at least one address"
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        raise RefusedHost(path, "unix sockets are never connected to")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class CheckedTransport(httpx.HTTPTransport):
    """An :class:`httpx.HTTPTransport` whose connections are opened by ``backend``.

    Parameters:
      backend(httpcore.NetworkBackend): A :class:`CheckedNetworkBackend`, or a backend wrapping one (the
        fetcher bounds it by each fetch's deadline, :class:`pipeline.sources.deadlines.DeadlineBackend`).
      verify(ssl.SSLContext | bool): TLS verification, as for httpx; tests pass a context trusting their CA.
    """

    def __init__(self, backend: httpcore.NetworkBackend, *, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        # httpx 0.28 has no parameter for the network backend: the pool it built is replaced by the same
        # pool (httpx's default limits) on our backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )
