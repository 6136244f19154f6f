"""Bulk writes: ``COPY`` on PostgreSQL, batched statements elsewhere (the embedded SQLite).

For the thousands of stage rows and messages a chunk of sessions produces, ``COPY`` is several times faster
than even batched inserts, and it runs inside the caller's transaction like any other statement. Bulk
updates go the same way: the new values are copied into a temporary table (dropped at commit) and applied
with one ``UPDATE ... FROM`` instead of one ``UPDATE`` per row.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

__all__ = [
    "bulk_insert",
    "bulk_update",
    "copy_into_temporary_table",
    "is_postgresql",
    "staged_insert",
    "staged_update",
    "upsert_statement",
]

#: Suffixes that keep the temporary tables of one transaction apart.
_temporary_names = itertools.count()


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


def staged_insert(db: Session, table: Table, rows: Sequence[dict[str, Any]]) -> str | None:
    """PostgreSQL: copy ``rows`` (as :func:`bulk_insert` takes them) into a temporary table now; return the
    ``INSERT ... SELECT`` that adds them to ``table``, for the driver, to run when the caller chooses."""
    if not rows:
        return None
    dialect = db.connection().dialect
    columns = list(rows[0])
    typed = [(column, table.c[column].type.compile(dialect=dialect)) for column in columns]
    copied = ([_copy_value(row[column]) for column in columns] for row in rows)
    source = _quoted(copy_into_temporary_table(db, f"_insert_{table.name}", typed, copied))
    quoted = ", ".join(_quoted(column) for column in columns)
    return f"INSERT INTO {_quoted(table.name)} ({quoted}) SELECT {quoted} FROM {source}"


def is_postgresql(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_into_temporary_table(
    db: Session, prefix: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]]
) -> str:
    """Create a temporary table dropped at commit and ``COPY`` ``rows`` into it; return its name. PostgreSQL.

    ``columns`` are (name, SQL type) pairs; ``rows`` are tuples in their order holding what ``COPY`` takes:
    enum members by value, JSON as ``Jsonb``. The name starts with ``prefix`` and is unique in the process.
    """
    name = f"{prefix}_{next(_temporary_names)}"
    driver: Any = db.connection().connection.driver_connection
    listed = ", ".join(f"{_quoted(column)} {sql_type}" for column, sql_type in columns)
    quoted = ", ".join(_quoted(column) for column, _ in columns)
    with driver.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {_quoted(name)} ({listed}) ON COMMIT DROP")
        with cursor.copy(f"COPY {_quoted(name)} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    return name


def bulk_update(
    db: Session, table: Table, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Set ``columns`` of the rows of ``table`` whose ``key`` matches, in the current transaction.

    ``rows`` are tuples: the key, then the values of ``columns`` in that order (enum members by value). On
    PostgreSQL the values are copied into a temporary table typed like ``table`` and applied with one
    ``UPDATE ... FROM``; elsewhere with one ``UPDATE`` per row. A key must appear at most once.
    """
    if not rows:
        return
    connection = db.connection()
    if connection.dialect.name != "postgresql":
        statement = (
            update(table)
            .where(table.c[key] == bindparam("b_key"))
            .values({column: bindparam(f"b_{index}") for index, column in enumerate(columns)})
        )
        connection.execute(
            statement,
            [
                {"b_key": row[0], **{f"b_{index}": value for index, value in enumerate(row[1:])}}
                for row in rows
            ],
        )
        return
    connection.exec_driver_sql(staged_update(db, table, key, columns, rows))


def staged_update(
    db: Session, table: Table, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> str:
    """PostgreSQL: copy ``rows`` (as :func:`bulk_update` takes them) into a temporary table now; return the
    ``UPDATE ... FROM`` that applies them, for the driver, to run when the caller chooses."""
    dialect = db.connection().dialect
    names = [key, *columns]
    typed = [(column, table.c[column].type.compile(dialect=dialect)) for column in names]
    copied = ([_copy_value(value) for value in row] for row in rows)
    source = _quoted(copy_into_temporary_table(db, f"_update_{table.name}", typed, copied))
    assignments = ", ".join(f"{_quoted(column)} = source.{_quoted(column)}" for column in columns)
    return (
        f"UPDATE {_quoted(table.name)} AS target SET {assignments} FROM {source} AS source "
        f"WHERE target.{_quoted(key)} = source.{_quoted(key)}"
    )


def upsert_statement(db: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` on ``table`` that can say ``ON CONFLICT`` on both PostgreSQL and SQLite."""
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
