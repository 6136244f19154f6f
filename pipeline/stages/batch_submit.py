"""Submitting batches to the OpenAI Batch API, write-ahead and crash-safe (``docs/batches.md``).

1. **Plan** (the submit tick): per model, across companies, once ``BATCH_MIN_REQUESTS`` wait or the oldest
   has waited ``BATCH_MAX_WAIT`` seconds, claim up to ``BATCH_MAX_REQUESTS`` pending requests and commit a
   batch row (UPLOADING, with an idempotency key) together with the claim. A large backlog becomes several
   batches. Each claimed request reserves its worst-case cost (Batch price) against its company's monthly
   budget in the same transaction; one that does not fit stays pending with ``budget reached`` and is tried
   again at the next submit. The estimated prompt tokens of the model's open batches stay under
   ``OPENAI_BATCH_ENQUEUED_TOKEN_LIMIT``: what does not fit waits for the next submit.
2. **Submit** (one batch): stream its JSONL to a temporary file (``custom_id`` = request id), upload it with
   purpose ``batch`` under a name carrying the key, commit the file id; create the batch with the key in its
   metadata, commit the batch id. Each step's result is committed before the next, and a retry after a crash
   at any point first looks for what already exists at OpenAI (the file by its name, the batch by its
   metadata) and adopts it instead of creating, and paying for, a second one.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, cast

import openai
from sqlalchemy import Engine, Table, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.analysis import MAX_TOKENS, PromptMessage, fit_transcript, request_body, worst_case_eur
from pipeline.db.enums import AIBatchRequestStatus, AIRequestStatus, CompanyStatus
from pipeline.db.models import (
    OPEN_BATCH_PREDICATE,
    AIBatchRequest,
    AIProcessingRequest,
    ChatSession,
    Company,
    Message,
)
from pipeline.db.types import utcnow
from pipeline.settings import Settings
from pipeline.stages.ai_models import price_at
from pipeline.stages.analysis_results import record_prompt_truncations
from pipeline.stages.budgets import BUDGET_REACHED, Settlement, budget_of, month_of, reserve, settle

__all__ = [
    "MAX_FILE_BYTES",
    "STATUS_FROM_OPENAI",
    "claim_batch",
    "fail_batch",
    "file_name",
    "plan_batches",
    "release_batch",
    "submit_batch",
]

logger = logging.getLogger(__name__)

#: OpenAI's limit on a batch input file; lines past it go back to pending for the next batch.
MAX_FILE_BYTES = 200 * 1024 * 1024
_requests = cast(Table, AIProcessingRequest.__table__)
#: Sessions whose messages are loaded at once while the JSONL is written.
_PAGE = 500
#: A batch row still UPLOADING this long after its last step belongs to a dead worker; the check resubmits it.
UPLOAD_LEASE = timedelta(minutes=10)

STATUS_FROM_OPENAI = {
    "validating": AIBatchRequestStatus.VALIDATING,
    "in_progress": AIBatchRequestStatus.IN_PROGRESS,
    "finalizing": AIBatchRequestStatus.FINALIZING,
    "cancelling": AIBatchRequestStatus.IN_PROGRESS,
    "completed": AIBatchRequestStatus.COMPLETED,
    "expired": AIBatchRequestStatus.COMPLETED,
    "cancelled": AIBatchRequestStatus.CANCELLED,
    "failed": AIBatchRequestStatus.FAILED,
}


def file_name(batch: AIBatchRequest) -> str:
    return f"livedash-{batch.idempotency_key}.jsonl"


def claim_batch(
    engine: Engine, batch_id: uuid.UUID, statuses: tuple[AIBatchRequestStatus, ...], lease: timedelta
) -> bool:
    """Take a batch for one submission or one ingestion, so that two workers never do the same one at once."""
    now = utcnow()
    with sessionmaker(engine).begin() as db:
        taken = (
            db.connection()
            .execute(
                update(AIBatchRequest)
                .where(
                    AIBatchRequest.id == batch_id,
                    AIBatchRequest.status.in_(statuses),
                    or_(AIBatchRequest.lease_expires_at.is_(None), AIBatchRequest.lease_expires_at <= now),
                )
                .values(lease_expires_at=now + lease)
            )
            .rowcount
        )
    return bool(taken)


class _Waiting(NamedTuple):
    """A request waiting for a batch, as planning reads it."""

    id: uuid.UUID
    requested_at: datetime
    company_id: uuid.UUID
    estimated_prompt_tokens: int


def _backlog(db: Session) -> dict[str, list[_Waiting]]:
    """Every request waiting for a batch, of ACTIVE companies, by model, oldest first.

    One read of the backlog through its partial index, instead of one per group (which re-read the whole
    backlog for each of them): its cost follows the backlog, not the number of groups or the history.
    """
    groups: dict[str, list[_Waiting]] = {}
    for request_id, requested_at, company_id, model, tokens in db.execute(
        select(AIProcessingRequest.id, AIProcessingRequest.requested_at, ChatSession.company_id,
               AIProcessingRequest.model, AIProcessingRequest.estimated_prompt_tokens)
        .join(ChatSession, ChatSession.id == AIProcessingRequest.session_id)
        .join(Company, Company.id == ChatSession.company_id)
        .where(
            AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING,
            AIProcessingRequest.batch_id.is_(None),
            Company.status == CompanyStatus.ACTIVE,
        )
        .order_by(AIProcessingRequest.requested_at, AIProcessingRequest.id)
    ):  # fmt: skip
        groups.setdefault(model, []).append(_Waiting(request_id, requested_at, company_id, tokens))
    return groups


def _enqueued_tokens(db: Session) -> dict[str, int]:
    """The estimated prompt tokens of the open batches, by model: what OpenAI counts as enqueued."""
    return {
        model: int(tokens)
        for model, tokens in db.execute(
            select(AIBatchRequest.model, func.sum(AIBatchRequest.enqueued_tokens))
            .where(text(OPEN_BATCH_PREDICATE))
            .group_by(AIBatchRequest.model)
        )
    }


def _fill(waiting: list[_Waiting], settings: Settings, room: int) -> list[list[_Waiting]]:
    """Split the waiting requests (oldest first) into batches within the request cap and ``room`` tokens."""
    batches: list[list[_Waiting]] = []
    current: list[_Waiting] = []
    for request in waiting:
        if request.estimated_prompt_tokens > room:
            # The model's enqueued tokens are full: the rest waits for the next submit.
            break
        if len(current) == settings.batch_max_requests:
            batches.append(current)
            current = []
        current.append(request)
        room -= request.estimated_prompt_tokens
    if current:
        batches.append(current)
    return batches


def _reserve_budgets(
    db: Session, settings: Settings, model: str, requests: list[_Waiting], now: datetime
) -> dict[uuid.UUID, tuple[_Waiting, Decimal]]:
    """Reserve the worst case of each request against its company's budget; return those that fit."""
    price = price_at(db, model, now)
    month = month_of(now)
    fitted: dict[uuid.UUID, tuple[_Waiting, Decimal]] = {}
    for company_id in sorted({request.company_id for request in requests}):
        company_requests = [request for request in requests if request.company_id == company_id]
        amounts = [
            worst_case_eur(
                request.estimated_prompt_tokens,
                MAX_TOKENS,
                price,
                batch=True,
                eur_per_usd=settings.eur_per_usd,
            )
            for request in company_requests
        ]
        taken = reserve(db, company_id, month, amounts, budget_of(db, company_id, settings))
        fitted.update(
            (request.id, (request, amount))
            for request, amount in zip(company_requests[:taken], amounts, strict=False)
        )
    return fitted


def _note_waiting(db: Session, request_ids: list[uuid.UUID], why: str) -> None:
    """Say on requests left pending why they wait; the caller commits."""
    if request_ids:
        db.execute(
            update(AIProcessingRequest)
            .where(AIProcessingRequest.id.in_(request_ids))
            .values(error_message=why)
            .execution_options(synchronize_session=False)
        )


def _claim_batch_requests(
    factory: sessionmaker[Session],
    settings: Settings,
    model: str,
    candidates: list[_Waiting],
    now: datetime,
) -> uuid.UUID | None:
    """Commit one batch of those ``candidates`` still waiting and within budget; None if none was left."""
    by_id = {request.id: request for request in candidates}
    with factory.begin() as db:
        ids = db.scalars(
            select(AIProcessingRequest.id)
            .where(
                AIProcessingRequest.id.in_(by_id),
                AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING,
                AIProcessingRequest.batch_id.is_(None),
            )
            .with_for_update(skip_locked=True)
        ).all()
        fitted = _reserve_budgets(db, settings, model, [by_id[request_id] for request_id in ids], now)
        _note_waiting(
            db,
            [request_id for request_id in ids if request_id not in fitted],
            f"{BUDGET_REACHED}: waiting for the company's monthly AI budget",
        )
        if not fitted:
            return None
        companies = {request.company_id for request, _ in fitted.values()}
        batch = AIBatchRequest(
            # One company's batch names it; a batch of several companies' requests belongs to none of them.
            company_id=next(iter(companies)) if len(companies) == 1 else None,
            model=model,
            idempotency_key=uuid.uuid4().hex,
            request_count=len(fitted),
            enqueued_tokens=sum(request.estimated_prompt_tokens for request, _ in fitted.values()),
            status=AIBatchRequestStatus.UPLOADING,
            # Claimable at once by the submission its message starts (see claim_batch).
            lease_expires_at=now,
        )
        db.add(batch)
        db.flush()
        month = month_of(now)
        db.connection().execute(
            update(_requests)
            .where(_requests.c.id == bindparam("b_id"))
            .values(
                processing_status=AIRequestStatus.BATCHING_IN_PROGRESS,
                batch_id=batch.id,
                reserved_eur=bindparam("b_reserved"),
                reserved_month=month,
                error_message=None,
            ),
            [{"b_id": request_id, "b_reserved": amount} for request_id, (_, amount) in fitted.items()],
        )
        return batch.id


def _set_aside_oversized(
    factory: sessionmaker[Session], waiting: list[_Waiting], limit: int
) -> list[_Waiting]:
    """The requests a batch can take; those over the enqueued-token limit on their own are noted, not taken
    (no batch could ever take them, and they must not hold the others back)."""
    if oversized := [request.id for request in waiting if request.estimated_prompt_tokens > limit]:
        with factory.begin() as db:
            _note_waiting(
                db, oversized, f"its estimated prompt is over OPENAI_BATCH_ENQUEUED_TOKEN_LIMIT={limit}"
            )
    return [request for request in waiting if request.estimated_prompt_tokens <= limit]


def plan_batches(engine: Engine, settings: Settings, *, now: datetime | None = None) -> list[uuid.UUID]:
    """Commit the batches that are due (write-ahead), each with its claimed requests; return their ids."""
    now = now or utcnow()
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as db:
        groups = _backlog(db)
        enqueued = _enqueued_tokens(db) if groups else {}
    planned: list[uuid.UUID] = []
    for model, waiting in groups.items():
        oldest = waiting[0].requested_at
        if len(waiting) < settings.batch_min_requests and oldest > now - timedelta(
            seconds=settings.batch_max_wait
        ):
            continue
        limit = settings.openai_batch_enqueued_token_limit
        fitting = _set_aside_oversized(factory, waiting, limit)
        for candidates in _fill(fitting, settings, limit - enqueued.get(model, 0)):
            batch_id = _claim_batch_requests(factory, settings, model, candidates, now)
            if batch_id is not None:
                planned.append(batch_id)
    return planned


def _write_jsonl(engine: Engine, batch: AIBatchRequest, path: Path, max_prompt_tokens: int) -> int:
    """Write the batch's requests as JSONL, releasing what does not fit; return the lines written.

    What each prompt left out to fit ``max_prompt_tokens`` is recorded on its session.
    """
    factory = sessionmaker(engine)
    with factory() as db:
        requests = db.execute(
            select(AIProcessingRequest.id, AIProcessingRequest.session_id)
            .where(
                AIProcessingRequest.batch_id == batch.id,
                AIProcessingRequest.processing_status == AIRequestStatus.BATCHING_IN_PROGRESS,
            )
            .order_by(AIProcessingRequest.requested_at, AIProcessingRequest.id)
        ).all()
    written, size, overflow = 0, 0, []
    truncations: dict[uuid.UUID, str | None] = {}
    with path.open("wb") as out:
        for start in range(0, len(requests), _PAGE):
            page = requests[start : start + _PAGE]
            with factory() as db:
                messages: dict[uuid.UUID, list[PromptMessage]] = {session_id: [] for _, session_id in page}
                # Plain rows rather than ORM objects: tens of thousands of messages go through here.
                for session_id, role, content, timestamp in db.execute(
                    select(Message.session_id, Message.role, Message.content, Message.timestamp)
                    .where(Message.session_id.in_(messages))
                    .order_by(Message.session_id, Message.order)
                ):
                    messages[session_id].append(PromptMessage(role, content, timestamp))
            for request_id, session_id in page:
                transcript = fit_transcript(messages[session_id], max_prompt_tokens=max_prompt_tokens)
                line = (
                    json.dumps(
                        {
                            "custom_id": str(request_id),
                            "method": "POST",
                            "url": "/v1/chat/completions",
                            "body": request_body(batch.model, str(session_id), transcript),
                        },
                        separators=(",", ":"),
                    ).encode()
                    + b"\n"
                )
                if size + len(line) > MAX_FILE_BYTES:
                    overflow.append(request_id)
                    continue
                out.write(line)
                size += len(line)
                written += 1
                truncations[session_id] = transcript.truncation
    with factory.begin() as db:
        record_prompt_truncations(db, truncations)
    if overflow:
        with factory.begin() as db:
            _release_overflow(db, batch.id, overflow, written)
    return written


def _release_overflow(db: Session, batch_id: uuid.UUID, overflow: list[uuid.UUID], written: int) -> None:
    """Send the requests that did not fit the file back to pending, their budget and tokens given back."""
    released = db.execute(
        select(
            ChatSession.company_id,
            AIProcessingRequest.reserved_eur,
            AIProcessingRequest.reserved_month,
            AIProcessingRequest.estimated_prompt_tokens,
        )
        .join(ChatSession, ChatSession.id == AIProcessingRequest.session_id)
        .where(AIProcessingRequest.id.in_(overflow))
    ).all()
    settle(
        db,
        [
            Settlement(company_id, month, Decimal(reserved), Decimal(0))
            for company_id, reserved, month, _ in released
            if month is not None
        ],
    )
    db.execute(
        update(AIProcessingRequest)
        .where(AIProcessingRequest.id.in_(overflow))
        .values(
            processing_status=AIRequestStatus.PENDING_BATCHING,
            batch_id=None,
            reserved_eur=0,
            reserved_month=None,
        )
        .execution_options(synchronize_session=False)
    )
    db.execute(
        update(AIBatchRequest)
        .where(AIBatchRequest.id == batch_id)
        .values(
            request_count=written,
            enqueued_tokens=AIBatchRequest.enqueued_tokens - sum(tokens for *_, tokens in released),
        )
    )


def _existing_file(client: openai.OpenAI, name: str) -> str | None:
    for stored in client.files.list(purpose="batch"):
        if stored.filename == name:
            return stored.id
    return None


def _existing_batch(client: openai.OpenAI, key: str, since: datetime) -> Any:
    """A batch created with ``key`` in its metadata; the list is newest first, so it stops at ``since``."""
    for remote in client.batches.list(limit=100):
        if (remote.metadata or {}).get("idempotency_key") == key:
            return remote
        if remote.created_at < since.timestamp():
            return None
    return None


def _record_file(engine: Engine, batch_id: uuid.UUID, file_id: str) -> None:
    with sessionmaker(engine).begin() as db:
        db.execute(
            update(AIBatchRequest)
            .where(AIBatchRequest.id == batch_id)
            .values(input_file_id=file_id, lease_expires_at=utcnow() + UPLOAD_LEASE)
        )


def _record_remote(engine: Engine, batch_id: uuid.UUID, remote: Any) -> None:
    with sessionmaker(engine).begin() as db:
        db.execute(
            update(AIBatchRequest)
            .where(AIBatchRequest.id == batch_id)
            .values(
                openai_batch_id=remote.id,
                status=STATUS_FROM_OPENAI.get(remote.status, AIBatchRequestStatus.VALIDATING),
                submitted_at=utcnow(),
                lease_expires_at=None,
            )
        )


def submit_batch(
    engine: Engine, client: openai.OpenAI, batch_id: uuid.UUID, *, max_prompt_tokens: int
) -> AIBatchRequestStatus | None:
    """Upload and create one planned batch, adopting what a crashed attempt already made; its new status.

    Each prompt is fitted to ``max_prompt_tokens`` (``OPENAI_MAX_PROMPT_TOKENS``). A submission that fails
    with an exception hands its lease back before the error goes up, so the actor's retry (seconds later)
    submits at once instead of standing back until the lease runs out; only a worker that dies outright
    leaves the lease for the check to find.
    """
    if not claim_batch(engine, batch_id, (AIBatchRequestStatus.UPLOADING,), UPLOAD_LEASE):
        # Submitted already, or being submitted by another worker right now.
        return None
    try:
        return _submit_claimed(engine, client, batch_id, max_prompt_tokens)
    except Exception:
        release_batch(engine, batch_id, (AIBatchRequestStatus.UPLOADING,))
        raise


def release_batch(engine: Engine, batch_id: uuid.UUID, statuses: tuple[AIBatchRequestStatus, ...]) -> None:
    """Hand back a batch taken by ``claim_batch`` whose work failed, so the next attempt need not wait."""
    with sessionmaker(engine).begin() as db:
        db.execute(
            update(AIBatchRequest)
            .where(AIBatchRequest.id == batch_id, AIBatchRequest.status.in_(statuses))
            .values(lease_expires_at=utcnow())
        )


def _submit_claimed(
    engine: Engine, client: openai.OpenAI, batch_id: uuid.UUID, max_prompt_tokens: int
) -> AIBatchRequestStatus:
    with sessionmaker(engine, expire_on_commit=False)() as db:
        batch = db.get(AIBatchRequest, batch_id)
    assert batch is not None
    name = file_name(batch)
    file_id = batch.input_file_id or _existing_file(client, name)
    if file_id is None:
        with tempfile.TemporaryDirectory(prefix="livedash-batch-") as folder:
            path = Path(folder) / name
            if _write_jsonl(engine, batch, path, max_prompt_tokens) == 0:
                with sessionmaker(engine).begin() as db:
                    fail_batch(db, batch_id, "no request fitted in the batch file", now=utcnow())
                return AIBatchRequestStatus.FAILED
            with path.open("rb") as data:
                file_id = client.files.create(file=(name, data, "application/jsonl"), purpose="batch").id
    if batch.input_file_id is None:
        _record_file(engine, batch_id, file_id)
    remote = _existing_batch(client, batch.idempotency_key, batch.created_at - timedelta(hours=1))
    if remote is None:
        remote = client.batches.create(
            input_file_id=file_id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"idempotency_key": batch.idempotency_key, "livedash_batch_id": str(batch.id)},
        )
    _record_remote(engine, batch_id, remote)
    logger.info("batch %s submitted as %s (%d requests)", batch_id, remote.id, batch.request_count)
    return STATUS_FROM_OPENAI.get(remote.status, AIBatchRequestStatus.VALIDATING)


def fail_batch(
    db: Session, batch_id: uuid.UUID, reason: str, *, now: datetime, failed_count: int | None = None
) -> None:
    """Mark the batch FAILED for ``reason`` and close its lease; the one place a batch is failed.

    ``failed_count`` is how many of its requests were released as failed, when any were. The caller commits.
    """
    values: dict[str, object] = {
        "status": AIBatchRequestStatus.FAILED,
        "error_message": reason,
        "completed_at": now,
        "lease_expires_at": None,
    }
    if failed_count is not None:
        values["failed_count"] = failed_count
    db.execute(update(AIBatchRequest).where(AIBatchRequest.id == batch_id).values(values))
