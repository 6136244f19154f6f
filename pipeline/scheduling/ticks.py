"""The tick ledger: a tick is recorded under its unique key (job, UTC tick time) before its message is sent.

Any number of scheduler replicas evaluate the same cron expressions; the replica whose insert wins sends the
message, the others see a conflict and send nothing. The insert and the publish share one transaction: when
the publish fails (RabbitMQ down), the insert is rolled back, so the tick is still due and the next pass sends
it. A publish that RabbitMQ confirmed is followed by the commit; should the commit fail, the message exists
without its tick row; its worker then claims the tick itself, as for any tick message that arrives without a
ledger entry.

A tick message that arrives without a ledger entry (sent by periodiq's own loop, by hand, or replayed from
the dead letters after its tick was pruned) claims its tick itself (:func:`claim_tick`): the job and the due
time of its cron, under the same unique key. So any mix of ``livedash scheduler`` replicas and
``periodiq pipeline.actors`` replicas gives one run per tick: whoever records the key first runs it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dramatiq import Message
from sqlalchemy import Engine, Table, exists, select, update
from sqlalchemy.orm import Session

from pipeline.db.bulk import upsert_statement
from pipeline.db.enums import TickOutcome
from pipeline.db.models import SchedulerRun, SchedulerState, SchedulerTick
from pipeline.metrics import SCHEDULER_TICKS
from pipeline.scheduling.jobs import Job

__all__ = ["Publish", "TickDecision", "TickResult", "claim_tick", "due_tick", "record_tick"]

_ticks: Table = SchedulerTick.__table__  # type: ignore[assignment]

#: Sends one message and returns it as published (``broker.enqueue``).
Publish = Callable[[Message[None]], Message[None]]


class TickResult(enum.StrEnum):
    """What one replica did with one tick; the ``outcome`` label of ``livedash_scheduler_ticks_total``."""

    ENQUEUED = "enqueued"
    DUPLICATE = "duplicate"
    SKIPPED_PAUSED = "skipped_paused"
    SKIPPED_STOPPED = "skipped_stopped"
    SKIPPED_OVERLAP = "skipped_overlap"


@dataclass(frozen=True)
class TickDecision:
    job_id: str
    tick_at: datetime
    result: TickResult
    message_id: str | None = None
    detail: str | None = None
    #: The ledger entry of an ENQUEUED tick.
    tick_id: uuid.UUID | None = None


def _previous_unfinished(
    db: Session, job: Job, tick_id: uuid.UUID, tick_at: datetime, overlap_timeout: timedelta
) -> datetime | None:
    """Tick time of the job's newest earlier enqueued tick whose run has not finished, if recent enough."""
    finished = exists().where(SchedulerRun.tick_id == SchedulerTick.id, SchedulerRun.finished_at.is_not(None))
    return db.scalar(
        select(SchedulerTick.tick_at)
        .where(
            SchedulerTick.job == job.id,
            SchedulerTick.id != tick_id,
            SchedulerTick.outcome == TickOutcome.ENQUEUED,
            SchedulerTick.tick_at > tick_at - overlap_timeout,
            SchedulerTick.tick_at <= tick_at,
            ~finished,
        )
        .order_by(SchedulerTick.tick_at.desc())
        .limit(1)
    )


def _set_outcome(db: Session, tick_id: uuid.UUID, outcome: TickOutcome, detail: str | None) -> None:
    db.execute(
        update(SchedulerTick).where(SchedulerTick.id == tick_id).values(outcome=outcome, detail=detail)
    )


def record_tick(
    engine: Engine,
    job: Job,
    tick_at: datetime,
    *,
    publish: Publish,
    instance_id: str,
    overlap_timeout: timedelta,
    detail: str | None = None,
    manual: bool = False,
) -> TickDecision:
    """Record ``job``'s tick at ``tick_at`` and send its message, unless another replica already did, the
    scheduler is paused or stopped, or the previous run is still going. ``manual`` (an operator's trigger)
    ignores pause, stop and overlap. A failed publish raises and leaves no record."""
    tick_id = uuid.uuid4()
    with Session(engine) as db, db.begin():
        inserted = db.scalar(
            upsert_statement(db, _ticks)
            .values(
                id=tick_id,
                job=job.id,
                tick_at=tick_at,
                outcome=TickOutcome.ENQUEUED,
                instance_id=instance_id,
                detail=detail,
            )
            .on_conflict_do_nothing(index_elements=["job", "tick_at"])
            .returning(_ticks.c.id)
        )
        if inserted is None:
            return _counted(TickDecision(job.id, tick_at, TickResult.DUPLICATE))
        skipped = _decide(db, job, tick_id, tick_at, overlap_timeout, manual)
        if skipped is not None:
            return _counted(skipped)
        message = publish(_tick_message(job, tick_id))
        db.execute(update(_ticks).where(_ticks.c.id == tick_id).values(message_id=message.message_id))
    return _counted(TickDecision(job.id, tick_at, TickResult.ENQUEUED, message.message_id, detail, tick_id))


def _counted(decision: TickDecision) -> TickDecision:
    SCHEDULER_TICKS.labels(decision.job_id, decision.result.value).inc()
    return decision


def _decide(
    db: Session, job: Job, tick_id: uuid.UUID, tick_at: datetime, overlap_timeout: timedelta, manual: bool
) -> TickDecision | None:
    """Why this tick must not be sent (and record it), or None when it must."""
    if manual:
        return None
    state = db.get(SchedulerState, job.id)
    if state is not None and (state.stopped or state.paused):
        reason = "stopped" if state.stopped else "paused"
        _set_outcome(db, tick_id, TickOutcome.SKIPPED_PAUSED, reason)
        result = TickResult.SKIPPED_STOPPED if state.stopped else TickResult.SKIPPED_PAUSED
        return TickDecision(job.id, tick_at, result, detail=reason)
    previous = _previous_unfinished(db, job, tick_id, tick_at, overlap_timeout)
    if previous is not None:
        reason = f"the run of the tick at {previous.isoformat()} has not finished"
        _set_outcome(db, tick_id, TickOutcome.SKIPPED_OVERLAP, reason)
        return TickDecision(job.id, tick_at, TickResult.SKIPPED_OVERLAP, detail=reason)
    return None


def _tick_message(job: Job, tick_id: uuid.UUID) -> Message[None]:
    # No ``scheduled_at`` option: periodiq's middleware would silently drop the tick once its queue is more
    # than 30 s behind. The run history, not message age, decides whether a tick still runs.
    return Message(
        queue_name=job.queue, actor_name=job.actor_name, args=(), kwargs={"tick_id": str(tick_id)}, options={}
    )


def due_tick(job: Job, sent_at: datetime, *, timezone: str, window: timedelta) -> datetime:
    """The tick a message sent at ``sent_at`` stands for: the newest fire time of ``job``'s cron at or before
    it, within ``window``; a message sent further from any fire time (by hand) stands for a tick of its own,
    at the second it was sent."""
    sent_at = sent_at.astimezone(UTC)
    due = job.schedule(timezone).last_at_or_before(sent_at, not_before=sent_at - window)
    return due if due is not None else sent_at.replace(microsecond=0)


def claim_tick(
    engine: Engine,
    job: Job,
    sent_at: datetime,
    *,
    message_id: str,
    timezone: str,
    window: timedelta,
    instance_id: str,
    overlap_timeout: timedelta,
) -> TickDecision:
    """Record the tick that the message ``message_id`` (sent at ``sent_at``, without a ledger entry) stands
    for, as the scheduler would have. ENQUEUED means this message runs it; DUPLICATE that another sender's
    message already has it; the skipped results that it is paused, stopped or would overlap."""

    def adopt(message: Message[None]) -> Message[None]:
        # The message is already delivered: the ledger records it instead of sending another.
        return message.copy(message_id=message_id)

    return record_tick(
        engine,
        job,
        due_tick(job, sent_at, timezone=timezone, window=window),
        publish=adopt,
        instance_id=instance_id,
        overlap_timeout=overlap_timeout,
        detail="claimed by its own message (sent without a ledger entry)",
    )
