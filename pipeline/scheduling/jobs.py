"""The scheduled jobs: the scheduler ids, the cron setting of each and the tick actor it sends.

Jobs name their actor rather than import it, so that the health aggregator and the CLI can list and control
schedulers without declaring any actor.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.queues import BATCH_PROCESSING, CSV_IMPORT, IMPORT_PROCESSING, SESSION_PROCESSING
from pipeline.scheduling.cron import CronSchedule
from pipeline.settings import Settings

__all__ = ["Job", "UnknownScheduler", "find_job", "scheduled_jobs"]


class UnknownScheduler(LookupError):
    """A scheduler id that is not one of :func:`scheduled_jobs`."""

    def __init__(self, scheduler_id: str, known: list[str]) -> None:
        super().__init__(f"unknown scheduler {scheduler_id!r} (known: {', '.join(known)})")
        self.scheduler_id = scheduler_id


@dataclass(frozen=True)
class Job:
    """One cron job: ``id`` is its scheduler id (admin API) and the ``scheduler`` label of its metrics."""

    id: str
    name: str
    queue: str
    actor_name: str
    cron: str
    setting: str

    def schedule(self, timezone: str) -> CronSchedule:
        return CronSchedule(self.cron, timezone)


def scheduled_jobs(settings: Settings) -> list[Job]:
    """Every job, in pipeline order, with its cron expression from ``settings``."""
    return [
        Job("csv-import", "CSV import", CSV_IMPORT, "csv_import_tick", settings.csv_import_interval,
            "CSV_IMPORT_INTERVAL"),
        Job("import-processing", "Import processing", IMPORT_PROCESSING, "import_processing_sweep",
            settings.import_processing_interval, "IMPORT_PROCESSING_INTERVAL"),
        Job("session-processing", "Session processing", SESSION_PROCESSING, "session_processing_sweep",
            settings.session_processing_interval, "SESSION_PROCESSING_INTERVAL"),
        Job("batch-processing", "Batch submit", BATCH_PROCESSING, "batch_submit_tick",
            settings.batch_processing_interval, "BATCH_PROCESSING_INTERVAL"),
        Job("batch-processing-check", "Batch check", BATCH_PROCESSING, "batch_check_tick",
            settings.batch_processing_check_interval, "BATCH_PROCESSING_CHECK_INTERVAL"),
    ]  # fmt: skip


def find_job(settings: Settings, scheduler_id: str) -> Job:
    """The job called ``scheduler_id``; raises :class:`UnknownScheduler` naming the known ones."""
    jobs = scheduled_jobs(settings)
    for job in jobs:
        if job.id == scheduler_id:
            return job
    raise UnknownScheduler(scheduler_id, [job.id for job in jobs])
