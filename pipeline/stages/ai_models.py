"""The database side of the analysis contract: which model a company uses, and a model's price at a time.

:mod:`pipeline.analysis` holds the rules and the arithmetic and reads no database; the stages look the facts
up here and pass them in.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from pipeline.analysis.pricing import Price, model_name_candidates, resolve_model_name
from pipeline.db.models import AIModel, AIModelPricing, CompanyAIModel

__all__ = ["choose_model", "price_at"]


def choose_model(db: Session, company_id: uuid.UUID, default_model: str) -> str:
    """The name of the model to analyse ``company_id``'s sessions with.

    The company's default ``CompanyAIModel`` if its model is active, else ``default_model`` (the
    ``OPENAI_MODEL`` setting): a deactivated model is never sent to OpenAI.
    """
    chosen = db.scalar(
        select(AIModel.name)
        .join(CompanyAIModel, CompanyAIModel.ai_model_id == AIModel.id)
        .where(CompanyAIModel.company_id == company_id, CompanyAIModel.is_default, AIModel.is_active)
    )
    return default_model if chosen is None else chosen


def price_at(db: Session, model: str, at: datetime) -> Price | None:
    """The unit prices of ``model`` (as named in a response or a batch line) valid at ``at``; ``at`` is aware.

    ``None`` when the name resolves to no model with a price valid then (see
    :func:`~pipeline.analysis.pricing.resolve_model_name`).
    """
    # One query for the name and its base: every candidate model with its prices valid at `at` (none: NULLs),
    # so that a model that exists but has no price then is not priced as its base either.
    rows = db.execute(
        select(AIModel.name, AIModelPricing.prompt_token_cost, AIModelPricing.completion_token_cost)
        .outerjoin(
            AIModelPricing,
            and_(
                AIModelPricing.ai_model_id == AIModel.id,
                AIModelPricing.effective_from <= at,
                or_(AIModelPricing.effective_until.is_(None), AIModelPricing.effective_until > at),
            ),
        )
        .where(AIModel.name.in_(model_name_candidates(model)))
        .order_by(AIModelPricing.effective_from.desc())
    ).all()
    resolved = resolve_model_name(model, {row.name for row in rows})
    row = next((row for row in rows if row.name == resolved and row.prompt_token_cost is not None), None)
    if row is None:
        return None
    return Price(row.name, row.prompt_token_cost, row.completion_token_cost)
