"""Deleting a company removes every row it owns, in bounded batches, and nothing of another company."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from pipeline import company_deletion
from pipeline.company_deletion import delete_company
from pipeline.devtools.seed import SeedPlan, default_now, seed_database, seeded_id

pytestmark = pytest.mark.postgres

#: Rows of one company, per table, whatever the path from the company to them.
OWNED = {
    "company": "SELECT count(*) FROM company WHERE id = :c",
    "session_import": "SELECT count(*) FROM session_import WHERE company_id = :c",
    "session": "SELECT count(*) FROM session WHERE company_id = :c",
    "message": "SELECT count(*) FROM message m JOIN session s ON s.id = m.session_id WHERE s.company_id = :c",
    "session_processing_status": "SELECT count(*) FROM session_processing_status p "
    "JOIN session s ON s.id = p.session_id WHERE s.company_id = :c",
    "session_question": "SELECT count(*) FROM session_question q JOIN session s ON s.id = q.session_id "
    "WHERE s.company_id = :c",
    "ai_processing_request": "SELECT count(*) FROM ai_processing_request r "
    "JOIN session s ON s.id = r.session_id WHERE s.company_id = :c",
    "ai_batch_request": "SELECT count(*) FROM ai_batch_request WHERE company_id = :c",
    "csv_fetch": "SELECT count(*) FROM csv_fetch WHERE company_id = :c",
    "csv_row_error": "SELECT count(*) FROM csv_row_error WHERE company_id = :c",
}


def _owned(engine: Engine, company: uuid.UUID) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: connection.execute(text(query), {"c": company}).scalar_one()
            for table, query in OWNED.items()
        }


def test_every_row_of_the_company_goes_in_bounded_batches_and_the_others_stay(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two seeded companies, and batches of 50 rows
    seed_database(pg_engine, SeedPlan(companies=2, sessions=600, now=default_now()))
    doomed, kept = seeded_id(1, 0), seeded_id(1, 1)
    before, owned = _owned(pg_engine, kept), _owned(pg_engine, doomed)
    assert all(owned.values())
    monkeypatch.setattr(company_deletion, "DELETE_BATCH", 50)
    deletes: list[int] = []

    def count_deleted(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("DELETE"):
            deletes.append(cursor.rowcount)

    event.listen(pg_engine, "after_cursor_execute", count_deleted)

    # When the first is deleted
    deleted = delete_company(pg_engine, doomed)
    event.remove(pg_engine, "after_cursor_execute", count_deleted)

    # Then nothing of it is left, the other company is untouched, and no statement deleted more than a batch
    assert deleted is not None
    assert (deleted.sessions, deleted.imports, deleted.fetches) == (
        owned["session"],
        owned["session_import"],
        owned["csv_fetch"],
    )
    assert set(_owned(pg_engine, doomed).values()) == {0}
    assert _owned(pg_engine, kept) == before
    assert max(deletes) <= 50


def test_an_unknown_company_deletes_nothing(pg_engine: Engine) -> None:
    seed_database(pg_engine, SeedPlan(companies=1, sessions=10, now=default_now()))
    assert delete_company(pg_engine, uuid.uuid4()) is None
    assert _owned(pg_engine, seeded_id(1, 0))["session"] > 0
