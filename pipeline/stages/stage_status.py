"""The five per-session stage rows (``docs/architecture.md``, "Data"), moved in bulk.

Every session has one ``session_processing_status`` row per stage, created PENDING with the session. A change
to a terminal status (COMPLETED, FAILED, SKIPPED) stamps ``completed_at`` (and ``started_at`` if the stage
never started), a FAILED one also counts in ``retry_count``; going back to PENDING clears the timestamps, the
error and the lease but keeps the count. Changes for a whole chunk of sessions go in one statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, update
from sqlalchemy.orm import Session

from pipeline.db.bulk import upsert_statement
from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.models import JSONColumn, SessionProcessingStatus

__all__ = ["TERMINAL", "StageChange", "apply_stage_changes", "ensure_stage_rows"]

TERMINAL = frozenset({ProcessingStatus.COMPLETED, ProcessingStatus.FAILED, ProcessingStatus.SKIPPED})

_table = cast(Table, SessionProcessingStatus.__table__)


@dataclass(frozen=True, slots=True)
class StageChange:
    """Move one session's stage to ``status``; ``error`` is the failure or the reason for skipping."""

    session_id: uuid.UUID
    stage: ProcessingStage
    status: ProcessingStatus
    error: str | None = None
    metadata: dict[str, Any] | None = None


def ensure_stage_rows(db: Session, session_ids: Iterable[uuid.UUID], now: datetime) -> None:
    """Create the five PENDING stage rows of each session that lacks them."""
    rows = [
        {
            "id": uuid.uuid4(),
            "session_id": session_id,
            "stage": stage,
            "status": ProcessingStatus.PENDING,
            "retry_count": 0,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for session_id in session_ids
        for stage in ProcessingStage
    ]
    if not rows:
        return
    db.execute(
        upsert_statement(db, _table).on_conflict_do_nothing(index_elements=["session_id", "stage"]), rows
    )


_TERMINAL_UPDATE = (
    update(_table)
    .where(_table.c.session_id == bindparam("b_session_id"), _table.c.stage == bindparam("b_stage"))
    .values(
        status=bindparam("b_status"),
        started_at=func.coalesce(_table.c.started_at, bindparam("b_now")),
        completed_at=bindparam("b_now"),
        error_message=bindparam("b_error"),
        retry_count=_table.c.retry_count + bindparam("b_failed"),
        metadata=bindparam("b_metadata", type_=JSONColumn),
        lease_expires_at=None,
        leased_by=None,
        updated_at=bindparam("b_now"),
    )
)

_RESET_UPDATE = (
    update(_table)
    .where(_table.c.session_id == bindparam("b_session_id"), _table.c.stage == bindparam("b_stage"))
    .values(
        status=ProcessingStatus.PENDING,
        started_at=None,
        completed_at=None,
        error_message=None,
        lease_expires_at=None,
        leased_by=None,
        # A stage sent back to PENDING is a new piece of work: its claims start counting again.
        attempts=case((_table.c.status == ProcessingStatus.FAILED, 0), else_=_table.c.attempts),
        updated_at=bindparam("b_now"),
    )
)


def apply_stage_changes(db: Session, changes: Sequence[StageChange], now: datetime) -> None:
    """Apply every change in at most two statements; the caller commits."""
    terminal = [
        {
            "b_session_id": change.session_id,
            "b_stage": change.stage,
            "b_status": change.status,
            "b_error": change.error,
            "b_failed": int(change.status is ProcessingStatus.FAILED),
            "b_metadata": change.metadata,
            "b_now": now,
        }
        for change in changes
        if change.status in TERMINAL
    ]
    resets = [
        {"b_session_id": change.session_id, "b_stage": change.stage, "b_now": now}
        for change in changes
        if change.status is ProcessingStatus.PENDING
    ]
    if any(change.status is ProcessingStatus.IN_PROGRESS for change in changes):
        raise ValueError("IN_PROGRESS is set by claiming a stage, not by a change")
    if terminal:
        db.execute(_TERMINAL_UPDATE, terminal)
    if resets:
        db.execute(_RESET_UPDATE, resets)
