"""One stage's worker pool: ``dramatiq pipeline.actors --queues <queue>`` with the settings' sizes, started
through ``pipeline.runners.dramatiq_cli`` so that Dramatiq's main process logs in ``LOG_FORMAT`` too.

The pool's metrics (Dramatiq's and ours, from every worker process) are served on ``METRICS_PORT`` from a
directory of the run's own (``pipeline.pool_metrics``), as for a pool started by the plain ``dramatiq``
command.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from pipeline.scheduling.jobs import find_job
from pipeline.settings import Settings

__all__ = ["WorkerCommand", "worker_command"]


@dataclass(frozen=True)
class WorkerCommand:
    argv: list[str]


def worker_command(
    settings: Settings, scheduler_id: str, *, processes: int | None = None, threads: int | None = None
) -> WorkerCommand:
    """The command line of ``scheduler_id``'s pool (raises ``UnknownScheduler``)."""
    queue = find_job(settings, scheduler_id).queue
    argv = [
        sys.executable,
        "-m",
        "pipeline.runners.dramatiq_cli",
        "pipeline.actors",
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
    return WorkerCommand(argv)
