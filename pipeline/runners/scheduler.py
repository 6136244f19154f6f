"""The scheduler process (``livedash scheduler``): the tick loop, its metrics, and a graceful SIGTERM."""

from __future__ import annotations

import errno
import logging
import signal
import threading
from types import FrameType

from prometheus_client import start_http_server

from pipeline.db.engine import get_engine
from pipeline.logs import configure_logging
from pipeline.metrics import SCHEDULER_COUNTERS, create_series
from pipeline.pool_metrics import port_in_use_message
from pipeline.publishing import Publisher
from pipeline.scheduling.jobs import scheduled_jobs
from pipeline.scheduling.loop import SchedulerLoop
from pipeline.settings import Settings

__all__ = ["run_scheduler"]

logger = logging.getLogger(__name__)


def _serve_metrics(settings: Settings) -> None:
    """The scheduler's metrics endpoint; a port another replica holds is one line, and the ticks go on."""
    try:
        start_http_server(settings.scheduler_metrics_port, settings.metrics_host)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        logger.error(
            port_in_use_message(
                f"scheduler {settings.scheduler_instance_id}",
                "SCHEDULER_METRICS_PORT",
                settings.metrics_host,
                settings.scheduler_metrics_port,
            )
        )


def run_scheduler(settings: Settings, stop: threading.Event | None = None) -> None:
    """Run the tick loop until SIGTERM or SIGINT (or ``stop``); the current pass finishes first."""
    stopping = stop or threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info(
            "scheduler %s: %s received, stopping", settings.scheduler_instance_id, signal.strsignal(signum)
        )
        stopping.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    configure_logging(settings)
    for job in scheduled_jobs(settings):
        logger.info(
            "job %-24s %-28s -> %s@%s", job.id, f"{job.setting}={job.cron}", job.actor_name, job.queue
        )
    create_series(settings, SCHEDULER_COUNTERS)
    if settings.scheduler_metrics_port:
        _serve_metrics(settings)
    if not settings.scheduler_enabled:
        # Idle rather than exit: a container that exits at once is restarted in a loop by its platform.
        logger.warning("SCHEDULER_ENABLED=false: this scheduler sends no ticks; waiting for SIGTERM")
        stopping.wait()
        return
    logger.info(
        "scheduler %s started (zone %s, catch-up window %d s)",
        settings.scheduler_instance_id,
        settings.scheduler_timezone,
        settings.scheduler_catchup_window,
    )
    publisher = Publisher(settings, role="scheduler")
    try:
        SchedulerLoop(get_engine(), settings, publisher).run_forever(stopping)
    finally:
        publisher.close()
    logger.info("scheduler %s stopped", settings.scheduler_instance_id)
