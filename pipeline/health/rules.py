"""The status of one scheduler, from what the sources said about it (the table in ``docs/health.md``).

The rules are pure: they take an :class:`Observation` (what the database, RabbitMQ and the metrics said, or
why they could not say it) and the settings' thresholds, and return a status with its reasons. A source that
could not be read never makes a scheduler ERROR by itself, except the database: without it there is neither
control state nor run history, and no stage can work either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.health.sources import QueueStats
from pipeline.scheduling.jobs import JOBS, Job
from pipeline.scheduling.overview import SchedulerOverview
from pipeline.settings import Settings

__all__ = [
    "STAGE_OF_SCHEDULER",
    "EndpointState",
    "Observation",
    "Reason",
    "Status",
    "Verdict",
    "cron_interval",
    "judge",
    "public_reason",
]

#: The ``stage`` label of ``livedash_stage_lag_seconds`` set by each scheduler's sweep (the others set none).
STAGE_OF_SCHEDULER = {job.id: job.lag_stage for job in JOBS if job.lag_stage is not None}


class Reason(str):
    """A reason that carries text from outside the rules (a source's error, a stored run error, a URL):
    the public health endpoint shows only its ``summary``; the full text needs the admin token."""

    summary: str

    def __new__(cls, text: str, *, summary: str) -> Reason:
        reason = super().__new__(cls, text)
        reason.summary = summary
        return reason


def public_reason(reason: str) -> str:
    """What the unauthenticated health endpoint may show of ``reason``."""
    return reason.summary if isinstance(reason, Reason) else reason


class Status(enum.StrEnum):
    RUNNING = "RUNNING"
    STARTING = "STARTING"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"
    ERROR = "ERROR"


@dataclass(frozen=True)
class EndpointState:
    """A scheduler's metrics endpoint(s): how many answered out of how many, and why the others did not."""

    answered: int
    total: int
    failures: tuple[str, ...] = ()

    @property
    def up(self) -> bool:
        return self.answered > 0


@dataclass(frozen=True)
class Observation:
    """Everything the sources said about one scheduler; a ``*_error`` explains a missing figure."""

    job: Job
    overview: SchedulerOverview | None
    database_error: str | None = None
    queue: QueueStats | None = None
    delayed: QueueStats | None = None
    queue_declared: bool = True
    rabbitmq_error: str | None = None
    endpoint: EndpointState | None = None
    metrics_error: str | None = None
    lag_seconds: float | None = None
    metrics_last_success: datetime | None = None
    scheduler_process: EndpointState | None = None

    @property
    def last_success(self) -> datetime | None:
        """The newer of the run history's and the metrics' last success."""
        recorded = self.overview.last_success_at if self.overview else None
        candidates = [moment for moment in (recorded, self.metrics_last_success) if moment is not None]
        return max(candidates) if candidates else None


@dataclass(frozen=True)
class Verdict:
    status: Status
    reasons: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return self.status is not Status.ERROR


def cron_interval(job: Job, timezone: str, now: datetime) -> timedelta | None:
    """The gap between the job's next two fire times (None when its cron cannot say)."""
    try:
        schedule = job.schedule(timezone)
        first = schedule.next_after(now)
        return schedule.next_after(first) - first
    except Exception:
        return None


def _seconds(value: float) -> str:
    return f"{value:.0f} s"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _queue_notes(observation: Observation) -> tuple[int | None, list[str]]:
    """Messages waiting (ready in the queue and its delay queue; None when unknown) and source notes."""
    notes: list[str] = []
    if observation.rabbitmq_error is not None:
        summary = "RabbitMQ management API unreadable, consumers unknown"
        notes.append(Reason(f"{summary}: {observation.rabbitmq_error}", summary=summary))
        return None, notes
    if observation.queue is None:
        return None, notes
    if not observation.queue_declared:
        notes.append(f"queue {observation.job.queue} is not declared yet (no worker or producer has used it)")
    waiting = observation.queue.ready + (observation.delayed.ready if observation.delayed else 0)
    return waiting, notes


def _endpoint_notes(observation: Observation) -> list[str]:
    notes: list[str] = []
    endpoint = observation.endpoint
    queue = observation.queue
    if observation.metrics_error is not None:
        notes.append(Reason(f"metrics unreadable: {observation.metrics_error}", summary="metrics unreadable"))
    if endpoint is not None and endpoint.failures:
        which = "" if endpoint.total == 1 else f" ({endpoint.total - endpoint.answered} of {endpoint.total})"
        alive = ""
        if endpoint.answered == 0 and queue is not None and queue.consumers > 0:
            alive = f"; {queue.consumers} consumer(s) on {observation.job.queue}: the worker is alive"
        summary = f"metrics endpoint unreachable{which}"
        notes.append(Reason(f"{summary}: {'; '.join(endpoint.failures)}{alive}", summary=f"{summary}{alive}"))
    process = observation.scheduler_process
    if process is not None and not process.up:
        summary = "scheduler process metrics endpoint unreachable, cron ticks may not be sent"
        notes.append(Reason(f"{summary}: {'; '.join(process.failures)}", summary=summary))
    return notes


def _operator_state(overview: SchedulerOverview, settings: Settings) -> tuple[Status, str] | None:
    """The status an operator (or SCHEDULER_ENABLED) put the scheduler in, and why; ``None``: active."""
    if not settings.scheduler_enabled:
        return Status.STOPPED, "SCHEDULER_ENABLED=false: cron ticks are off"
    if overview.control == "STOPPED":
        return Status.STOPPED, "stopped by an operator"
    if overview.control == "PAUSED":
        return Status.PAUSED, "paused by an operator"
    return None


@dataclass(frozen=True)
class _Facts:
    """What the rules of an active scheduler read, worked out once."""

    observation: Observation
    overview: SchedulerOverview
    waiting: int | None
    no_consumers: bool
    never_ran: bool

    @property
    def job(self) -> Job:
        return self.observation.job


def _failures_error(facts: _Facts, settings: Settings) -> str | None:
    overview = facts.overview
    if overview.consecutive_failures < settings.health_max_consecutive_failures:
        return None
    summary = (
        f"{overview.consecutive_failures} runs in a row failed, the limit is "
        f"HEALTH_MAX_CONSECUTIVE_FAILURES={settings.health_max_consecutive_failures}"
    )
    if not overview.last_error:
        return summary
    return Reason(f"{summary} (last error: {overview.last_error})", summary=summary)


def _idle_worker_error(facts: _Facts) -> str | None:
    if facts.no_consumers and not facts.waiting and not facts.never_ran:
        return f"no consumers on queue {facts.job.queue}: its worker is down"
    return None


def _age_error(facts: _Facts, settings: Settings, now: datetime) -> str | None:
    last_success = facts.observation.last_success
    interval = cron_interval(facts.job, settings.scheduler_timezone, now)
    # A scheduler resumed after a long pause gets a fresh start: its age counts from the resume.
    resumed = facts.overview.control_changed_at
    if last_success is not None and resumed is not None and resumed > last_success:
        last_success = resumed
    if last_success is None or interval is None:
        return None
    limit = interval * settings.health_success_interval_factor
    if now - last_success <= limit:
        return None
    return (
        f"last success (or resume) at {_iso(last_success)} is older than "
        f"HEALTH_SUCCESS_INTERVAL_FACTOR={settings.health_success_interval_factor:g} x its "
        f"{_seconds(interval.total_seconds())} interval ({_seconds(limit.total_seconds())})"
    )


def _lag_error(facts: _Facts, settings: Settings) -> str | None:
    lag = facts.observation.lag_seconds
    if lag is None or lag <= settings.health_max_lag_seconds:
        return None
    return f"stage lag {_seconds(lag)} exceeds HEALTH_MAX_LAG_SECONDS={settings.health_max_lag_seconds}"


def _active_errors(facts: _Facts, settings: Settings, now: datetime) -> list[str]:
    """The rules that hold only while the scheduler is active (not paused, stopped or disabled)."""
    found = (
        _failures_error(facts, settings),
        _idle_worker_error(facts),
        _age_error(facts, settings, now),
        _lag_error(facts, settings),
    )
    return [error for error in found if error is not None]


def _starting_notes(facts: _Facts) -> list[str]:
    notes = ["no run yet"]
    endpoint = facts.observation.endpoint
    if facts.no_consumers:
        notes.append(f"no consumers on queue {facts.job.queue} yet")
    elif endpoint is not None and endpoint.up:
        notes.append("metrics endpoint up")
    return notes


def _status(errors: list[str], operator: tuple[Status, str] | None, never_ran: bool) -> Status:
    if errors:
        return Status.ERROR
    if operator is not None:
        return operator[0]
    return Status.STARTING if never_ran else Status.RUNNING


def judge(observation: Observation, settings: Settings, now: datetime) -> Verdict:
    """The status of one scheduler and every reason behind it (notes that do not change it included)."""
    overview = observation.overview
    if overview is None:
        detail = observation.database_error or "no answer"
        return Verdict(
            Status.ERROR, (Reason(f"database unreachable: {detail}", summary="database unreachable"),)
        )
    waiting, queue_notes = _queue_notes(observation)
    queue = observation.queue
    facts = _Facts(
        observation,
        overview,
        waiting,
        no_consumers=queue is not None and queue.consumers == 0,
        never_ran=overview.last_run_at is None and observation.last_success is None,
    )
    errors: list[str] = []
    notes: list[str] = []
    if facts.no_consumers and waiting:
        # Pausing or stopping a scheduler stops its cron ticks, not its worker pool: these messages (work
        # handed over by other stages, or a trigger) are stuck whatever the control state.
        errors.append(
            f"no consumers on queue {facts.job.queue} while {waiting} message(s) wait: its worker is down"
        )
    operator = _operator_state(overview, settings)
    if operator is None:
        errors.extend(_active_errors(facts, settings, now))
        if facts.never_ran and not errors:
            notes = _starting_notes(facts)
    leading = [operator[1]] if operator is not None else []
    reasons = leading + errors + notes + queue_notes + _endpoint_notes(observation)
    return Verdict(_status(errors, operator, facts.never_ran), tuple(reasons))
