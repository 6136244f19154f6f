"""The demo's budget episode: one company gets a small monthly AI budget, waits at it, and goes on after a
raise, as an operator would see it (``docs/session-analysis.md``, "Budgets")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.analysis import MAX_TOKENS, worst_case_eur
from pipeline.db.enums import AIRequestStatus
from pipeline.db.models import AIProcessingRequest, ChatSession, Company, CompanyAISpend
from pipeline.settings import Settings
from pipeline.stages.ai_models import price_at
from pipeline.stages.budgets import BUDGET_REACHED, month_of, set_budget

__all__ = ["RAISED_TO", "limit_budget", "raise_budget", "waiting_at_budget"]

#: The budget the company gets once it has waited at its small one.
RAISED_TO = Decimal("25.00")


def _company_id(db: Session, name: str) -> uuid.UUID:
    return db.scalars(select(Company.id).where(Company.name == name)).one()


def limit_budget(factory: sessionmaker[Session], settings: Settings, name: str) -> tuple[uuid.UUID, Decimal]:
    """Give company ``name`` a budget with room for about half of its waiting requests (in whole cents)."""
    now = datetime.now(UTC)
    with factory.begin() as db:
        company_id = _company_id(db, name)
        waiting = db.execute(
            select(AIProcessingRequest.model, AIProcessingRequest.estimated_prompt_tokens)
            .join(ChatSession, ChatSession.id == AIProcessingRequest.session_id)
            .where(
                ChatSession.company_id == company_id,
                AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING,
            )
            .order_by(AIProcessingRequest.requested_at, AIProcessingRequest.id)
        ).all()
        prices = {model: price_at(db, model, now) for model in {model for model, _ in waiting}}
        worst = [
            worst_case_eur(tokens, MAX_TOKENS, prices[model], batch=True, eur_per_usd=settings.eur_per_usd)
            for model, tokens in waiting[: len(waiting) // 2]
        ]
        budget = sum(worst, Decimal(0)).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        set_budget(db, company_id, budget)
    return company_id, budget


def waiting_at_budget(factory: sessionmaker[Session], company_id: uuid.UUID) -> int:
    """The company's requests waiting with ``budget reached``."""
    with factory() as db:
        notes = db.scalars(
            select(AIProcessingRequest.error_message)
            .join(ChatSession, ChatSession.id == AIProcessingRequest.session_id)
            .where(
                ChatSession.company_id == company_id,
                AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING,
            )
        ).all()
    return sum((note or "").startswith(BUDGET_REACHED) for note in notes)


def raise_budget(factory: sessionmaker[Session], company_id: uuid.UUID) -> Decimal:
    """Raise the company's budget to :data:`RAISED_TO`; return what it had spent this month until then."""
    with factory.begin() as db:
        spend = db.get(CompanyAISpend, (company_id, month_of(datetime.now(UTC))))
        set_budget(db, company_id, RAISED_TO)
        return Decimal(0) if spend is None else Decimal(spend.spent_eur)
