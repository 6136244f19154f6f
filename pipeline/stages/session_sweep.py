"""The session-processing sweep: sessions ready for analysis whose message was lost or whose worker died.

Only sessions whose messages exist (SESSION_CREATION COMPLETED) are ever picked; the others have their
AI_ANALYSIS SKIPPED by import processing, so they never hold a place in the queue (no starvation behind
sessions that can never be analysed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, select
from sqlalchemy.orm import aliased

from pipeline.db.claims import STAGE_STATUS
from pipeline.db.enums import CompanyStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import ChatSession, Company, SessionProcessingStatus
from pipeline.db.types import utcnow
from pipeline.settings import Settings
from pipeline.stages.sweeps import SWEEP_GRACE, Swept, sweep

__all__ = ["SWEEP_GRACE", "sweep_sessions"]


def sweep_sessions(
    engine: Engine,
    settings: Settings,
    send: Callable[[list[uuid.UUID]], None],
    *,
    now: datetime | None = None,
    grace: timedelta = SWEEP_GRACE,
) -> Swept:
    """Send every overdue AI_ANALYSIS of an ACTIVE company's session whose messages exist, in chunks."""
    analysis = SessionProcessingStatus
    creation = aliased(SessionProcessingStatus)
    candidates = (
        select(analysis.session_id)
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
        )
    )
    return sweep(
        engine,
        STAGE_STATUS,
        candidates,
        stage="session-processing",
        waiting_since=analysis.updated_at,
        waiting=[analysis.stage == ProcessingStage.AI_ANALYSIS, analysis.status == ProcessingStatus.PENDING],
        chunk_size=settings.session_processing_batch_size,
        send=send,
        now=now or utcnow(),
        grace=grace,
    )
