"""The company import claim: at most one import per company, and a bounded number across the pool.

A company's import is claimed by inserting its RUNNING ``csv_fetch`` row; a partial unique index refuses a
second one. The pool-wide cap is checked under a transaction-scoped advisory lock on PostgreSQL (SQLite
serialises writers by itself). A claim carries a lease; a RUNNING row whose lease has passed belongs to a
worker that died, and is closed as FAILED by the next claimer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.db.enums import CsvFetchOutcome
from pipeline.db.models import CsvFetch
from pipeline.errors import TransientError

__all__ = ["ImportCapacityReached", "PreviousFetch", "claim_company_import", "previous_fetch"]

#: Key of the advisory lock that serialises claims (any constant unique to this use).
_CLAIM_LOCK_KEY = 0x4C44_4353_5631  # "LDCSV1"


class ImportCapacityReached(TransientError):
    """``CSV_IMPORT_MAX_CONCURRENT`` imports are running; this one must wait its turn.

    Waiting for capacity is not a failure of the company: the message retries this many times (with
    backoff) before the next tick takes over.
    """

    max_retries = 30

    def __init__(self, running: int) -> None:
        super().__init__(f"{running} company imports are already running (CSV_IMPORT_MAX_CONCURRENT)")


@dataclass(frozen=True)
class PreviousFetch:
    """What the last successful fetch of a company tells the next one."""

    etag: str | None
    last_modified: str | None
    content_hash: str | None


def _close_expired_claims(db: Session, now: datetime) -> None:
    db.execute(
        update(CsvFetch)
        .where(CsvFetch.outcome == CsvFetchOutcome.RUNNING, CsvFetch.lease_expires_at < now)
        .values(outcome=CsvFetchOutcome.FAILED, finished_at=now, error="worker lost: claim lease expired")
    )


def claim_company_import(
    db: Session, company_id: uuid.UUID, *, max_concurrent: int, lease: timedelta, now: datetime
) -> uuid.UUID | None:
    """Insert the company's RUNNING fetch and return its id; ``None`` if the company is already importing.

    Raises :class:`ImportCapacityReached` when the pool is at its cap. The caller commits.
    """
    if db.get_bind().dialect.name == "postgresql":
        db.execute(select(func.pg_advisory_xact_lock(_CLAIM_LOCK_KEY)))
    _close_expired_claims(db, now)
    running = db.scalars(select(CsvFetch.company_id).where(CsvFetch.outcome == CsvFetchOutcome.RUNNING)).all()
    if company_id in running:
        return None
    if len(running) >= max_concurrent:
        raise ImportCapacityReached(len(running))
    fetch = CsvFetch(
        company_id=company_id, outcome=CsvFetchOutcome.RUNNING, started_at=now, lease_expires_at=now + lease
    )
    try:
        with db.begin_nested():
            db.add(fetch)
    except IntegrityError:
        return None
    return fetch.id


def previous_fetch(db: Session, company_id: uuid.UUID) -> PreviousFetch:
    last = db.scalars(
        select(CsvFetch)
        .where(
            CsvFetch.company_id == company_id,
            CsvFetch.outcome.in_((CsvFetchOutcome.IMPORTED, CsvFetchOutcome.UNCHANGED)),
        )
        .order_by(CsvFetch.started_at.desc())
        .limit(1)
    ).first()
    if last is None:
        return PreviousFetch(None, None, None)
    return PreviousFetch(last.etag, last.last_modified, last.content_hash)
