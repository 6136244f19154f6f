"""Test helpers for outgoing connections: scripted resolvers, address rules, servers on several loopbacks.

Every server here listens on 127.0.0.0/8. To play a public server, a test takes one of those addresses "for
public" with :func:`taken_for_public`: the fetcher's rules then judge it public, and the test still never
connects outside the machine.
"""

from __future__ import annotations

import errno
import ssl
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pipeline.sources.urls import AddressRules, IPAddress, refused_kind, resolve_host
from tests.sources.httpserver import LocalServer, running_server

__all__ = [
    "ScriptedResolver",
    "running_tls_server",
    "self_signed_certificate",
    "servers_on_one_port",
    "taken_for_public",
]


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


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A certificate for ``host`` signed by its own key, written as (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = directory / f"{host}.crt", directory / f"{host}.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certificate_path, key_path


@contextmanager
def running_tls_server(host: str, certificate: Path, key: Path) -> Iterator[tuple[LocalServer, list[str]]]:
    """A server speaking TLS on ``host``; the list collects the SNI name of every handshake."""
    server_names: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    context.sni_callback = lambda _socket, name, _context: server_names.append(name or "")
    with running_server(host, tls=context) as server:
        yield server, server_names
