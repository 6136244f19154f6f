"""Ingesting a finished batch: its output and error files, applied by ``custom_id``, exactly once.

Both files are streamed (never read whole) and applied in chunks. A good line updates its request (tokens,
cost with the Batch discount) and its session exactly as the synchronous path does. A failed line (an HTTP
error body, an ``error`` object, an answer that fails validation) records its real message; its session
gets a new pending request for the next batch until ``BATCH_MAX_ATTEMPTS``, then AI_ANALYSIS is FAILED for
good (or, with ``BATCH_SYNC_FALLBACK``, analysed once synchronously). Requests that appear in neither file
(an expired or cancelled batch) go the same way. Only requests still BATCHING_IN_PROGRESS in this batch are
touched, so ingesting the same file twice changes nothing. The batch ends PROCESSED with its counts, tokens
and cost.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletion
from pydantic import ValidationError
from sqlalchemy import Engine, Table, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.analysis import InvalidAnalysis
from pipeline.db.bulk import bulk_insert
from pipeline.db.enums import AIBatchRequestStatus, AIRequestStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import AIBatchRequest, AIProcessingRequest, SessionProcessingStatus
from pipeline.db.types import utcnow
from pipeline.settings import Settings
from pipeline.stages.analysis_results import Applied, PriceCache, answer_values, apply_analyses, validated
from pipeline.stages.batch_enqueue import pending_request
from pipeline.stages.stage_status import StageChange, apply_stage_changes

__all__ = ["IngestResult", "OpenRequest", "ingest_batch", "open_requests", "release_requests"]

logger = logging.getLogger(__name__)

_CHUNK = 500
_requests = cast(Table, AIProcessingRequest.__table__)

_UPDATE_REQUEST = (
    update(_requests)
    .where(_requests.c.id == bindparam("b_id"))
    .values(
        {
            column: bindparam(f"b_{column}")
            for column in (
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
                "prompt_token_cost",
                "completion_token_cost",
                "total_cost_eur",
                "cost_known",
                "success",
                "error_message",
                "processing_status",
                "completed_at",
            )
        }
    )
)


@dataclass
class IngestResult:
    completed: int = 0
    failed: int = 0
    missing: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_eur: float = 0.0
    fallback: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True)
class OpenRequest:
    """A request of the batch still waiting for its result."""

    id: uuid.UUID
    session_id: uuid.UUID
    model: str
    requested_at: datetime
    attempts: int


def _lines(client: openai.OpenAI, file_id: str) -> Iterator[dict[str, Any]]:
    with client.files.with_streaming_response.content(file_id) as response:
        for line in response.iter_lines():
            if line.strip():
                yield json.loads(line)


def _error_of(line: dict[str, Any]) -> str:
    error = line.get("error")
    if isinstance(error, dict) and error.get("message"):
        return f"{error.get('code') or 'error'}: {error['message']}"
    response = line.get("response") or {}
    body = response.get("body") or {}
    message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
    return f"HTTP {response.get('status_code')}: {message or 'no error message'}"


def _empty_values(now: datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        f"b_{column}": None
        for column in (
            "openai_request_id",
            "service_tier",
            "system_fingerprint",
            "cached_tokens",
            "audio_tokens_prompt",
            "reasoning_tokens",
            "audio_tokens_completion",
            "accepted_prediction_tokens",
            "rejected_prediction_tokens",
            "error_message",
        )
    }
    row.update(
        b_prompt_tokens=0,
        b_completion_tokens=0,
        b_total_tokens=0,
        b_prompt_token_cost=0.0,
        b_completion_token_cost=0.0,
        b_total_cost_eur=0.0,
        b_cost_known=True,
        b_success=False,
        b_processing_status=AIRequestStatus.PROCESSING_FAILED,
        b_completed_at=now,
    )
    row.update({f"b_{key}": value for key, value in values.items()})
    return row


#: Why an answer was not applied: its session's AI analysis was restarted after the request was made.
SUPERSEDED = "superseded: the session was derived again after this request was sent"


def _current_analyses(
    db: Session, session_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[ProcessingStatus, datetime | None]]:
    rows = db.execute(
        select(
            SessionProcessingStatus.session_id,
            SessionProcessingStatus.status,
            SessionProcessingStatus.started_at,
        ).where(
            SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
            SessionProcessingStatus.session_id.in_(session_ids),
        )
    ).all()
    return {session_id: (status, started_at) for session_id, status, started_at in rows}


def _is_superseded(request: OpenRequest, analysis: tuple[ProcessingStatus, datetime | None] | None) -> bool:
    """A request answers its session only while that session's analysis is the one the request belongs to."""
    if analysis is None:
        return True
    status, started_at = analysis
    return status is not ProcessingStatus.IN_PROGRESS or (
        started_at is not None and started_at > request.requested_at
    )


def _request_afresh(db: Session, requests: list[OpenRequest], now: datetime) -> None:
    """Queue new requests (first attempt) for sessions whose analysis restarted while a batch had them."""
    bulk_insert(db, _requests, [pending_request(r.session_id, r.model, now) for r in requests])


def release_requests(
    db: Session,
    failed: list[tuple[OpenRequest, str]],
    settings: Settings,
    now: datetime,
    result: IngestResult,
) -> list[StageChange]:
    """Send failed requests' sessions back to pending (a new request) under the cap; fail them past it."""
    retry = [
        (request, reason) for request, reason in failed if request.attempts < settings.batch_max_attempts
    ]
    final = [
        (request, reason) for request, reason in failed if request.attempts >= settings.batch_max_attempts
    ]
    bulk_insert(
        db,
        _requests,
        [
            pending_request(
                request.session_id,
                request.model,
                now,
                attempt=request.attempts + 1,
                note=f"previous attempt: {reason}",
            )
            for request, reason in retry
        ],
    )
    if settings.batch_sync_fallback:
        result.fallback += [request.session_id for request, _ in final]
        return [
            StageChange(request.session_id, ProcessingStage.AI_ANALYSIS, ProcessingStatus.PENDING)
            for request, _ in final
        ]
    return [
        StageChange(
            request.session_id,
            ProcessingStage.AI_ANALYSIS,
            ProcessingStatus.FAILED,
            f"{reason} (gave up after {request.attempts} batch attempts)",
        )
        for request, reason in final
    ]


def _apply_chunk(
    factory: sessionmaker[Session],
    lines: list[tuple[OpenRequest, dict[str, Any]]],
    settings: Settings,
    result: IngestResult,
    prices: PriceCache,
) -> None:
    now = utcnow()
    with factory.begin() as db:
        updates: list[dict[str, Any]] = []
        applied: dict[uuid.UUID, Applied] = {}
        failed: list[tuple[OpenRequest, str]] = []
        superseded: list[OpenRequest] = []
        current = _current_analyses(db, [request.session_id for request, _ in lines])
        for request, line in lines:
            response = line.get("response") or {}
            if _is_superseded(request, current.get(request.session_id)):
                # The session was derived again after this prompt was sent: its answer describes an older
                # conversation. It was paid for, so it is recorded, but a fresh request takes its place.
                updates.append(_empty_values(now, id=request.id, error_message=SUPERSEDED))
                superseded.append(request)
                continue
            if response.get("status_code") != 200 or line.get("error"):
                reason = _error_of(line)
                updates.append(_empty_values(now, id=request.id, error_message=reason))
                failed.append((request, reason))
                continue
            try:
                completion = ChatCompletion.model_validate(response.get("body"))
            except ValidationError as exc:
                reason = f"unreadable completion: {exc.errors()[0]['msg']}"
                updates.append(_empty_values(now, id=request.id, error_message=reason))
                failed.append((request, reason))
                continue
            values = answer_values(
                db,
                completion,
                model=request.model,
                requested_at=request.requested_at,
                settings=settings,
                batch=True,
                prices=prices,
            )
            result.prompt_tokens += values["prompt_tokens"]
            result.completion_tokens += values["completion_tokens"]
            result.cost_eur += values["total_cost_eur"]
            try:
                applied[request.session_id] = Applied(
                    validated(completion, request.session_id), request.model, response.get("request_id")
                )
            except InvalidAnalysis as exc:
                reason = f"invalid answer: {exc.reason}"
                updates.append(_empty_values(now, id=request.id, error_message=reason, **values))
                failed.append((request, reason))
            else:
                updates.append(
                    _empty_values(
                        now,
                        id=request.id,
                        success=True,
                        processing_status=AIRequestStatus.PROCESSING_COMPLETE,
                        **values,
                    )
                )
        if updates:
            db.execute(_UPDATE_REQUEST, updates)
        _request_afresh(
            db, [r for r in superseded if current[r.session_id][0] is ProcessingStatus.IN_PROGRESS], now
        )
        changes = apply_analyses(db, applied, now) + release_requests(db, failed, settings, now, result)
        apply_stage_changes(db, changes, now)
    result.completed += len(applied)
    result.failed += len(failed)


def open_requests(db: Session, batch_id: uuid.UUID) -> list[OpenRequest]:
    """The requests of a batch still waiting for their result."""
    rows = db.execute(
        select(
            AIProcessingRequest.id,
            AIProcessingRequest.session_id,
            AIProcessingRequest.model,
            AIProcessingRequest.requested_at,
            AIProcessingRequest.attempts,
        ).where(
            AIProcessingRequest.batch_id == batch_id,
            AIProcessingRequest.processing_status == AIRequestStatus.BATCHING_IN_PROGRESS,
        )
    ).all()
    return [OpenRequest(row.id, row.session_id, row.model, row.requested_at, row.attempts) for row in rows]


def ingest_batch(
    engine: Engine,
    settings: Settings,
    client: openai.OpenAI,
    batch_id: uuid.UUID,
    *,
    remote_status: str,
    output_file_id: str | None,
    error_file_id: str | None,
) -> IngestResult:
    """Apply a finished batch's files, re-queue what has no result, and mark the batch PROCESSED."""
    factory = sessionmaker(engine, expire_on_commit=False)
    result = IngestResult()
    prices: PriceCache = {}
    with factory() as db:
        waiting = {str(request.id): request for request in open_requests(db, batch_id)}
    for file_id in (output_file_id, error_file_id):
        if file_id is None:
            continue
        chunk: list[tuple[OpenRequest, dict[str, Any]]] = []
        for line in _lines(client, file_id):
            request = waiting.pop(str(line.get("custom_id")), None)
            if request is None:
                continue
            chunk.append((request, line))
            if len(chunk) == _CHUNK:
                _apply_chunk(factory, chunk, settings, result, prices)
                chunk = []
        if chunk:
            _apply_chunk(factory, chunk, settings, result, prices)
    now = utcnow()
    with factory.begin() as db:
        if waiting:
            reason = f"no result in the {remote_status} batch"
            db.execute(
                _UPDATE_REQUEST,
                [_empty_values(now, id=request.id, error_message=reason) for request in waiting.values()],
            )
            apply_stage_changes(
                db,
                release_requests(
                    db, [(request, reason) for request in waiting.values()], settings, now, result
                ),
                now,
            )
            result.missing = len(waiting)
        db.execute(
            update(AIBatchRequest)
            .where(AIBatchRequest.id == batch_id)
            .values(
                status=AIBatchRequestStatus.PROCESSED,
                processed_at=now,
                lease_expires_at=None,
                output_file_id=output_file_id,
                error_file_id=error_file_id,
                completed_count=AIBatchRequest.completed_count + result.completed,
                failed_count=AIBatchRequest.failed_count + result.failed + result.missing,
                prompt_tokens=AIBatchRequest.prompt_tokens + result.prompt_tokens,
                completion_tokens=AIBatchRequest.completion_tokens + result.completion_tokens,
                total_cost_eur=AIBatchRequest.total_cost_eur + result.cost_eur,
                error_message=None
                if remote_status == "completed"
                else f"batch {remote_status}; partial results",
            )
        )
    return result
