"""A PostgreSQL server of its own for fault tests: a fresh cluster that a test may stop and restart.

``initdb`` makes a cluster (trust authentication) in a temporary directory, and ``pg_ctl`` runs it on a free
port of 127.0.0.1 with its socket in that directory, so restarting it never touches the machine's shared
server. The binaries are looked up in ``LIVEDASH_POSTGRES_BIN`` (Debian's ``/usr/lib/postgresql/15/bin`` by
default). PostgreSQL refuses to run as root: as root, the commands run as the ``postgres`` user::

    with PostgresServer() as server:
        engine = create_engine(server.url)
        server.stop()                  # "immediate": in-flight transactions are cut, as in a crash
        server.start()                 # back, with everything committed before the stop
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from pipeline.devtools.rabbitmq_nodes import free_port

__all__ = ["PostgresServer", "PostgresServerError"]

_DEFAULT_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresServerError(RuntimeError):
    """The cluster could not be made, started or stopped; the message carries the command's output."""


def _binary(name: str) -> str:
    directory = Path(os.environ.get("LIVEDASH_POSTGRES_BIN", str(_DEFAULT_BIN)))
    if (directory / name).exists():
        return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise PostgresServerError(f"{name} not found in {directory} nor on PATH")
    return found


class PostgresServer:
    """One PostgreSQL cluster under a temporary directory, removed on exit."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="livedash-postgres-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        result = subprocess.run(  # noqa: S603  PostgreSQL's own binaries, our arguments
            [*prefix, *command], capture_output=True, text=True, timeout=180, check=False, cwd=self.root
        )
        if result.returncode != 0:
            raise PostgresServerError(f"{Path(command[0]).name} failed: {result.stdout}{result.stderr}")

    def initialise(self) -> None:
        self._run(
            _binary("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            # Without fsync a crash of the machine could lose commits; a stop of the server cannot (the
            # written WAL is in the OS's cache), and commits stay synchronous: committed means committed.
            "-c fsync=off -c max_connections=200"
        )
        log = str(self.root / "server.log")
        self._run(
            _binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "-t", "120", "start"
        )

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; ``immediate`` aborts every connection at once, like a crash."""
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "120", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def close(self) -> None:
        if self.running():
            with contextlib.suppress(PostgresServerError):
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.initialise()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
