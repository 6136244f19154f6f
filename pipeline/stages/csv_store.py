"""Storing one parsed company CSV: bulk into a staging table, merged a chunk of lines at a time.

On PostgreSQL the rows go in with ``COPY``; on SQLite (the embedded demo) with batched inserts. The merge is
the same SQL on both: the first occurrence of each session id in the file wins, rows whose content changed
since the last import are updated and marked for re-derivation, new rows are inserted. Every row inserted
or changed is stamped with the fetch's id, which is how the fetch later hands exactly those rows to the
next stage without holding their ids in memory.

Imports of one company never store a row twice: on PostgreSQL the store holds a transaction-scoped advisory
lock on the company, so a second import (after a claim's lease ran out, say) waits for the first one's
commit and then sees its rows; the insert skips stored sessions with ``ON CONFLICT DO NOTHING``, which on
SQLite also covers a racing import. A company's first import (no stored import when it starts) has nothing
to update or skip: its chunks look up no stored import, and on PostgreSQL insert without ``ON CONFLICT``.

The file is merged in chunks of ``MERGE_CHUNK_LINES`` good lines, in file order. On PostgreSQL a chunk's
merge is sent in libpq's pipeline mode and runs on the server while this process parses the next chunk: the
parse and the writes overlap on two cores, with no second thread (a helper thread lost more to the GIL than
it won). A later occurrence of a session id is found through an index on the staging table, looked up only
for the lines whose id a :class:`~pipeline.stages.seen_filter.SeenFilter` may have seen before, so the
chunks need not see each other and a file without repeats costs no lookup per line.

Each chunk's merge runs inside a savepoint. If the database refuses it for the data (a constraint, a value
or an index entry it cannot take: SQLSTATE classes 22, 23 and 54), the chunk is merged again without the
pipeline, its range of lines split in halves and each merged again, down to the one line at fault, which
becomes a row error with the database's reason and is marked refused in staging; every other line lands.
Any other failure of a pipelined chunk is handled the same way: merged again without the pipeline, the
chunk raises that failure as itself (a lost connection fails the rollback to the savepoint already).
The parser mirrors the schema's limits, so this is the net under it, for a rule it does not know. A failure
that is not about the data (a lost connection) fails the import as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import (
    Boolean,
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
    exists,
    false,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from pipeline.db.models import SessionImport
from pipeline.db.refusals import refusal_reason
from pipeline.db.types import UTCDateTime
from pipeline.sources.csv_format import FieldWarning, RowError, SessionRow
from pipeline.stages.seen_filter import SeenFilter

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

#: First key of the transaction-scoped advisory lock that holds a company's import (the second: its id's
#: hash); any constant unique to this use.
_STORE_LOCK_CLASS = 0x4C44_5354  # "LDST"

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
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

# The chunk's lines whose session id occurred on an earlier line, removed: only the first occurrence is
# merged. What they were is returned for the row errors of those with other content. Only the lines whose id
# a SeenFilter may have seen before (the candidates) are looked at: on PostgreSQL an array parameter, which
# the pipeline can send; on SQLite an expanded IN list.
_REMOVE_REPEATS = """
DELETE FROM csv_staging
WHERE line_number {candidates} AND EXISTS (
    SELECT 1 FROM csv_staging AS earlier
    WHERE earlier.external_session_id = csv_staging.external_session_id
      AND earlier.line_number < csv_staging.line_number
)
RETURNING line_number, external_session_id, row_hash
"""


#: The earlier occurrences of a line's session id, for :data:`_REMOVE_REPEATS`: made when the first candidate
#: comes, so that a file without repeats never maintains it.
_INDEX_SESSION_IDS = text(
    "CREATE INDEX IF NOT EXISTS csv_staging_session_line ON csv_staging (external_session_id, line_number)"
)


def _remove_repeats(dialect: str) -> TextClause:
    if dialect == "postgresql":
        return text(_REMOVE_REPEATS.format(candidates="= ANY(:candidates)"))
    return text(_REMOVE_REPEATS.format(candidates="IN :candidates")).bindparams(
        bindparam("candidates", expanding=True)
    )


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


def _insert_new(dialect: str, *, may_conflict: bool) -> TextClause:
    # ON CONFLICT skips the lines whose session is stored already (and on SQLite keeps a racing import of the
    # same company from storing a row twice); in line order so that the counts are deterministic.
    return text(
        "INSERT INTO session_import (id, company_id, "
        + ", ".join(CSV_FIELDS)
        + ", row_hash, last_fetch_id, created_at, updated_at"
        + ", derive_status, derive_requested_at, derive_attempts)"
        + f" SELECT {_NEW_ID[dialect]}, :company_id, "
        + ", ".join(CSV_FIELDS)
        + """, row_hash, :fetch_id, :now, :now, 'PENDING', :now, 0
FROM csv_staging WHERE line_number BETWEEN :first AND :last AND NOT refused ORDER BY line_number
"""
        + ("ON CONFLICT (company_id, external_session_id) DO NOTHING" if may_conflict else "")
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
    """The row's ``STAGING_COLUMNS``: its first fields (line, the 16 CSV fields, the content hash)."""
    return row[: len(STAGING_COLUMNS)]


class _Chunk(NamedTuple):
    """Good lines to merge together: their staging values, and the lines whose id may have come before."""

    rows: list[tuple[Any, ...]]
    candidates: list[int]

    @property
    def lines(self) -> tuple[int, int]:
        return self.rows[0][0], self.rows[-1][0]


def _good_chunks(items: Iterable[SessionRow | RowError], result: StoreResult) -> Iterator[_Chunk]:
    """The good rows, ``MERGE_CHUNK_LINES`` at a time; errors and warnings counted."""
    seen = SeenFilter()
    chunk = _Chunk([], [])
    for item in items:
        result.rows_total += 1
        if isinstance(item, RowError):
            result.add_error(item)
            continue
        if item.warnings:
            result.add_warnings(item.warnings)
        chunk.rows.append(_staging_values(item))
        if seen.add(item.external_session_id):
            chunk.candidates.append(item.line_number)
        if len(chunk.rows) == MERGE_CHUNK_LINES:
            yield chunk
            chunk = _Chunk([], [])
    if chunk.rows:
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
            if postgresql:
                _copy_into_staging(connection, chunk.rows)
                sent = merge.send(chunk)
            else:
                _insert_into_staging(connection, chunk.rows)
                merge.now(chunk)
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
        dialect = connection.dialect.name
        if dialect == "postgresql":
            # One import of a company at a time, to its commit (a claim's lease can run out under a slow one):
            # the second then sees the first one's rows.
            connection.execute(
                select(
                    func.pg_advisory_xact_lock(_STORE_LOCK_CLASS, func.hashtext(str(params["company_id"])))
                )
            )
        # A company's first import has nothing to change or to skip: its chunks look no stored import up, and
        # on PostgreSQL, where the lock above keeps any other import out, insert without ON CONFLICT.
        self.may_change = bool(
            connection.execute(
                select(exists().where(SessionImport.company_id == params["company_id"]))
            ).scalar_one()
        )
        self._update_changed = _update_changed(dialect)
        self._insert_new = _insert_new(dialect, may_conflict=self.may_change or dialect != "postgresql")
        self._remove_repeats = _remove_repeats(dialect)

    def now(self, chunk: _Chunk) -> None:
        """Merge the chunk and wait for it; a refused line is isolated (:meth:`_merge_lines`)."""
        if chunk.candidates:
            self._connection.execute(_INDEX_SESSION_IDS)
            removed = self._connection.execute(self._remove_repeats, {"candidates": chunk.candidates})
            self.remove_repeats(list(removed))
        self._merge_lines(chunk.lines)

    def send(self, chunk: _Chunk) -> _SentMerge:
        """Send the chunk's merge in one pipeline, without waiting for it (PostgreSQL)."""
        return _SentMerge(self, chunk)

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

    @cached_property
    def sql(self) -> tuple[str, str, str, str]:
        """The statements of a chunk as the driver takes them (named parameters), compiled once."""
        dialect = self._connection.dialect
        return (
            str(_INDEX_SESSION_IDS.compile(dialect=dialect)),
            str(self._remove_repeats.compile(dialect=dialect)),
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
                changed = (
                    self._connection.execute(self._update_changed, bounds).rowcount if self.may_change else 0
                )
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

    One savepoint around its statements: if one failed, whether its error came at a send or at the wait, the
    chunk is rolled back to it and merged again without the pipeline, down to a refused line.
    """

    _SAVEPOINT = "csv_chunk_merge"

    def __init__(self, merge: _ChunkMerge, chunk: _Chunk) -> None:
        self._merge = merge
        self._chunk = chunk
        connection = merge.driver_connection
        first, last = chunk.lines
        params = {**merge.params, "first": first, "last": last, "candidates": chunk.candidates}
        index_session_ids, remove_repeats, update_changed, insert_new = merge.sql
        self._pipeline = connection.pipeline()
        self._pipeline.__enter__()
        self._open = True
        self._failed = False
        self._removed: psycopg.Cursor[Any] | None = None
        self._changed: psycopg.Cursor[Any] | None = None
        try:
            connection.execute(f"SAVEPOINT {self._SAVEPOINT}")
            if chunk.candidates:
                connection.execute(index_session_ids)
                self._removed = connection.execute(remove_repeats, params)
            if merge.may_change:
                self._changed = connection.execute(update_changed, params)
            self._new = connection.execute(insert_new, params)
            connection.execute(f"RELEASE SAVEPOINT {self._SAVEPOINT}")
        except psycopg.Error:
            # A statement's error comes with whichever call reads the results next: often the wait, but a
            # send reads the results that have arrived too. The rest is not sent; the wait merges it again.
            self._failed = True

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
        """Wait for the merge; count it, or, if it failed, merge the chunk again without the pipeline.

        Whatever the error: when the server refuses a statement, the pipeline may report only that the
        statements after it were aborted (``PipelineAborted``). Merged again one statement at a time, the
        chunk's refused line is isolated (:meth:`_ChunkMerge.now`), and any other failure raised as itself;
        a lost connection already fails the rollback to the savepoint.
        """
        self._open = False
        try:
            self._pipeline.__exit__(None, None, None)
        except psycopg.Error:
            self._failed = True
        if self._failed:
            self._merge.driver_connection.execute(f"ROLLBACK TO SAVEPOINT {self._SAVEPOINT}")
            self._merge.now(self._chunk)
            return
        if self._removed is not None:
            self._merge.remove_repeats(self._removed.fetchall())
        self._merge.count(0 if self._changed is None else self._changed.rowcount, self._new.rowcount)


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
