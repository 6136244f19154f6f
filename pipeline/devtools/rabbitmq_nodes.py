"""RabbitMQ nodes of their own for fault tests: started, killed, restarted and clustered on one machine.

Each node has its own name, ports (AMQP, management, Erlang distribution: free ports on 127.0.0.1 picked at
start) and data, log and config directories under one temporary directory, so a test can kill or restart it
without touching the machine's shared broker. The nodes of a :class:`RabbitCluster` share an Erlang cookie
(a ``HOME`` of their own holding it) and are joined with ``rabbitmqctl join_cluster``::

    with RabbitCluster(3) as cluster:
        url = cluster.urls()            # every node, comma-separated: what RABBITMQ_URL takes
        cluster.nodes[0].kill()         # SIGKILL of the node's Erlang VM
        cluster.nodes[0].start()        # back with its data, rejoining the cluster

The RabbitMQ scripts are looked up in ``LIVEDASH_RABBITMQ_SBIN`` (Debian's ``/usr/lib/rabbitmq/bin`` by
default, which runs as the calling user, unlike the ``/usr/sbin`` wrappers), then on ``PATH``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["RabbitCluster", "RabbitNode", "RabbitNodeError", "free_port"]

_DEBIAN_SBIN = Path("/usr/lib/rabbitmq/bin")
#: How long a node may take to boot on a busy machine.
START_TIMEOUT_SECONDS = 180.0


class RabbitNodeError(RuntimeError):
    """A node did not start, stop or join as asked; the message carries the end of its log."""


#: Ports for servers that are stopped and started again on the same port: below Linux's ephemeral range
#: (32768 and up), which the OS hands to outgoing connections and ``bind(0)``, so none takes it meanwhile.
_SERVER_PORTS = (20000, 32000)


def free_port() -> int:
    """A TCP port on 127.0.0.1, outside the ephemeral range, that nothing listens on right now."""
    for _ in range(200):
        port = random.randrange(*_SERVER_PORTS)  # noqa: S311  a port, not a secret
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RabbitNodeError(f"no free port in {_SERVER_PORTS}")


def _script(name: str) -> str:
    configured = os.environ.get("LIVEDASH_RABBITMQ_SBIN")
    directory = Path(configured) if configured else _DEBIAN_SBIN
    if (directory / name).exists():
        return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise RabbitNodeError(f"{name} not found in {directory} nor on PATH")
    return found


class RabbitNode:
    """One RabbitMQ node under ``base``; ``home`` holds the Erlang cookie its cluster shares."""

    def __init__(
        self, base: Path, name: str, home: Path, *, management: bool = False, config: str = ""
    ) -> None:
        self.base = base
        self.name = f"{name}@localhost"
        self.home = home
        self.amqp_port = free_port()
        self.management_port = free_port() if management else None
        self.dist_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        base.mkdir(parents=True, exist_ok=True)
        lines = [f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}", "loopback_users = none"]
        if self.management_port is not None:
            lines += [f"management.tcp.port = {self.management_port}", "management.tcp.ip = 127.0.0.1"]
        (base / "rabbitmq.conf").write_text("\n".join(lines) + "\n" + config)
        plugins = "[rabbitmq_management]." if management else "[]."
        (base / "enabled_plugins").write_text(plugins + "\n")

    def url(self, vhost: str = "%2F") -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/{vhost}"

    def management_url(self) -> str:
        if self.management_port is None:
            raise RabbitNodeError(f"{self.name} runs without the management plugin")
        return f"http://guest:guest@127.0.0.1:{self.management_port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "pid"),
        }

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def launch(self) -> None:
        """Start the node's VM and return at once (see :meth:`wait_until_up`)."""
        if self.running:
            return
        log = (self.base / "console.log").open("ab")
        self._process = subprocess.Popen(  # noqa: S603  RabbitMQ's own script, no arguments
            [_script("rabbitmq-server")],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_until_up(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Return once the node accepts AMQP connections (its boot is complete then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RabbitNodeError(f"{self.name} exited while starting:\n{self.log_tail()}")
            if self._accepts_amqp():
                return
            time.sleep(0.25)
        raise RabbitNodeError(f"{self.name} did not start within {timeout:.0f} s:\n{self.log_tail()}")

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        self.launch()
        self.wait_until_up(timeout)

    def _accepts_amqp(self) -> bool:
        import pika

        try:
            connection = pika.BlockingConnection(
                pika.URLParameters(self.url() + "?connection_attempts=1&socket_timeout=2")
            )
        except Exception:
            return False
        connection.close()
        return True

    def kill(self) -> None:
        """SIGKILL the node's whole process group: what a crashed machine looks like to the others."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=60)
        self._process = None

    def stop(self) -> None:
        """Stop the node cleanly (``rabbitmqctl stop``), killing it if it does not go."""
        if not self.running:
            self._process = None
            return
        with contextlib.suppress(RabbitNodeError):
            self.ctl("stop", timeout=60)
        assert self._process is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=60)
        self.kill()

    def ctl(self, *arguments: str, timeout: float = 120) -> str:
        """Run ``rabbitmqctl -n <node> <arguments>``; its output."""
        result = subprocess.run(  # noqa: S603  rabbitmqctl with our arguments
            [_script("rabbitmqctl"), "-n", self.name, *arguments],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RabbitNodeError(
                f"rabbitmqctl {' '.join(arguments)} on {self.name}: {result.stderr.strip()}"
            )
        return result.stdout

    def join(self, other: RabbitNode) -> None:
        """Make this (running, empty) node a member of ``other``'s cluster."""
        self.ctl("stop_app")
        self.ctl("join_cluster", other.name)
        self.ctl("start_app")

    def log_tail(self, lines: int = 30) -> str:
        texts = [path.read_text(errors="replace") for path in sorted(self.base.glob("**/*.log"))]
        return "\n".join("\n".join(text.splitlines()[-lines:]) for text in texts)


class RabbitCluster:
    """``size`` nodes clustered together under a temporary directory; removed with it on exit."""

    def __init__(self, size: int = 3, *, management: bool = False, config: str = "") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="livedash-rabbit-"))
        home = self.root / "home"
        home.mkdir()
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        token = secrets.token_hex(3)
        self.nodes = [
            RabbitNode(self.root / f"node{n}", f"ld{token}n{n}", home, management=management, config=config)
            for n in range(size)
        ]

    def start(self) -> RabbitCluster:
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_until_up()
        for node in self.nodes[1:]:
            node.join(self.nodes[0])
        return self

    def urls(self, vhost: str = "%2F") -> str:
        """Every node's AMQP URL, comma-separated, in node order: a value for ``RABBITMQ_URL``."""
        return ",".join(node.url(vhost) for node in self.nodes)

    def running_node(self) -> RabbitNode:
        return next(node for node in self.nodes if node.running)

    def leaders(self, vhost: str = "/") -> dict[str, str]:
        """Queue name → the node leading it (quorum queues), asked of a running node."""
        output = self.running_node().ctl("list_queues", "-p", vhost, "name", "leader", "--formatter", "json")
        return {row["name"]: str(row["leader"]) for row in json.loads(output) if row.get("leader")}

    def node_named(self, name: str) -> RabbitNode:
        return next(node for node in self.nodes if node.name == name)

    def close(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RabbitCluster:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
