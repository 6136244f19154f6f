"""Batch mode of the session-processing stage: each analysable session becomes one pending request.

The AI_ANALYSIS row is claimed, one AIProcessingRequest (PENDING_BATCHING, with the company's model) is
inserted, and the claim's lease is then cleared: the session now waits for its batch, which owns it until the
result is applied or the request fails for good. A partial unique index refuses a second open request for
one session, so a redelivered message or a racing worker cannot queue the same session twice.

A session whose content was answered before (same ``analysis_key``) is not queued: its kept answer is
applied again at once (``pipeline/stages/analysis_reuse.py``). The others carry their key and the estimate of
their prompt tokens, which batch planning reserves budget and enqueued tokens with.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline import metrics
from pipeline.analysis import (
    PromptMessage,
    analysis_key,
    estimate_prompt_tokens,
    fit_transcript,
    request_body,
)
from pipeline.db.bulk import upsert_statement
from pipeline.db.enums import AIRequestStatus, ProcessingStage
from pipeline.db.models import AIProcessingRequest, Message, SessionProcessingStatus
from pipeline.db.types import utcnow
from pipeline.settings import Settings
from pipeline.stages.analysis_claims import ClaimedSession, claim_analysable
from pipeline.stages.analysis_results import complete_analyses
from pipeline.stages.analysis_reuse import reusable_answers

__all__ = ["OPEN_REQUEST", "enqueue_for_batch", "pending_request"]

_requests = cast(Table, AIProcessingRequest.__table__)

#: The predicate of the partial unique index on open requests (one per session).
OPEN_REQUEST = text("processing_status IN ('PENDING_BATCHING', 'BATCHING_IN_PROGRESS')")


def pending_request(
    session_id: uuid.UUID,
    model: str,
    now: datetime,
    *,
    attempt: int = 1,
    note: str | None = None,
    key: str | None = None,
    estimated_prompt_tokens: int = 0,
) -> dict[str, Any]:
    """The row of a request waiting for its batch; ``attempt`` counts the batches it has been through."""
    return {
        "analysis_key": key,
        "estimated_prompt_tokens": estimated_prompt_tokens,
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


def _described(
    db: Session, claimed: list[ClaimedSession], max_prompt_tokens: int
) -> dict[uuid.UUID, tuple[str, int]]:
    """The analysis key and estimated prompt tokens of each claimed session that has something to ask.

    The body is the one its batch line will carry (the transcript fitted to ``max_prompt_tokens``), so the key
    is the same as the synchronous path's for the same content.
    """
    messages: dict[uuid.UUID, list[PromptMessage]] = {item.session_id: [] for item in claimed}
    for session_id, role, content, timestamp in db.execute(
        select(Message.session_id, Message.role, Message.content, Message.timestamp)
        .where(Message.session_id.in_(messages))
        .order_by(Message.session_id, Message.order)
    ):
        messages[session_id].append(PromptMessage(role, content, timestamp))
    described: dict[uuid.UUID, tuple[str, int]] = {}
    for item in claimed:
        try:
            transcript = fit_transcript(messages[item.session_id], max_prompt_tokens=max_prompt_tokens)
            body = request_body(item.model, str(item.session_id), transcript)
        except ValueError:
            # Nothing to ask: its batch line fails with the reason, as before.
            continue
        described[item.session_id] = (analysis_key(body), estimate_prompt_tokens(body))
    return described


def enqueue_for_batch(engine: Engine, settings: Settings, session_ids: Sequence[uuid.UUID]) -> int:
    """Queue the analysable sessions of ``session_ids`` for the Batch API; return how many were queued.

    Those whose content was answered before are completed with that answer instead, and not counted.
    """
    now = utcnow()
    with sessionmaker(engine).begin() as db:
        claimed = claim_analysable(db, settings, session_ids, now=now, lease=timedelta(minutes=5))
        if not claimed:
            return 0
        described = _described(db, claimed, settings.openai_max_prompt_tokens)
        reused = reusable_answers(db, {session_id: key for session_id, (key, _) in described.items()})
        complete_analyses(db, reused, now)
        claimed = [item for item in claimed if item.session_id not in reused]
        if not claimed:
            metrics.AI_ANALYSES.labels("reused").inc(len(reused))
            return 0
        db.execute(
            upsert_statement(db, _requests).on_conflict_do_nothing(
                index_elements=["session_id"], index_where=OPEN_REQUEST
            ),
            [
                pending_request(
                    item.session_id,
                    item.model,
                    now,
                    key=described.get(item.session_id, (None, 0))[0],
                    estimated_prompt_tokens=described.get(item.session_id, (None, 0))[1],
                )
                for item in claimed
            ],
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
    metrics.AI_ANALYSES.labels("reused").inc(len(reused))
    return len(claimed)
