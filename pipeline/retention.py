"""Retention: operational records past their use are deleted hourly, in bounded batches; business data stays.

- CSV fetch history, ``CSV_FETCH_RETENTION_DAYS`` (30): each company's newest fetch is always kept;
- CSV row errors and field warnings (one table), ``CSV_ROW_ERROR_RETENTION_DAYS`` (30);
- dead AI requests, ``AI_REQUEST_RETENTION_DAYS`` (90): failed, with no token and no cost; the billed ledger
  (every request with tokens or a cost) is kept;
- a closed batch's files at OpenAI (input, output, errors), ``BATCH_FILE_RETENTION_DAYS`` (30) after it
  closed; its file ids are cleared once they are deleted.

Sessions, messages, analyses and the billed requests stay until their company is deleted
(:mod:`pipeline.company_deletion`). The schedulers run :func:`prune_retained` beside their own history pruning
(``pipeline.scheduling.history``), with the same shape: each transaction deletes at most ``PRUNE_BATCH`` rows
found through an index of exactly what is due, so no long transaction holds locks and a pass costs what it
deletes, not what the tables hold. Batch files go ``FILE_BATCHES`` batches per pass: each is an HTTP call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Engine, and_, delete, exists, select, update
from sqlalchemy.orm import Session, aliased

from pipeline.db.enums import AIBatchRequestStatus, AIRequestStatus, CsvFetchOutcome
from pipeline.db.models import AIBatchRequest, AIProcessingRequest, CsvFetch, CsvRowError
from pipeline.scheduling.history import PRUNE_BATCH
from pipeline.settings import Settings

if TYPE_CHECKING:
    import openai

__all__ = ["FILE_BATCHES", "Retained", "delete_batch_files", "prune_retained"]

logger = logging.getLogger(__name__)

#: Closed batches whose files are deleted at OpenAI per pass (one to three HTTP calls each).
FILE_BATCHES = 100


@dataclass(frozen=True)
class Retained:
    """Rows (or batches' file sets) removed by one pass."""

    fetches: int
    row_errors: int
    dead_requests: int
    batch_files: int


def _delete_in_batches(engine: Engine, model: Any, *where: ColumnElement[bool]) -> int:
    deleted = 0
    while True:
        with Session(engine) as db, db.begin():
            ids = list(db.scalars(select(model.id).where(*where).limit(PRUNE_BATCH)))
            if not ids:
                return deleted
            db.execute(delete(model).where(model.id.in_(ids)))
            deleted += len(ids)


def _old_fetches(cutoff: datetime) -> tuple[ColumnElement[bool], ...]:
    newer = aliased(CsvFetch)
    return (
        CsvFetch.started_at < cutoff,
        CsvFetch.outcome != CsvFetchOutcome.RUNNING,
        # The newest fetch of a company is what ``status`` shows of it, however old.
        exists().where(newer.company_id == CsvFetch.company_id, newer.started_at > CsvFetch.started_at),
    )


def _dead_requests(cutoff: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        AIProcessingRequest.processing_status == AIRequestStatus.PROCESSING_FAILED,
        AIProcessingRequest.total_cost_eur == 0,
        AIProcessingRequest.total_tokens == 0,
        AIProcessingRequest.completed_at < cutoff,
    )


def _closed_with_files(cutoff: datetime) -> ColumnElement[bool]:
    return and_(
        AIBatchRequest.status.in_((AIBatchRequestStatus.PROCESSED, AIBatchRequestStatus.FAILED)),
        AIBatchRequest.input_file_id.is_not(None),
        AIBatchRequest.completed_at < cutoff,
    )


def _delete_file(client: openai.OpenAI, file_id: str | None) -> None:
    import openai  # with the client that needs it: importing the schedulers loads no SDK

    if file_id is None:
        return
    # Gone already: deleted by an earlier pass that died before recording it, or expired at OpenAI.
    with contextlib.suppress(openai.NotFoundError):
        client.files.delete(file_id)


def delete_batch_files(
    engine: Engine, client: openai.OpenAI, cutoff: datetime, limit: int = FILE_BATCHES
) -> int:
    """Delete at OpenAI the files of up to ``limit`` batches closed before ``cutoff``; clear their ids."""
    with Session(engine) as db:
        batches = db.execute(
            select(AIBatchRequest.id, AIBatchRequest.input_file_id, AIBatchRequest.output_file_id,
                   AIBatchRequest.error_file_id)
            .where(_closed_with_files(cutoff))
            .order_by(AIBatchRequest.completed_at)
            .limit(limit)
        ).all()  # fmt: skip
    import openai  # the SDK only when files are due (see _delete_file)

    deleted = 0
    for batch_id, *files in batches:
        try:
            for file_id in files:
                _delete_file(client, file_id)
        except openai.APIError as exc:
            # OpenAI unreachable or refusing: the rest waits for the next pass, nothing is lost meanwhile.
            logger.warning("retention: files of batch %s not deleted, trying next hour: %s", batch_id, exc)
            break
        deleted += 1
        with Session(engine) as db, db.begin():
            db.execute(
                update(AIBatchRequest)
                .where(AIBatchRequest.id == batch_id)
                .values(input_file_id=None, output_file_id=None, error_file_id=None)
            )
    return deleted


def prune_retained(
    engine: Engine, settings: Settings, now: datetime, client: Callable[[], openai.OpenAI]
) -> Retained:
    """One retention pass; ``client`` gives the OpenAI client, made only when some batch's files are due."""
    days = timedelta(days=1)
    file_cutoff = now - days * settings.batch_file_retention_days
    with Session(engine) as db:
        files_due = db.scalar(select(exists().where(_closed_with_files(file_cutoff))))
    retained = Retained(
        # Row errors first: a fetch takes its row errors with it (ON DELETE CASCADE), and there may be many.
        row_errors=_delete_in_batches(
            engine, CsvRowError, CsvRowError.created_at < now - days * settings.csv_row_error_retention_days
        ),
        fetches=_delete_in_batches(
            engine, CsvFetch, *_old_fetches(now - days * settings.csv_fetch_retention_days)
        ),
        dead_requests=_delete_in_batches(
            engine, AIProcessingRequest, *_dead_requests(now - days * settings.ai_request_retention_days)
        ),
        batch_files=delete_batch_files(engine, client(), file_cutoff) if files_due else 0,
    )
    if any(vars(retained).values()):
        logger.info("retention: %s", retained)
    return retained
