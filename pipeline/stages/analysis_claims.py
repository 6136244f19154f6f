"""Claiming sessions for AI analysis, the same for both paths: only sessions whose messages exist, of ACTIVE
companies, each with the model its company analyses with."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from pipeline.db.claims import STAGE_STATUS, claim
from pipeline.db.enums import CompanyStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import ChatSession, Company, SessionProcessingStatus
from pipeline.settings import Settings
from pipeline.stages.ai_models import choose_model

__all__ = ["ClaimedSession", "analysable_sessions", "claim_analysable"]


@dataclass(frozen=True)
class ClaimedSession:
    session_id: uuid.UUID
    company_id: uuid.UUID
    #: How many times this analysis was claimed, this claim included.
    claims: int
    model: str


def analysable_sessions() -> Select[uuid.UUID]:
    """The ids of the sessions that can be analysed: their messages exist, their company is ACTIVE."""
    return (
        select(SessionProcessingStatus.session_id)
        .join(ChatSession, ChatSession.id == SessionProcessingStatus.session_id)
        .join(Company, Company.id == ChatSession.company_id)
        .where(
            SessionProcessingStatus.stage == ProcessingStage.SESSION_CREATION,
            SessionProcessingStatus.status == ProcessingStatus.COMPLETED,
            Company.status == CompanyStatus.ACTIVE,
        )
    )


def claim_analysable(
    db: Session, settings: Settings, session_ids: Sequence[uuid.UUID], *, now: datetime, lease: timedelta
) -> list[ClaimedSession]:
    """Claim the AI_ANALYSIS rows of those ``session_ids`` that can be analysed; the caller commits."""
    claimed = claim(
        db,
        STAGE_STATUS,
        limit=len(session_ids),
        owner=settings.scheduler_instance_id,
        now=now,
        lease=lease,
        where=[
            SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
            SessionProcessingStatus.session_id.in_(session_ids),
            SessionProcessingStatus.session_id.in_(analysable_sessions()),
        ],
    )
    if not claimed:
        return []
    rows = db.execute(
        select(SessionProcessingStatus.session_id, ChatSession.company_id, SessionProcessingStatus.attempts)
        .join(ChatSession, ChatSession.id == SessionProcessingStatus.session_id)
        .where(SessionProcessingStatus.id.in_(claimed))
    ).all()
    models = {
        company_id: choose_model(db, company_id, settings.openai_model)
        for company_id in {company_id for _, company_id, _ in rows}
    }
    return [
        ClaimedSession(session_id, company_id, attempts, models[company_id])
        for session_id, company_id, attempts in rows
    ]
