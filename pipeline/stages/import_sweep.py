"""The import-processing sweep: finds the imports whose message was lost, whose worker died, or whose
backoff has passed, and sends them again. The database is the truth; the sweep only re-nudges.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import sessionmaker

from pipeline.db.claims import IMPORT_DERIVATION
from pipeline.db.enums import CompanyStatus, ProcessingStatus
from pipeline.db.models import Company, SessionImport
from pipeline.db.types import utcnow
from pipeline.queues import IMPORT_PROCESSING
from pipeline.settings import Settings
from pipeline.stages.sweeps import SWEEP_GRACE, sweep

__all__ = ["SWEEP_GRACE", "SweepResult", "sweep_imports"]


@dataclass(frozen=True)
class SweepResult:
    retried: int
    sent: int
    lag_seconds: float


def _make_due_retries_pending(engine: Engine, now: datetime) -> int:
    with sessionmaker(engine).begin() as db:
        return (
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


def sweep_imports(
    engine: Engine,
    settings: Settings,
    send: Callable[[list[uuid.UUID]], None],
    *,
    now: datetime | None = None,
    grace: timedelta = SWEEP_GRACE,
) -> SweepResult:
    """Make due retries PENDING again, then send every overdue import (oldest first) in chunks."""
    now = now or utcnow()
    retried = _make_due_retries_pending(engine, now)
    swept = sweep(
        engine,
        IMPORT_DERIVATION,
        select(SessionImport.id)
        .join(Company, Company.id == SessionImport.company_id)
        .where(Company.status == CompanyStatus.ACTIVE),
        stage=IMPORT_PROCESSING,
        waiting_since=SessionImport.derive_requested_at,
        waiting=[SessionImport.derive_status.in_((ProcessingStatus.PENDING, ProcessingStatus.IN_PROGRESS))],
        chunk_size=settings.import_processing_batch_size,
        send=send,
        now=now,
        grace=grace,
    )
    return SweepResult(retried, swept.sent, swept.lag_seconds)
