"""What operators read about the CSV import: each company's last fetch, and recent row errors."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.db.models import Company, CsvFetch, CsvRowError, SessionImport

__all__ = ["company_import_status", "recent_row_errors"]


def _iso(value: object) -> str | None:
    return value.isoformat() if value is not None else None  # type: ignore[attr-defined]


def company_import_status(db: Session) -> list[dict[str, Any]]:
    """Per company: its status, stored import count, and its last fetch with that fetch's counts."""
    ranked = select(
        CsvFetch,
        func.row_number()
        .over(partition_by=CsvFetch.company_id, order_by=CsvFetch.started_at.desc())
        .label("rank"),
    ).subquery()
    last_fetch = select(ranked).where(ranked.c.rank == 1).subquery()
    import_counts = (
        select(SessionImport.company_id, func.count().label("imports"))
        .group_by(SessionImport.company_id)
        .subquery()
    )
    rows = db.execute(
        select(Company.id, Company.name, Company.status, Company.region, import_counts.c.imports, last_fetch)
        .outerjoin(import_counts, import_counts.c.company_id == Company.id)
        .outerjoin(last_fetch, last_fetch.c.company_id == Company.id)
        .order_by(Company.name, Company.id)
    ).mappings()
    report = []
    for row in rows:
        fetch = None
        if row["started_at"] is not None:
            fetch = {
                "outcome": row["outcome"].value,
                "started_at": _iso(row["started_at"]),
                "finished_at": _iso(row["finished_at"]),
                "http_status": row["http_status"],
                "bytes": row["bytes_read"],
                "rows_total": row["rows_total"],
                "rows_new": row["rows_new"],
                "rows_changed": row["rows_changed"],
                "rows_duplicate": row["rows_duplicate"],
                "rows_invalid": row["rows_invalid"],
                "error": row["error"],
            }
        report.append(
            {
                "id": str(row["id"]),
                "name": row["name"],
                "status": row["status"].value,
                "region": row["region"],
                "imports": row["imports"] or 0,
                "last_fetch": fetch,
            }
        )
    return report


def recent_row_errors(
    db: Session, *, company_id: uuid.UUID | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest CSV row errors, optionally of one company."""
    statement = (
        select(CsvRowError, Company.name)
        .join(Company, Company.id == CsvRowError.company_id)
        .order_by(CsvRowError.created_at.desc(), CsvRowError.line_number)
        .limit(limit)
    )
    if company_id is not None:
        statement = statement.where(CsvRowError.company_id == company_id)
    return [
        {
            "company_id": str(error.company_id),
            "company": name,
            "fetch_id": str(error.fetch_id),
            "line": error.line_number,
            "reason": error.reason,
            "raw": error.raw_excerpt,
            "created_at": _iso(error.created_at),
        }
        for error, name in db.execute(statement)
    ]
