"""The check tick of the Batch path: poll every open batch and act on what OpenAI says.

Every OpenAI status is mapped (validating, in_progress, finalizing, cancelling, completed, expired, cancelled,
failed). A completed, expired or cancelled batch is ingested (expired and cancelled ones carry partial
results); a failed one releases its requests with the reason. A batch open longer than
``BATCH_TIMEOUT_HOURS`` is cancelled at OpenAI, and its unfinished requests come back when the cancellation
ends. A batch whose submission a worker left half done is submitted again. A polling error only skips the
batch until the next tick: it never marks a batch failed locally, which could pay twice for its requests.
An ingestion that fails hands its batch's lease back, so the next tick ingests it again at once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import openai
from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline import metrics
from pipeline.db.enums import AIBatchRequestStatus, AIRequestStatus
from pipeline.db.estimates import count_by
from pipeline.db.models import AIBatchRequest, AIProcessingRequest
from pipeline.db.types import utcnow
from pipeline.logs import log_context
from pipeline.settings import Settings
from pipeline.stages.batch_ingest import (
    IngestResult,
    ingest_batch,
    open_requests,
    release_requests,
    release_reservations,
)
from pipeline.stages.batch_submit import (
    STATUS_FROM_OPENAI,
    claim_batch,
    fail_batch,
    release_batch,
    submit_batch,
)
from pipeline.stages.budgets import budget_uses, month_of
from pipeline.stages.stage_status import apply_stage_changes

__all__ = ["OPEN_STATUSES", "CheckResult", "cancel_batch", "check_batches"]

logger = logging.getLogger(__name__)

OPEN_STATUSES = (
    AIBatchRequestStatus.UPLOADING,
    AIBatchRequestStatus.VALIDATING,
    AIBatchRequestStatus.IN_PROGRESS,
    AIBatchRequestStatus.FINALIZING,
    AIBatchRequestStatus.COMPLETED,
    AIBatchRequestStatus.CANCELLED,
)
#: Counted exactly for the gauges (few, indexed); the finished ones are estimated once their tables are large.
_COUNTED_BATCHES = (AIBatchRequestStatus.PENDING, *OPEN_STATUSES)
_OPEN_REQUESTS = (AIRequestStatus.PENDING_BATCHING, AIRequestStatus.BATCHING_IN_PROGRESS)
_INGESTED = ("completed", "expired", "cancelled")
_FINISHED = (AIBatchRequestStatus.COMPLETED, AIBatchRequestStatus.CANCELLED)
#: How long one ingestion holds its batch; a worker that dies mid-way leaves it to the next check after this.
INGEST_LEASE = timedelta(minutes=15)


@dataclass
class CheckResult:
    polled: int = 0
    ingested: int = 0
    failed: int = 0
    resubmitted: int = 0
    cancelled: int = 0
    poll_errors: int = 0
    ingest_errors: int = 0
    fallback: list[uuid.UUID] = field(default_factory=list)


def _release_failed_batch(
    engine: Engine, settings: Settings, batch_id: uuid.UUID, reason: str
) -> list[uuid.UUID]:
    """Fail the batch and release its requests; return the sessions left for the synchronous fallback."""
    factory = sessionmaker(engine)
    now = utcnow()
    with factory.begin() as db:
        waiting = open_requests(db, batch_id)
        db.execute(
            update(AIProcessingRequest)
            .where(AIProcessingRequest.id.in_([request.id for request in waiting]))
            .values(
                processing_status=AIRequestStatus.PROCESSING_FAILED, error_message=reason, completed_at=now
            )
            .execution_options(synchronize_session=False)
        )
        release_reservations(db, waiting)
        released = IngestResult()
        apply_stage_changes(
            db, release_requests(db, [(request, reason) for request in waiting], settings, now, released), now
        )
        fail_batch(db, batch_id, reason, now=now, failed_count=len(waiting))
    return released.fallback


def _failure_reason(remote: Any) -> str:
    errors = getattr(remote, "errors", None)
    data = getattr(errors, "data", None) or []
    if data:
        first = data[0]
        return f"batch failed: {getattr(first, 'code', None) or 'error'}: {getattr(first, 'message', '')}"
    return "batch failed at OpenAI without an error message"


def cancel_batch(engine: Engine, client: openai.OpenAI, batch_id: uuid.UUID) -> str:
    """Ask OpenAI to cancel a batch; its unfinished requests come back when the cancellation ends."""
    with sessionmaker(engine)() as db:
        batch = db.get(AIBatchRequest, batch_id)
    if batch is None or batch.openai_batch_id is None:
        raise LookupError(f"no submitted batch with id {str(batch_id)!r}")
    return client.batches.cancel(batch.openai_batch_id).status


def _update_status(engine: Engine, batch_id: uuid.UUID, remote: Any) -> None:
    completed = (
        getattr(remote, "completed_at", None)
        or getattr(remote, "failed_at", None)
        or getattr(remote, "expired_at", None)
        or getattr(remote, "cancelled_at", None)
    )
    with sessionmaker(engine).begin() as db:
        db.execute(
            update(AIBatchRequest)
            .where(AIBatchRequest.id == batch_id)
            .values(
                # A failed batch stays open here: it is FAILED only once its requests are released, so a
                # worker dying in between leaves it to the next check rather than stranding its requests.
                status=AIBatchRequest.status
                if remote.status == "failed"
                else STATUS_FROM_OPENAI.get(remote.status, AIBatchRequestStatus.IN_PROGRESS),
                output_file_id=remote.output_file_id,
                error_file_id=remote.error_file_id,
                completed_at=datetime.fromtimestamp(completed, utcnow().tzinfo) if completed else None,
            )
        )


def _record_budget_metrics(db: Session, settings: Settings, now: datetime) -> None:
    """Each company's share of its monthly budget used (spent and reserved); 0 for an unlimited budget.

    Every company is set, rather than unlimited ones removed: a series removed in one process of a pool
    would live on in the others' multiprocess files, still at its last value.
    """
    for use in budget_uses(db, settings, month_of(now)):
        metrics.AI_BUDGET_USED_RATIO.labels(str(use.company_id)).set(use.ratio or 0.0)


def _record_metrics(engine: Engine, settings: Settings, now: datetime) -> None:
    with sessionmaker(engine)() as db:
        # Open batches and requests are counted; the finished ones, which only grow, are estimated once their
        # tables are large (pipeline.db.estimates). Every status is set, those with no row to 0, so a status
        # that emptied does not keep its old count.
        batches = count_by(db, "ai_batch_request", [AIBatchRequest.status], exact=_COUNTED_BATCHES).rows
        for batch_status in AIBatchRequestStatus:
            metrics.BATCHES.labels(batch_status.value).set(batches.get((batch_status.value,), 0))
        requests = count_by(
            db, "ai_processing_request", [AIProcessingRequest.processing_status], exact=_OPEN_REQUESTS
        ).rows
        for request_status in AIRequestStatus:
            metrics.AI_REQUESTS.labels(request_status.value).set(requests.get((request_status.value,), 0))
        oldest = db.scalar(
            select(func.min(AIBatchRequest.created_at)).where(AIBatchRequest.status.in_(OPEN_STATUSES))
        )
        _record_budget_metrics(db, settings, now)
    metrics.OLDEST_OPEN_BATCH.set((now - oldest).total_seconds() if oldest else 0.0)


@contextmanager
def _handed_back_on_failure(
    engine: Engine, batch_id: uuid.UUID, statuses: tuple[AIBatchRequestStatus, ...], result: CheckResult
) -> Iterator[None]:
    """Hand the batch's lease back when its ingestion fails, so the next check retries it at once.

    Without this, a batch whose output could not be read during an OpenAI outage waited out the whole
    ``INGEST_LEASE`` after the outage. An OpenAI error leaves the batch to the next check and lets this one go
    on with the other batches; any other error goes up to the actor's retries.
    """
    try:
        yield
    except openai.APIError as exc:
        release_batch(engine, batch_id, statuses)
        result.ingest_errors += 1
        logger.warning("batch %s could not be ingested, trying again next tick: %s", batch_id, exc)
    except Exception:
        release_batch(engine, batch_id, statuses)
        raise


def _check_one(
    engine: Engine,
    settings: Settings,
    client: openai.OpenAI,
    batch: AIBatchRequest,
    result: CheckResult,
    now: datetime,
) -> None:
    """Poll one batch and act on its state: ingest, release, cancel, or resubmit one never created."""
    try:
        if batch.openai_batch_id is None:
            if submit_batch(engine, client, batch.id, max_prompt_tokens=settings.openai_max_prompt_tokens):
                result.resubmitted += 1
            return
        remote = client.batches.retrieve(batch.openai_batch_id)
    except openai.APIError as exc:
        result.poll_errors += 1
        logger.warning("batch %s could not be polled, trying again next tick: %s", batch.id, exc)
        return
    result.polled += 1
    _update_status(engine, batch.id, remote)
    if remote.status in _INGESTED:
        if not claim_batch(engine, batch.id, _FINISHED, INGEST_LEASE):
            return
        with _handed_back_on_failure(engine, batch.id, _FINISHED, result):
            ingested = ingest_batch(
                engine,
                settings,
                client,
                batch.id,
                remote_status=remote.status,
                output_file_id=remote.output_file_id,
                error_file_id=remote.error_file_id,
            )
            result.ingested += 1
            result.fallback += ingested.fallback
    elif remote.status == "failed":
        if not claim_batch(engine, batch.id, OPEN_STATUSES, INGEST_LEASE):
            return
        with _handed_back_on_failure(engine, batch.id, OPEN_STATUSES, result):
            result.fallback += _release_failed_batch(engine, settings, batch.id, _failure_reason(remote))
            result.failed += 1
    elif remote.status != "cancelling" and batch.created_at < now - timedelta(
        hours=settings.batch_timeout_hours
    ):
        client.batches.cancel(batch.openai_batch_id)
        result.cancelled += 1


def check_batches(
    engine: Engine,
    settings: Settings,
    client: openai.OpenAI,
    *,
    analyse_sync: Callable[[list[uuid.UUID]], None] | None = None,
    now: datetime | None = None,
) -> CheckResult:
    """Poll every open batch once and act on its state; ``analyse_sync`` runs the synchronous fallback."""
    now = now or utcnow()
    result = CheckResult()
    with sessionmaker(engine, expire_on_commit=False)() as db:
        batches = list(
            db.scalars(
                select(AIBatchRequest)
                .where(
                    AIBatchRequest.status.in_(OPEN_STATUSES),
                    or_(
                        AIBatchRequest.status != AIBatchRequestStatus.UPLOADING,
                        AIBatchRequest.lease_expires_at < now,
                    ),
                )
                .order_by(AIBatchRequest.created_at)
            )
        )
    for batch in batches:
        with log_context(batch_id=str(batch.id)):
            _check_one(engine, settings, client, batch, result, now)
    if result.fallback and analyse_sync is not None:
        analyse_sync(result.fallback)
    _record_metrics(engine, settings, now)
    return result
