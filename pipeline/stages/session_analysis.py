"""The session-processing stage, synchronous path: one chat completion per session, validated, applied.

For a chunk of session ids: claim their AI_ANALYSIS rows (only sessions whose messages exist, of ACTIVE
companies), call chat completions for each (at most ``SESSION_PROCESSING_CONCURRENCY`` at once per process),
validate every answer against the one analysis schema, and apply it. Every call is recorded as an
AIProcessingRequest: failed attempts with their error, the answered one with tokens and cost (an answer that
fails validation was still paid for, so it is recorded with its cost and the reason). A session is applied in
its own transaction, so one bad answer never undoes another.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import openai
from sqlalchemy import Engine, Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from pipeline import metrics
from pipeline.analysis import (
    InvalidAnalysis,
    PromptMessage,
    SessionAnalysis,
    choose_model,
    normalized_questions,
    parse_analysis,
    price_request,
    request_body,
)
from pipeline.analysis.openai_calls import Attempt, CallFailed, Completion, complete_with_retries
from pipeline.db.bulk import bulk_insert
from pipeline.db.claims import STAGE_STATUS, claim
from pipeline.db.enums import AIRequestStatus, CompanyStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import (
    AIProcessingRequest,
    ChatSession,
    Company,
    Message,
    Question,
    SessionProcessingStatus,
    SessionQuestion,
)
from pipeline.db.types import utcnow
from pipeline.settings import Settings
from pipeline.stages.stage_status import StageChange, apply_stage_changes

__all__ = ["AnalysisResult", "analyze_sessions"]

logger = logging.getLogger(__name__)

STAGE = "session-processing"
_questions = cast(Table, Question.__table__)
_session_questions = cast(Table, SessionQuestion.__table__)
_sessions = cast(Table, ChatSession.__table__)
_requests = cast(Table, AIProcessingRequest.__table__)
_AI, _QUESTIONS = ProcessingStage.AI_ANALYSIS, ProcessingStage.QUESTION_EXTRACTION
_LEASE_GRACE = timedelta(minutes=2)
#: Claims of one session's analysis (each a worker that took it and died) before it is FAILED for good.
_MAX_CLAIMS = 5


@dataclass(frozen=True)
class AnalysisResult:
    claimed: int
    completed: int
    failed: int


@dataclass
class _Job:
    session_id: uuid.UUID
    company_id: uuid.UUID
    claims: int
    model: str = ""
    messages: list[PromptMessage] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    completion: Completion | None = None
    requested_at: datetime | None = None
    error: str | None = None


def _claim(
    factory: sessionmaker[Session], settings: Settings, session_ids: Sequence[uuid.UUID], now: datetime
) -> list[_Job]:
    ready = (
        select(SessionProcessingStatus.session_id)
        .join(ChatSession, ChatSession.id == SessionProcessingStatus.session_id)
        .join(Company, Company.id == ChatSession.company_id)
        .where(
            SessionProcessingStatus.stage == ProcessingStage.SESSION_CREATION,
            SessionProcessingStatus.status == ProcessingStatus.COMPLETED,
            Company.status == CompanyStatus.ACTIVE,
        )
    )
    with factory.begin() as db:
        claimed = claim(
            db,
            STAGE_STATUS,
            limit=len(session_ids),
            owner=settings.scheduler_instance_id,
            now=now,
            lease=timedelta(milliseconds=settings.actor_time_limit_ms) + _LEASE_GRACE,
            where=[
                SessionProcessingStatus.stage == _AI,
                SessionProcessingStatus.session_id.in_(session_ids),
                SessionProcessingStatus.session_id.in_(ready),
            ],
        )
        if not claimed:
            return []
        rows = db.execute(
            select(
                SessionProcessingStatus.session_id, ChatSession.company_id, SessionProcessingStatus.attempts
            )
            .join(ChatSession, ChatSession.id == SessionProcessingStatus.session_id)
            .where(SessionProcessingStatus.id.in_(claimed))
        ).all()
        jobs = {
            session_id: _Job(session_id, company_id, attempts) for session_id, company_id, attempts in rows
        }
        for message in db.scalars(
            select(Message).where(Message.session_id.in_(jobs)).order_by(Message.session_id, Message.order)
        ):
            jobs[message.session_id].messages.append(PromptMessage.from_row(message))
        models = {
            company_id: choose_model(db, company_id, settings.openai_model)
            for company_id in {job.company_id for job in jobs.values()}
        }
    for job in jobs.values():
        job.model = models[job.company_id]
    return list(jobs.values())


def _call(job: _Job, client: openai.OpenAI, settings: Settings) -> None:
    job.requested_at = utcnow()
    try:
        body = request_body(job.model, str(job.session_id), job.messages)
    except ValueError as exc:
        # Nothing to ask (no messages): fail before paying, without taking the chunk's answers down with it.
        job.error = f"cannot build the prompt: {exc}"
        return
    try:
        job.completion = complete_with_retries(client, body, settings, on_attempt_failed=job.attempts.append)
    except CallFailed as exc:
        job.error = exc.reason
    except Exception as exc:
        # An unexpected error in one call must not lose the answers the other calls of the chunk paid for.
        logger.exception("chat completion for session %s failed unexpectedly", job.session_id)
        job.error = f"unexpected error: {type(exc).__name__}: {exc}"


def _request_row(job: _Job, now: datetime, **values: Any) -> dict[str, Any]:
    assert job.requested_at is not None
    return {
        "id": uuid.uuid4(),
        "session_id": job.session_id,
        "openai_request_id": None,
        "model": job.model,
        "service_tier": None,
        "system_fingerprint": None,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cached_tokens": None,
        "audio_tokens_prompt": None,
        "reasoning_tokens": None,
        "audio_tokens_completion": None,
        "accepted_prediction_tokens": None,
        "rejected_prediction_tokens": None,
        "prompt_token_cost": 0.0,
        "completion_token_cost": 0.0,
        "total_cost_eur": 0.0,
        "cost_known": True,
        "processing_type": "session_analysis",
        "success": False,
        "error_message": None,
        "processing_status": AIRequestStatus.PROCESSING_FAILED,
        "requested_at": job.requested_at,
        "completed_at": now,
        "attempts": 1,
        "batch_id": None,
        **values,
    }


def _answered_row(db: Session, job: _Job, settings: Settings, now: datetime) -> dict[str, Any]:
    """The request row of the call that was answered (and billed), with its tokens and cost."""
    assert job.completion is not None and job.requested_at is not None
    completion = job.completion.completion
    usage = completion.usage
    prompt_tokens = usage.prompt_tokens if usage else 0
    completion_tokens = usage.completion_tokens if usage else 0
    cost = price_request(
        db,
        job.model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        at=job.requested_at,
        batch=False,
        eur_per_usd=settings.eur_per_usd,
    )
    if not cost.known:
        metrics.UNKNOWN_PRICE.labels(job.model).inc()
    metrics.OPENAI_TOKENS.labels(job.model, "sync", "prompt").inc(prompt_tokens)
    metrics.OPENAI_TOKENS.labels(job.model, "sync", "completion").inc(completion_tokens)
    metrics.OPENAI_COST_EUR.labels(job.model, "sync").inc(cost.total_eur)
    prompt_details = usage.prompt_tokens_details if usage else None
    completion_details = usage.completion_tokens_details if usage else None

    def detail(source: Any, name: str) -> int | None:
        # Upstream stores 0 as NULL: "not reported" and "none used" read the same.
        return (getattr(source, name, None) or None) if source is not None else None

    return _request_row(
        job,
        now,
        openai_request_id=completion.id,
        service_tier=completion.service_tier,
        system_fingerprint=completion.system_fingerprint,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=usage.total_tokens if usage else prompt_tokens + completion_tokens,
        cached_tokens=detail(prompt_details, "cached_tokens"),
        audio_tokens_prompt=detail(prompt_details, "audio_tokens"),
        reasoning_tokens=detail(completion_details, "reasoning_tokens"),
        audio_tokens_completion=detail(completion_details, "audio_tokens"),
        accepted_prediction_tokens=detail(completion_details, "accepted_prediction_tokens"),
        rejected_prediction_tokens=detail(completion_details, "rejected_prediction_tokens"),
        prompt_token_cost=cost.prompt_unit_usd,
        completion_token_cost=cost.completion_unit_usd,
        total_cost_eur=cost.total_eur,
        cost_known=cost.known,
        attempts=len(job.attempts) + 1,
        processing_status=AIRequestStatus.PROCESSING_COMPLETE,
    )


def _validated(job: _Job) -> SessionAnalysis:
    """The job's answer, validated; raises InvalidAnalysis."""
    assert job.completion is not None
    choices = job.completion.completion.choices
    message = choices[0].message if choices else None
    return parse_analysis(
        message.content if message else None,
        refusal=message.refusal if message else None,
        expected_session_id=str(job.session_id),
    )


def _store_questions(db: Session, questions: dict[uuid.UUID, list[str]], now: datetime) -> None:
    """Replace the questions of these sessions, keeping their order; question texts are shared."""
    db.execute(delete(SessionQuestion).where(SessionQuestion.session_id.in_(questions)))
    texts = sorted({text for listed in questions.values() for text in listed})
    if not texts:
        return
    dialect_insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    db.execute(
        dialect_insert(_questions).on_conflict_do_nothing(index_elements=["content"]),
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


def _record_jobs(factory: sessionmaker[Session], jobs: Sequence[_Job], settings: Settings) -> int:
    """Record the calls and outcomes of ``jobs`` in one transaction; return how many were applied.

    A validated answer replaces the session's AI fields and questions and completes both AI stages; applying
    it again replaces, never duplicates. Anything else fails AI_ANALYSIS with the reason.
    """
    now = utcnow()
    requests: list[dict[str, Any]] = []
    applied: dict[uuid.UUID, tuple[SessionAnalysis, _Job]] = {}
    changes: list[StageChange] = []
    with factory.begin() as db:
        for job in jobs:
            requests += [
                _request_row(job, now, error_message=attempt.error, attempts=attempt.number)
                for attempt in job.attempts
            ]
            reason = job.error
            if job.completion is not None:
                row = _answered_row(db, job, settings, now)
                try:
                    applied[job.session_id] = (_validated(job), job)
                except InvalidAnalysis as exc:
                    reason = f"invalid answer: {exc.reason}"
                    row.update(error_message=reason, processing_status=AIRequestStatus.PROCESSING_FAILED)
                else:
                    row["success"] = True
                requests.append(row)
            if reason is not None:
                changes.append(StageChange(job.session_id, _AI, ProcessingStatus.FAILED, reason))
        bulk_insert(db, _requests, requests)
        if applied:
            db.execute(
                _UPDATE_SESSION,
                [
                    {
                        "b_id": session_id,
                        "b_language": analysis.language,
                        "b_sentiment": analysis.sentiment,
                        "b_escalated": analysis.escalated,
                        "b_forwarded_hr": analysis.forwarded_hr,
                        "b_category": analysis.category,
                        "b_summary": analysis.summary,
                        "b_now": now,
                    }
                    for session_id, (analysis, _) in applied.items()
                ],
            )
            questions = {
                session_id: normalized_questions(analysis) for session_id, (analysis, _) in applied.items()
            }
            _store_questions(db, questions, now)
            for session_id, (analysis, job) in applied.items():
                assert job.completion is not None
                changes += [
                    StageChange(
                        session_id,
                        _AI,
                        ProcessingStatus.COMPLETED,
                        metadata={
                            "language": analysis.language,
                            "sentiment": analysis.sentiment.value,
                            "category": analysis.category.value,
                            "questionsCount": len(questions[session_id]),
                            "model": job.model,
                            "requestId": job.completion.request_id,
                        },
                    ),
                    StageChange(
                        session_id,
                        _QUESTIONS,
                        ProcessingStatus.COMPLETED,
                        metadata={"questionsProcessed": len(questions[session_id])},
                    ),
                ]
        apply_stage_changes(db, changes, now)
    return len(applied)


def _record(factory: sessionmaker[Session], jobs: Sequence[_Job], settings: Settings) -> int:
    """Record a chunk in one transaction; failing that, session by session, so a bad row stops only itself."""
    try:
        return _record_jobs(factory, jobs, settings)
    except Exception:
        logger.exception("recording %d analyses together failed; recording them one by one", len(jobs))
    recorded = 0
    for job in jobs:
        try:
            recorded += _record_jobs(factory, [job], settings)
        except Exception:
            # Its lease runs out and the sweep takes it again.
            logger.exception("could not record the analysis of session %s", job.session_id)
    return recorded


def analyze_sessions(
    engine: Engine,
    settings: Settings,
    session_ids: Sequence[uuid.UUID],
    *,
    client: openai.OpenAI,
    calls: Executor,
) -> AnalysisResult:
    """Analyse the sessions of ``session_ids`` this worker can claim.

    ``calls`` runs the chat completions: one pool per process, as wide as ``SESSION_PROCESSING_CONCURRENCY``,
    shared by every worker thread, so that the process never has more calls in flight than that.
    """
    factory = sessionmaker(engine, expire_on_commit=False)
    jobs = _claim(factory, settings, session_ids, utcnow())
    if not jobs:
        return AnalysisResult(0, 0, 0)
    given_up = [job for job in jobs if job.claims > _MAX_CLAIMS]
    for job in given_up:
        with factory.begin() as db:
            apply_stage_changes(
                db,
                [
                    StageChange(
                        job.session_id,
                        _AI,
                        ProcessingStatus.FAILED,
                        f"gave up after {_MAX_CLAIMS} claims: its workers kept dying",
                    )
                ],
                utcnow(),
            )
    callable_jobs = [job for job in jobs if job.claims <= _MAX_CLAIMS]
    list(calls.map(lambda job: _call(job, client, settings), callable_jobs))
    completed = _record(factory, callable_jobs, settings)
    failed = len(jobs) - completed
    metrics.STAGE_ITEMS.labels(STAGE, "completed").inc(completed)
    metrics.STAGE_ITEMS.labels(STAGE, "failed").inc(failed)
    return AnalysisResult(len(jobs), completed, failed)
