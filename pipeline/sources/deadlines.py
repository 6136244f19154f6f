"""A wall-clock deadline on every socket operation of a fetch, response headers included.

httpx's timeouts bound each read, connect or write on its own: a server that sends its response headers one
byte a second never trips a 5-second read timeout and keeps a fetch going for as long as it likes. A
:class:`DeadlineBackend` wraps httpcore's network backend so that every blocking socket call is given at most
the time left until the deadline of the fetch running in the calling thread (set with :func:`deadline`), and
a call made once it has passed raises a timeout at once. The deadline is a context variable: each thread
(each transcript fetch in a pool) has its own, and code outside a :func:`deadline` block is not bounded.
"""

from __future__ import annotations

import time
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpcore

__all__ = ["DeadlineBackend", "deadline", "past_deadline"]

_TOLERANCE = 0.001
_deadline: ContextVar[float | None] = ContextVar("fetch_deadline", default=None)


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Bound every socket operation made in this block (by this thread) by ``at``, a ``time.monotonic()``."""
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


def past_deadline() -> bool:
    """Whether the block this runs in has a deadline and it has passed (give or take a millisecond).

    The tolerance is for a socket timeout shortened to the time left, which may fire a hair early.
    """
    at = _deadline.get()
    return at is not None and time.monotonic() >= at - _TOLERANCE


def _bounded(timeout: float | None, timeout_error: type[Exception]) -> float | None:
    """``timeout`` shortened to the time left before the deadline; raises ``timeout_error`` once it passed."""
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise timeout_error("deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every blocking call ends by the deadline of the fetch using it."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend (``backend``), with every connection bounded by the current deadline."""

    def __init__(self, backend: httpcore.NetworkBackend | None = None) -> None:
        self._backend = backend or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)
