"""Applying answered analyses, the same for the synchronous path and the Batch path.

An answer is validated against the one analysis schema; a valid one replaces the session's AI fields and its
questions and completes AI_ANALYSIS and QUESTION_EXTRACTION. Its request row gets the tokens and the cost
(with the Batch discount for batch answers). Applying the same answer again replaces, never duplicates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from openai.types.chat import ChatCompletion
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from pipeline import metrics
from pipeline.analysis import Cost, SessionAnalysis, normalized_questions, parse_analysis, price_request
from pipeline.db.bulk import bulk_insert, upsert_statement
from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.models import ChatSession, Question, SessionQuestion
from pipeline.settings import Settings
from pipeline.stages.stage_status import StageChange

__all__ = ["Applied", "PriceCache", "answer_values", "apply_analyses", "validated"]

_questions = cast(Table, Question.__table__)
_session_questions = cast(Table, SessionQuestion.__table__)
_sessions = cast(Table, ChatSession.__table__)


@dataclass(frozen=True)
class Applied:
    """A validated answer for one session, with the model and request id it came from."""

    analysis: SessionAnalysis
    model: str
    request_id: str | None


def validated(completion: ChatCompletion, session_id: uuid.UUID) -> SessionAnalysis:
    """The answer in ``completion``, validated for ``session_id``; raises InvalidAnalysis."""
    message = completion.choices[0].message if completion.choices else None
    return parse_analysis(
        message.content if message else None,
        refusal=message.refusal if message else None,
        expected_session_id=str(session_id),
    )


def _detail(source: Any, name: str) -> int | None:
    # Upstream stores 0 as NULL: "not reported" and "none used" read the same.
    return (getattr(source, name, None) or None) if source is not None else None


#: Unit prices already looked up, by (model, request time, batch); prices do not depend on the token counts.
PriceCache = dict[tuple[str, datetime, bool], Cost]


def _cost(
    db: Session,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    requested_at: datetime,
    settings: Settings,
    batch: bool,
    prices: PriceCache | None,
) -> Cost:
    key = (model, requested_at, batch)
    cached = prices.get(key) if prices is not None else None
    if cached is None:
        cost = price_request(
            db,
            model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            at=requested_at,
            batch=batch,
            eur_per_usd=settings.eur_per_usd,
        )
        if prices is not None:
            prices[key] = cost
        return cost
    total_usd = prompt_tokens * cached.prompt_unit_usd + completion_tokens * cached.completion_unit_usd
    return Cost(
        cached.prompt_unit_usd,
        cached.completion_unit_usd,
        total_usd,
        total_usd * settings.eur_per_usd,
        cached.known,
        cached.model,
    )


def answer_values(
    db: Session,
    completion: ChatCompletion,
    *,
    model: str,
    requested_at: datetime,
    settings: Settings,
    batch: bool,
    prices: PriceCache | None = None,
) -> dict[str, Any]:
    """The request-row columns of an answered (billed) call: tokens, their details, unit prices and cost.

    ``prices`` memoises the price lookup for the answers of one batch, which share a few request times.
    """
    usage = completion.usage
    prompt_tokens = usage.prompt_tokens if usage else 0
    completion_tokens = usage.completion_tokens if usage else 0
    cost = _cost(db, model, prompt_tokens, completion_tokens, requested_at, settings, batch, prices)
    mode = "batch" if batch else "sync"
    if not cost.known:
        metrics.UNKNOWN_PRICE.labels(model).inc()
    metrics.OPENAI_TOKENS.labels(model, mode, "prompt").inc(prompt_tokens)
    metrics.OPENAI_TOKENS.labels(model, mode, "completion").inc(completion_tokens)
    metrics.OPENAI_COST_EUR.labels(model, mode).inc(cost.total_eur)
    prompt_details = usage.prompt_tokens_details if usage else None
    completion_details = usage.completion_tokens_details if usage else None
    return {
        "openai_request_id": completion.id,
        "service_tier": completion.service_tier,
        "system_fingerprint": completion.system_fingerprint,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": usage.total_tokens if usage else prompt_tokens + completion_tokens,
        "cached_tokens": _detail(prompt_details, "cached_tokens"),
        "audio_tokens_prompt": _detail(prompt_details, "audio_tokens"),
        "reasoning_tokens": _detail(completion_details, "reasoning_tokens"),
        "audio_tokens_completion": _detail(completion_details, "audio_tokens"),
        "accepted_prediction_tokens": _detail(completion_details, "accepted_prediction_tokens"),
        "rejected_prediction_tokens": _detail(completion_details, "rejected_prediction_tokens"),
        "prompt_token_cost": cost.prompt_unit_usd,
        "completion_token_cost": cost.completion_unit_usd,
        "total_cost_eur": cost.total_eur,
        "cost_known": cost.known,
    }


def _store_questions(db: Session, questions: dict[uuid.UUID, list[str]], now: datetime) -> None:
    """Replace the questions of these sessions, keeping their order; question texts are shared."""
    db.execute(delete(SessionQuestion).where(SessionQuestion.session_id.in_(questions)))
    texts = sorted({text for listed in questions.values() for text in listed})
    if not texts:
        return
    db.execute(
        upsert_statement(db, _questions).on_conflict_do_nothing(index_elements=["content"]),
        [{"id": uuid.uuid4(), "content": text, "created_at": now} for text in texts],
    )
    ids = {
        content: question_id
        for content, question_id in db.execute(
            select(Question.content, Question.id).where(Question.content.in_(texts))
        )
    }
    bulk_insert(
        db,
        _session_questions,
        [
            {
                "id": uuid.uuid4(),
                "session_id": session_id,
                "question_id": ids[text],
                "order": order,
                "created_at": now,
            }
            for session_id, listed in questions.items()
            for order, text in enumerate(listed)
        ],
    )


_UPDATE_SESSION = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("b_id"))
    .values(
        language=bindparam("b_language"),
        sentiment=bindparam("b_sentiment"),
        escalated=bindparam("b_escalated"),
        forwarded_hr=bindparam("b_forwarded_hr"),
        category=bindparam("b_category"),
        summary=bindparam("b_summary"),
        updated_at=bindparam("b_now"),
    )
)


def apply_analyses(db: Session, applied: dict[uuid.UUID, Applied], now: datetime) -> list[StageChange]:
    """Write validated answers onto their sessions; return the stage changes that complete them."""
    if not applied:
        return []
    db.execute(
        _UPDATE_SESSION,
        [
            {
                "b_id": session_id,
                "b_language": item.analysis.language,
                "b_sentiment": item.analysis.sentiment,
                "b_escalated": item.analysis.escalated,
                "b_forwarded_hr": item.analysis.forwarded_hr,
                "b_category": item.analysis.category,
                "b_summary": item.analysis.summary,
                "b_now": now,
            }
            for session_id, item in applied.items()
        ],
    )
    questions = {session_id: normalized_questions(item.analysis) for session_id, item in applied.items()}
    _store_questions(db, questions, now)
    changes: list[StageChange] = []
    for session_id, item in applied.items():
        changes += [
            StageChange(
                session_id,
                ProcessingStage.AI_ANALYSIS,
                ProcessingStatus.COMPLETED,
                metadata={
                    "language": item.analysis.language,
                    "sentiment": item.analysis.sentiment.value,
                    "category": item.analysis.category.value,
                    "questionsCount": len(questions[session_id]),
                    "model": item.model,
                    "requestId": item.request_id,
                },
            ),
            StageChange(
                session_id,
                ProcessingStage.QUESTION_EXTRACTION,
                ProcessingStatus.COMPLETED,
                metadata={"questionsProcessed": len(questions[session_id])},
            ),
        ]
    return changes
