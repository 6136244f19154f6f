"""The one sweep: send again the work whose message was lost or whose worker died.

The database is the truth; a sweep only re-nudges. An item is overdue when its :class:`ClaimPolicy` says it
is claimable and, if it is pending, it has waited longer than :data:`SWEEP_GRACE` (a younger one has its
message presumed still on the way). Each stage's sweep names its candidates (joins, filters) and the
column it waits since; this module does the rest: the overdue test, the order, the cap, the lag metric and
the hand-over in chunks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, sessionmaker

from pipeline import metrics
from pipeline.db.claims import ClaimPolicy
from pipeline.stages.chunks import send_in_chunks

__all__ = ["SWEEP_GRACE", "SWEEP_MAX_ITEMS", "Swept", "sweep"]

#: A pending item younger than this is assumed to have its message still on the way.
SWEEP_GRACE = timedelta(minutes=2)
#: Items sent per sweep at most; a larger backlog is taken over the next ticks, oldest first.
SWEEP_MAX_ITEMS = 10_000


@dataclass(frozen=True)
class Swept:
    """What one sweep sent, and how long the oldest waiting item of its stage has waited."""

    sent: int
    lag_seconds: float


def sweep(
    engine: Engine,
    policy: ClaimPolicy,
    candidates: Select[uuid.UUID],
    *,
    stage: str,
    waiting_since: InstrumentedAttribute[datetime],
    waiting: Sequence[ColumnElement[bool]],
    chunk_size: int,
    send: Callable[[list[uuid.UUID]], None],
    now: datetime,
    grace: timedelta,
) -> Swept:
    """Send the overdue ``candidates`` (oldest first, at most :data:`SWEEP_MAX_ITEMS`) in chunks.

    ``waiting`` selects the items whose age is the stage's lag (the ``STAGE_LAG`` gauge of ``stage``).
    """
    with sessionmaker(engine)() as db:
        oldest = db.scalar(select(func.min(waiting_since)).where(*waiting))
        due = list(
            db.scalars(
                candidates.where(policy.overdue(now, waiting_since=waiting_since, grace=grace))
                .order_by(waiting_since)
                .limit(SWEEP_MAX_ITEMS)
            )
        )
    lag = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    metrics.STAGE_LAG.labels(stage).set(lag)
    send_in_chunks(due, chunk_size, send)
    return Swept(len(due), lag)
