"""Applying answered analyses, the same for the synchronous path and the Batch path.

An answer is validated against the one analysis schema; a valid one replaces the session's AI fields and its
questions and completes AI_ANALYSIS and QUESTION_EXTRACTION. Its request row gets the tokens and the cost
(with the Batch discount for batch answers). Applying the same answer again replaces, never duplicates.

:func:`apply_analyses` writes row by row and leaves the stage changes to its caller (the synchronous path,
a few answers at a time); :func:`complete_analyses` does the same writes and the stage changes set-based on
PostgreSQL, for the thousands of answers of a batch chunk. The Batch path keeps an answer as an
:class:`Answer` of plain values rather than the pydantic models it was checked with: thousands of those
models alive at once cost more in garbage collection than in validation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from openai.types.chat import ChatCompletion
from sqlalchemy import Table, TextClause, bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from pipeline import metrics
from pipeline.analysis import (
    Cost,
    Price,
    SessionAnalysis,
    Usage,
    cost_of,
    normalized_questions,
    parse_analysis,
)
from pipeline.db.bulk import bulk_insert, copy_into_temporary_table, is_postgresql, upsert_statement
from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.models import ChatSession, Question, SessionQuestion
from pipeline.settings import Settings
from pipeline.stages.ai_models import price_at
from pipeline.stages.stage_status import StageChange, apply_stage_changes

__all__ = [
    "USAGE_COLUMNS",
    "Answer",
    "Applied",
    "PriceCache",
    "answer_from_json",
    "answer_json",
    "answer_of",
    "answer_values",
    "apply_analyses",
    "complete_analyses",
    "first_message",
    "priced",
    "record_prompt_truncations",
    "record_usage",
    "staged_completion",
    "usage_values",
    "validated",
]

_questions = cast(Table, Question.__table__)
_session_questions = cast(Table, SessionQuestion.__table__)
_sessions = cast(Table, ChatSession.__table__)


@dataclass(frozen=True)
class Applied:
    """A validated answer for one session, with the model and request id it came from."""

    analysis: SessionAnalysis
    model: str
    request_id: str | None


class Answer(NamedTuple):
    """A validated answer as it is stored: the AI fields (enums by value) and the normalised questions."""

    language: str
    sentiment: str
    escalated: bool
    forwarded_hr: bool
    category: str
    summary: str
    questions: tuple[str, ...]
    model: str
    request_id: str | None


def answer_of(
    analysis: SessionAnalysis, model: str, request_id: str | None, *, max_question_chars: int
) -> Answer:
    return Answer(
        analysis.language,
        analysis.sentiment.value,
        analysis.escalated,
        analysis.forwarded_hr,
        analysis.category.value,
        analysis.summary,
        tuple(normalized_questions(analysis, max_chars=max_question_chars)),
        model,
        request_id,
    )


def answer_json(answer: Answer) -> dict[str, Any]:
    """What a request row keeps of its validated answer, for an analysis of the same content to reuse.

    The questions stay a tuple (a JSON array all the same): a dict of immutable values only is left alone by
    the cyclic garbage collector, and a batch chunk holds thousands of these until it is written.
    """
    return {
        "language": answer.language,
        "sentiment": answer.sentiment,
        "escalated": answer.escalated,
        "forwarded_hr": answer.forwarded_hr,
        "category": answer.category,
        "summary": answer.summary,
        "questions": answer.questions,
    }


def answer_from_json(kept: dict[str, Any], model: str, request_id: str | None) -> Answer:
    """The answer a request row kept (:func:`answer_json`), to apply again."""
    return Answer(
        kept["language"],
        kept["sentiment"],
        kept["escalated"],
        kept["forwarded_hr"],
        kept["category"],
        kept["summary"],
        tuple(kept["questions"]),
        model,
        request_id,
    )


def first_message(completion: ChatCompletion) -> tuple[str | None, str | None]:
    """The content and refusal of the first choice's message; both ``None`` without a choice."""
    message = completion.choices[0].message if completion.choices else None
    return (message.content, message.refusal) if message else (None, None)


def validated(completion: ChatCompletion, session_id: uuid.UUID) -> SessionAnalysis:
    """The answer in ``completion``, validated for ``session_id``; raises InvalidAnalysis."""
    content, refusal = first_message(completion)
    return parse_analysis(content, refusal=refusal, expected_session_id=str(session_id))


def _detail(source: Any, name: str) -> int | None:
    # 0 is stored as NULL: "not reported" and "none used" read the same.
    return (getattr(source, name, None) or None) if source is not None else None


#: Prices already looked up, by (model, request time): the answers of one batch share a few of them.
PriceCache = dict[tuple[str, datetime], Price | None]


def priced(
    db: Session,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    requested_at: datetime,
    settings: Settings,
    batch: bool,
    prices: PriceCache | None,
) -> Cost:
    """The cost of a call; ``prices`` memoises the price lookup for the answers of one batch."""
    key = (model, requested_at)
    if prices is not None and key in prices:
        price = prices[key]
    else:
        price = price_at(db, model, requested_at)
        if prices is not None:
            prices[key] = price
    usage = Usage(prompt_tokens, completion_tokens)
    return cost_of(usage, price, batch=batch, eur_per_usd=settings.eur_per_usd)


def record_usage(
    model: str,
    mode: str,
    prompt_tokens: int,
    completion_tokens: int,
    cost_eur: float,
    unknown_prices: int = 0,
) -> None:
    """Count billed tokens and cost (``mode``: ``sync`` or ``batch``), and answers that had no known price."""
    model = metrics.label(model)
    if unknown_prices:
        metrics.UNKNOWN_PRICE.labels(model).inc(unknown_prices)
    metrics.OPENAI_TOKENS.labels(model, mode, "prompt").inc(prompt_tokens)
    metrics.OPENAI_TOKENS.labels(model, mode, "completion").inc(completion_tokens)
    metrics.OPENAI_COST_EUR.labels(model, mode).inc(cost_eur)


#: The request-row columns :func:`usage_values` gives, in its order (prompt, completion tokens at [3], [4]).
USAGE_COLUMNS = (
    "openai_request_id",
    "service_tier",
    "system_fingerprint",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "audio_tokens_prompt",
    "reasoning_tokens",
    "audio_tokens_completion",
    "accepted_prediction_tokens",
    "rejected_prediction_tokens",
)


def usage_values(completion: ChatCompletion) -> tuple[Any, ...]:
    """The request-row columns of an answered (billed) call that come from the answer (``USAGE_COLUMNS``)."""
    usage = completion.usage
    prompt_tokens = usage.prompt_tokens if usage else 0
    completion_tokens = usage.completion_tokens if usage else 0
    prompt_details = usage.prompt_tokens_details if usage else None
    completion_details = usage.completion_tokens_details if usage else None
    return (
        completion.id,
        completion.service_tier,
        completion.system_fingerprint,
        prompt_tokens,
        completion_tokens,
        usage.total_tokens if usage else prompt_tokens + completion_tokens,
        _detail(prompt_details, "cached_tokens"),
        _detail(prompt_details, "audio_tokens"),
        _detail(completion_details, "reasoning_tokens"),
        _detail(completion_details, "audio_tokens"),
        _detail(completion_details, "accepted_prediction_tokens"),
        _detail(completion_details, "rejected_prediction_tokens"),
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
    values = dict(zip(USAGE_COLUMNS, usage_values(completion), strict=True))
    prompt_tokens, completion_tokens = values["prompt_tokens"], values["completion_tokens"]
    cost = priced(db, model, prompt_tokens, completion_tokens, requested_at, settings, batch, prices)
    record_usage(
        model,
        "batch" if batch else "sync",
        prompt_tokens,
        completion_tokens,
        cost.total_eur,
        unknown_prices=int(not cost.known),
    )
    values.update(
        prompt_token_cost=cost.prompt_unit_usd,
        completion_token_cost=cost.completion_unit_usd,
        total_cost_eur=cost.total_eur,
        cost_known=cost.known,
    )
    return values


def _store_questions(db: Session, questions: dict[uuid.UUID, tuple[str, ...]], now: datetime) -> None:
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


def _apply_answers(db: Session, answers: dict[uuid.UUID, Answer], now: datetime) -> list[StageChange]:
    """Write answers onto their sessions row by row; return the stage changes that complete them."""
    if not answers:
        return []
    db.execute(
        _UPDATE_SESSION,
        [
            {
                "b_id": session_id,
                "b_language": answer.language,
                "b_sentiment": answer.sentiment,
                "b_escalated": answer.escalated,
                "b_forwarded_hr": answer.forwarded_hr,
                "b_category": answer.category,
                "b_summary": answer.summary,
                "b_now": now,
            }
            for session_id, answer in answers.items()
        ],
    )
    _store_questions(db, {session_id: answer.questions for session_id, answer in answers.items()}, now)
    changes: list[StageChange] = []
    for session_id, answer in answers.items():
        # complete_analyses writes the same metadata with jsonb_build_object: keep the two alike.
        changes += [
            StageChange(
                session_id,
                ProcessingStage.AI_ANALYSIS,
                ProcessingStatus.COMPLETED,
                metadata={
                    "language": answer.language,
                    "sentiment": answer.sentiment,
                    "category": answer.category,
                    "questionsCount": len(answer.questions),
                    "model": answer.model,
                    "requestId": answer.request_id,
                },
            ),
            StageChange(
                session_id,
                ProcessingStage.QUESTION_EXTRACTION,
                ProcessingStatus.COMPLETED,
                metadata={"questionsProcessed": len(answer.questions)},
            ),
        ]
    return changes


_SET_PROMPT_TRUNCATION = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("b_id"))
    .values(prompt_truncation=bindparam("b_truncation"))
)


def record_prompt_truncations(db: Session, truncations: dict[uuid.UUID, str | None]) -> None:
    """Record on each session what its last prompt left out to fit (``None``: nothing), in one statement."""
    if truncations:
        db.execute(
            _SET_PROMPT_TRUNCATION,
            [
                {"b_id": session_id, "b_truncation": truncation}
                for session_id, truncation in truncations.items()
            ],
        )


def apply_analyses(
    db: Session, applied: dict[uuid.UUID, Applied], now: datetime, *, max_question_chars: int
) -> list[StageChange]:
    """Write validated answers onto their sessions; return the stage changes that complete them."""
    return _apply_answers(
        db,
        {
            session_id: answer_of(
                item.analysis, item.model, item.request_id, max_question_chars=max_question_chars
            )
            for session_id, item in applied.items()
        },
        now,
    )


_ANSWERS = (
    ("session_id", "uuid"),
    ("language", "text"),
    ("sentiment", "text"),
    ("escalated", "boolean"),
    ("forwarded_hr", "boolean"),
    ("category", "text"),
    ("summary", "text"),
    ("questions_count", "integer"),
    ("model", "text"),
    ("request_id", "text"),
)
_ANSWER_QUESTIONS = (("session_id", "uuid"), ("order", "integer"), ("content", "text"))

#: What _apply_answers and its stage changes write (COMPLETED as in stage_status._TERMINAL_UPDATE), as one
#: statement per table over the answers and their questions in the temporary tables {answers}, {questions}.
_COMPLETE = (
    """UPDATE session AS target SET language = answer.language, sentiment = answer.sentiment,
        escalated = answer.escalated, forwarded_hr = answer.forwarded_hr, category = answer.category,
        summary = answer.summary, updated_at = :now
    FROM {answers} AS answer WHERE target.id = answer.session_id""",
    """UPDATE session_processing_status AS target SET status = :completed,
        started_at = coalesce(target.started_at, :now), completed_at = :now, error_message = NULL,
        metadata = CASE WHEN target.stage = :ai_analysis THEN jsonb_build_object(
            'language', answer.language, 'sentiment', answer.sentiment, 'category', answer.category,
            'questionsCount', answer.questions_count, 'model', answer.model, 'requestId', answer.request_id)
            ELSE jsonb_build_object('questionsProcessed', answer.questions_count) END,
        lease_expires_at = NULL, leased_by = NULL, updated_at = :now
    FROM {answers} AS answer
    WHERE target.session_id = answer.session_id AND target.stage IN (:ai_analysis, :question_extraction)""",
    """DELETE FROM session_question AS target USING {answers} AS answer
    WHERE target.session_id = answer.session_id""",
    # Sorted, so that two chunks sharing new texts lock them in the same order.
    """INSERT INTO question (id, content, created_at)
    SELECT gen_random_uuid(), content, :now FROM (SELECT DISTINCT content FROM {questions}) AS texts
    ORDER BY content ON CONFLICT (content) DO NOTHING""",
    """INSERT INTO session_question (id, session_id, question_id, "order", created_at)
    SELECT gen_random_uuid(), listed.session_id, question.id, listed."order", :now
    FROM {questions} AS listed JOIN question ON question.content = listed.content""",
)


def complete_analyses(db: Session, answers: dict[uuid.UUID, Answer], now: datetime) -> None:
    """Write answers onto their sessions and complete both AI stages, in the caller's transaction.

    The same result as :func:`apply_analyses` followed by its stage changes. On PostgreSQL the answers and
    their questions are copied into two temporary tables and applied with one statement per table.
    """
    if not answers:
        return
    if not is_postgresql(db):
        apply_stage_changes(db, _apply_answers(db, answers, now), now)
        return
    for statement, parameters in staged_completion(db, answers, now):
        db.execute(statement, parameters)


def staged_completion(
    db: Session, answers: dict[uuid.UUID, Answer], now: datetime
) -> list[tuple[TextClause, dict[str, Any]]]:
    """PostgreSQL: copy the answers and their questions into two temporary tables now, and return the
    statements of :func:`complete_analyses` that apply them, to run when the caller chooses."""
    if not answers:
        return []
    written = copy_into_temporary_table(
        db,
        "_answer",
        _ANSWERS,
        (
            (
                session_id,
                answer.language,
                answer.sentiment,
                answer.escalated,
                answer.forwarded_hr,
                answer.category,
                answer.summary,
                len(answer.questions),
                answer.model,
                answer.request_id,
            )
            for session_id, answer in answers.items()
        ),
    )
    listed = copy_into_temporary_table(
        db,
        "_answer_question",
        _ANSWER_QUESTIONS,
        (
            (session_id, order, content)
            for session_id, answer in answers.items()
            for order, content in enumerate(answer.questions)
        ),
    )
    parameters = {
        "now": now,
        "completed": ProcessingStatus.COMPLETED.value,
        "ai_analysis": ProcessingStage.AI_ANALYSIS.value,
        "question_extraction": ProcessingStage.QUESTION_EXTRACTION.value,
    }
    return [
        (text(statement.format(answers=f'"{written}"', questions=f'"{listed}"')), parameters)
        for statement in _COMPLETE
    ]
