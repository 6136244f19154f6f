"""Claiming work in the database: the one way every stage decides who does what (``docs/architecture.md``).

A claim takes up to N items of a kind whose status is pending, or whose lease has expired, and marks them
in progress with a lease, in one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``.
Concurrent claimers on PostgreSQL skip each other's rows instead of waiting; SQLite serialises writers, so
the single statement is atomic there too. Nothing about a claim lives in process memory: a worker may die at
any instruction and its items become claimable again when the lease runs out.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from pipeline.db.enums import ProcessingStatus
from pipeline.db.models import SessionImport, SessionProcessingStatus
from pipeline.db.types import utcnow

__all__ = ["IMPORT_DERIVATION", "LEASE_GRACE", "STAGE_STATUS", "ClaimPolicy", "claim", "lease_for"]

#: A claim's lease outlives the work's own time limit by this much before another worker may take it over:
#: a worker still finishing (committing, reporting) keeps its items. The default of ``CLAIM_LEASE_GRACE_MS``.
LEASE_GRACE = timedelta(minutes=2)


def lease_for(time_limit_ms: int, grace: timedelta = LEASE_GRACE) -> timedelta:
    """The lease of a claim whose work is given ``time_limit_ms`` milliseconds (the deployment's
    ``Settings.claim_lease_grace`` as ``grace``)."""
    return timedelta(milliseconds=time_limit_ms) + grace


@dataclass(frozen=True)
class ClaimPolicy:
    """How one kind of item is claimed: which columns hold its status, lease and attempt count."""

    model: type[Any]
    id_column: InstrumentedAttribute[uuid.UUID]
    status_column: InstrumentedAttribute[Any]
    pending: tuple[StrEnum, ...]
    in_progress: StrEnum
    lease_column: InstrumentedAttribute[datetime | None]
    attempts_column: InstrumentedAttribute[int]
    order_by: tuple[InstrumentedAttribute[Any], ...]
    owner_column: InstrumentedAttribute[str | None] | None = None
    started_at_column: InstrumentedAttribute[datetime | None] | None = None
    #: Columns of the previous attempt's ending (finish time, error) that a new claim clears.
    cleared_on_claim: tuple[InstrumentedAttribute[Any], ...] = ()

    def claimable(self, now: datetime) -> ColumnElement[bool]:
        """Pending, or in progress under a lease that has passed (its worker died)."""
        return or_(
            self.status_column.in_(self.pending),
            and_(self.status_column == self.in_progress, self.lease_column < now),
        )

    def overdue(
        self, now: datetime, *, waiting_since: InstrumentedAttribute[datetime], grace: timedelta
    ) -> ColumnElement[bool]:
        """Claimable, and if pending then pending since ``grace`` ago: its message is presumed lost."""
        return and_(
            self.claimable(now),
            or_(self.status_column == self.in_progress, waiting_since <= now - grace),
        )


def claim(
    db: Session,
    policy: ClaimPolicy,
    *,
    limit: int,
    lease: timedelta,
    owner: str,
    where: Sequence[ColumnElement[bool]] = (),
    now: datetime | None = None,
) -> list[uuid.UUID]:
    """Claim up to ``limit`` items matching ``where``; return their ids. The caller commits."""
    if limit < 1:
        return []
    now = now or utcnow()
    candidates = (
        select(policy.id_column)
        .where(policy.claimable(now), *where)
        .order_by(*policy.order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    values: dict[Any, Any] = {
        policy.status_column: policy.in_progress,
        policy.lease_column: now + lease,
        policy.attempts_column: policy.attempts_column + 1,
    }
    if policy.owner_column is not None:
        values[policy.owner_column] = owner
    if policy.started_at_column is not None:
        values[policy.started_at_column] = now
    for column in policy.cleared_on_claim:
        values[column] = None
    statement = (
        update(policy.model)
        .where(policy.id_column.in_(candidates.scalar_subquery()))
        .values(values)
        .returning(policy.id_column)
        .execution_options(synchronize_session=False)
    )
    return list(db.execute(statement).scalars())


#: Claims ``SessionProcessingStatus`` rows; pass ``where=[SessionProcessingStatus.stage == ...]``.
STAGE_STATUS = ClaimPolicy(
    model=SessionProcessingStatus,
    id_column=SessionProcessingStatus.id,
    status_column=SessionProcessingStatus.status,
    pending=(ProcessingStatus.PENDING,),
    in_progress=ProcessingStatus.IN_PROGRESS,
    lease_column=SessionProcessingStatus.lease_expires_at,
    attempts_column=SessionProcessingStatus.attempts,
    order_by=(SessionProcessingStatus.created_at, SessionProcessingStatus.id),
    owner_column=SessionProcessingStatus.leased_by,
    started_at_column=SessionProcessingStatus.started_at,
    cleared_on_claim=(SessionProcessingStatus.completed_at, SessionProcessingStatus.error_message),
)

#: Claims ``SessionImport`` rows for import processing (deriving their Session).
IMPORT_DERIVATION = ClaimPolicy(
    model=SessionImport,
    id_column=SessionImport.id,
    status_column=SessionImport.derive_status,
    pending=(ProcessingStatus.PENDING,),
    in_progress=ProcessingStatus.IN_PROGRESS,
    lease_column=SessionImport.derive_lease_expires_at,
    attempts_column=SessionImport.derive_attempts,
    order_by=(SessionImport.derive_requested_at, SessionImport.id),
)
