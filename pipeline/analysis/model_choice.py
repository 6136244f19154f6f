"""Which model analyses a company's sessions (``../shared/spec/domain.md`` §5.2).

The company's default ``CompanyAIModel``, if its model is active, else the configured model
(``OPENAI_MODEL``, whose own default is ``gpt-4o``). Upstream ignored ``AIModel.is_active``; a deactivated
model here falls back to the configured one rather than being sent to OpenAI.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.models import AIModel, CompanyAIModel

__all__ = ["choose_model"]


def choose_model(db: Session, company_id: uuid.UUID, default_model: str) -> str:
    """The name of the model to analyse ``company_id``'s sessions with."""
    chosen = db.scalar(
        select(AIModel.name)
        .join(CompanyAIModel, CompanyAIModel.ai_model_id == AIModel.id)
        .where(CompanyAIModel.company_id == company_id, CompanyAIModel.is_default, AIModel.is_active)
    )
    return default_model if chosen is None else chosen
