"""Operator control of the schedulers, as database state that every scheduler replica reads at each tick.

The actions and their answers are the admin API's (``POST /api/admin/schedulers``): ``trigger``, ``pause``,
``resume``, ``start``, ``stop`` for one scheduler, ``startAll`` and ``stopAll`` for every one. Paused and
stopped schedulers both record their ticks as skipped; ``start`` and ``resume`` clear either state, so an
operator need not remember which one was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, get_args

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pipeline.db.models import SchedulerState
from pipeline.db.types import utcnow
from pipeline.scheduling.jobs import Job, find_job, scheduled_jobs
from pipeline.scheduling.ticks import Publish, TickDecision, record_tick
from pipeline.settings import Settings

__all__ = [
    "ALL_ACTIONS",
    "SINGLE_ACTIONS",
    "Action",
    "ActionResult",
    "InvalidAction",
    "apply_action",
    "trigger_now",
]

Action = Literal["trigger", "pause", "resume", "start", "stop", "startAll", "stopAll"]
ALL_ACTIONS: tuple[str, ...] = get_args(Action)
#: The actions that name one scheduler (``schedulerId`` required).
SINGLE_ACTIONS = ("trigger", "pause", "resume", "start", "stop")


class InvalidAction(ValueError):
    """An action that is not one of :data:`ALL_ACTIONS`, or a single action without a scheduler id."""


@dataclass(frozen=True)
class ActionResult:
    message: str
    triggered: list[TickDecision]


def _state(db: Session, scheduler_id: str) -> SchedulerState:
    state = db.get(SchedulerState, scheduler_id)
    if state is None:
        state = SchedulerState(scheduler_id=scheduler_id, paused=False, stopped=False)
        db.add(state)
    return state


def _set_state(engine: Engine, jobs: list[Job], *, paused: bool | None, stopped: bool | None) -> None:
    now = utcnow()
    with Session(engine) as db, db.begin():
        for job in jobs:
            state = _state(db, job.id)
            if paused is not None:
                state.paused = paused
                state.paused_at = now if paused else None
            if stopped is not None:
                state.stopped = stopped
                state.stopped_at = now if stopped else None


def trigger_now(
    engine: Engine, settings: Settings, job: Job, *, publish: Publish, requested_by: str
) -> TickDecision:
    """Send ``job``'s tick now, whatever its state: an operator asked for it."""
    return record_tick(
        engine,
        job,
        utcnow(),
        publish=publish,
        instance_id=settings.scheduler_instance_id,
        overlap_timeout=timedelta(seconds=settings.scheduler_overlap_timeout),
        detail=f"triggered by {requested_by}",
        manual=True,
    )


def apply_action(
    engine: Engine,
    settings: Settings,
    action: str,
    scheduler_id: str | None,
    *,
    publish: Publish,
    requested_by: str,
) -> ActionResult:
    """Carry out ``action``. Raises :class:`InvalidAction` or
    :class:`~pipeline.scheduling.jobs.UnknownScheduler` naming what is wrong, and changes nothing then."""
    if action not in ALL_ACTIONS:
        raise InvalidAction(f"unknown action {action!r} (known: {', '.join(ALL_ACTIONS)})")
    if action in SINGLE_ACTIONS:
        if not scheduler_id:
            raise InvalidAction(f"schedulerId is required for {', '.join(SINGLE_ACTIONS)} actions")
        jobs = [find_job(settings, scheduler_id)]
    else:
        jobs = scheduled_jobs(settings)
    triggered: list[TickDecision] = []
    if action == "trigger":
        triggered.append(trigger_now(engine, settings, jobs[0], publish=publish, requested_by=requested_by))
    elif action == "pause":
        _set_state(engine, jobs, paused=True, stopped=None)
    elif action in ("stop", "stopAll"):
        _set_state(engine, jobs, paused=None, stopped=True)
    else:  # resume, start, startAll
        _set_state(engine, jobs, paused=False, stopped=False)
    return ActionResult(f"Action '{action}' completed successfully", triggered)
