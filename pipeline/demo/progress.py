"""How far each stage of the demo has got, read from the database, fed to a progress display."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["StageProgress", "progress_feed", "read_progress"]

#: How often the progress callback is fed with fresh counts.
_PROGRESS_SECONDS = 0.2


@dataclass(frozen=True)
class StageProgress:
    """Counts for the progress display: how far each stage is, read from the database."""

    companies: int = 0
    companies_fetched: int = 0
    imports: int = 0
    imports_derived: int = 0
    sessions: int = 0
    sessions_analysed: int = 0
    batches_submitted: int = 0
    batches_processed: int = 0


def read_progress(db: Session) -> StageProgress:
    """How far each stage has got, by database counts."""
    from pipeline.db.enums import AIBatchRequestStatus, CsvFetchOutcome, ProcessingStage, ProcessingStatus
    from pipeline.db.models import (
        AIBatchRequest,
        ChatSession,
        Company,
        CsvFetch,
        SessionImport,
        SessionProcessingStatus,
    )

    done = (ProcessingStatus.COMPLETED, ProcessingStatus.FAILED)
    finished_batches = (
        AIBatchRequestStatus.PROCESSED,
        AIBatchRequestStatus.FAILED,
        AIBatchRequestStatus.CANCELLED,
    )

    def count(model: Any, *where: Any) -> int:
        return db.scalar(select(func.count()).select_from(model).where(*where)) or 0

    return StageProgress(
        companies=count(Company),
        companies_fetched=db.scalar(
            select(func.count(func.distinct(CsvFetch.company_id))).where(
                CsvFetch.outcome != CsvFetchOutcome.RUNNING
            )
        )
        or 0,
        imports=count(SessionImport),
        imports_derived=count(SessionImport, SessionImport.derive_status.in_(done)),
        sessions=count(ChatSession),
        sessions_analysed=count(
            SessionProcessingStatus,
            SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
            SessionProcessingStatus.status.in_(done),
        ),
        batches_submitted=count(AIBatchRequest),
        batches_processed=count(AIBatchRequest, AIBatchRequest.status.in_(finished_batches)),
    )


@contextmanager
def progress_feed(
    on_progress: Callable[[StageProgress], None] | None, sessions: sessionmaker[Session]
) -> Iterator[None]:
    """Feed ``on_progress`` fresh counts from a background thread while the block runs, and once after."""
    if on_progress is None:
        yield
        return

    def poll() -> None:
        with sessions() as db:
            on_progress(read_progress(db))

    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(_PROGRESS_SECONDS):
            poll()

    thread = threading.Thread(target=loop, name="demo-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        poll()
