"""Keeping the tick ledger and the run history bounded: rows older than ``SCHEDULER_HISTORY_DAYS`` go.

With the default crons the five jobs add about 2,500 ticks and as many runs a day. Reads walk indexes from
now backwards and do not slow down as the tables grow, but disks fill; the scheduler prunes in small batches
so no long transaction holds locks. Pruning old ticks cannot cause a tick to run twice: the loop never looks
further back than the catch-up window, which is far shorter than any retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from pipeline.db.models import SchedulerRun, SchedulerTick

__all__ = ["PRUNE_BATCH", "Pruned", "prune_history"]

#: Rows deleted per transaction.
PRUNE_BATCH = 5_000


@dataclass(frozen=True)
class Pruned:
    runs: int
    ticks: int


def _prune(
    engine: Engine,
    model: type[SchedulerRun] | type[SchedulerTick],
    column: InstrumentedAttribute[datetime],
    cutoff: datetime,
) -> int:
    deleted = 0
    while True:
        with Session(engine) as db, db.begin():
            ids = list(db.scalars(select(model.id).where(column < cutoff).limit(PRUNE_BATCH)))
            if not ids:
                return deleted
            db.execute(delete(model).where(model.id.in_(ids)))
            deleted += len(ids)


def prune_history(engine: Engine, now: datetime, keep: timedelta) -> Pruned:
    """Delete runs started and ticks due before ``now - keep``; runs first, as they point at ticks."""
    cutoff = now - keep
    return Pruned(
        runs=_prune(engine, SchedulerRun, SchedulerRun.started_at, cutoff),
        ticks=_prune(engine, SchedulerTick, SchedulerTick.tick_at, cutoff),
    )
