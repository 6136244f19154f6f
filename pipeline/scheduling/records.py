"""A scheduler as its run history and the settings describe it, in the admin API's shape.

The admin API's scheduler entry (``GET /api/admin/schedulers``) is this record plus the health verdict
(status, reasons, queue, lag, metrics endpoint); ``livedash schedulers list --json`` prints this record. One
model, so the same scheduler has the same keys (camelCase, the API's public contract) in both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from pipeline.scheduling.jobs import Job
from pipeline.scheduling.overview import SchedulerOverview
from pipeline.settings import Settings

__all__ = ["RunFigures", "SchedulerRecord", "run_figures", "scheduler_record"]


class RunFigures(BaseModel):
    """Runs started in the last 24 hours (nulls: database unreadable)."""

    window: Literal["24h"]
    totalRuns: int | None
    successfulRuns: int | None
    failedRuns: int | None
    averageRunSeconds: float | None


class SchedulerRecord(BaseModel):
    """One scheduler: its job, its settings and its run history (nulls: database unreadable)."""

    id: str
    name: str
    queue: str
    cron: str
    timezone: str
    control: Literal["ACTIVE", "PAUSED", "STOPPED"] | None
    enabled: bool
    runningNow: bool | None
    lastRun: datetime | None
    lastRunStatus: str | None
    lastSuccess: datetime | None
    lastError: str | None
    lastErrorAt: datetime | None
    lastTick: datetime | None
    lastTickOutcome: str | None
    nextRun: datetime | None
    consecutiveFailures: int | None
    metrics: RunFigures


def run_figures(overview: SchedulerOverview | None) -> RunFigures:
    if overview is None:
        return RunFigures(
            window="24h", totalRuns=None, successfulRuns=None, failedRuns=None, averageRunSeconds=None
        )
    return RunFigures(
        window="24h",
        totalRuns=overview.recent_runs,
        successfulRuns=overview.recent_successes,
        failedRuns=overview.recent_failures,
        averageRunSeconds=overview.average_run_seconds,
    )


#: The record's fields read from the run history, in the order :func:`_history` gives their values.
_HISTORY_FIELDS = (
    "control",
    "runningNow",
    "lastRun",
    "lastRunStatus",
    "lastSuccess",
    "lastError",
    "lastErrorAt",
    "lastTick",
    "lastTickOutcome",
    "nextRun",
    "consecutiveFailures",
)


def _history(overview: SchedulerOverview | None) -> dict[str, Any]:
    """The record's fields read from the run history; all null when the database could not be read."""
    if overview is None:
        return dict.fromkeys(_HISTORY_FIELDS)
    values = (
        overview.control if overview.control in ("ACTIVE", "PAUSED", "STOPPED") else None,
        overview.running_now,
        overview.last_run_at,
        overview.last_run_status,
        overview.last_success_at,
        overview.last_error,
        overview.last_error_at,
        overview.last_tick_at,
        overview.last_tick_outcome,
        overview.next_run_at,
        overview.consecutive_failures,
    )
    return dict(zip(_HISTORY_FIELDS, values, strict=True))


def scheduler_record(job: Job, settings: Settings, overview: SchedulerOverview | None) -> SchedulerRecord:
    """``job``'s record from its ``overview`` (``None``: the run history could not be read)."""
    return SchedulerRecord(
        id=job.id,
        name=job.name,
        queue=job.queue,
        cron=job.cron,
        timezone=settings.scheduler_timezone,
        enabled=settings.scheduler_enabled,
        metrics=run_figures(overview),
        **_history(overview),
    )
