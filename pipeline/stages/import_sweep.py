"""The import-processing sweep: finds the imports whose message was lost, whose worker died, or whose
backoff has passed, and sends them again. The database is the truth; the sweep only re-nudges.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.orm import sessionmaker

from pipeline import metrics
from pipeline.db.enums import CompanyStatus, ProcessingStatus
from pipeline.db.models import Company, SessionImport
from pipeline.db.types import utcnow
from pipeline.queues import IMPORT_PROCESSING
from pipeline.settings import Settings
from pipeline.stages.chunks import send_in_chunks

__all__ = ["SWEEP_GRACE", "SWEEP_MAX_IMPORTS", "SweepResult", "sweep_imports"]

#: A PENDING import younger than this is assumed to have its message still on the way.
SWEEP_GRACE = timedelta(minutes=2)
#: Imports sent per sweep at most; a larger backlog is taken over the next ticks, oldest first.
SWEEP_MAX_IMPORTS = 10_000

_WAITING = (ProcessingStatus.PENDING, ProcessingStatus.IN_PROGRESS, ProcessingStatus.FAILED)


@dataclass(frozen=True)
class SweepResult:
    retried: int
    sent: int
    lag_seconds: float


def sweep_imports(
    engine: Engine,
    settings: Settings,
    send: Callable[[list[uuid.UUID]], None],
    *,
    now: datetime | None = None,
    grace: timedelta = SWEEP_GRACE,
) -> SweepResult:
    """Make due retries PENDING again, then send every waiting import (oldest first) in chunks."""
    now = now or utcnow()
    factory = sessionmaker(engine)
    with factory.begin() as db:
        retried = (
            db.connection()
            .execute(
                update(SessionImport)
                .where(
                    SessionImport.derive_status == ProcessingStatus.FAILED,
                    SessionImport.derive_next_attempt_at <= now,
                )
                .values(derive_status=ProcessingStatus.PENDING, derive_next_attempt_at=None)
                .execution_options(synchronize_session=False)
            )
            .rowcount
        )
    with factory() as db:
        oldest = db.scalar(
            select(func.min(SessionImport.derive_requested_at)).where(
                SessionImport.derive_status.in_((ProcessingStatus.PENDING, ProcessingStatus.IN_PROGRESS))
            )
        )
        due = db.scalars(
            select(SessionImport.id)
            .join(Company, Company.id == SessionImport.company_id)
            .where(
                Company.status == CompanyStatus.ACTIVE,
                SessionImport.derive_status.in_(_WAITING[:2]),
                or_(
                    and_(
                        SessionImport.derive_status == ProcessingStatus.PENDING,
                        SessionImport.derive_requested_at <= now - grace,
                    ),
                    and_(
                        SessionImport.derive_status == ProcessingStatus.IN_PROGRESS,
                        SessionImport.derive_lease_expires_at < now,
                    ),
                ),
            )
            .order_by(SessionImport.derive_requested_at)
            .limit(SWEEP_MAX_IMPORTS)
        ).all()
    lag = (now - oldest).total_seconds() if oldest is not None else 0.0
    metrics.STAGE_LAG.labels(IMPORT_PROCESSING).set(lag)
    send_in_chunks(due, settings.import_processing_batch_size, send)
    return SweepResult(retried, len(due), lag)
