"""The session-processing sweep: sessions ready for analysis whose message was lost or whose worker died.

Only sessions whose messages exist (SESSION_CREATION COMPLETED) are ever picked; the others have their
AI_ANALYSIS SKIPPED by import processing, so they never hold a place in the queue (upstream's starvation).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.orm import aliased, sessionmaker

from pipeline import metrics
from pipeline.db.enums import CompanyStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import ChatSession, Company, SessionProcessingStatus
from pipeline.db.types import utcnow
from pipeline.queues import SESSION_PROCESSING
from pipeline.settings import Settings
from pipeline.stages.chunks import send_in_chunks

__all__ = ["SWEEP_GRACE", "SWEEP_MAX_SESSIONS", "SweepResult", "sweep_sessions"]

#: A PENDING analysis younger than this is assumed to have its message still on the way.
SWEEP_GRACE = timedelta(minutes=2)
#: Sessions sent per sweep at most; a larger backlog is taken over the next ticks, oldest first.
SWEEP_MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class SweepResult:
    sent: int
    lag_seconds: float


def sweep_sessions(
    engine: Engine,
    settings: Settings,
    send: Callable[[list[uuid.UUID]], None],
    *,
    now: datetime | None = None,
    grace: timedelta = SWEEP_GRACE,
) -> SweepResult:
    now = now or utcnow()
    analysis = aliased(SessionProcessingStatus)
    creation = aliased(SessionProcessingStatus)
    waiting = (
        select(analysis.session_id, analysis.updated_at)
        .join(
            creation,
            and_(
                creation.session_id == analysis.session_id, creation.stage == ProcessingStage.SESSION_CREATION
            ),
        )
        .join(ChatSession, ChatSession.id == analysis.session_id)
        .join(Company, Company.id == ChatSession.company_id)
        .where(
            analysis.stage == ProcessingStage.AI_ANALYSIS,
            creation.status == ProcessingStatus.COMPLETED,
            Company.status == CompanyStatus.ACTIVE,
            or_(
                and_(analysis.status == ProcessingStatus.PENDING, analysis.updated_at <= now - grace),
                and_(analysis.status == ProcessingStatus.IN_PROGRESS, analysis.lease_expires_at < now),
            ),
        )
    )
    with sessionmaker(engine)() as db:
        oldest = db.scalar(
            select(func.min(SessionProcessingStatus.updated_at)).where(
                SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
                SessionProcessingStatus.status == ProcessingStatus.PENDING,
            )
        )
        due = list(
            db.scalars(
                waiting.order_by(analysis.updated_at)
                .limit(SWEEP_MAX_SESSIONS)
                .with_only_columns(analysis.session_id)
            )
        )
    lag = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    metrics.STAGE_LAG.labels(SESSION_PROCESSING).set(lag)
    send_in_chunks(due, settings.session_processing_batch_size, send)
    return SweepResult(len(due), lag)
