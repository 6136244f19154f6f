"""Batch mode of the session-processing stage: each analysable session becomes one pending request.

The AI_ANALYSIS row is claimed, one AIProcessingRequest (PENDING_BATCHING, with the company's model) is
inserted, and the claim's lease is then cleared: the session now waits for its batch, which owns it until the
result is applied or the request fails for good. A partial unique index refuses a second open request for
one session, so a redelivered message or a racing worker cannot queue the same session twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, text, update
from sqlalchemy.orm import sessionmaker

from pipeline.db.bulk import upsert_statement
from pipeline.db.enums import AIRequestStatus, ProcessingStage
from pipeline.db.models import AIProcessingRequest, SessionProcessingStatus
from pipeline.db.types import utcnow
from pipeline.settings import Settings
from pipeline.stages.analysis_claims import claim_analysable

__all__ = ["OPEN_REQUEST", "enqueue_for_batch", "pending_request"]

_requests = cast(Table, AIProcessingRequest.__table__)

#: The predicate of the partial unique index on open requests (one per session).
OPEN_REQUEST = text("processing_status IN ('PENDING_BATCHING', 'BATCHING_IN_PROGRESS')")


def pending_request(
    session_id: uuid.UUID, model: str, now: datetime, *, attempt: int = 1, note: str | None = None
) -> dict[str, Any]:
    """The row of a request waiting for its batch; ``attempt`` counts the batches it has been through."""
    return {
        "id": uuid.uuid4(),
        "session_id": session_id,
        "model": model,
        "requested_at": now,
        "processing_status": AIRequestStatus.PENDING_BATCHING,
        "processing_type": "session_analysis",
        "success": False,
        "attempts": attempt,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "prompt_token_cost": 0.0,
        "completion_token_cost": 0.0,
        "total_cost_eur": 0.0,
        "cost_known": True,
        "error_message": note,
    }


def enqueue_for_batch(engine: Engine, settings: Settings, session_ids: Sequence[uuid.UUID]) -> int:
    """Queue the analysable sessions of ``session_ids`` for the Batch API; return how many were queued."""
    now = utcnow()
    with sessionmaker(engine).begin() as db:
        claimed = claim_analysable(db, settings, session_ids, now=now, lease=timedelta(minutes=5))
        if not claimed:
            return 0
        db.execute(
            upsert_statement(db, _requests).on_conflict_do_nothing(
                index_elements=["session_id"], index_where=OPEN_REQUEST
            ),
            [pending_request(item.session_id, item.model, now) for item in claimed],
        )
        # From here on the batch owns the session: no lease, so no sweep takes it back meanwhile.
        db.execute(
            update(SessionProcessingStatus)
            .where(
                SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
                SessionProcessingStatus.session_id.in_([item.session_id for item in claimed]),
            )
            .values(lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
    return len(claimed)
