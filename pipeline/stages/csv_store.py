"""Storing one parsed company CSV: bulk into a staging table, merged a chunk of lines at a time.

On PostgreSQL the rows go in with ``COPY``; on SQLite (the embedded demo) with batched inserts. The merge is
the same SQL on both: the first occurrence of each session id in the file wins, rows whose content changed
since the last import are updated and marked for re-derivation, new rows are inserted with
``ON CONFLICT DO NOTHING`` so that a racing import of the same company can never store a row twice. Every
row inserted or changed is stamped with the fetch's id, which is how the fetch later hands exactly those
rows to the next stage without holding their ids in memory.

The file is merged in chunks of ``MERGE_CHUNK_LINES`` good lines, in file order. On PostgreSQL a chunk's
merge is sent in libpq's pipeline mode and runs on the server while this process parses the next chunk: the
parse and the writes overlap on two cores, with no second thread (a helper thread lost more to the GIL than
it won). A later occurrence of a session id is found through an index on the staging table, so the chunks
need not see each other.

Each chunk's merge runs inside a savepoint. If the database refuses it for the data (a constraint, a value
or an index entry it cannot take: SQLSTATE classes 22, 23 and 54), the chunk is merged again without the
pipeline, its range of lines split in halves and each merged again, down to the one line at fault, which
becomes a row error with the database's reason and is marked refused in staging; every other line lands.
The parser mirrors the schema's limits, so this is the net under it, for a rule it does not know. A failure
that is not about the data (a lost connection) fails the import as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TextClause,
    Uuid,
    bindparam,
    false,
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

#: Good lines merged at a time. Large enough that a chunk's statements cost little beside its rows, small
#: enough that the rows held for the next ``COPY`` stay a few MB and the first chunk, parsed before any merge
#: can start, is a small share of the file.
MERGE_CHUNK_LINES = 5000

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
    # A line the database refused stays staged, marked, so that a later occurrence of its session id is still
    # a repeat of it, as it would be had the whole file been merged at once.
    Column("refused", Boolean, nullable=False, server_default=false()),
    # The earlier occurrences of a line's session id, for the chunk merges.
    Index("csv_staging_session_line", "external_session_id", "line_number"),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

# The chunk's lines whose session id occurred on an earlier line, removed: only the first occurrence is
# merged. What they were is returned for the row errors of those with other content.
_REMOVE_REPEATS = text("""
DELETE FROM csv_staging
WHERE line_number BETWEEN :first AND :last AND EXISTS (
    SELECT 1 FROM csv_staging AS earlier
    WHERE earlier.external_session_id = csv_staging.external_session_id
      AND earlier.line_number < csv_staging.line_number
)
RETURNING line_number, external_session_id, row_hash
""")

# The first occurrence of session ids that repeat: after the repeats are removed, the one staged line of each.
_FIRST_OCCURRENCES = text(
    "SELECT external_session_id, line_number, row_hash FROM csv_staging WHERE external_session_id IN :ids"
).bindparams(bindparam("ids", expanding=True))

_SET_CHANGED = (
    "UPDATE session_import SET "
    + ", ".join(f"{name} = s.{name}" for name in CSV_FIELDS[1:])
    + ", row_hash = s.row_hash, last_fetch_id = :fetch_id, updated_at = :now"
    # The session must be derived again, from a freshly fetched transcript: a changed row usually means the
    # chat went on.
    + ", raw_transcript_content = NULL, derive_status = 'PENDING', derive_requested_at = :now"
    + ", derive_attempts = 0, derive_lease_expires_at = NULL, derive_next_attempt_at = NULL"
    + ", derive_error = NULL"
)

#: Which stored import a staged line changes. On PostgreSQL each staged line looks its import up by the
#: company's unique key, in a subquery the LIMIT keeps the planner from turning around: its statistics do not
#: know the rows this same transaction inserted for the chunks before, and it would scan all of the company's
#: imports once per chunk. SQLite (no LATERAL) drives the join from the staged lines by itself.
_CHANGED_IMPORTS = {
    "postgresql": """
FROM csv_staging s
JOIN LATERAL (
    SELECT id, row_hash FROM session_import AS stored
    WHERE stored.company_id = :company_id AND stored.external_session_id = s.external_session_id
    LIMIT 1
) AS stored ON stored.row_hash <> s.row_hash
WHERE session_import.id = stored.id
  AND s.line_number BETWEEN :first AND :last AND NOT s.refused
""",
    "sqlite": """
FROM csv_staging s
WHERE session_import.company_id = :company_id
  AND session_import.external_session_id = s.external_session_id
  AND session_import.row_hash <> s.row_hash
  AND s.line_number BETWEEN :first AND :last AND NOT s.refused
""",
}


def _update_changed(dialect: str) -> TextClause:
    return text(_SET_CHANGED + _CHANGED_IMPORTS[dialect]).bindparams(
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
FROM csv_staging WHERE line_number BETWEEN :first AND :last AND NOT refused ORDER BY line_number
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


def _good_chunks(
    items: Iterable[SessionRow | RowError], result: StoreResult
) -> Iterator[list[tuple[Any, ...]]]:
    """The staging values of the good rows, ``MERGE_CHUNK_LINES`` at a time; errors and warnings counted."""
    chunk: list[tuple[Any, ...]] = []
    for item in items:
        result.rows_total += 1
        if isinstance(item, RowError):
            result.add_error(item)
            continue
        if item.warnings:
            result.add_warnings(item.warnings)
        chunk.append(_staging_values(item))
        if len(chunk) == MERGE_CHUNK_LINES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _copy_into_staging(connection: Connection, rows: list[tuple[Any, ...]]) -> None:
    driver_connection: Any = connection.connection.driver_connection
    with (
        driver_connection.cursor() as cursor,
        cursor.copy(f"COPY csv_staging ({', '.join(STAGING_COLUMNS)}) FROM STDIN") as copy,
    ):
        for values in rows:
            copy.write_row(values)


def _insert_into_staging(connection: Connection, rows: list[tuple[Any, ...]]) -> None:
    statement = insert(staging)
    for start in range(0, len(rows), _SQLITE_BATCH):
        batch = rows[start : start + _SQLITE_BATCH]
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

    ``items`` is consumed lazily, so a file streamed from HTTP goes to the database a chunk at a time,
    without being held.
    """
    result = StoreResult()
    staging.drop(connection, checkfirst=True)
    staging.create(connection)
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        # A chunk's merge sorts and hashes its lines; keep that in memory rather than in temp files.
        connection.execute(text("SET LOCAL work_mem = '64MB'"))
    merge = _ChunkMerge(connection, {"company_id": company_id, "fetch_id": fetch_id, "now": now}, result)
    sent: _SentMerge | None = None
    try:
        # The next chunk is parsed (pulled from ``items``) while the chunk before it is merged on the server.
        for chunk in _good_chunks(items, result):
            if sent is not None:
                sent.wait()
            lines = (chunk[0][0], chunk[-1][0])
            if postgresql:
                _copy_into_staging(connection, chunk)
                sent = merge.send(lines)
            else:
                _insert_into_staging(connection, chunk)
                merge.now(lines)
        if sent is not None:
            sent.wait()
    finally:
        if sent is not None:
            # The file failed (a timeout, a size cap) while a merge was in flight: end the pipeline, so that
            # the caller's rollback finds the connection as it left it.
            sent.abandon()
    result.rows_duplicate = result.rows_total - result.rows_invalid - result.rows_new - result.rows_changed
    staging.drop(connection)
    return result


class _ChunkMerge:
    """The merge of one file's staged chunks into ``session_import``, with the counts and row errors."""

    def __init__(self, connection: Connection, params: dict[str, Any], result: StoreResult) -> None:
        self._connection = connection
        self._params = params
        self._result = result
        self._update_changed = _update_changed(connection.dialect.name)
        self._insert_new = _insert_new(connection.dialect.name)

    def now(self, lines: tuple[int, int]) -> None:
        """Merge the chunk of ``lines`` and wait for it; a refused line is isolated (:meth:`_merge_lines`)."""
        bounds = {"first": lines[0], "last": lines[1]}
        self.remove_repeats(list(self._connection.execute(_REMOVE_REPEATS, bounds)))
        self._merge_lines(lines)

    def send(self, lines: tuple[int, int]) -> _SentMerge:
        """Send the chunk's merge in one pipeline, without waiting for it (PostgreSQL)."""
        return _SentMerge(self, lines)

    def remove_repeats(self, removed: list[Any]) -> None:
        """Record the repeats removed whose content differs from the first occurrence as row errors."""
        if not removed:
            return
        first = {
            session_id: (line_number, row_hash)
            for session_id, line_number, row_hash in self._connection.execute(
                _FIRST_OCCURRENCES, {"ids": sorted({row[1] for row in removed})}
            )
        }
        for line_number, session_id, row_hash in sorted(removed):
            first_line, first_hash = first[session_id]
            if row_hash != first_hash:
                self._result.add_error(
                    RowError(
                        line_number,
                        f"session id {session_id!r} already appeared on line {first_line} "
                        "with different content; the first occurrence was kept",
                        "",
                    )
                )

    def count(self, changed: int, new: int) -> None:
        self._result.rows_changed += changed
        self._result.rows_new += new

    def sql(self) -> tuple[str, str, str]:
        """The three statements of a chunk as the driver takes them (PostgreSQL's named parameters)."""
        dialect = self._connection.dialect
        return (
            str(_REMOVE_REPEATS.compile(dialect=dialect)),
            str(self._update_changed.compile(dialect=dialect)),
            str(self._insert_new.compile(dialect=dialect)),
        )

    @property
    def params(self) -> dict[str, Any]:
        return self._params

    @property
    def driver_connection(self) -> Any:
        return self._connection.connection.driver_connection

    def _merge_lines(self, lines: tuple[int, int]) -> None:
        """Merge the staged lines ``first..last``; if refused for the data, each half, to the bad line."""
        first, last = lines
        bounds = {**self._params, "first": first, "last": last}
        try:
            with self._connection.begin_nested():
                changed = self._connection.execute(self._update_changed, bounds).rowcount
                new = self._connection.execute(self._insert_new, bounds).rowcount
        except DBAPIError as exc:
            reason = refusal_reason(exc)
            if reason is None:
                raise
            if first == last:
                self._take_out(first, reason)
                return
            middle = (first + last) // 2
            self._merge_lines((first, middle))
            self._merge_lines((middle + 1, last))
            return
        self.count(changed, new)

    def _take_out(self, line_number: int, reason: str) -> None:
        """Record the line the database refused, with its reason (:func:`refusal_reason`), and mark it."""
        session_id = self._connection.execute(
            text("SELECT external_session_id FROM csv_staging WHERE line_number = :line"),
            {"line": line_number},
        ).scalar_one()
        self._connection.execute(
            text("UPDATE csv_staging SET refused = TRUE WHERE line_number = :line"), {"line": line_number}
        )
        self._result.add_error(
            RowError(
                line_number,
                f"refused by the database: {reason}",
                f"session id {session_id[:255]!r}",
            )
        )


class _SentMerge:
    """A chunk's merge sent in libpq's pipeline mode, running on the server until :meth:`wait`.

    One savepoint around its three statements: if the server refused one for the data, the chunk is rolled
    back to it and merged again without the pipeline, down to the refused line.
    """

    _SAVEPOINT = "csv_chunk_merge"

    def __init__(self, merge: _ChunkMerge, lines: tuple[int, int]) -> None:
        self._merge = merge
        self._lines = lines
        connection = merge.driver_connection
        params = {**merge.params, "first": lines[0], "last": lines[1]}
        remove_repeats, update_changed, insert_new = merge.sql()
        self._pipeline = connection.pipeline()
        self._pipeline.__enter__()
        self._open = True
        connection.execute(f"SAVEPOINT {self._SAVEPOINT}")
        self._removed = connection.execute(remove_repeats, params)
        self._changed = connection.execute(update_changed, params)
        self._new = connection.execute(insert_new, params)
        connection.execute(f"RELEASE SAVEPOINT {self._SAVEPOINT}")

    def abandon(self) -> None:
        """End the pipeline, if open, without the merge's results: the import failed and is rolled back."""
        if not self._open:
            return
        self._open = False
        try:
            self._pipeline.__exit__(None, None, None)
        except psycopg.Error:
            return

    def wait(self) -> None:
        """Wait for the merge; count it, or merge the chunk again line range by line range if refused."""
        self._open = False
        try:
            self._pipeline.__exit__(None, None, None)
        except psycopg.Error as exc:
            if refusal_reason(exc) is None:
                raise
            self._merge.driver_connection.execute(f"ROLLBACK TO SAVEPOINT {self._SAVEPOINT}")
            self._merge.now(self._lines)
            return
        self._merge.remove_repeats(self._removed.fetchall())
        self._merge.count(self._changed.rowcount, self._new.rowcount)


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
