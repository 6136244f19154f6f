"""The scheduler process (``livedash scheduler``): the tick loop, its metrics, and a graceful SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from prometheus_client import start_http_server

from pipeline.db.engine import get_engine
from pipeline.logs import configure_logging
from pipeline.publishing import Publisher
from pipeline.scheduling.jobs import scheduled_jobs
from pipeline.scheduling.loop import SchedulerLoop
from pipeline.settings import Settings

__all__ = ["run_scheduler"]

logger = logging.getLogger(__name__)


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
    if settings.scheduler_metrics_port:
        start_http_server(settings.scheduler_metrics_port)
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
    publisher = Publisher(settings)
    try:
        SchedulerLoop(get_engine(), settings, publisher).run_forever(stopping)
    finally:
        publisher.close()
    logger.info("scheduler %s stopped", settings.scheduler_instance_id)
