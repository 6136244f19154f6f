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

What was paid is kept: each call is recorded in its own short transaction as soon as it returns (its request
rows, its analysis, its budget settlement), in the thread that made it, before that thread makes another
call. A worker killed or a database stopped mid-chunk re-bills only the calls that were in flight. When the
database does not answer, the write is tried again with backoff for up to ``_record_patience`` (under the
claim's lease grace).

A call that keeps failing for a reason that may pass (timeouts, 5xx, 429, connection errors) does not fail
its session: the session goes back to PENDING with the reason, its lease released, and the sweep sends it
again later. Each such round counts as a claim; at ``_MAX_CLAIMS`` claims it is FAILED. Only a permanent
failure (another 4xx, an answer still invalid) fails it at once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

import openai
from sqlalchemy import Engine, Table, select, update
from sqlalchemy import exc as sa_exc
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
from pipeline.db.refusals import WRITE_ERRORS, refusal_reason
from pipeline.db.types import utcnow
from pipeline.errors import is_transient
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
#: Claims of one session's analysis (a worker that took it and died, or a round of calls that failed for a
#: reason that may pass) before it is FAILED for good.
_MAX_CLAIMS = 5
#: How long the answer of a call is tried to be written while the database does not answer, and the backoff
#: between tries: an answer paid for is worth waiting for. At most this share of the claim's lease grace
#: (``CLAIM_LEASE_GRACE_MS``, 90 s of the default 2 min), so that the write is given up before another worker
#: may take the session over and pay again.
_RECORD_PATIENCE_SECONDS = 90.0
_RECORD_PATIENCE_SHARE_OF_GRACE = 0.75
_RECORD_BACKOFF_SECONDS = 0.5
_RECORD_MAX_BACKOFF_SECONDS = 10.0


@dataclass(frozen=True)
class AnalysisResult:
    """``completed`` counts the answers applied, ``reused`` included; ``waiting`` the budget holds back;
    ``retrying`` the sessions sent back to PENDING after a failure that may pass (not in ``failed``)."""

    claimed: int
    completed: int
    failed: int
    reused: int = 0
    waiting: int = 0
    retrying: int = 0


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
    #: Whether ``error`` may pass if the session is tried again later.
    transient: bool = False
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
    lease = lease_for(settings.actor_time_limit_ms, settings.claim_lease_grace)
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
        job.transient = is_transient(exc)
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
    it again replaces, never duplicates. A call that failed for a reason that may pass sends the session
    back to PENDING while it has claims left; anything else fails AI_ANALYSIS with the reason.
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
            if _retries_later(job):
                _retry_later(db, job, now)
            elif reason is not None:
                if job.transient:
                    reason = f"{reason} (gave up after {job.claims} claims)"
                changes.append(StageChange(job.session_id, _AI, ProcessingStatus.FAILED, reason))
        bulk_insert(db, _requests, requests)
        record_prompt_truncations(db, {job.session_id: job.prompt_truncation for job in jobs})
        changes += apply_analyses(db, applied, now, max_question_chars=settings.ai_question_max_chars)
        apply_stage_changes(db, changes, now)
        settle(db, settlements)
    metrics.AI_ANALYSES.labels("sync").inc(len(applied))
    return len(applied)


def _retries_later(job: _Job) -> bool:
    """Whether the job's session goes back to PENDING: no answer, for a reason that may pass, claims left."""
    return job.completion is None and job.transient and job.claims < _MAX_CLAIMS


def _retry_later(db: Session, job: _Job, now: datetime) -> None:
    """Send the job's analysis back to PENDING with the reason, its lease released and its claim counted."""
    db.execute(
        update(SessionProcessingStatus)
        .where(SessionProcessingStatus.stage == _AI, SessionProcessingStatus.session_id == job.session_id)
        .values(
            status=ProcessingStatus.PENDING,
            started_at=None,
            error_message=f"will retry: {job.error}",
            lease_expires_at=None,
            leased_by=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _database_failed(error: Exception) -> bool:
    """A write that failed because of the database (unreachable, restarting, no connection free in the
    pool in time), not because of the data."""
    if isinstance(error, sa_exc.TimeoutError):
        return True
    return isinstance(error, WRITE_ERRORS) and refusal_reason(error) is None


def _record_patience(settings: Settings) -> float:
    """Seconds a paid answer's write is tried while the database does not answer: under the lease grace."""
    grace = settings.claim_lease_grace.total_seconds()
    return min(_RECORD_PATIENCE_SECONDS, grace * _RECORD_PATIENCE_SHARE_OF_GRACE)


def _record(factory: sessionmaker[Session], job: _Job, settings: Settings) -> bool:
    """Record one job's calls and outcome in its own transaction; return whether its answer was applied.

    While the database does not answer, try again with backoff for up to ``_record_patience``: the answer
    was paid for. Anything else, or past that, is logged and the job left to its lease, which runs out and
    lets the sweep take the session again.
    """
    deadline = time.monotonic() + _record_patience(settings)
    backoff = _RECORD_BACKOFF_SECONDS
    while True:
        try:
            return _record_jobs(factory, [job], settings) == 1
        except Exception as exc:
            if not _database_failed(exc) or time.monotonic() + backoff > deadline:
                logger.exception("could not record the analysis of session %s", job.session_id)
                return False
            logger.warning(
                "recording the analysis of session %s failed (%s); trying again in %.1f s",
                job.session_id,
                type(exc).__name__,
                backoff,
            )
        time.sleep(backoff)
        backoff = min(backoff * 2, _RECORD_MAX_BACKOFF_SECONDS)


def _call_and_record(
    factory: sessionmaker[Session], job: _Job, client: openai.OpenAI, settings: Settings
) -> bool:
    """Call for the job, then record what came of it before this thread calls again."""
    _call(job, client, settings)
    return _record(factory, job, settings)


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
    applied = list(calls.map(lambda job: _call_and_record(factory, job, client, settings), callable_jobs))
    completed = sum(applied)
    retrying = sum(
        1 for job, done in zip(callable_jobs, applied, strict=True) if not done and _retries_later(job)
    )
    failed = len(jobs) - completed - retrying
    metrics.STAGE_ITEMS.labels(STAGE, "completed").inc(completed + claimed.reused)
    metrics.STAGE_ITEMS.labels(STAGE, "failed").inc(failed)
    return AnalysisResult(
        len(jobs) + claimed.reused,
        completed + claimed.reused,
        failed,
        claimed.reused,
        claimed.waiting,
        retrying,
    )
