"""What operators read about the CSV import: each company's last fetch, and recent row errors and warnings."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from pipeline.db.enums import CsvRowProblem
from pipeline.db.estimates import large_table_rows, value_shares
from pipeline.db.models import Company, CsvFetch, CsvRowError, SessionImport
from pipeline.db.paging import Cursor, older_than

__all__ = ["company_import_status", "recent_row_errors"]


def _iso(value: object) -> str | None:
    return value.isoformat() if value is not None else None  # type: ignore[attr-defined]


_FETCH_COLUMNS = (
    "outcome", "started_at", "finished_at", "http_status", "bytes_read", "rows_total", "rows_new",
    "rows_changed", "rows_duplicate", "rows_invalid", "field_warnings", "error",
)  # fmt: skip


def _imports_per_company(db: Session) -> tuple[dict[str, int], bool]:
    """Stored imports per company id: counted while ``session_import`` is small, estimated after."""
    total = large_table_rows(db, "session_import")
    if total is None:
        counts = db.execute(select(SessionImport.company_id, func.count()).group_by(SessionImport.company_id))
        return {str(company_id): count for company_id, count in counts}, False
    return {company_id: round(share * total) for (company_id,), share in value_shares(
        db, "session_import", ["company_id"]
    ).items()}, True  # fmt: skip


def company_import_status(db: Session) -> list[dict[str, Any]]:
    """Per company: its status, stored import count, and its last fetch with that fetch's counts.

    The last fetch is one index lookup per company (a correlated subquery), however long the fetch history.
    Import counts are estimates (``imports_estimated``) once ``session_import`` is large; a company too small
    to be among the planner's common values then shows none.
    """
    fetches = aliased(CsvFetch)
    last_fetch_id = (
        select(fetches.id)
        .where(fetches.company_id == Company.id)
        .order_by(fetches.started_at.desc())
        .limit(1)
        .correlate(Company)
        .scalar_subquery()
    )
    imports, estimated = _imports_per_company(db)
    rows = db.execute(
        select(
            Company.id.label("company_key"),
            Company.name,
            Company.status,
            Company.region,
            *(getattr(CsvFetch, column) for column in _FETCH_COLUMNS),
        )
        .outerjoin(CsvFetch, CsvFetch.id == last_fetch_id)
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
                "field_warnings": row["field_warnings"],
                "error": row["error"],
            }
        report.append(
            {
                "id": str(row["company_key"]),
                "name": row["name"],
                "status": row["status"].value,
                "region": row["region"],
                "imports": imports.get(str(row["company_key"]), None if estimated else 0),
                "imports_estimated": estimated,
                "last_fetch": fetch,
            }
        )
    return report


def recent_row_errors(
    db: Session,
    *,
    company_id: uuid.UUID | None = None,
    kind: CsvRowProblem | None = None,
    limit: int = 50,
    before: Cursor | None = None,
) -> list[dict[str, Any]]:
    """The newest CSV row errors and field warnings (after the cursor ``before`` if given), optionally of one
    company or one kind. A warning's ``raw`` is the start of the field's value, a row error's its record's."""
    statement = (
        select(CsvRowError, Company.name)
        .join(Company, Company.id == CsvRowError.company_id)
        .order_by(CsvRowError.created_at.desc(), CsvRowError.id.desc())
        .limit(limit)
    )
    if company_id is not None:
        statement = statement.where(CsvRowError.company_id == company_id)
    if kind is not None:
        statement = statement.where(CsvRowError.kind == kind)
    if before is not None:
        statement = statement.where(older_than(before, CsvRowError.created_at, CsvRowError.id))
    return [
        {
            "company_id": str(error.company_id),
            "company": name,
            "fetch_id": str(error.fetch_id),
            "kind": error.kind.value,
            "line": error.line_number,
            "column": error.column_name,
            "reason": error.reason,
            "raw": error.raw_excerpt,
            "created_at": _iso(error.created_at),
            "cursor": Cursor.of(error.created_at, error.id),
        }
        for error, name in db.execute(statement)
    ]
