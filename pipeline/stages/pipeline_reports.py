"""The pipeline view for operators: stage counts, failures with their reasons, and resetting failures."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.estimates import count_by, large_table_rows
from pipeline.db.models import ChatSession, Company, SessionImport, SessionProcessingStatus
from pipeline.db.paging import Cursor, older_than

__all__ = ["DERIVATION_STAGES", "failed_sessions", "pipeline_status", "retry_failed"]

#: Stages redone by deriving the import again (import processing); the others belong to AI analysis.
DERIVATION_STAGES = (
    ProcessingStage.CSV_IMPORT,
    ProcessingStage.TRANSCRIPT_FETCH,
    ProcessingStage.SESSION_CREATION,
)


#: Stage and import states counted exactly whatever the table's size: the work waiting or running. Failures
#: stay in the table for ever, so their count is estimated with the rest at scale (``sessions failed`` lists
#: them).
_AT_WORK = (ProcessingStatus.PENDING, ProcessingStatus.IN_PROGRESS)


def pipeline_status(db: Session) -> dict[str, Any]:
    """Counts by status of every stage and of import derivation.

    Work waiting or running is counted; the other rows are estimated once their tables are large
    (``estimated`` is then true; see ``pipeline.db.estimates``), so that the cost stays flat as history grows.
    """
    stage_counts = count_by(
        db,
        "session_processing_status",
        [SessionProcessingStatus.stage, SessionProcessingStatus.status],
        exact=_AT_WORK,
        leading=list(ProcessingStage),
    )
    stages: dict[str, dict[str, int]] = {stage.value: {} for stage in ProcessingStage}
    for (stage, status), count in stage_counts.rows.items():
        stages[stage][status] = count
    import_counts = count_by(db, "session_import", [SessionImport.derive_status], exact=_AT_WORK)
    imports = {status: count for (status,), count in import_counts.rows.items()}
    estimated_total = large_table_rows(db, "session")
    total = estimated_total or db.scalar(select(func.count()).select_from(ChatSession)) or 0
    estimated = stage_counts.estimated or import_counts.estimated or estimated_total is not None
    return {"totalSessions": total, "pipeline": stages, "imports": imports, "estimated": estimated}


def failed_sessions(
    db: Session, *, stage: ProcessingStage | None = None, limit: int = 100, before: Cursor | None = None
) -> list[dict[str, Any]]:
    """FAILED stage rows, newest first; imports that failed before they had a session count as CSV_IMPORT.

    ``before``: only failures after that cursor (the next page). Both reads walk partial indexes of the
    failures from the newest, so a page costs the same however many failures the history holds.
    """
    rows: list[dict[str, Any]] = []
    statement = (
        select(SessionProcessingStatus, ChatSession.company_id, Company.name)
        .join(ChatSession, ChatSession.id == SessionProcessingStatus.session_id)
        .join(Company, Company.id == ChatSession.company_id)
        .where(SessionProcessingStatus.status == ProcessingStatus.FAILED)
        .order_by(SessionProcessingStatus.completed_at.desc(), SessionProcessingStatus.id.desc())
        .limit(limit)
    )
    if stage is not None:
        statement = statement.where(SessionProcessingStatus.stage == stage)
    if before is not None:
        statement = statement.where(
            older_than(before, SessionProcessingStatus.completed_at, SessionProcessingStatus.id)
        )
    for row, company_id, company in db.execute(statement):
        rows.append(
            {
                "stage": row.stage.value,
                "session_id": str(row.session_id),
                "import_id": None,
                "company_id": str(company_id),
                "company": company,
                "error": row.error_message,
                "retries": row.retry_count,
                "failed_at": row.completed_at.isoformat() if row.completed_at else None,
                "cursor": Cursor.of(row.completed_at, row.id),
            }
        )
    if stage in (None, ProcessingStage.CSV_IMPORT):
        orphans_statement = (
            select(
                SessionImport.id,
                SessionImport.company_id,
                Company.name,
                SessionImport.derive_error,
                SessionImport.derive_attempts,
                SessionImport.updated_at,
            )
            .join(Company, Company.id == SessionImport.company_id)
            .where(
                SessionImport.derive_status == ProcessingStatus.FAILED,
                ~exists().where(ChatSession.import_id == SessionImport.id),
            )
            .order_by(SessionImport.updated_at.desc(), SessionImport.id.desc())
            .limit(limit)
        )
        if before is not None:
            orphans_statement = orphans_statement.where(
                older_than(before, SessionImport.updated_at, SessionImport.id)
            )
        for import_id, company_id, company, error, attempts, updated_at in db.execute(orphans_statement):
            rows.append(
                {
                    "stage": ProcessingStage.CSV_IMPORT.value,
                    "session_id": None,
                    "import_id": str(import_id),
                    "company_id": str(company_id),
                    "company": company,
                    "error": error,
                    "retries": attempts,
                    "failed_at": updated_at.isoformat(),
                    "cursor": Cursor.of(updated_at, import_id),
                }
            )
    # Both lists in the order of their cursors (time, then id), as the next page continues them.
    rows.sort(key=lambda row: row["cursor"] or "", reverse=True)
    return rows[:limit]


def retry_failed(db: Session, stage: ProcessingStage, *, company_id: uuid.UUID | None = None) -> int:
    """Send the FAILED rows of ``stage`` back to PENDING for its sweep to pick up. The caller commits.

    Returns how many sessions (or, for CSV_IMPORT, imports without a session) were reset.
    """
    sessions_of_company = select(ChatSession.id).where(ChatSession.company_id == company_id)
    failed_rows = [
        SessionProcessingStatus.stage == stage,
        SessionProcessingStatus.status == ProcessingStatus.FAILED,
    ]
    if company_id is not None:
        failed_rows.append(SessionProcessingStatus.session_id.in_(sessions_of_company))
    session_ids = db.scalars(select(SessionProcessingStatus.session_id).where(*failed_rows)).all()
    db.execute(
        update(SessionProcessingStatus)
        .where(SessionProcessingStatus.session_id.in_(session_ids), SessionProcessingStatus.stage == stage)
        .values(
            status=ProcessingStatus.PENDING,
            error_message=None,
            started_at=None,
            completed_at=None,
            attempts=0,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if stage not in DERIVATION_STAGES:
        return len(session_ids)
    derive_again = [SessionImport.derive_status == ProcessingStatus.FAILED]
    with_session = SessionImport.id.in_(select(ChatSession.import_id).where(ChatSession.id.in_(session_ids)))
    if stage is ProcessingStage.CSV_IMPORT:
        without_session = ~exists().where(ChatSession.import_id == SessionImport.id)
        derive_again.append(with_session | without_session)
    else:
        derive_again.append(with_session)
    if company_id is not None:
        derive_again.append(SessionImport.company_id == company_id)
    reset = (
        db.connection()
        .execute(
            update(SessionImport)
            .where(and_(*derive_again))
            .values(
                derive_status=ProcessingStatus.PENDING,
                derive_attempts=0,
                derive_next_attempt_at=None,
                derive_error=None,
            )
            .execution_options(synchronize_session=False)
        )
        .rowcount
    )
    return max(reset, len(session_ids))
