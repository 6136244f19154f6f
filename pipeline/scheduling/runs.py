"""The run history: each execution of a tick actor, written by the worker that runs it.

A tick message can be delivered more than once (RabbitMQ redelivers what a dead worker held, an operator
replays a dead letter). One run per tick id keeps a finished tick from running again; a run left RUNNING by a
dead worker is taken over by the redelivery. A message without a ledger entry claims its tick first (the
caller's ``claim``), so it runs only if no other message has that tick.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from dramatiq.middleware import Shutdown
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.db.enums import SchedulerRunStatus
from pipeline.db.models import SchedulerRun, SchedulerTick
from pipeline.db.types import utcnow
from pipeline.metrics import SCHEDULER_LAST_SUCCESS, SCHEDULER_RUN_DURATION, SCHEDULER_RUNS

__all__ = ["ClaimTick", "RunRecord", "recorded_run"]

#: Records the tick of a message that has no ledger entry; returns its id, or None if it is not this
#: message's to run (another message has it, or the job is paused, stopped or still running).
ClaimTick = Callable[[], uuid.UUID | None]

#: How long a run waits for its tick's transaction to commit before it stands alone.
TICK_COMMIT_WAIT_SECONDS = 5.0
#: Longest error text kept on a run; the full traceback is in the worker's log.
MAX_ERROR_LENGTH = 2000


@dataclass
class RunRecord:
    """The run in progress; the actor sets ``items`` to what it processed."""

    id: uuid.UUID
    items: int = 0


def _existing(db: Session, tick_id: uuid.UUID, instance_id: str) -> RunRecord | Literal["finished"] | None:
    run = db.scalar(select(SchedulerRun).where(SchedulerRun.tick_id == tick_id).with_for_update())
    if run is None:
        return None
    if run.finished_at is not None:
        return "finished"
    run.instance_id = instance_id
    run.started_at = utcnow()
    return RunRecord(run.id)


def _insert(db: Session, job_id: str, tick_id: uuid.UUID | None, instance_id: str) -> RunRecord:
    run_id = uuid.uuid4()
    db.add(
        SchedulerRun(
            id=run_id,
            job=job_id,
            tick_id=tick_id,
            status=SchedulerRunStatus.RUNNING,
            instance_id=instance_id,
            started_at=utcnow(),
        )
    )
    db.flush()
    return RunRecord(run_id)


def _tick_committed(engine: Engine, tick_id: uuid.UUID) -> bool:
    """Whether the tick exists, waiting a little: the scheduler publishes a tick's message before it commits
    the tick, so a fast worker can receive the message a few milliseconds before the tick is visible."""
    deadline = time.monotonic() + TICK_COMMIT_WAIT_SECONDS
    while True:
        with Session(engine) as db:
            if db.get(SchedulerTick, tick_id) is not None:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _claimed(engine: Engine, job_id: str, claim: ClaimTick, instance_id: str) -> RunRecord | None:
    tick_id = claim()
    if tick_id is None:
        return None
    with Session(engine) as db, db.begin():
        return _insert(db, job_id, tick_id, instance_id)


def _begin(
    engine: Engine, job_id: str, tick_id: uuid.UUID | None, instance_id: str, claim: ClaimTick
) -> RunRecord | None:
    """The run to record, or None when this message must not run (its tick's run finished, or its tick is
    another message's)."""
    if tick_id is None:
        return _claimed(engine, job_id, claim, instance_id)
    with Session(engine) as db, db.begin():
        existing = _existing(db, tick_id, instance_id)
        if existing == "finished":
            return None
        if existing is not None:
            return existing
    if not _tick_committed(engine, tick_id):
        # Sent by hand, or its tick row was pruned or never committed: it claims its tick itself.
        return _claimed(engine, job_id, claim, instance_id)
    try:
        with Session(engine) as db, db.begin():
            return _insert(db, job_id, tick_id, instance_id)
    except IntegrityError:
        # A concurrent delivery of the same tick inserted its run first.
        with Session(engine) as db, db.begin():
            existing = _existing(db, tick_id, instance_id)
            return None if existing is None or existing == "finished" else existing


def _finish(engine: Engine, record: RunRecord, status: SchedulerRunStatus, error: str | None) -> None:
    with Session(engine) as db, db.begin():
        db.execute(
            update(SchedulerRun)
            .where(SchedulerRun.id == record.id)
            .values(status=status, finished_at=utcnow(), items_processed=record.items, error=error)
        )


@contextmanager
def recorded_run(
    engine: Engine, job_id: str, tick_id: str | None, instance_id: str, *, claim: ClaimTick
) -> Iterator[RunRecord | None]:
    """Record one run of ``job_id``'s tick around the block. Yields None when this message must not run (its
    tick's run has already finished, or ``claim`` found its tick taken): the caller must then do nothing. An
    exception marks the run FAILED and propagates."""
    record = _begin(engine, job_id, uuid.UUID(tick_id) if tick_id else None, instance_id, claim)
    if record is None:
        SCHEDULER_RUNS.labels(job_id, "duplicate").inc()
        yield None
        return
    started = time.monotonic()
    try:
        yield record
    except Shutdown:
        # The worker is stopping: the run stays RUNNING and the redelivered message takes it over.
        raise
    except BaseException as exc:
        _finish(engine, record, SchedulerRunStatus.FAILED, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
        SCHEDULER_RUNS.labels(job_id, "failed").inc()
        raise
    finally:
        SCHEDULER_RUN_DURATION.labels(job_id).observe(time.monotonic() - started)
    _finish(engine, record, SchedulerRunStatus.SUCCEEDED, None)
    SCHEDULER_RUNS.labels(job_id, "succeeded").inc()
    SCHEDULER_LAST_SUCCESS.labels(job_id).set(time.time())
