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
from datetime import datetime
from typing import Any, cast

import openai
from sqlalchemy import Engine, Table, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline import metrics
from pipeline.analysis import (
    InvalidAnalysis,
    PromptMessage,
    fit_transcript,
    request_body,
)
from pipeline.analysis.openai_calls import Attempt, CallFailed, Completion, complete_with_retries
from pipeline.db.bulk import bulk_insert
from pipeline.db.claims import lease_for
from pipeline.db.enums import AIRequestStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import (
    AIProcessingRequest,
    Message,
)
from pipeline.db.types import utcnow
from pipeline.queues import SESSION_PROCESSING
from pipeline.settings import Settings
from pipeline.stages.analysis_claims import claim_analysable
from pipeline.stages.analysis_results import (
    Applied,
    answer_values,
    apply_analyses,
    record_prompt_truncations,
    validated,
)
from pipeline.stages.stage_status import StageChange, apply_stage_changes

__all__ = ["AnalysisResult", "analyze_sessions"]

logger = logging.getLogger(__name__)

STAGE = SESSION_PROCESSING
_requests = cast(Table, AIProcessingRequest.__table__)
_AI, _QUESTIONS = ProcessingStage.AI_ANALYSIS, ProcessingStage.QUESTION_EXTRACTION
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
    #: What was left out of the prompt to fit OPENAI_MAX_PROMPT_TOKENS, recorded on the session.
    prompt_truncation: str | None = None


def _claim(
    factory: sessionmaker[Session], settings: Settings, session_ids: Sequence[uuid.UUID], now: datetime
) -> list[_Job]:
    lease = lease_for(settings.actor_time_limit_ms)
    with factory.begin() as db:
        jobs = {
            claimed.session_id: _Job(claimed.session_id, claimed.company_id, claimed.claims, claimed.model)
            for claimed in claim_analysable(db, settings, session_ids, now=now, lease=lease)
        }
        for message in db.scalars(
            select(Message).where(Message.session_id.in_(jobs)).order_by(Message.session_id, Message.order)
        ):
            jobs[message.session_id].messages.append(PromptMessage.from_row(message))
    return list(jobs.values())


def _call(job: _Job, client: openai.OpenAI, settings: Settings) -> None:
    job.requested_at = utcnow()
    try:
        transcript = fit_transcript(job.messages, max_prompt_tokens=settings.openai_max_prompt_tokens)
        body = request_body(job.model, str(job.session_id), transcript)
        job.prompt_truncation = transcript.truncation
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


def _record_jobs(factory: sessionmaker[Session], jobs: Sequence[_Job], settings: Settings) -> int:
    """Record the calls and outcomes of ``jobs`` in one transaction; return how many were applied.

    A validated answer replaces the session's AI fields and questions and completes both AI stages; applying
    it again replaces, never duplicates. Anything else fails AI_ANALYSIS with the reason.
    """
    now = utcnow()
    requests: list[dict[str, Any]] = []
    applied: dict[uuid.UUID, Applied] = {}
    changes: list[StageChange] = []
    with factory.begin() as db:
        for job in jobs:
            requests += [
                _request_row(job, now, error_message=attempt.error, attempts=attempt.number)
                for attempt in job.attempts
            ]
            reason = job.error
            if job.completion is not None:
                assert job.requested_at is not None
                completion = job.completion.completion
                row = _request_row(
                    job,
                    now,
                    attempts=len(job.attempts) + 1,
                    processing_status=AIRequestStatus.PROCESSING_COMPLETE,
                    **answer_values(
                        db,
                        completion,
                        model=job.model,
                        requested_at=job.requested_at,
                        settings=settings,
                        batch=False,
                    ),
                )
                try:
                    applied[job.session_id] = Applied(
                        validated(completion, job.session_id), job.model, job.completion.request_id
                    )
                except InvalidAnalysis as exc:
                    reason = f"invalid answer: {exc.reason}"
                    row.update(error_message=reason, processing_status=AIRequestStatus.PROCESSING_FAILED)
                else:
                    row["success"] = True
                requests.append(row)
            if reason is not None:
                changes.append(StageChange(job.session_id, _AI, ProcessingStatus.FAILED, reason))
        bulk_insert(db, _requests, requests)
        record_prompt_truncations(db, {job.session_id: job.prompt_truncation for job in jobs})
        changes += apply_analyses(db, applied, now, max_question_chars=settings.ai_question_max_chars)
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
