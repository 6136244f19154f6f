"""Test helpers for outgoing connections: scripted resolvers, address rules, servers on several loopbacks.

Every server here listens on 127.0.0.0/8. To play a public server, a test takes one of those addresses "for
public" with :func:`taken_for_public`: the fetcher's rules then judge it public, and the test still never
connects outside the machine.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from pipeline.sources.urls import AddressRules, IPAddress, refused_kind, resolve_host
from tests.sources.httpserver import LocalServer, running_server

__all__ = ["ScriptedResolver", "servers_on_one_port", "taken_for_public"]


class ScriptedResolver:
    """Answers each listed host with its next scripted answer (the last one repeats); others are resolved.

    ``asked`` records every lookup of a listed host, so a test can count them.
    """

    def __init__(self, answers: dict[str, Sequence[Sequence[str]]]) -> None:
        self._answers = {host: list(script) for host, script in answers.items()}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        script = self._answers.get(host)
        if script is None:
            return resolve_host(host, port)
        self.asked.append(host)
        return list(script.pop(0) if len(script) > 1 else script[0])


def taken_for_public(*addresses: str) -> AddressRules:
    """The real rules, except that ``addresses`` (loopback ones, in tests) count as public."""
    public = set(addresses)

    def rules(address: IPAddress, *, allow_private: bool) -> str | None:
        return None if str(address) in public else refused_kind(address, allow_private=allow_private)

    return rules


@contextmanager
def servers_on_one_port(*hosts: str) -> Iterator[list[LocalServer]]:
    """One server on each loopback address of ``hosts``, all on the same ephemeral port."""
    for _ in range(20):
        with ExitStack() as stack:
            first = stack.enter_context(running_server(hosts[0]))
            try:
                others = [stack.enter_context(running_server(host, first.port)) for host in hosts[1:]]
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            yield [first, *others]
            return
    raise RuntimeError(f"no port free on all of {hosts}")
