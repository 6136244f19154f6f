"""The CSV import stage: every company's CSV fetched, each session row stored exactly once.

These run against the real PostgreSQL and a real HTTP source on 127.0.0.1; the embedded SQLite path has its
own test at the end.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import sessionmaker

from pipeline.db.enums import CompanyStatus, CsvFetchOutcome, CsvRowProblem, ProcessingStatus
from pipeline.db.models import Company, CsvFetch, CsvRowError, SessionImport
from pipeline.db.types import utcnow
from pipeline.errors import is_transient
from pipeline.settings import CompaniesFilter, Settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages.csv_claims import ImportCapacityReached
from pipeline.stages.csv_import import (
    CsvImportFailed,
    CsvImportResult,
    due_company_ids,
    fetch_limits,
    import_company_csv,
)
from tests.demo_source import Source, add_source_company

SAMPLE = (
    "a068d62a-439b-4d70-924f-3d45ffba673b,30.04.2025 11:38:14,30.04.2025 11:38:14,31.176.221.57,BA,,1,,,,"
    "https://proto.example/jumbo/chats/a068d62a.txt,2.051,6470,0.0009,,test\r\n"
    "284c6849-51ba-41b8-8afd-c1a70e7bd997,30.04.2025 11:41:48,30.04.2025 11:41:48,31.176.221.57,BA,english,1,"
    "happy,no,no,https://proto.example/jumbo/chats/284c6849.txt,3.977,6537,0.0010,Greeting,Good day\r\n"
    "ef6b43f6-e46f-4d6c-9bf7-3d8f3b658d40,01.05.2025 12:11:18,01.05.2025 12:14:53,31.176.221.57,BA,Dutch,8,"
    "excited,no,no,https://proto.example/jumbo/chats/ef6b43f6.txt,3.458,56027,0.0083,Onboarding,"
    '"whats up, ""hi"""\r\n'
)


class Handover:
    """Collects what the stage hands to import processing."""

    def __init__(self) -> None:
        self.chunks: list[list[uuid.UUID]] = []

    def __call__(self, chunk: list[uuid.UUID]) -> None:
        self.chunks.append(chunk)

    @property
    def ids(self) -> set[uuid.UUID]:
        return {item for chunk in self.chunks for item in chunk}


@pytest.fixture
def fetcher(pg_settings: Settings) -> Iterator[Fetcher]:
    with Fetcher(fetch_limits(pg_settings)) as shared:
        yield shared


def _run(
    engine: Engine,
    settings: Settings,
    company_id: uuid.UUID,
    fetcher: Fetcher,
    handover: Handover | None = None,
) -> CsvImportResult:
    return import_company_csv(engine, settings, company_id, fetcher=fetcher, hand_over=handover or Handover())


def _imports(engine: Engine, company_id: uuid.UUID) -> list[SessionImport]:
    with sessionmaker(engine)() as db:
        return list(db.scalars(select(SessionImport).where(SessionImport.company_id == company_id)))


def _fetches(engine: Engine, company_id: uuid.UUID) -> list[CsvFetch]:
    with sessionmaker(engine)() as db:
        return list(
            db.scalars(
                select(CsvFetch).where(CsvFetch.company_id == company_id).order_by(CsvFetch.started_at)
            )
        )


@pytest.mark.postgres
def test_a_company_csv_is_imported_and_its_fetch_recorded(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given a company whose CSV holds a real export's sample rows (CRLF, quoted commas and quotes)
    source.write_csv(0, SAMPLE)
    company_id = add_source_company(pg_engine, source, 0)
    handover = Handover()

    # When its CSV is imported
    result = _run(pg_engine, pg_settings, company_id, fetcher, handover)

    # Then each row is stored once, with its fields as sent
    stored = {row.external_session_id: row for row in _imports(pg_engine, company_id)}
    assert result.outcome is CsvFetchOutcome.IMPORTED
    assert len(stored) == 3
    third = stored["ef6b43f6-e46f-4d6c-9bf7-3d8f3b658d40"]
    assert (third.messages_sent, third.tokens, third.tokens_eur) == (8, 56027, 0.0083)
    assert third.initial_message == 'whats up, "hi"'
    assert stored["a068d62a-439b-4d70-924f-3d45ffba673b"].language is None
    # And the fetch is recorded with its status, size, hash and counts
    [fetch] = _fetches(pg_engine, company_id)
    assert fetch.outcome is CsvFetchOutcome.IMPORTED
    assert fetch.http_status == 200
    assert fetch.bytes_read == len(SAMPLE.encode())
    assert fetch.content_hash is not None and len(fetch.content_hash) == 64
    assert (
        fetch.rows_total,
        fetch.rows_new,
        fetch.rows_changed,
        fetch.rows_duplicate,
        fetch.rows_invalid,
    ) == (3, 3, 0, 0, 0)
    assert fetch.finished_at is not None and fetch.finished_at >= fetch.started_at
    # And the new imports are handed to the next stage in chunks of ids
    assert handover.ids == {row.id for row in stored.values()}


@pytest.mark.postgres
def test_bad_rows_are_recorded_with_their_line_and_the_rest_goes_on(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given a CSV whose second record has no session id and whose fourth has a non-numeric token count
    lines = SAMPLE.splitlines()
    content = "\n".join(
        [
            lines[0],
            ",30.04.2025 11:00:00,30.04.2025 11:00:00",
            lines[1],
            "bad-tokens,30.04.2025 11:00:00,30.04.2025 11:00:00,,,,1,,,,,1.0,lots,,,",
            lines[2],
        ]
    )
    source.write_csv(0, content + "\n")
    company_id = add_source_company(pg_engine, source, 0)

    # When it is imported
    result = _run(pg_engine, pg_settings, company_id, fetcher)

    # Then every row with a session id and times is stored, the bad token count as null
    assert result.outcome is CsvFetchOutcome.IMPORTED
    stored = {row.external_session_id: row for row in _imports(pg_engine, company_id)}
    assert len(stored) == 4
    assert (stored["bad-tokens"].tokens, stored["bad-tokens"].messages_sent) == (None, 1)
    # And the row without an id is a row error, the token count a field warning, each with its line
    with sessionmaker(pg_engine)() as db:
        problems = db.scalars(select(CsvRowError).order_by(CsvRowError.line_number)).all()
    assert [
        (problem.kind, problem.line_number, problem.column_name, problem.reason.split(":")[0])
        for problem in problems
    ] == [
        (CsvRowProblem.ERROR, 2, None, "column 0 (externalSessionId)"),
        (CsvRowProblem.WARNING, 4, "tokens", "column 12 (tokens)"),
    ]
    assert "lots" in problems[1].reason
    assert problems[1].raw_excerpt == "lots"
    [fetch] = _fetches(pg_engine, company_id)
    assert (fetch.rows_total, fetch.rows_invalid, fetch.rows_new, fetch.field_warnings) == (5, 1, 4, 1)


@pytest.mark.postgres
def test_a_session_id_twice_in_one_file_is_stored_once(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given a CSV that repeats its first row verbatim, and repeats its second with other content
    lines = SAMPLE.splitlines()
    changed_second = lines[1].replace("Good day", "Good evening")
    source.write_csv(0, "\n".join([*lines, lines[0], changed_second]) + "\n")
    company_id = add_source_company(pg_engine, source, 0)

    # When it is imported
    _run(pg_engine, pg_settings, company_id, fetcher)

    # Then every session id is stored once, with the first occurrence's content
    stored = {row.external_session_id: row for row in _imports(pg_engine, company_id)}
    assert len(stored) == 3
    assert stored["284c6849-51ba-41b8-8afd-c1a70e7bd997"].initial_message == "Good day"
    # And the verbatim repeat counts as a duplicate, the conflicting one as an invalid row that says why
    [fetch] = _fetches(pg_engine, company_id)
    assert (fetch.rows_total, fetch.rows_new, fetch.rows_duplicate, fetch.rows_invalid) == (5, 3, 1, 1)
    with sessionmaker(pg_engine)() as db:
        [error] = db.scalars(select(CsvRowError)).all()
    assert error.line_number == 5
    assert "already appeared on line 2" in error.reason


@pytest.mark.postgres
def test_two_imports_of_the_same_company_at_once_store_each_row_once(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given a company whose server answers slowly, and two workers that import it at the same moment
    company_id = add_source_company(pg_engine, source, 0)
    source.add_fault(f"/{source.company(0).slug}/", "delay:1.0", times=1)
    results: list[object] = []

    def import_once() -> None:
        results.append(_run(pg_engine, pg_settings, company_id, fetcher))

    threads = [threading.Thread(target=import_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then one imported and the other found the company claimed and did nothing
    outcomes = sorted(str(getattr(result, "outcome", None)) for result in results)
    assert outcomes == ["IMPORTED", "None"]
    assert source.requests_to(0) == 1
    # And every row is stored exactly once
    assert len(_imports(pg_engine, company_id)) == 30


@pytest.mark.postgres
def test_racing_merges_never_store_a_row_twice(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given an import whose claim lease has run out while it was still going (a stalled worker)
    company_id = add_source_company(pg_engine, source, 0)
    first = _run(pg_engine, pg_settings, company_id, fetcher)
    with sessionmaker(pg_engine).begin() as db:
        db.add(
            CsvFetch(
                company_id=company_id,
                outcome=CsvFetchOutcome.RUNNING,
                lease_expires_at=utcnow() - timedelta(seconds=1),
            )
        )
    source.csv_path(0).touch()

    # When another worker imports the same unchanged rows again
    second = _run(pg_engine, pg_settings, company_id, fetcher)

    # Then the stale claim is closed as failed, and no row is stored twice
    assert first.rows_new == 30
    assert second.outcome is CsvFetchOutcome.UNCHANGED
    fetches = _fetches(pg_engine, company_id)
    assert [fetch.outcome for fetch in fetches].count(CsvFetchOutcome.FAILED) == 1
    error = next(f.error for f in fetches if f.outcome is CsvFetchOutcome.FAILED)
    assert error is not None and "lease expired" in error
    assert len(_imports(pg_engine, company_id)) == 30


@pytest.mark.postgres
def test_a_changed_row_updates_its_import_and_asks_for_rederivation(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given a company imported once
    source.write_csv(0, SAMPLE)
    company_id = add_source_company(pg_engine, source, 0)
    _run(pg_engine, pg_settings, company_id, fetcher)
    before = {row.external_session_id: row for row in _imports(pg_engine, company_id)}

    # When the company changes one row's category and the CSV is imported again
    source.write_csv(0, SAMPLE.replace("Greeting", "Onboarding"))
    handover = Handover()
    result = _run(pg_engine, pg_settings, company_id, fetcher, handover)

    # Then that import is updated in place and marked for re-derivation; the others are untouched
    after = {row.external_session_id: row for row in _imports(pg_engine, company_id)}
    changed = after["284c6849-51ba-41b8-8afd-c1a70e7bd997"]
    assert (result.rows_new, result.rows_changed, result.rows_duplicate) == (0, 1, 2)
    assert changed.id == before[changed.external_session_id].id
    assert changed.category == "Onboarding"
    assert changed.derive_status is ProcessingStatus.PENDING
    assert changed.derive_requested_at > before[changed.external_session_id].derive_requested_at
    assert changed.row_hash != before[changed.external_session_id].row_hash
    assert all(
        row.derive_requested_at == before[key].derive_requested_at
        for key, row in after.items()
        if key != changed.external_session_id
    )
    # And only the changed import is handed to the next stage
    assert handover.ids == {changed.id}


@pytest.mark.postgres
def test_unchanged_content_is_recorded_and_not_imported_again(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given a company imported once
    company_id = add_source_company(pg_engine, source, 0)
    _run(pg_engine, pg_settings, company_id, fetcher)

    # When it is fetched again unchanged (a 304 on its ETag), and again after the file was rewritten
    # with the same bytes (a new ETag, the same body hash)
    by_etag = _run(pg_engine, pg_settings, company_id, fetcher)
    source.write_csv(0, source.csv_path(0).read_bytes())
    by_hash = _run(pg_engine, pg_settings, company_id, fetcher)

    # Then both fetches are recorded as unchanged and nothing more is stored or handed over
    assert (by_etag.outcome, by_hash.outcome) == (CsvFetchOutcome.UNCHANGED, CsvFetchOutcome.UNCHANGED)
    fetches = _fetches(pg_engine, company_id)
    assert fetches[1].http_status == 304
    assert fetches[2].http_status == 200 and fetches[2].content_hash == fetches[0].content_hash
    assert len(_imports(pg_engine, company_id)) == 30


@pytest.mark.postgres
def test_an_auth_failure_fails_that_company_alone(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given two companies, the first with a wrong password
    wrong = add_source_company(pg_engine, source, 0, password="not-the-password")
    right = add_source_company(pg_engine, source, 1)

    # When both are imported
    with pytest.raises(CsvImportFailed) as failed:
        _run(pg_engine, pg_settings, wrong, fetcher)
    imported = _run(pg_engine, pg_settings, right, fetcher)

    # Then the first fails at once and for good, with the reason recorded
    assert not is_transient(failed.value)
    assert "401" in failed.value.reason
    [fetch] = _fetches(pg_engine, wrong)
    assert (fetch.outcome, fetch.http_status) == (CsvFetchOutcome.FAILED, 401)
    assert "not-the-password" not in (fetch.error or "")
    # And the second imports all its rows
    assert imported.rows_new == 30


@pytest.mark.postgres
def test_a_server_error_is_transient_and_the_retry_imports(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given a company whose server fails once with a 503
    company_id = add_source_company(pg_engine, source, 0)
    source.add_fault(f"/{source.company(0).slug}/", "status:503", times=1)

    # When it is imported, then retried
    with pytest.raises(CsvImportFailed) as failed:
        _run(pg_engine, pg_settings, company_id, fetcher)
    retried = _run(pg_engine, pg_settings, company_id, fetcher)

    # Then the first attempt is a transient failure on record, and the retry imports everything
    assert is_transient(failed.value)
    assert [fetch.outcome for fetch in _fetches(pg_engine, company_id)] == [
        CsvFetchOutcome.FAILED,
        CsvFetchOutcome.IMPORTED,
    ]
    assert retried.rows_new == 30


@pytest.mark.postgres
def test_a_truncated_body_stores_nothing(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given a server that cuts the body off halfway
    company_id = add_source_company(pg_engine, source, 0)
    source.add_fault(f"/{source.company(0).slug}/", "truncate:500", times=1)

    # When the company is imported
    with pytest.raises(CsvImportFailed) as failed:
        _run(pg_engine, pg_settings, company_id, fetcher)

    # Then it is a transient failure and not a single row of the partial file was stored
    assert is_transient(failed.value)
    assert _imports(pg_engine, company_id) == []


@pytest.mark.postgres
def test_an_unparseable_body_fails_at_once_with_a_reason(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given a URL that serves a binary blob instead of a CSV
    source.write_csv(0, bytes(range(256)) * 4)
    company_id = add_source_company(pg_engine, source, 0)

    # When it is imported
    with pytest.raises(CsvImportFailed) as failed:
        _run(pg_engine, pg_settings, company_id, fetcher)

    # Then it fails for good, saying why
    assert not is_transient(failed.value)
    assert failed.value.reason.startswith("unparseable CSV")
    assert _fetches(pg_engine, company_id)[0].outcome is CsvFetchOutcome.FAILED


@pytest.mark.postgres
def test_a_url_on_a_private_network_is_refused(
    pg_engine: Engine, pg_settings: Settings, source: Source
) -> None:
    # Given a deployment that does not allow private networks, and a company URL on loopback
    settings = pg_settings.model_copy(update={"csv_allow_private_networks": False})
    company_id = add_source_company(pg_engine, source, 0)

    # When it is imported
    with Fetcher(fetch_limits(settings)) as strict_fetcher, pytest.raises(CsvImportFailed) as failed:
        _run(pg_engine, settings, company_id, strict_fetcher)

    # Then it is refused without a single request reaching the server
    assert not is_transient(failed.value)
    assert "loopback" in failed.value.reason
    assert source.requests_to(0) == 0


@pytest.mark.postgres
def test_the_pool_wide_cap_makes_an_import_wait(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given a cap of one import at a time, and another company's import running
    settings = pg_settings.model_copy(update={"csv_import_max_concurrent": 1})
    busy = add_source_company(pg_engine, source, 1)
    waiting = add_source_company(pg_engine, source, 0)
    with sessionmaker(pg_engine).begin() as db:
        db.add(
            CsvFetch(
                company_id=busy,
                outcome=CsvFetchOutcome.RUNNING,
                lease_expires_at=utcnow() + timedelta(minutes=5),
            )
        )

    # When the second company is imported
    # Then it is told to wait for capacity, and nothing was fetched
    with pytest.raises(ImportCapacityReached):
        _run(pg_engine, settings, waiting, fetcher)
    assert source.requests_to(0) == 0


@pytest.mark.postgres
def test_new_imports_are_handed_over_in_chunks(
    pg_engine: Engine, pg_settings: Settings, source: Source, fetcher: Fetcher
) -> None:
    # Given chunks of 8 imports
    settings = pg_settings.model_copy(update={"import_processing_batch_size": 8})
    company_id = add_source_company(pg_engine, source, 0)
    handover = Handover()

    # When 30 new rows are imported
    _run(pg_engine, settings, company_id, fetcher, handover)

    # Then they are handed over as 4 messages' worth of ids, none twice
    assert [len(chunk) for chunk in handover.chunks] == [8, 8, 8, 6]
    assert len(handover.ids) == 30


@pytest.mark.postgres
def test_the_tick_picks_active_companies_of_this_deployment_page_by_page(
    pg_engine: Engine, pg_settings: Settings, source: Source
) -> None:
    # Given five EU companies, one US company and one suspended EU company
    with sessionmaker(pg_engine).begin() as db:
        eu = [Company(name=f"eu-{n}", csv_url="https://a.example/s.csv", region="eu") for n in range(5)]
        db.add_all(
            [
                *eu,
                Company(name="us", csv_url="https://a.example/s.csv", region="us"),
                Company(
                    name="off", csv_url="https://a.example/s.csv", region="eu", status=CompanyStatus.SUSPENDED
                ),
            ]
        )
        db.flush()
        eu_ids = {company.id for company in eu}
        all_active = eu_ids | {db.scalars(select(Company.id).where(Company.name == "us")).one()}

    # When a deployment for region eu pages through them two at a time, and one without a region does
    settings = pg_settings.model_copy(update={"csv_import_batch_size": 2, "region": "eu"})
    filtered = pg_settings.model_copy(update={"csv_companies_filter": CompaniesFilter(region="eu")})
    two = tuple(sorted(eu_ids)[:2])
    by_ids = pg_settings.model_copy(update={"csv_companies_filter": CompaniesFilter(ids=two)})
    with sessionmaker(pg_engine)() as db:
        eu_due = list(due_company_ids(db, settings))
        filter_due = list(due_company_ids(db, filtered))
        ids_due = list(due_company_ids(db, by_ids))
        everything = list(due_company_ids(db, pg_settings))

    # Then each gets exactly the active companies it is responsible for, once each
    assert sorted(eu_due) == sorted(eu_ids) and len(eu_due) == 5
    assert sorted(filter_due) == sorted(eu_ids)
    assert sorted(ids_due) == sorted(two)
    assert set(everything) == all_active and len(everything) == 6


def test_the_embedded_sqlite_database_imports_too(
    sqlite_engine: Engine, sqlite_settings: Settings, source: Source
) -> None:
    # Given the embedded SQLite database and a company
    company_id = add_source_company(sqlite_engine, source, 0)

    # When its CSV is imported twice, the second time with one row changed
    with Fetcher(fetch_limits(sqlite_settings)) as shared:
        first = _run(sqlite_engine, sqlite_settings, company_id, shared)
        lines = source.csv_path(0).read_text().splitlines(keepends=True)
        lines[0] = lines[0].replace(",", ",", 1)[:-1].rsplit(",", 1)[0] + ",changed\n"
        source.write_csv(0, "".join(lines))
        second = _run(sqlite_engine, sqlite_settings, company_id, shared)

    # Then the same counts as on PostgreSQL come out
    assert (first.rows_new, first.rows_invalid) == (30, 0)
    assert (second.rows_new, second.rows_changed, second.rows_duplicate) == (0, 1, 29)
    with sessionmaker(sqlite_engine)() as db:
        assert db.scalar(select(func.count()).select_from(SessionImport)) == 30


def test_on_the_embedded_sqlite_database_a_refused_line_is_isolated_too(
    sqlite_engine: Engine, sqlite_settings: Settings, source: Source
) -> None:
    # Given the embedded database with a rule the parser does not know (a trigger refusing one category), and
    # a company CSV whose fourth line breaks it
    with sqlite_engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER test_no_poison BEFORE INSERT ON session_import WHEN NEW.category = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'category poison refused'); END"
            )
        )
    lines = SAMPLE.splitlines()
    poisoned = "poison-1,30.04.2025 11:00:00,30.04.2025 11:00:00,,,,1,,,,,,,,poison,"
    source.write_csv(0, "\n".join([*lines[:2], poisoned, lines[2]]) + "\n")
    company_id = add_source_company(sqlite_engine, source, 0)

    # When it is imported
    with Fetcher(fetch_limits(sqlite_settings)) as shared:
        result = _run(sqlite_engine, sqlite_settings, company_id, shared)

    # Then the three good rows are stored and the refused one is a row error with the database's reason
    assert (result.outcome, result.rows_new, result.rows_invalid) == (CsvFetchOutcome.IMPORTED, 3, 1)
    with sessionmaker(sqlite_engine)() as db:
        [error] = db.scalars(select(CsvRowError)).all()
    assert (error.line_number, error.reason) == (3, "refused by the database: category poison refused")
