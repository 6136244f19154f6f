"""The session-processing stage, synchronous path: one chat completion per session, validated, applied.

For a chunk of session ids: claim their AI_ANALYSIS rows (only sessions whose messages exist, of ACTIVE
companies), call chat completions for each (at most ``SESSION_PROCESSING_CONCURRENCY`` at once per process),
validate every answer against the one analysis schema, and apply it. Every call is recorded as an
AIProcessingRequest: failed attempts with their error, the answered one with tokens and cost (an answer that
fails validation was still paid for, so it is recorded with its cost and the reason). A session is applied in
its own transaction, so one bad answer never undoes another.

Before anything is sent, in the claim's transaction: a session whose content was answered before (same
``analysis_key``) gets that answer again without a call (``pipeline/stages/analysis_reuse.py``); the others
reserve their worst-case cost against their company's monthly budget (``pipeline/stages/budgets.py``). One
that does not fit goes back to PENDING with the status ``budget reached`` and is taken again by the sweep,
which sends it once the budget has room (a new month, a raise). Recording an answer settles its reservation.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

import openai
from sqlalchemy import Engine, Table, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline import metrics
from pipeline.analysis import (
    MAX_TOKENS,
    InvalidAnalysis,
    PromptMessage,
    analysis_key,
    estimate_prompt_tokens,
    fit_transcript,
    request_body,
    worst_case_eur,
)
from pipeline.analysis.openai_calls import Attempt, CallFailed, Completion, complete_with_retries
from pipeline.db.bulk import bulk_insert
from pipeline.db.claims import lease_for
from pipeline.db.enums import AIRequestStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import (
    AIProcessingRequest,
    Message,
    SessionProcessingStatus,
)
from pipeline.db.types import utcnow
from pipeline.queues import SESSION_PROCESSING
from pipeline.settings import Settings
from pipeline.stages.ai_models import price_at
from pipeline.stages.analysis_claims import claim_analysable
from pipeline.stages.analysis_results import (
    Applied,
    answer_json,
    answer_of,
    answer_values,
    apply_analyses,
    complete_analyses,
    record_prompt_truncations,
    validated,
)
from pipeline.stages.analysis_reuse import reusable_answers
from pipeline.stages.budgets import BUDGET_REACHED, Settlement, budget_of, month_of, reserve, settle, to_eur
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
    """``completed`` counts the answers applied, ``reused`` included; ``waiting`` the budget holds back."""

    claimed: int
    completed: int
    failed: int
    reused: int = 0
    waiting: int = 0


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
    body: dict[str, Any] | None = None
    key: str | None = None
    estimated_prompt_tokens: int = 0
    reserved: Decimal = Decimal(0)
    month: date | None = None
    #: What was left out of the prompt to fit OPENAI_MAX_PROMPT_TOKENS, recorded on the session.
    prompt_truncation: str | None = None


@dataclass
class _Claimed:
    """What a claim came to: the jobs to call, and how many were answered from before or wait for budget."""

    jobs: list[_Job]
    reused: int = 0
    waiting: int = 0


def _describe(job: _Job, max_prompt_tokens: int) -> None:
    """Build the job's request body (its transcript fitted to ``max_prompt_tokens``), key and estimate; a
    session that cannot be asked keeps ``body`` None."""
    try:
        transcript = fit_transcript(job.messages, max_prompt_tokens=max_prompt_tokens)
        job.body = request_body(job.model, str(job.session_id), transcript)
        job.prompt_truncation = transcript.truncation
    except ValueError as exc:
        # Nothing to ask (no messages): fail before paying, without taking the chunk's answers down with it.
        job.error = f"cannot build the prompt: {exc}"
        return
    job.key = analysis_key(job.body)
    job.estimated_prompt_tokens = estimate_prompt_tokens(job.body)


def _reuse(db: Session, jobs: list[_Job], now: datetime) -> set[uuid.UUID]:
    """Apply the kept answers of the jobs whose content was answered before; return their sessions."""
    kept = reusable_answers(db, {job.session_id: job.key for job in jobs if job.key is not None})
    complete_analyses(db, kept, now)
    return set(kept)


def _reserve(db: Session, settings: Settings, jobs: list[_Job], now: datetime) -> list[_Job]:
    """Reserve each job's worst case against its company's budget; return the jobs that did not fit."""
    waiting: list[_Job] = []
    month = month_of(now)
    prices = {model: price_at(db, model, now) for model in {job.model for job in jobs}}
    for company_id in sorted({job.company_id for job in jobs}):
        company_jobs = [job for job in jobs if job.company_id == company_id]
        amounts = [
            worst_case_eur(
                job.estimated_prompt_tokens,
                MAX_TOKENS,
                prices[job.model],
                batch=False,
                eur_per_usd=settings.eur_per_usd,
            )
            for job in company_jobs
        ]
        taken = reserve(db, company_id, month, amounts, budget_of(db, company_id, settings))
        for job, amount in zip(company_jobs[:taken], amounts, strict=False):
            job.reserved, job.month = amount, month
        waiting += company_jobs[taken:]
    return waiting


def _wait_for_budget(db: Session, jobs: list[_Job], now: datetime) -> None:
    """Send the jobs' analyses back to PENDING with the status ``budget reached``, their claim not counted."""
    db.execute(
        update(SessionProcessingStatus)
        .where(
            SessionProcessingStatus.stage == _AI,
            SessionProcessingStatus.session_id.in_([job.session_id for job in jobs]),
        )
        .values(
            status=ProcessingStatus.PENDING,
            started_at=None,
            error_message=f"{BUDGET_REACHED}: the company's monthly AI budget has no room for it",
            lease_expires_at=None,
            leased_by=None,
            # Waiting for budget is not a worker dying: it must not count towards giving up.
            attempts=SessionProcessingStatus.attempts - 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _claim(
    factory: sessionmaker[Session], settings: Settings, session_ids: Sequence[uuid.UUID], now: datetime
) -> _Claimed:
    """Claim, then in the same transaction reuse what was answered before and reserve budget for the rest.

    Jobs past ``_MAX_CLAIMS`` are returned as they are, to be given up by the caller.
    """
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
        live = [job for job in jobs.values() if job.claims <= _MAX_CLAIMS]
        for job in live:
            _describe(job, settings.openai_max_prompt_tokens)
        reused = _reuse(db, live, now)
        waiting = _reserve(
            db, settings, [j for j in live if j.body is not None and j.session_id not in reused], now
        )
        if waiting:
            _wait_for_budget(db, waiting, now)
    skipped = reused | {job.session_id for job in waiting}
    return _Claimed(
        [job for job in jobs.values() if job.session_id not in skipped], len(reused), len(waiting)
    )


def _call(job: _Job, client: openai.OpenAI, settings: Settings) -> None:
    job.requested_at = utcnow()
    if job.body is None:
        return
    try:
        job.completion = complete_with_retries(
            client, job.body, settings, on_attempt_failed=job.attempts.append
        )
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
        "analysis_key": job.key,
        "answer": None,
        "estimated_prompt_tokens": job.estimated_prompt_tokens,
        # Settled as the calls are recorded: what the job held of its budget is not held any more.
        "reserved_eur": Decimal(0),
        "reserved_month": None,
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
    settlements: list[Settlement] = []
    with factory.begin() as db:
        for job in jobs:
            requests += [
                _request_row(job, now, error_message=attempt.error, attempts=attempt.number)
                for attempt in job.attempts
            ]
            reason = job.error
            cost = Decimal(0)
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
                    analysis = validated(completion, job.session_id)
                except InvalidAnalysis as exc:
                    reason = f"invalid answer: {exc.reason}"
                    row.update(error_message=reason, processing_status=AIRequestStatus.PROCESSING_FAILED)
                else:
                    applied[job.session_id] = Applied(analysis, job.model, job.completion.request_id)
                    row.update(
                        success=True,
                        answer=answer_json(
                            answer_of(
                                analysis, job.model, None, max_question_chars=settings.ai_question_max_chars
                            )
                        ),
                    )
                requests.append(row)
                cost = to_eur(row["total_cost_eur"])
            if job.month is not None:
                settlements.append(Settlement(job.company_id, job.month, job.reserved, cost))
            if reason is not None:
                changes.append(StageChange(job.session_id, _AI, ProcessingStatus.FAILED, reason))
        bulk_insert(db, _requests, requests)
        record_prompt_truncations(db, {job.session_id: job.prompt_truncation for job in jobs})
        changes += apply_analyses(db, applied, now, max_question_chars=settings.ai_question_max_chars)
        apply_stage_changes(db, changes, now)
        settle(db, settlements)
    metrics.AI_ANALYSES.labels("sync").inc(len(applied))
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
    claimed = _claim(factory, settings, session_ids, utcnow())
    metrics.AI_ANALYSES.labels("reused").inc(claimed.reused)
    jobs = claimed.jobs
    if not jobs:
        return AnalysisResult(claimed.reused, claimed.reused, 0, claimed.reused, claimed.waiting)
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
    metrics.STAGE_ITEMS.labels(STAGE, "completed").inc(completed + claimed.reused)
    metrics.STAGE_ITEMS.labels(STAGE, "failed").inc(failed)
    return AnalysisResult(
        len(jobs) + claimed.reused, completed + claimed.reused, failed, claimed.reused, claimed.waiting
    )
