"""Deleting a company and every row it owns, in bounded batches (``livedash companies delete``).

The company is ARCHIVED first, in its own transaction, so that no stage takes new work of it meanwhile (every
stage claims only ACTIVE companies' work). Then its rows go, children before parents, at most
``DELETE_BATCH`` parent rows per transaction: sessions (their messages, stage rows, AI requests and question
links go with each by ``ON DELETE CASCADE``, about fifteen rows per session), imports, batches, row errors,
fetches, and last the company itself. A deletion that stops half-way (a crash, Ctrl-C) leaves an ARCHIVED
company with fewer rows, and running it again finishes it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from pipeline.db.enums import CompanyStatus
from pipeline.db.models import AIBatchRequest, ChatSession, Company, CsvFetch, CsvRowError, SessionImport

__all__ = ["DELETE_BATCH", "DeletedCompany", "delete_company"]

#: Parent rows deleted per transaction.
DELETE_BATCH = 1_000


@dataclass(frozen=True)
class DeletedCompany:
    """Rows deleted per kind (children deleted by cascade are not counted apart)."""

    sessions: int
    imports: int
    batches: int
    row_errors: int
    fetches: int


def _delete_owned(engine: Engine, model: Any, company_id: uuid.UUID) -> int:
    deleted = 0
    while True:
        with Session(engine) as db, db.begin():
            ids = list(db.scalars(select(model.id).where(model.company_id == company_id).limit(DELETE_BATCH)))
            if not ids:
                return deleted
            db.execute(delete(model).where(model.id.in_(ids)))
            deleted += len(ids)


def delete_company(engine: Engine, company_id: uuid.UUID) -> DeletedCompany | None:
    """Delete the company and all its rows; None if there is no such company."""
    with Session(engine) as db, db.begin():
        archived = (
            db.connection()
            .execute(update(Company).where(Company.id == company_id).values(status=CompanyStatus.ARCHIVED))
            .rowcount
        )
    if not archived:
        return None
    deleted = DeletedCompany(
        sessions=_delete_owned(engine, ChatSession, company_id),
        imports=_delete_owned(engine, SessionImport, company_id),
        batches=_delete_owned(engine, AIBatchRequest, company_id),
        row_errors=_delete_owned(engine, CsvRowError, company_id),
        fetches=_delete_owned(engine, CsvFetch, company_id),
    )
    with Session(engine) as db, db.begin():
        db.execute(delete(Company).where(Company.id == company_id))
    return deleted
