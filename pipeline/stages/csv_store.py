"""Storing one parsed company CSV: bulk into a staging table, then one idempotent merge.

On PostgreSQL the rows go in with ``COPY``; on SQLite (the embedded demo) with batched inserts. The merge is
the same SQL on both: the first occurrence of each session id in the file wins, rows whose content changed
since the last import are updated and marked for re-derivation, new rows are inserted with
``ON CONFLICT DO NOTHING`` so that a racing import of the same company can never store a row twice. Every
row inserted or changed is stamped with the fetch's id, which is how the fetch later hands exactly those
rows to the next stage without holding their ids in memory.

The merge runs inside a savepoint. If the database refuses it for the data (a constraint, a value or an
index entry it cannot take: SQLSTATE classes 22, 23 and 54), the range of lines is split in halves and each
merged again, down to the one line at fault, which becomes a row error with the database's reason and is
taken out of staging; every other line lands. The parser mirrors the schema's limits, so this is the net
under it, for a rule it does not know. A failure that is not about the data (a lost connection) fails the
import as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TextClause,
    Uuid,
    bindparam,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from pipeline.db.models import SessionImport
from pipeline.db.refusals import refusal_reason
from pipeline.db.types import UTCDateTime
from pipeline.sources.csv_format import FieldWarning, RowError, SessionRow

__all__ = [
    "MAX_STORED_FIELD_WARNINGS",
    "MAX_STORED_ROW_ERRORS",
    "StoreResult",
    "iter_fetch_import_ids",
    "store_rows",
]

#: Row errors kept per fetch; more are counted but not stored, so one garbage file cannot flood the table.
MAX_STORED_ROW_ERRORS = 1000

#: Field warnings kept per fetch; more are counted (``csv_fetch.field_warnings``) but not stored.
MAX_STORED_FIELD_WARNINGS = 1000


#: The 16 CSV fields, in column order, as named on SessionImport and on the staging table.
CSV_FIELDS = (
    "external_session_id",
    "start_time_raw",
    "end_time_raw",
    "ip_address",
    "country_code",
    "language",
    "messages_sent",
    "sentiment_raw",
    "escalated_raw",
    "forwarded_hr_raw",
    "full_transcript_url",
    "avg_response_time_seconds",
    "tokens",
    "tokens_eur",
    "category",
    "initial_message",
)
_INTEGER_FIELDS = {"messages_sent", "tokens"}
_REAL_FIELDS = {"avg_response_time_seconds", "tokens_eur"}
STAGING_COLUMNS = ("line_number", *CSV_FIELDS, "row_hash")

_SQLITE_BATCH = 5000

#: Ids are made by the database, not in Python: on PostgreSQL time-ordered (UUIDv7 layout) so that the primary
#: key index grows at its right edge instead of taking a random leaf per row; on SQLite 16 random bytes.
_NEW_ID = {
    "postgresql": (
        "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
        "substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3) "
        "from 1 for 6), 52, 1), 53, 1), 'hex')::uuid"
    ),
    "sqlite": "lower(hex(randomblob(16)))",
}

_staging_metadata = MetaData()
staging = Table(
    "csv_staging",
    _staging_metadata,
    Column("line_number", Integer, primary_key=True, autoincrement=False),
    *(
        Column(name, Integer if name in _INTEGER_FIELDS else Float if name in _REAL_FIELDS else Text)
        for name in CSV_FIELDS
    ),
    Column("row_hash", String(64), nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

# Session ids that occur more than once in the file, with the line of their first occurrence.
_REPEATED = """(
    SELECT external_session_id, min(line_number) AS first_line FROM csv_staging
    GROUP BY external_session_id HAVING count(*) > 1
) AS repeated"""

_LATER_OCCURRENCES = text(f"""
SELECT later.line_number, later.external_session_id, repeated.first_line, later.row_hash = first.row_hash
FROM csv_staging later
JOIN {_REPEATED} ON repeated.external_session_id = later.external_session_id
    AND later.line_number > repeated.first_line
JOIN csv_staging first ON first.line_number = repeated.first_line
ORDER BY later.line_number
""")

_REMOVE_LATER_OCCURRENCES = text(f"""
DELETE FROM csv_staging WHERE line_number IN (
    SELECT later.line_number FROM csv_staging later
    JOIN {_REPEATED} ON repeated.external_session_id = later.external_session_id
        AND later.line_number > repeated.first_line
)
""")

_UPDATE_CHANGED = text(
    "UPDATE session_import SET "
    + ", ".join(f"{name} = s.{name}" for name in CSV_FIELDS[1:])
    + ", row_hash = s.row_hash, last_fetch_id = :fetch_id, updated_at = :now"
    # The session must be derived again, from a freshly fetched transcript: a changed row usually means the
    # chat went on.
    + ", raw_transcript_content = NULL, derive_status = 'PENDING', derive_requested_at = :now"
    + ", derive_attempts = 0, derive_lease_expires_at = NULL, derive_next_attempt_at = NULL"
    + ", derive_error = NULL"
    + """
FROM csv_staging s
WHERE session_import.company_id = :company_id
  AND session_import.external_session_id = s.external_session_id
  AND session_import.row_hash <> s.row_hash
  AND s.line_number BETWEEN :first AND :last
"""
).bindparams(
    bindparam("company_id", type_=Uuid),
    bindparam("fetch_id", type_=Uuid),
    bindparam("now", type_=UTCDateTime),
)


def _insert_new(dialect: str) -> TextClause:
    # ON CONFLICT keeps a racing import of the same company from storing a row twice; in line order so that
    # the counts are deterministic.
    return text(
        "INSERT INTO session_import (id, company_id, "
        + ", ".join(CSV_FIELDS)
        + ", row_hash, last_fetch_id, created_at, updated_at"
        + ", derive_status, derive_requested_at, derive_attempts)"
        + f" SELECT {_NEW_ID[dialect]}, :company_id, "
        + ", ".join(CSV_FIELDS)
        + """, row_hash, :fetch_id, :now, :now, 'PENDING', :now, 0
FROM csv_staging WHERE line_number BETWEEN :first AND :last ORDER BY line_number
ON CONFLICT (company_id, external_session_id) DO NOTHING
"""
    ).bindparams(
        bindparam("company_id", type_=Uuid),
        bindparam("fetch_id", type_=Uuid),
        bindparam("now", type_=UTCDateTime),
    )


@dataclass
class StoreResult:
    """What the merge did with one file's rows (see ``docs/pipeline.md`` for the row counts)."""

    rows_total: int = 0
    rows_new: int = 0
    rows_changed: int = 0
    rows_duplicate: int = 0
    rows_invalid: int = 0
    field_warnings: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[FieldWarning] = field(default_factory=list)

    def add_error(self, error: RowError) -> None:
        self.rows_invalid += 1
        if len(self.errors) < MAX_STORED_ROW_ERRORS:
            self.errors.append(error)

    def add_warnings(self, warnings: tuple[FieldWarning, ...]) -> None:
        self.field_warnings += len(warnings)
        self.warnings.extend(warnings[: MAX_STORED_FIELD_WARNINGS - len(self.warnings)])


def _staging_values(row: SessionRow) -> tuple[Any, ...]:
    return (
        row.line_number,
        row.external_session_id,
        row.start_time_raw,
        row.end_time_raw,
        row.ip_address,
        row.country_code,
        row.language,
        row.messages_sent,
        row.sentiment_raw,
        row.escalated_raw,
        row.forwarded_hr_raw,
        row.full_transcript_url,
        row.avg_response_time_seconds,
        row.tokens,
        row.tokens_eur,
        row.category,
        row.initial_message,
        row.content_hash,
    )


def _good_rows(items: Iterable[SessionRow | RowError], result: StoreResult) -> Iterator[tuple[Any, ...]]:
    for item in items:
        result.rows_total += 1
        if isinstance(item, RowError):
            result.add_error(item)
        else:
            if item.warnings:
                result.add_warnings(item.warnings)
            yield _staging_values(item)


def _copy_into_staging(connection: Connection, rows: Iterator[tuple[Any, ...]]) -> None:
    driver_connection: Any = connection.connection.driver_connection
    with (
        driver_connection.cursor() as cursor,
        cursor.copy(f"COPY csv_staging ({', '.join(STAGING_COLUMNS)}) FROM STDIN") as copy,
    ):
        for values in rows:
            copy.write_row(values)


def _insert_into_staging(connection: Connection, rows: Iterator[tuple[Any, ...]]) -> None:
    statement = insert(staging)
    while batch := list(islice(rows, _SQLITE_BATCH)):
        connection.execute(statement, [dict(zip(STAGING_COLUMNS, values, strict=True)) for values in batch])


def store_rows(
    connection: Connection,
    items: Iterable[SessionRow | RowError],
    *,
    company_id: uuid.UUID,
    fetch_id: uuid.UUID,
    now: datetime,
) -> StoreResult:
    """Stage and merge one file's rows inside the caller's transaction; the caller commits or rolls back.

    ``items`` is consumed lazily, so a file streamed from HTTP goes to the database without being held.
    """
    result = StoreResult()
    staging.drop(connection, checkfirst=True)
    staging.create(connection)
    good_rows = _good_rows(items, result)
    if connection.dialect.name == "postgresql":
        _copy_into_staging(connection, good_rows)
    else:
        _insert_into_staging(connection, good_rows)

    dialect = connection.dialect.name
    if dialect == "postgresql":
        # The merge sorts and hashes whole files; keep that in memory rather than in temp files.
        connection.execute(text("SET LOCAL work_mem = '64MB'"))
    for line_number, external_id, first_line, same in connection.execute(_LATER_OCCURRENCES):
        if not same:
            result.add_error(
                RowError(
                    line_number,
                    f"session id {external_id!r} already appeared on line {first_line} "
                    "with different content; the first occurrence was kept",
                    "",
                )
            )
    connection.execute(_REMOVE_LATER_OCCURRENCES)
    first, last = connection.execute(text("SELECT min(line_number), max(line_number) FROM csv_staging")).one()
    if first is not None:
        params = {"company_id": company_id, "fetch_id": fetch_id, "now": now}
        _merge_lines(connection, _insert_new(dialect), params, (first, last), result)
    result.rows_duplicate = result.rows_total - result.rows_invalid - result.rows_new - result.rows_changed
    staging.drop(connection)
    return result


def _merge_lines(
    connection: Connection,
    insert_new: TextClause,
    params: dict[str, Any],
    lines: tuple[int, int],
    result: StoreResult,
) -> None:
    """Merge the staged lines ``first..last``; on a refusal for the data, each half, down to the bad line."""
    first, last = lines
    bounds = {**params, "first": first, "last": last}
    try:
        with connection.begin_nested():
            changed = connection.execute(_UPDATE_CHANGED, bounds).rowcount
            new = connection.execute(insert_new, bounds).rowcount
    except DBAPIError as exc:
        reason = refusal_reason(exc)
        if reason is None:
            raise
        if first == last:
            _take_out(connection, first, reason, result)
            return
        middle = (first + last) // 2
        _merge_lines(connection, insert_new, params, (first, middle), result)
        _merge_lines(connection, insert_new, params, (middle + 1, last), result)
        return
    result.rows_changed += changed
    result.rows_new += new


def _take_out(connection: Connection, line_number: int, reason: str, result: StoreResult) -> None:
    """Record the line the database refused, with its reason (:func:`refusal_reason`), and drop it."""
    session_id = connection.execute(
        text("SELECT external_session_id FROM csv_staging WHERE line_number = :line"), {"line": line_number}
    ).scalar_one()
    connection.execute(text("DELETE FROM csv_staging WHERE line_number = :line"), {"line": line_number})
    result.add_error(
        RowError(
            line_number,
            f"refused by the database: {reason}",
            f"session id {session_id[:255]!r}",
        )
    )


def iter_fetch_import_ids(
    connection: Connection, fetch_id: uuid.UUID, chunk_size: int
) -> Iterator[list[uuid.UUID]]:
    """The ids of the imports a fetch inserted or changed, in chunks, streamed from the database."""
    statement = (
        select(SessionImport.id).where(SessionImport.last_fetch_id == fetch_id).order_by(SessionImport.id)
    )
    result = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(statement)
    for partition in result.scalars().partitions(chunk_size):
        yield list(partition)
