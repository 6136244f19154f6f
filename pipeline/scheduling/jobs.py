"""The job registry: each scheduler's id, name, queue, cron setting, tick actor, work actors and entry points.

This table is the one place that spells them. The actors are declared from it (``pipeline.stages.actors``),
the scheduler loop, ``livedash worker --list``, ``livedash schedulers``, the demo, the health API and the
logging middleware read it. An actor is named here, not imported: listing or controlling the schedulers, or
handing ids to a stage, never declares an actor or imports a stage (entry points load on first call).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.queues import BATCH_PROCESSING, CSV_IMPORT, IMPORT_PROCESSING, SESSION_PROCESSING
from pipeline.scheduling.cron import CronSchedule
from pipeline.settings import Settings

__all__ = [
    "ANALYZE_SESSIONS",
    "BATCH_CHECK_JOB",
    "BATCH_SUBMIT_JOB",
    "CSV_IMPORT_JOB",
    "IMPORT_COMPANY",
    "IMPORT_PROCESSING_JOB",
    "JOBS",
    "PROCESS_IMPORTS",
    "SESSION_PROCESSING_JOB",
    "SUBMIT_BATCH",
    "ActorDefinition",
    "Job",
    "JobDefinition",
    "UnknownScheduler",
    "all_actors",
    "find_actor",
    "find_job",
    "job_of_actor",
    "scheduled_jobs",
]

#: Margin between the CSV import's own overall timeout and its actor's hard time limit.
CSV_IMPORT_TIME_LIMIT_MARGIN_MS = 60_000
#: The stage module that holds every entry point.
ENTRY_POINTS = "pipeline.stages.entry_points"


class UnknownScheduler(LookupError):
    """A scheduler id that is not one of :data:`JOBS`."""

    def __init__(self, scheduler_id: str, known: list[str]) -> None:
        super().__init__(f"unknown scheduler {scheduler_id!r} (known: {', '.join(known)})")
        self.scheduler_id = scheduler_id


def _csv_import_time_limit(settings: Settings) -> int:
    return min(
        settings.csv_import_timeout + CSV_IMPORT_TIME_LIMIT_MARGIN_MS,
        settings.rabbitmq_consumer_timeout_ms - CSV_IMPORT_TIME_LIMIT_MARGIN_MS,
    )


def _fixed(milliseconds: int) -> Callable[[Settings], int]:
    return lambda _settings: milliseconds


def _actor_default(settings: Settings) -> int:
    return settings.actor_time_limit_ms


def _import_processing_timeout(settings: Settings) -> int:
    return settings.import_processing_timeout


@dataclass(frozen=True)
class ActorDefinition:
    """One Dramatiq actor: its name and queue, the names of its message arguments (in order), its hard time
    limit, its retries (None: the broker's ``ACTOR_MAX_RETRIES``), and the stage function it calls."""

    name: str
    queue: str
    entry_point: str
    arguments: tuple[str, ...]
    time_limit_ms: Callable[[Settings], int]
    max_retries: int | None = None

    def entry(self) -> Callable[..., Any]:
        """The stage's entry point (imported on first use), called with a ``StageRuntime`` and the
        message's arguments."""
        function: Callable[..., Any] = getattr(importlib.import_module(ENTRY_POINTS), self.entry_point)
        return function


def _tick(name: str, queue: str, time_limit_ms: Callable[[Settings], int]) -> ActorDefinition:
    # A tick is never retried: the next tick does the same work, and its run records the failure.
    return ActorDefinition(name, queue, name, ("tick_id",), time_limit_ms, max_retries=0)


IMPORT_COMPANY = ActorDefinition(
    "import_company", CSV_IMPORT, "import_company", ("company_id",), _csv_import_time_limit
)
PROCESS_IMPORTS = ActorDefinition(
    "process_imports", IMPORT_PROCESSING, "process_imports", ("import_ids",), _import_processing_timeout
)
ANALYZE_SESSIONS = ActorDefinition(
    "analyze_sessions", SESSION_PROCESSING, "analyze_sessions", ("session_ids",), _actor_default
)
SUBMIT_BATCH = ActorDefinition(
    "submit_batch", BATCH_PROCESSING, "submit_batch", ("batch_id",), _actor_default
)


@dataclass(frozen=True)
class JobDefinition:
    """One scheduler: ``id`` is its scheduler id and the ``scheduler`` label of its metrics; ``setting`` is
    the variable holding its cron; ``tick`` is sent at each tick; ``work`` are the actors the tick fans out
    to, which ``--inline`` runs in the calling process."""

    id: str
    name: str
    queue: str
    setting: str
    tick: ActorDefinition
    work: tuple[ActorDefinition, ...] = ()
    #: The ``stage`` label of ``livedash_stage_lag_seconds`` that its sweep sets (the fan-out ticks set none).
    lag_stage: str | None = None

    def cron(self, settings: Settings) -> str:
        expression: str = getattr(settings, self.setting.lower())
        return expression


CSV_IMPORT_JOB = JobDefinition(
    "csv-import", "CSV import", CSV_IMPORT, "CSV_IMPORT_INTERVAL",
    _tick("csv_import_tick", CSV_IMPORT, _fixed(60_000)), (IMPORT_COMPANY,),
)  # fmt: skip
IMPORT_PROCESSING_JOB = JobDefinition(
    "import-processing", "Import processing", IMPORT_PROCESSING, "IMPORT_PROCESSING_INTERVAL",
    _tick("import_processing_sweep", IMPORT_PROCESSING, _fixed(60_000)), (PROCESS_IMPORTS,),
    lag_stage=IMPORT_PROCESSING,
)  # fmt: skip
SESSION_PROCESSING_JOB = JobDefinition(
    "session-processing", "Session processing", SESSION_PROCESSING, "SESSION_PROCESSING_INTERVAL",
    _tick("session_processing_sweep", SESSION_PROCESSING, _fixed(60_000)), (ANALYZE_SESSIONS,),
    lag_stage=SESSION_PROCESSING,
)  # fmt: skip
BATCH_SUBMIT_JOB = JobDefinition(
    "batch-processing", "Batch submit", BATCH_PROCESSING, "BATCH_PROCESSING_INTERVAL",
    _tick("batch_submit_tick", BATCH_PROCESSING, _fixed(120_000)), (SUBMIT_BATCH,),
)  # fmt: skip
BATCH_CHECK_JOB = JobDefinition(
    "batch-processing-check", "Batch check", BATCH_PROCESSING, "BATCH_PROCESSING_CHECK_INTERVAL",
    _tick("batch_check_tick", BATCH_PROCESSING, _actor_default),
)  # fmt: skip

#: Every job, in pipeline order.
JOBS: tuple[JobDefinition, ...] = (
    CSV_IMPORT_JOB,
    IMPORT_PROCESSING_JOB,
    SESSION_PROCESSING_JOB,
    BATCH_SUBMIT_JOB,
    BATCH_CHECK_JOB,
)


@dataclass(frozen=True)
class Job:
    """A job with its cron expression read from the settings."""

    definition: JobDefinition
    cron: str

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def queue(self) -> str:
        return self.definition.queue

    @property
    def setting(self) -> str:
        return self.definition.setting

    @property
    def actor_name(self) -> str:
        return self.definition.tick.name

    def schedule(self, timezone: str) -> CronSchedule:
        return CronSchedule(self.cron, timezone)


def scheduled_jobs(settings: Settings) -> list[Job]:
    """Every job, in pipeline order, with its cron expression from ``settings``."""
    return [Job(definition, definition.cron(settings)) for definition in JOBS]


def find_job(settings: Settings, scheduler_id: str) -> Job:
    """The job called ``scheduler_id``; raises :class:`UnknownScheduler` naming the known ones."""
    for definition in JOBS:
        if definition.id == scheduler_id:
            return Job(definition, definition.cron(settings))
    raise UnknownScheduler(scheduler_id, [definition.id for definition in JOBS])


def all_actors() -> list[ActorDefinition]:
    """Every actor of the pipeline: each job's tick, then its work actors."""
    return [actor for job in JOBS for actor in (job.tick, *job.work)]


def find_actor(actor_name: str) -> ActorDefinition | None:
    """The actor called ``actor_name``, or None for an actor this pipeline does not declare."""
    return next((actor for actor in all_actors() if actor.name == actor_name), None)


def job_of_actor(actor_name: str) -> JobDefinition | None:
    """The job whose tick or work actor is ``actor_name``."""
    return next((job for job in JOBS if actor_name in {job.tick.name, *(a.name for a in job.work)}), None)
