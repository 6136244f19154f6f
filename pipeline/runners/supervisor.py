"""``livedash run``: the single-process pattern, as one supervised process group.

The children are the scheduler, one worker pool per queue and the health API, each a ``livedash`` command of
its own (so a crash in one never takes the others down). A child that exits while the supervisor runs is
restarted after a backoff that doubles each time, up to ``SCHEDULER_MAX_RESTARTS`` restarts, when
``SCHEDULER_AUTO_RESTART`` is on; past that, or with restarts off, the supervisor stops everything and exits
non-zero, so that the platform (systemd, Kubernetes) sees the failure. SIGTERM or SIGINT stops every child
with SIGTERM, waits for in-flight work up to the pools' grace period, then kills what is left.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType

from pipeline.queues import ALL_QUEUES
from pipeline.settings import Settings

__all__ = ["Child", "Supervisor", "children_for"]

logger = logging.getLogger(__name__)

#: How often the supervisor looks at its children.
POLL_SECONDS = 0.2


@dataclass
class Child:
    """One supervised command; ``env`` is added to the supervisor's environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    restart_at: float | None = None


def _livedash(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *arguments]


def children_for(settings: Settings) -> list[Child]:
    """The scheduler (when enabled), a pool per queue on consecutive metrics ports, and the health API."""
    children = []
    if settings.scheduler_enabled:
        children.append(Child("scheduler", _livedash("scheduler")))
    for offset, queue in enumerate(ALL_QUEUES):
        port = str(settings.metrics_port + offset) if settings.metrics_port else "0"
        children.append(
            Child(f"worker:{queue}", _livedash("worker", "--scheduler", queue), {"METRICS_PORT": port})
        )
    children.append(Child("health", _livedash("health")))
    return children


class Supervisor:
    def __init__(self, settings: Settings, children: list[Child]) -> None:
        self.settings = settings
        self.children = children
        self.stopping = threading.Event()
        self.failed: str | None = None

    def _start(self, child: Child) -> None:
        env = {**os.environ, **child.env}
        # Each child gets its own metrics directory; the supervisor's must not leak into them.
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        # The children's argv is built from this interpreter and fixed subcommands (children_for).
        child.process = subprocess.Popen(child.argv, env=env, start_new_session=True)  # noqa: S603
        child.restart_at = None
        logger.info("started %s (pid %d)", child.name, child.process.pid)

    def _on_exit(self, child: Child, returncode: int, now: float) -> None:
        logger.warning("%s exited with code %d", child.name, returncode)
        child.process = None
        if not self.settings.scheduler_auto_restart or child.restarts >= self.settings.scheduler_max_restarts:
            self.failed = f"{child.name} exited with code {returncode} after {child.restarts} restarts"
            logger.error("%s: giving up", self.failed)
            self.stopping.set()
            return
        backoff = self.settings.scheduler_restart_backoff_ms / 1000 * 2**child.restarts
        child.restarts += 1
        child.restart_at = now + backoff
        logger.info("restarting %s in %.1f s (restart %d)", child.name, backoff, child.restarts)

    def _watch(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.process is not None:
                returncode = child.process.poll()
                if returncode is not None:
                    self._on_exit(child, returncode, now)
            elif child.restart_at is not None and now >= child.restart_at:
                self._start(child)

    def _stop_all(self) -> None:
        running = [child for child in self.children if child.process is not None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.worker_shutdown_grace_seconds + 10
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.error("%s did not stop in time: killed", child.name)
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            logger.info("%s stopped", child.name)

    def run(self) -> int:
        """Start every child and supervise them until a stop signal or a child that cannot be kept up."""

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            logger.info("%s received: stopping every child", signal.strsignal(signum))
            self.stopping.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, request_stop)
            signal.signal(signal.SIGINT, request_stop)
        for child in self.children:
            self._start(child)
        while not self.stopping.wait(POLL_SECONDS):
            self._watch()
        self._stop_all()
        return 1 if self.failed else 0
