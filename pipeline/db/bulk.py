"""Bulk inserts: ``COPY`` on PostgreSQL, a batched multi-row ``INSERT`` elsewhere (the embedded SQLite).

For the thousands of stage rows and messages a chunk of sessions produces, ``COPY`` is several times faster
than even batched inserts, and it runs inside the caller's transaction like any other statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

__all__ = ["bulk_insert", "upsert_statement"]


def _copy_value(value: Any) -> Any:
    # COPY bypasses SQLAlchemy's type processing: enums go in by value, JSON columns as jsonb.
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict | list):
        return Jsonb(value)
    return value


def bulk_insert(db: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, named as the table's columns) in the current transaction."""
    if not rows:
        return
    connection = db.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    quoted = ", ".join(f'"{column}"' for column in columns)
    driver: Any = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([_copy_value(row[column]) for column in columns])


def upsert_statement(db: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` on ``table`` that can say ``ON CONFLICT`` on both PostgreSQL and SQLite."""
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
