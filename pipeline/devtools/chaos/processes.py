"""The processes a chaos run starts, kills and restarts: worker pools, scheduler replicas, and a ticker.

Pools are real ``dramatiq pipeline.actors`` pools (with :mod:`pipeline.devtools.poison` loaded beside the
actors) and schedulers real ``livedash scheduler`` processes, each in a process group of its own. A pool
or a scheduler that exits is started again after a moment, as Kubernetes or ``livedash run`` would.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from pipeline.publishing import Publisher
from pipeline.queues import ALL_QUEUES
from pipeline.scheduling.control import trigger_now
from pipeline.scheduling.jobs import scheduled_jobs
from pipeline.settings import Settings

__all__ = ["ProcessFleet", "Ticker", "child_pids"]

#: How long a process that exited stays down before it is started again.
RESTART_DELAY_SECONDS = 0.5


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (read from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


class ProcessFleet:
    """``count`` copies of one command, each restarted when it exits until :meth:`stop`."""

    def __init__(self, name: str, argv: Callable[[int], list[str]], env: Callable[[int], dict[str, str]],
                 count: int, log_dir: Path) -> None:  # fmt: skip
        self.name = name
        self._argv, self._env = argv, env
        self._log_dir = log_dir
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self._down_since: list[float | None] = [None] * count
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name=f"{name}-watcher", daemon=True)
        self.restarts = 0

    def _launch(self, index: int) -> None:
        with (self._log_dir / f"{self.name}-{index}.log").open("ab") as log:
            # Our own argv: this venv's dramatiq or livedash
            self._processes[index] = subprocess.Popen(  # noqa: S603
                self._argv(index),
                env=self._env(index),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self) -> ProcessFleet:
        with self._lock:
            for index in range(len(self._processes)):
                self._launch(index)
        self._watcher.start()
        return self

    def _watch(self) -> None:
        while not self._stopping.wait(0.1):
            with self._lock:
                for index, process in enumerate(self._processes):
                    if process is None or process.poll() is None:
                        continue
                    down_since = self._down_since[index] or time.monotonic()
                    self._down_since[index] = down_since
                    if time.monotonic() - down_since >= RESTART_DELAY_SECONDS:
                        self._down_since[index] = None
                        self.restarts += 1
                        self._launch(index)

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._processes if p is not None and p.poll() is None]

    def kill(self, index: int) -> None:
        """SIGKILL the whole process group of copy ``index`` (a pool and all its worker processes)."""
        with self._lock:
            process = self._processes[index]
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)

    def kill_one_child(self, index: int, rng: random.Random) -> bool:
        """SIGKILL one worker process of pool ``index``; False if it had none (yet)."""
        with self._lock:
            process = self._processes[index]
            children = child_pids(process.pid) if process is not None and process.poll() is None else []
            if not children:
                return False
            with contextlib.suppress(ProcessLookupError):
                os.kill(rng.choice(sorted(children)), signal.SIGKILL)
            return True

    def stop(self) -> None:
        """SIGTERM every copy (then SIGKILL what is left after 30 s); no restarts from here on."""
        self._stopping.set()
        if self._watcher.is_alive():
            self._watcher.join(timeout=10)
        for process in self._processes:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self._processes:
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def pool_fleet(
    env: dict[str, str],
    count: int,
    processes: int,
    threads: int,
    log_dir: Path,
    extra_modules: tuple[str, ...] = (),
) -> ProcessFleet:
    """Worker pools on every stage queue, with the poison actor loaded; a dying worker ends its pool."""
    argv = [
        sys.executable, "-m", "dramatiq", "pipeline.actors", "pipeline.devtools.poison", *extra_modules,
        "--queues", *ALL_QUEUES, "--processes", str(processes), "--threads", str(threads),
        "--worker-shutdown-timeout", "5000",
    ]  # fmt: skip
    return ProcessFleet("pool", lambda _: argv, lambda _: env, count, log_dir)


def scheduler_fleet(env: dict[str, str], count: int, log_dir: Path) -> ProcessFleet:
    """``livedash scheduler`` replicas, each with an instance id of its own."""
    return ProcessFleet(
        "scheduler",
        lambda _: [sys.executable, "-m", "pipeline", "scheduler"],
        lambda index: {
            **env,
            "SCHEDULER_INSTANCE_ID": f"chaos-scheduler-{index}",
            "SCHEDULER_METRICS_PORT": "0",
        },
        count,
        log_dir,
    )


class Ticker:
    """Triggers every job each ``every`` seconds, as an operator's ``livedash schedulers trigger`` does (a
    tick of its own, recorded in the ledger, whatever the cron says); a trigger that fails (database or
    broker down) is dropped, and the next one tries again on a fresh connection."""

    def __init__(self, engine: Engine, settings: Settings, every: float) -> None:
        self._engine = engine
        self._settings = settings.model_copy(update={"scheduler_instance_id": "ticker"})
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ticker", daemon=True)
        self.failures = 0

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def _run(self) -> None:
        publisher = Publisher(self._settings)
        try:
            while not self._stop.is_set():
                try:
                    for job in scheduled_jobs(self._settings):
                        trigger_now(
                            self._engine, self._settings, job, publish=publisher, requested_by="chaos"
                        )
                except Exception:
                    self.failures += 1
                    publisher.close()
                    publisher = Publisher(self._settings)
                self._stop.wait(self._every)
        finally:
            publisher.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
