"""One stage's worker pool: ``dramatiq pipeline.runners.pool --queues <queue>`` with the settings' sizes
(``pipeline.runners.pool`` is ``pipeline.actors`` with the pipeline's logging set up).

The pool's metrics (Dramatiq's and ours, from every worker process) are served on ``METRICS_PORT`` from a
multiprocess directory that is emptied first: files left by an earlier run would otherwise be added to the
new run's counters.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.scheduling.jobs import find_job
from pipeline.settings import Settings

__all__ = ["WorkerCommand", "reset_metrics_directory", "worker_command"]


@dataclass(frozen=True)
class WorkerCommand:
    argv: list[str]
    env: dict[str, str]


def _metrics_directory(queue: str) -> Path:
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"livedash-metrics-{queue}"


def reset_metrics_directory(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)


def worker_command(
    settings: Settings, scheduler_id: str, *, processes: int | None = None, threads: int | None = None
) -> WorkerCommand:
    """The command line and environment of ``scheduler_id``'s pool (raises ``UnknownScheduler``)."""
    queue = find_job(settings, scheduler_id).queue
    metrics = _metrics_directory(queue)
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "pipeline.runners.pool",
        "--queues",
        queue,
        "--processes",
        str(processes or settings.worker_processes),
        "--threads",
        str(threads or settings.worker_threads),
        "--worker-shutdown-timeout",
        str(settings.worker_shutdown_grace_seconds * 1000),
        "--skip-logging",
    ]
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "dramatiq_prom_db": str(metrics),
        "dramatiq_prom_port": str(settings.metrics_port),
    }
    return WorkerCommand(argv, env)
