"""Small builders of database rows for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.models import ChatSession, Company, Message, SessionImport, SessionProcessingStatus

__all__ = ["make_analysable_session", "make_company", "make_session_with_stages"]

START = datetime(2025, 4, 30, 11, 38, 14, tzinfo=UTC)


def make_company(
    db: Session,
    *,
    name: str = "Acme",
    csv_url: str = "http://127.0.0.1:1/acme.csv",
    region: str | None = None,
) -> Company:
    company = Company(name=name, csv_url=csv_url, region=region)
    db.add(company)
    db.flush()
    return company


def make_session_with_stages(
    db: Session, company: Company, status: ProcessingStatus = ProcessingStatus.PENDING
) -> ChatSession:
    external_id = str(uuid.uuid4())
    session_import = SessionImport(
        company_id=company.id,
        external_session_id=external_id,
        start_time_raw="30.04.2025 11:38:14",
        end_time_raw="30.04.2025 11:38:14",
        row_hash="0" * 64,
    )
    db.add(session_import)
    db.flush()
    chat = ChatSession(company_id=company.id, import_id=session_import.id, start_time=START, end_time=START)
    db.add(chat)
    db.flush()
    db.add_all(
        SessionProcessingStatus(session_id=chat.id, stage=stage, status=status) for stage in ProcessingStage
    )
    db.flush()
    return chat


def make_analysable_session(
    db: Session, company: Company, turns: list[tuple[str, str]], *, start: datetime = START
) -> ChatSession:
    """A session whose messages exist (SESSION_CREATION COMPLETED) and whose AI analysis is PENDING."""
    chat = make_session_with_stages(db, company)
    for order, (role, content) in enumerate(turns):
        db.add(
            Message(
                session_id=chat.id,
                role=role,
                content=content,
                order=order,
                timestamp=start + timedelta(seconds=10 * order),
            )
        )
    db.execute(
        update(SessionProcessingStatus)
        .where(SessionProcessingStatus.session_id == chat.id, SessionProcessingStatus.stage.in_(DERIVED))
        .values(status=ProcessingStatus.COMPLETED, started_at=start, completed_at=start)
    )
    db.flush()
    return chat


DERIVED = (ProcessingStage.CSV_IMPORT, ProcessingStage.TRANSCRIPT_FETCH, ProcessingStage.SESSION_CREATION)
