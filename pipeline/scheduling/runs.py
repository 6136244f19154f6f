"""The run history: each execution of a tick actor, written by the worker that runs it.

A tick message can be delivered more than once (RabbitMQ redelivers what a dead worker held, an operator
replays a dead letter). One run per tick id keeps a finished tick from running again; a run left RUNNING by a
dead worker is taken over by the redelivery.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dramatiq.middleware import Shutdown
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.db.enums import SchedulerRunStatus
from pipeline.db.models import SchedulerRun, SchedulerTick
from pipeline.db.types import utcnow
from pipeline.metrics import SCHEDULER_LAST_SUCCESS, SCHEDULER_RUN_DURATION, SCHEDULER_RUNS

__all__ = ["RunRecord", "recorded_run"]

#: Longest error text kept on a run; the full traceback is in the worker's log.
MAX_ERROR_LENGTH = 2000


@dataclass
class RunRecord:
    """The run in progress; the actor sets ``items`` to what it processed."""

    id: uuid.UUID
    items: int = 0


def _begin(engine: Engine, job_id: str, tick_id: uuid.UUID | None, instance_id: str) -> RunRecord | None:
    with Session(engine) as db, db.begin():
        if tick_id is not None:
            existing = db.scalar(
                select(SchedulerRun).where(SchedulerRun.tick_id == tick_id).with_for_update()
            )
            if existing is not None:
                if existing.finished_at is not None:
                    return None
                existing.instance_id = instance_id
                existing.started_at = utcnow()
                return RunRecord(existing.id)
            if db.get(SchedulerTick, tick_id) is None:
                tick_id = None  # sent by hand, or its tick row was pruned: the run stands alone
        run_id = uuid.uuid4()
        run = SchedulerRun(
            id=run_id,
            job=job_id,
            tick_id=tick_id,
            status=SchedulerRunStatus.RUNNING,
            instance_id=instance_id,
            started_at=utcnow(),
        )
        db.add(run)
    return RunRecord(run_id)


def _finish(engine: Engine, record: RunRecord, status: SchedulerRunStatus, error: str | None) -> None:
    with Session(engine) as db, db.begin():
        db.execute(
            update(SchedulerRun)
            .where(SchedulerRun.id == record.id)
            .values(status=status, finished_at=utcnow(), items_processed=record.items, error=error)
        )


@contextmanager
def recorded_run(
    engine: Engine, job_id: str, tick_id: str | None, instance_id: str
) -> Iterator[RunRecord | None]:
    """Record one run of ``job_id``'s tick around the block. Yields None when this tick's run has already
    finished (a duplicate delivery): the caller must then do nothing. An exception marks the run FAILED and
    propagates."""
    try:
        record = _begin(engine, job_id, uuid.UUID(tick_id) if tick_id else None, instance_id)
    except IntegrityError:
        record = None  # a concurrent delivery of the same tick inserted its run first
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
