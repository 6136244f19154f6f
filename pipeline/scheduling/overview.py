"""What the run history says about each scheduler: the admin API's scheduler metrics, read from the database.

Figures are over a recent window (``RECENT``) so that reading them costs the same after a million runs as
after ten: every query walks the ``(job, started_at)`` index backwards from now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session

from pipeline.db.enums import SchedulerRunStatus
from pipeline.db.models import SchedulerRun, SchedulerState, SchedulerTick
from pipeline.db.types import utcnow
from pipeline.scheduling.jobs import Job, scheduled_jobs
from pipeline.settings import Settings

__all__ = ["RECENT", "SchedulerOverview", "scheduler_overviews"]

#: The window of the run counts and the average run time.
RECENT = timedelta(hours=24)
#: Runs looked at to count consecutive failures; more than any sensible failure threshold.
FAILURE_STREAK_LIMIT = 100


@dataclass(frozen=True)
class SchedulerOverview:
    id: str
    name: str
    queue: str
    cron: str
    timezone: str
    control: str  # ACTIVE, PAUSED or STOPPED: what the operator asked for
    control_changed_at: datetime | None  # when an operator last paused, resumed, stopped or started it
    running_now: bool
    last_run_at: datetime | None
    last_run_status: str | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    recent_runs: int
    recent_successes: int
    recent_failures: int
    average_run_seconds: float | None
    last_tick_at: datetime | None
    last_tick_outcome: str | None
    next_run_at: datetime | None


def _overview(db: Session, settings: Settings, job: Job, now: datetime) -> SchedulerOverview:
    state = db.get(SchedulerState, job.id)
    control = "STOPPED" if state and state.stopped else "PAUSED" if state and state.paused else "ACTIVE"
    runs = select(SchedulerRun).where(SchedulerRun.job == job.id).order_by(SchedulerRun.started_at.desc())
    last_run = db.scalar(runs.limit(1))
    last_success = db.scalar(runs.where(SchedulerRun.status == SchedulerRunStatus.SUCCEEDED).limit(1))
    last_failure = db.scalar(runs.where(SchedulerRun.status == SchedulerRunStatus.FAILED).limit(1))
    streak = 0
    for status in db.scalars(
        select(SchedulerRun.status)
        .where(SchedulerRun.job == job.id, SchedulerRun.status != SchedulerRunStatus.RUNNING)
        .order_by(SchedulerRun.started_at.desc())
        .limit(FAILURE_STREAK_LIMIT)
    ):
        if status != SchedulerRunStatus.FAILED:
            break
        streak += 1
    succeeded = SchedulerRun.status == SchedulerRunStatus.SUCCEEDED
    failed = SchedulerRun.status == SchedulerRunStatus.FAILED
    counts = db.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((succeeded, 1), else_=0)), 0),
            func.coalesce(func.sum(case((failed, 1), else_=0)), 0),
        ).where(SchedulerRun.job == job.id, SchedulerRun.started_at > now - RECENT)
    ).one()
    durations = [
        (finished - started).total_seconds()
        for started, finished in db.execute(
            select(SchedulerRun.started_at, SchedulerRun.finished_at).where(
                SchedulerRun.job == job.id,
                SchedulerRun.started_at > now - RECENT,
                SchedulerRun.finished_at.is_not(None),
            )
        )
        if finished is not None
    ]
    overlap = timedelta(seconds=settings.scheduler_overlap_timeout)
    running_now = db.scalar(
        select(func.count()).where(
            SchedulerRun.job == job.id,
            SchedulerRun.status == SchedulerRunStatus.RUNNING,
            SchedulerRun.started_at > now - overlap,
        )
    )
    last_tick = db.scalar(
        select(SchedulerTick)
        .where(SchedulerTick.job == job.id)
        .order_by(SchedulerTick.tick_at.desc())
        .limit(1)
    )
    return SchedulerOverview(
        id=job.id,
        name=job.name,
        queue=job.queue,
        cron=job.cron,
        timezone=settings.scheduler_timezone,
        control=control,
        control_changed_at=state.updated_at if state else None,
        running_now=bool(running_now),
        last_run_at=last_run.started_at if last_run else None,
        last_run_status=last_run.status.value if last_run else None,
        last_success_at=(last_success.finished_at or last_success.started_at) if last_success else None,
        last_error=last_failure.error if last_failure else None,
        last_error_at=last_failure.started_at if last_failure else None,
        consecutive_failures=streak,
        recent_runs=int(counts[0]),
        recent_successes=int(counts[1]),
        recent_failures=int(counts[2]),
        average_run_seconds=sum(durations) / len(durations) if durations else None,
        last_tick_at=last_tick.tick_at if last_tick else None,
        last_tick_outcome=last_tick.outcome.value if last_tick else None,
        next_run_at=(
            None
            if control != "ACTIVE" or not settings.scheduler_enabled
            else job.schedule(settings.scheduler_timezone).next_after(now)
        ),
    )


def scheduler_overviews(
    engine: Engine, settings: Settings, now: datetime | None = None
) -> list[SchedulerOverview]:
    """One overview per scheduled job, in pipeline order."""
    moment = now or utcnow()
    with Session(engine) as db:
        return [_overview(db, settings, job, moment) for job in scheduled_jobs(settings)]
