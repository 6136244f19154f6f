"""The CSV store called directly, on both databases: repeats across chunks, racing imports of a company,
and the filter that spares a file without repeats its per-line lookups."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from pipeline.companies import add_company
from pipeline.db.models import SessionImport
from pipeline.sources.csv_format import SessionRow, parse_session_rows
from pipeline.stages import csv_store
from pipeline.stages.csv_store import StoreResult, store_rows
from pipeline.stages.seen_filter import SeenFilter

START, END = "30.04.2025 11:38:14", "30.04.2025 11:39:00"


def _file(*lines: tuple[str, str]) -> bytes:
    """A CSV of (session id, category) lines."""
    return "".join(
        f"{session_id},{START},{END}{',' * 12}{category},\r\n" for session_id, category in lines
    ).encode()


def _company(engine: Engine) -> uuid.UUID:
    with sessionmaker(engine).begin() as db:
        return add_company(db, name=f"c-{uuid.uuid4().hex[:8]}", csv_url="https://127.0.0.1/s.csv").id


def _store(engine: Engine, company_id: uuid.UUID, body: bytes) -> StoreResult:
    with engine.begin() as connection:
        return store_rows(
            connection,
            parse_session_rows([body]),
            company_id=company_id,
            fetch_id=uuid.uuid4(),
            now=datetime.now(UTC),
        )


def _stored(engine: Engine, company_id: uuid.UUID) -> dict[str, str | None]:
    with sessionmaker(engine)() as db:
        rows = db.scalars(select(SessionImport).where(SessionImport.company_id == company_id))
        return {row.external_session_id: row.category for row in rows}


#: s-2 (line 2) again with other content on line 7 and verbatim on line 11, merged 4 lines at a time.
REPEATS = _file(
    *[(f"s-{n}", "Greeting") for n in range(1, 7)],
    ("s-2", "Other"),
    ("s-7", "Greeting"),
    ("s-8", "Greeting"),
    ("s-9", "Greeting"),
    ("s-2", "Greeting"),
    ("s-10", "Greeting"),
)
REPEAT_ERROR = (
    7,
    "session id 's-2' already appeared on line 2 with different content; the first occurrence was kept",
)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_store, "MERGE_CHUNK_LINES", 4)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        return request.getfixturevalue("pg_engine")  # type: ignore[no-any-return]
    return request.getfixturevalue("sqlite_engine")  # type: ignore[no-any-return]


@pytest.mark.usefixtures("small_chunks")
def test_a_repeat_in_a_later_chunk_keeps_the_first_occurrence_on_both_databases(engine: Engine) -> None:
    # Given a company and a file whose s-2 repeats in two later chunks
    company_id = _company(engine)

    # When it is stored
    result = _store(engine, company_id, REPEATS)

    # Then s-2 is stored as line 2 has it, line 7 is a row error naming line 2, line 11 a duplicate
    assert _stored(engine, company_id)["s-2"] == "Greeting"
    assert len(_stored(engine, company_id)) == 10
    assert [(error.line_number, error.reason) for error in result.errors] == [REPEAT_ERROR]
    assert (result.rows_total, result.rows_new, result.rows_duplicate, result.rows_invalid) == (12, 10, 1, 1)


@pytest.mark.usefixtures("small_chunks")
def test_a_filter_that_suspects_every_line_changes_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a filter that says "maybe seen" of every session id, as a full one would
    monkeypatch.setattr(SeenFilter, "add", lambda self, key: True)
    company_id = _company(engine)

    # When the file with repeats is stored
    result = _store(engine, company_id, REPEATS)

    # Then every line was looked up, and the outcome is the same as with the real filter
    assert len(_stored(engine, company_id)) == 10
    assert [(error.line_number, error.reason) for error in result.errors] == [REPEAT_ERROR]
    assert (result.rows_new, result.rows_duplicate, result.rows_invalid) == (10, 1, 1)


def test_a_reimport_updates_changed_rows_and_skips_stored_ones_on_both_databases(engine: Engine) -> None:
    # Given a company whose first import stored s-1 and s-2
    company_id = _company(engine)
    first = _store(engine, company_id, _file(("s-1", "Greeting"), ("s-2", "Greeting")))

    # When the next file changes s-2 and adds s-3
    again = _store(engine, company_id, _file(("s-1", "Greeting"), ("s-2", "Billing"), ("s-3", "Greeting")))

    # Then the first stored both as new; the second changed one, added one and left one
    assert (first.rows_new, first.rows_changed) == (2, 0)
    assert (again.rows_new, again.rows_changed, again.rows_duplicate) == (1, 1, 1)
    assert _stored(engine, company_id) == {"s-1": "Greeting", "s-2": "Billing", "s-3": "Greeting"}


@pytest.mark.postgres
def test_a_second_first_import_of_a_company_waits_for_the_first_and_stores_nothing_twice(
    pg_engine: Engine,
) -> None:
    # Given a company's first import, stored and not yet committed
    company_id = _company(pg_engine)
    body = _file(*[(f"s-{n}", "Greeting") for n in range(1, 21)])
    racing: list[StoreResult] = []
    with pg_engine.begin() as connection:
        first = store_rows(
            connection,
            parse_session_rows([body]),
            company_id=company_id,
            fetch_id=uuid.uuid4(),
            now=datetime.now(UTC),
        )

        # When a second import of the same file starts meanwhile (a claim's lease ran out, say)
        second = threading.Thread(target=lambda: racing.append(_store(pg_engine, company_id, body)))
        second.start()
        time.sleep(1)

        # Then it waits for the first one's commit
        assert racing == []
    second.join(timeout=30)

    # And then finds every session stored: no row twice, none refused
    [result] = racing
    assert first.rows_new == 20
    assert (result.rows_new, result.rows_changed, result.rows_duplicate, result.rows_invalid) == (0, 0, 20, 0)
    assert len(_stored(pg_engine, company_id)) == 20


def test_the_staged_values_of_a_row_are_its_first_fields_in_staging_column_order() -> None:
    # Given the parser's row and the staging table's columns
    # When they are compared, then the row's first fields are the staged columns (its hash as row_hash)
    assert SessionRow._fields[: len(csv_store.STAGING_COLUMNS)] == (
        *csv_store.STAGING_COLUMNS[:-1],
        "content_hash",
    )
