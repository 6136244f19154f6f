"""Submitting batches to the OpenAI Batch API, write-ahead and crash-safe (``docs/batches.md``).

1. **Plan** (the submit tick): per (company, model), once ``BATCH_MIN_REQUESTS`` wait or the oldest has
   waited ``BATCH_MAX_WAIT`` seconds, claim up to ``BATCH_MAX_REQUESTS`` pending requests and commit a batch
   row (UPLOADING, with an idempotency key) together with the claim. A large backlog becomes several batches.
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
from pathlib import Path
from typing import Any

import openai
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.analysis import PromptMessage, request_body
from pipeline.db.enums import AIBatchRequestStatus, AIRequestStatus, CompanyStatus
from pipeline.db.models import AIBatchRequest, AIProcessingRequest, ChatSession, Company, Message
from pipeline.db.types import utcnow
from pipeline.settings import Settings

__all__ = [
    "MAX_FILE_BYTES",
    "STATUS_FROM_OPENAI",
    "claim_batch",
    "fail_batch",
    "file_name",
    "plan_batches",
    "submit_batch",
]

logger = logging.getLogger(__name__)

#: OpenAI's limit on a batch input file; lines past it go back to pending for the next batch.
MAX_FILE_BYTES = 200 * 1024 * 1024
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


def _backlog(db: Session) -> dict[tuple[uuid.UUID, str], list[tuple[uuid.UUID, datetime]]]:
    """Every request waiting for a batch, of ACTIVE companies, by (company, model), oldest first.

    One read of the backlog through its partial index, instead of one per group (which re-read the whole
    backlog for each of them): its cost follows the backlog, not the number of groups or the history.
    """
    groups: dict[tuple[uuid.UUID, str], list[tuple[uuid.UUID, datetime]]] = {}
    for request_id, requested_at, company_id, model in db.execute(
        select(AIProcessingRequest.id, AIProcessingRequest.requested_at, ChatSession.company_id,
               AIProcessingRequest.model)
        .join(ChatSession, ChatSession.id == AIProcessingRequest.session_id)
        .join(Company, Company.id == ChatSession.company_id)
        .where(
            AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING,
            AIProcessingRequest.batch_id.is_(None),
            Company.status == CompanyStatus.ACTIVE,
        )
        .order_by(AIProcessingRequest.requested_at, AIProcessingRequest.id)
    ):  # fmt: skip
        groups.setdefault((company_id, model), []).append((request_id, requested_at))
    return groups


def _claim_batch_requests(
    factory: sessionmaker[Session],
    company_id: uuid.UUID,
    model: str,
    candidates: list[uuid.UUID],
    now: datetime,
) -> uuid.UUID | None:
    """Commit one batch of those ``candidates`` still waiting (not taken meanwhile); None if none was left."""
    with factory.begin() as db:
        ids = db.scalars(
            select(AIProcessingRequest.id)
            .where(
                AIProcessingRequest.id.in_(candidates),
                AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING,
                AIProcessingRequest.batch_id.is_(None),
            )
            .with_for_update(skip_locked=True)
        ).all()
        if not ids:
            return None
        batch = AIBatchRequest(
            company_id=company_id,
            model=model,
            idempotency_key=uuid.uuid4().hex,
            request_count=len(ids),
            status=AIBatchRequestStatus.UPLOADING,
            # Claimable at once by the submission its message starts (see claim_batch).
            lease_expires_at=now,
        )
        db.add(batch)
        db.flush()
        db.execute(
            update(AIProcessingRequest)
            .where(AIProcessingRequest.id.in_(ids))
            .values(processing_status=AIRequestStatus.BATCHING_IN_PROGRESS, batch_id=batch.id)
            .execution_options(synchronize_session=False)
        )
        return batch.id


def plan_batches(engine: Engine, settings: Settings, *, now: datetime | None = None) -> list[uuid.UUID]:
    """Commit the batches that are due (write-ahead), each with its claimed requests; return their ids."""
    now = now or utcnow()
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as db:
        groups = _backlog(db)
    planned: list[uuid.UUID] = []
    for (company_id, model), waiting in groups.items():
        oldest = waiting[0][1]
        if len(waiting) < settings.batch_min_requests and oldest > now - timedelta(
            seconds=settings.batch_max_wait
        ):
            continue
        ids = [request_id for request_id, _ in waiting]
        for start in range(0, len(ids), settings.batch_max_requests):
            batch_id = _claim_batch_requests(
                factory, company_id, model, ids[start : start + settings.batch_max_requests], now
            )
            if batch_id is not None:
                planned.append(batch_id)
    return planned


def _write_jsonl(engine: Engine, batch: AIBatchRequest, path: Path) -> int:
    """Write the batch's requests as JSONL, releasing what does not fit; return the lines written."""
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
                line = (
                    json.dumps(
                        {
                            "custom_id": str(request_id),
                            "method": "POST",
                            "url": "/v1/chat/completions",
                            "body": request_body(batch.model, str(session_id), messages[session_id]),
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
    if overflow:
        with factory.begin() as db:
            db.execute(
                update(AIProcessingRequest)
                .where(AIProcessingRequest.id.in_(overflow))
                .values(processing_status=AIRequestStatus.PENDING_BATCHING, batch_id=None)
                .execution_options(synchronize_session=False)
            )
            db.execute(
                update(AIBatchRequest).where(AIBatchRequest.id == batch.id).values(request_count=written)
            )
    return written


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


def submit_batch(engine: Engine, client: openai.OpenAI, batch_id: uuid.UUID) -> AIBatchRequestStatus | None:
    """Upload and create one planned batch, adopting what a crashed attempt already made; its new status.

    A submission that fails with an exception hands its lease back before the error goes up, so the actor's
    retry (seconds later) submits at once instead of standing back until the lease runs out; only a worker
    that dies outright leaves the lease for the check to find.
    """
    if not claim_batch(engine, batch_id, (AIBatchRequestStatus.UPLOADING,), UPLOAD_LEASE):
        # Submitted already, or being submitted by another worker right now.
        return None
    try:
        return _submit_claimed(engine, client, batch_id)
    except Exception:
        _release_lease(engine, batch_id)
        raise


def _release_lease(engine: Engine, batch_id: uuid.UUID) -> None:
    with sessionmaker(engine).begin() as db:
        db.execute(
            update(AIBatchRequest)
            .where(AIBatchRequest.id == batch_id, AIBatchRequest.status == AIBatchRequestStatus.UPLOADING)
            .values(lease_expires_at=utcnow())
        )


def _submit_claimed(engine: Engine, client: openai.OpenAI, batch_id: uuid.UUID) -> AIBatchRequestStatus:
    with sessionmaker(engine, expire_on_commit=False)() as db:
        batch = db.get(AIBatchRequest, batch_id)
    assert batch is not None
    name = file_name(batch)
    file_id = batch.input_file_id or _existing_file(client, name)
    if file_id is None:
        with tempfile.TemporaryDirectory(prefix="livedash-batch-") as folder:
            path = Path(folder) / name
            if _write_jsonl(engine, batch, path) == 0:
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
