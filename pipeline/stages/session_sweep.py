"""The session-processing sweep: sessions ready for analysis whose message was lost or whose worker died.

Only sessions whose messages exist (SESSION_CREATION COMPLETED) are ever picked; the others have their
AI_ANALYSIS SKIPPED by import processing, so they never hold a place in the queue (no starvation behind
sessions that can never be analysed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from pipeline.db.claims import STAGE_STATUS
from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.models import SessionProcessingStatus
from pipeline.db.types import utcnow
from pipeline.queues import SESSION_PROCESSING
from pipeline.settings import Settings
from pipeline.stages.analysis_claims import analysable_sessions
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
    candidates = select(analysis.session_id).where(
        analysis.stage == ProcessingStage.AI_ANALYSIS, analysis.session_id.in_(analysable_sessions())
    )
    return sweep(
        engine,
        STAGE_STATUS,
        candidates,
        stage=SESSION_PROCESSING,
        waiting_since=analysis.updated_at,
        waiting=[analysis.stage == ProcessingStage.AI_ANALYSIS, analysis.status == ProcessingStatus.PENDING],
        chunk_size=settings.session_processing_batch_size,
        send=send,
        now=now or utcnow(),
        grace=grace,
    )
