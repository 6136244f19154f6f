"""A worker pool's metrics and logging, however the pool was started.

``dramatiq pipeline.actors`` (which ``livedash worker``, ``livedash run`` and the Kubernetes pods run too)
forks worker processes that each import ``pipeline.actors``, and one exposition process. prometheus_client
chooses where its values live when it is first imported, so a worker process must point
``PROMETHEUS_MULTIPROC_DIR`` at the pool's directory before anything imports it, and Dramatiq's logging setup
knows neither ``LOG_FORMAT`` nor the masking of secrets: :func:`prepare_worker_process` does both, first
thing in ``pipeline.actors``. :func:`serve_pool_metrics` is the exposition process: every worker process's
metrics on ``METRICS_HOST``:``METRICS_PORT``.

Each run of a pool has a directory of its own, ``<base>/run-<main pid>-<run token>``, where the token is the
multiprocessing authentication key that Dramatiq's main process hands to all its children: the worker
processes and the exposition process find the same directory without talking to each other, and a new run
never adds an earlier run's files to its counters. ``<base>`` is ``PROMETHEUS_MULTIPROC_DIR`` when it is set
(an ``emptyDir``, say), else ``livedash-metrics`` in the temporary directory; at start, the exposition
process deletes the directories of runs whose main process is gone.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
from http.server import ThreadingHTTPServer
from pathlib import Path

from pipeline.logs import configure_logging
from pipeline.redaction import redact
from pipeline.settings import Settings, get_settings

__all__ = [
    "in_dramatiq_worker",
    "keep_metrics_in_memory",
    "port_in_use_message",
    "prepare_worker_process",
    "remove_stale_runs",
    "run_directory",
    "serve_pool_metrics",
]

logger = logging.getLogger(__name__)

#: Where runs keep their files when ``PROMETHEUS_MULTIPROC_DIR`` is not set.
DEFAULT_BASE = "livedash-metrics"
_RUN = re.compile(r"^run-(?P<pid>\d+)-(?P<token>[0-9a-f]+)$")


def keep_metrics_in_memory() -> None:
    """Make this single process (the scheduler, the health API) keep its metrics in memory and serve them.

    A ``PROMETHEUS_MULTIPROC_DIR`` in the environment is meant for the pools (one per host, in a shared
    ConfigMap or ``.env``); a single process that followed it would write files where no collector reads them,
    and fail at start while the pools have not created that directory yet. Must run before anything imports
    prometheus_client.
    """
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def in_dramatiq_worker() -> bool:
    """Whether this process is a child of Dramatiq's command line (a worker or a fork process)."""
    return "dramatiq.cli" in sys.modules and multiprocessing.parent_process() is not None


def base_directory() -> Path:
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / DEFAULT_BASE


def _run_name() -> str:
    token = bytes(multiprocessing.current_process().authkey)[:6].hex()
    return f"run-{os.getppid()}-{token}"


def run_directory(base: Path) -> Path:
    """This run's directory: the same in every child of one Dramatiq main process, new for each run."""
    return base / _run_name()


def prepare_worker_process(settings: Settings) -> None:
    """Point prometheus_client and Dramatiq's middleware at this run's directory, and install the
    configured logging. Must run before anything imports prometheus_client."""
    configure_logging(settings)
    directory = run_directory(base_directory())
    if "prometheus_client" in sys.modules or "dramatiq.middleware.prometheus" in sys.modules:
        logger.error("prometheus_client was imported before pipeline.actors: this process's metrics are lost")
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    # Read by Dramatiq's Prometheus middleware when it is imported (after this), for its own metrics.
    os.environ["dramatiq_prom_db"] = str(directory)  # noqa: SIM112 (Dramatiq spells it so)
    from pipeline import metrics

    metrics.create_series(settings, metrics.WORKER_COUNTERS)
    logger.info(
        "worker process %d: broker %s, metrics in %s", os.getpid(), redact(settings.rabbitmq_url), directory
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_runs(base: Path, current: Path) -> list[Path]:
    """Delete the directories of earlier runs under ``base``: their main process is gone, or it is ours
    (a restarted container's pid 1) with another token. Returns what was deleted."""
    removed = []
    for entry in base.iterdir() if base.is_dir() else []:
        match = _RUN.match(entry.name)
        if entry == current or match is None:
            continue
        pid = int(match["pid"])
        if pid == os.getppid() or not _alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def port_in_use_message(what: str, setting: str, host: str, port: int) -> str:
    """One line for a metrics port another process holds (several replicas on one host)."""
    return (
        f"{what}: metrics port {host}:{port} is in use (another replica on this host?); its metrics are not "
        f"exported. Give each replica on a host its own {setting}, or 0 to export none."
    )


def serve_pool_metrics() -> int:
    """The exposition process of a pool (a Dramatiq fork function): serve until SIGTERM."""
    settings = get_settings()
    configure_logging(settings)
    base = base_directory()
    directory = run_directory(base)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_runs(base, directory):
        logger.info("removed the metrics of an earlier run: %s", stale)
    if not settings.metrics_port:
        logger.info("METRICS_PORT=0: this pool exports no metrics")
        return 0

    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import MetricsHandler
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    # prometheus_client leaves this constructor unannotated.
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    try:
        server = ThreadingHTTPServer(
            (settings.metrics_host, settings.metrics_port), MetricsHandler.factory(registry)
        )
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        logger.error(
            port_in_use_message("worker pool", "METRICS_PORT", settings.metrics_host, settings.metrics_port)
        )
        return 1
    logger.info(
        "metrics of every worker process on %s:%d (from %s)",
        settings.metrics_host,
        settings.metrics_port,
        directory,
    )
    server.serve_forever()
    return 0
