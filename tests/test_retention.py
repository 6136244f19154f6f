"""Retention: fetch history, row errors and field warnings, dead AI requests and closed batches' files at
OpenAI go after their time, in bounded batches; everything else, the billed ledger first of all, stays."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import openai
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import sessionmaker

from pipeline import retention
from pipeline.companies import add_company
from pipeline.db.enums import CsvFetchOutcome, CsvRowProblem
from pipeline.db.models import CsvFetch, CsvRowError
from pipeline.devtools.openai_emulator import OpenAIEmulator
from pipeline.devtools.seed import SeedPlan, default_now, seed_database
from pipeline.retention import prune_retained
from pipeline.settings import Settings

pytestmark = pytest.mark.postgres

NOW = default_now()


@pytest.fixture(scope="module")
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as running:
        yield running


@pytest.fixture
def client(emulator: OpenAIEmulator) -> Iterator[openai.OpenAI]:
    emulator.reset()
    with openai.OpenAI(base_url=emulator.url, api_key="test", max_retries=0) as client:
        yield client


def _count(engine: Engine, query: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(query), {"now": NOW}).scalar_one())


COUNTS = {
    "old fetches": "SELECT count(*) FROM csv_fetch WHERE started_at < :now - interval '1 day'",
    "recent fetches": "SELECT count(*) FROM csv_fetch WHERE started_at >= :now - interval '1 day'",
    "old row errors": "SELECT count(*) FROM csv_row_error WHERE created_at < :now - interval '1 day'",
    "recent row errors": "SELECT count(*) FROM csv_row_error WHERE created_at >= :now - interval '1 day'",
    "old dead requests": "SELECT count(*) FROM ai_processing_request WHERE processing_status = "
    "'PROCESSING_FAILED' AND total_cost_eur = 0 AND completed_at < :now - interval '90 days'",
    "recent dead requests": "SELECT count(*) FROM ai_processing_request WHERE processing_status = "
    "'PROCESSING_FAILED' AND total_cost_eur = 0 AND completed_at >= :now - interval '90 days'",
    "billed requests": "SELECT count(*) FROM ai_processing_request WHERE total_cost_eur > 0",
    "old batches with files": "SELECT count(*) FROM ai_batch_request WHERE input_file_id IS NOT NULL "
    "AND status IN ('PROCESSED', 'FAILED') AND completed_at < :now - interval '30 days'",
    "recent batches with files": "SELECT count(*) FROM ai_batch_request WHERE input_file_id IS NOT NULL "
    "AND completed_at >= :now - interval '30 days'",
    "open batches with files": "SELECT count(*) FROM ai_batch_request WHERE input_file_id IS NOT NULL "
    "AND status NOT IN ('PROCESSED', 'FAILED')",
    "sessions": "SELECT count(*) FROM session",
    "messages": "SELECT count(*) FROM message",
}


def test_a_pass_deletes_what_is_past_its_time_in_bounded_batches_and_keeps_the_rest(
    pg_engine: Engine, pg_settings: Settings, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a seeded database (two days of fetches, a year of sessions), one closed batch whose files are at
    # OpenAI, retention of one day for fetches and row errors, and batches of 7 rows
    seed_database(pg_engine, SeedPlan(companies=3, sessions=3_000, now=NOW))
    files = [
        client.files.create(file=(f"f{n}.jsonl", io.BytesIO(b"{}\n")), purpose="batch").id for n in (1, 2)
    ]
    with pg_engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE ai_batch_request SET input_file_id = :input, output_file_id = :output WHERE id = "
                "(SELECT id FROM ai_batch_request WHERE status IN ('PROCESSED', 'FAILED') "
                "ORDER BY completed_at LIMIT 1)"
            ),
            {"input": files[0], "output": files[1]},
        )
    settings = pg_settings.model_copy(
        update={"csv_fetch_retention_days": 1, "csv_row_error_retention_days": 1}
    )
    monkeypatch.setattr(retention, "PRUNE_BATCH", 7)
    before = {name: _count(pg_engine, query) for name, query in COUNTS.items()}
    deletes: list[int] = []

    def count_deleted(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("DELETE"):
            deletes.append(cursor.rowcount)

    event.listen(pg_engine, "after_cursor_execute", count_deleted)

    # When one retention pass runs
    retained = prune_retained(pg_engine, settings, NOW, lambda: client)
    event.remove(pg_engine, "after_cursor_execute", count_deleted)

    # Then what was past its time is gone, and nothing else
    after = {name: _count(pg_engine, query) for name, query in COUNTS.items()}
    assert min(before["old fetches"], before["old row errors"], before["old dead requests"]) > 0
    assert (after["old fetches"], after["old row errors"], after["old dead requests"]) == (0, 0, 0)
    # (at most FILE_BATCHES batches' files per pass, the oldest first)
    assert after["old batches with files"] == before["old batches with files"] - retained.batch_files
    for kept in ("recent fetches", "recent row errors", "recent dead requests", "billed requests",
                 "recent batches with files", "open batches with files", "sessions", "messages"):  # fmt: skip
        assert after[kept] == before[kept], kept
    assert retained.fetches == before["old fetches"]
    assert retained.dead_requests == before["old dead requests"]
    assert retained.batch_files == min(before["old batches with files"], retention.FILE_BATCHES)
    # And the files are deleted at OpenAI
    for file_id in files:
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(file_id)
    # And no transaction deleted more than a batch
    assert deletes and max(deletes) <= 7


def test_each_company_keeps_its_newest_fetch_however_old(pg_engine: Engine, pg_settings: Settings) -> None:
    # Given companies whose fetches are all older than the retention
    seed_database(pg_engine, SeedPlan(companies=4, sessions=50, now=NOW - timedelta(days=10)))

    # When a retention pass runs
    settings = pg_settings.model_copy(
        update={"csv_fetch_retention_days": 1, "batch_file_retention_days": 3650}
    )
    prune_retained(pg_engine, settings, NOW, _no_client)

    # Then exactly one fetch is left per company: its newest
    assert _count(pg_engine, "SELECT count(*) FROM csv_fetch") == 4
    assert (
        _count(
            pg_engine,
            "SELECT count(*) FROM csv_fetch f WHERE f.started_at = "
            "(SELECT max(started_at) FROM csv_fetch g WHERE g.company_id = f.company_id)",
        )
        == 4
    )


def test_files_left_undeleted_when_openai_fails_wait_for_the_next_pass(
    pg_engine: Engine, pg_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given closed batches past the file retention, and OpenAI not answering
    seed_database(pg_engine, SeedPlan(companies=2, sessions=2_000, now=NOW))
    due = _count(pg_engine, COUNTS["old batches with files"])
    with openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="test", max_retries=0) as unreachable:
        # When a retention pass runs
        retained = prune_retained(pg_engine, pg_settings, NOW, lambda: unreachable)

    # Then it does not fail, no file id is cleared, and the rest of the pass still ran
    assert retained.batch_files == 0
    assert _count(pg_engine, COUNTS["old batches with files"]) == due > 0
    assert retained.dead_requests > 0


def _no_client() -> openai.OpenAI:
    raise AssertionError("no batch's files are due: the OpenAI client is not made")


def test_field_warnings_are_pruned_with_the_row_errors_in_bounded_batches(
    pg_engine: Engine, pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fetch with 20 old field warnings and 3 old row errors, and 4 recent warnings
    with sessionmaker(pg_engine).begin() as db:
        company = add_company(db, name="Warned", csv_url="https://example.com/sessions.csv")
        fetch = CsvFetch(company_id=company.id, outcome=CsvFetchOutcome.IMPORTED, started_at=NOW)
        db.add(fetch)
        db.flush()
        for number, (kind, age) in enumerate(
            [(CsvRowProblem.WARNING, 40)] * 20
            + [(CsvRowProblem.ERROR, 40)] * 3
            + [(CsvRowProblem.WARNING, 1)] * 4
        ):
            db.add(
                CsvRowError(
                    fetch_id=fetch.id,
                    company_id=company.id,
                    kind=kind,
                    line_number=number + 1,
                    column_name="tokens" if kind is CsvRowProblem.WARNING else None,
                    reason="column 12 (tokens): 'lots' is not an integer",
                    created_at=NOW - timedelta(days=age),
                )
            )
    monkeypatch.setattr(retention, "PRUNE_BATCH", 7)
    deletes: list[int] = []

    def count_deleted(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("DELETE FROM csv_row_error"):
            deletes.append(cursor.rowcount)

    event.listen(pg_engine, "after_cursor_execute", count_deleted)

    # When a retention pass runs with the default 30 days
    retained = prune_retained(pg_engine, pg_settings, NOW, _no_client)
    event.remove(pg_engine, "after_cursor_execute", count_deleted)

    # Then the old warnings went with the old row errors, 7 at most per transaction, and the recent ones stay
    assert retained.row_errors == 23
    assert sorted(deletes, reverse=True) == [7, 7, 7, 2]
    assert _count(pg_engine, "SELECT count(*) FROM csv_row_error WHERE kind = 'WARNING'") == 4
    assert _count(pg_engine, "SELECT count(*) FROM csv_row_error WHERE kind = 'ERROR'") == 0
