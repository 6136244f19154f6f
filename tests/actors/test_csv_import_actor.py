"""The csv-import actors' retry policy and metrics: what is retried, what fails at once, what is counted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline.db.enums import CsvFetchOutcome
from pipeline.db.models import CsvFetch
from pipeline.errors import is_transient
from pipeline.settings import Settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages import entry_points
from pipeline.stages.actors import should_retry
from pipeline.stages.csv_claims import ImportCapacityReached
from pipeline.stages.csv_import import (
    CsvImportFailed,
    PermanentCsvImportFailure,
    TransientCsvImportFailure,
    fetch_limits,
    import_company_csv,
)
from pipeline.stages.runtime import StageRuntime
from tests.demo_source import Source, add_source_company


def test_transient_failures_retry_up_to_the_cap(sqlite_settings: Settings) -> None:
    transient = TransientCsvImportFailure(uuid.uuid4(), "HTTP 503 Service Unavailable")
    permanent = PermanentCsvImportFailure(uuid.uuid4(), "HTTP 401 Unauthorized")

    # A 5xx or a timeout is retried with backoff, until the retry cap
    assert should_retry(sqlite_settings, 1, transient)
    assert not should_retry(sqlite_settings, 10_000, transient)
    # A refused request is never retried
    assert not should_retry(sqlite_settings, 0, permanent)
    # Waiting for a free import slot is not a failure of the company: it gets many more turns
    capacity = ImportCapacityReached.max_retries
    assert capacity is not None
    assert should_retry(sqlite_settings, capacity - 1, ImportCapacityReached(5))
    assert not should_retry(sqlite_settings, capacity, ImportCapacityReached(5))


@pytest.fixture
def actor_on_sqlite(sqlite_engine: Engine, sqlite_settings: Settings) -> Iterator[StageRuntime]:
    """What the import actor works with, on the test's database and settings; nothing is handed on."""
    runtime = StageRuntime(sqlite_settings, dispatch=lambda runtime, actor, args: None, engine=sqlite_engine)
    yield runtime
    runtime.close()


def test_a_permanent_failure_is_recorded_and_not_raised_so_nothing_is_dead_lettered(
    actor_on_sqlite: StageRuntime, sqlite_engine: Engine, source: Source
) -> None:
    # Given a company registered with a wrong password
    company_id = add_source_company(sqlite_engine, source, 0, password="wrong")

    # When its import message is handled, then the actor returns: no retry, no dead letter
    entry_points.import_company(actor_on_sqlite, str(company_id))

    # And the 401 is recorded on its fetch
    with Session(sqlite_engine) as db:
        fetch = db.scalars(select(CsvFetch)).one()
    assert fetch.outcome is CsvFetchOutcome.FAILED
    assert "401" in (fetch.error or "")


def test_a_transient_failure_is_raised_so_the_message_is_retried(
    actor_on_sqlite: StageRuntime, sqlite_engine: Engine, source: Source
) -> None:
    # Given a company whose server answers 503
    company_id = add_source_company(sqlite_engine, source, 0)
    source.add_fault(f"/{source.company(0).slug}/sessions.csv", "status:503")

    # When its import message is handled, then the failure propagates to Dramatiq's retries
    with pytest.raises(CsvImportFailed) as failure:
        entry_points.import_company(actor_on_sqlite, str(company_id))
    assert is_transient(failure.value)


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_import_counts_its_fetch_rows_duration_and_bytes(
    sqlite_engine: Engine, sqlite_settings: Settings, source: Source
) -> None:
    # Given a company whose CSV has one bad line, and the metrics before its import
    lines = source.csv_path(0).read_text().splitlines(keepends=True)
    lines[4] = ",no session id\n"
    source.write_csv(0, "".join(lines))
    company_id = add_source_company(sqlite_engine, source, 0)
    before = {
        "imported": _sample("livedash_csv_fetches_total", {"outcome": "imported"}),
        "new": _sample("livedash_csv_rows_total", {"result": "new"}),
        "invalid": _sample("livedash_csv_rows_total", {"result": "invalid"}),
        "durations": _sample("livedash_csv_fetch_duration_seconds_count", {}),
        "bytes": _sample("livedash_csv_fetch_bytes_sum", {}),
    }

    # When it is imported
    with Fetcher(fetch_limits(sqlite_settings)) as fetcher:
        import_company_csv(
            sqlite_engine, sqlite_settings, company_id, fetcher=fetcher, hand_over=lambda ids: None
        )

    # Then the fetch, its rows by result, its duration and its size are counted
    assert _sample("livedash_csv_fetches_total", {"outcome": "imported"}) == before["imported"] + 1
    assert _sample("livedash_csv_rows_total", {"result": "new"}) == before["new"] + 29
    assert _sample("livedash_csv_rows_total", {"result": "invalid"}) == before["invalid"] + 1
    assert _sample("livedash_csv_fetch_duration_seconds_count", {}) == before["durations"] + 1
    assert _sample("livedash_csv_fetch_bytes_sum", {}) == before["bytes"] + source.csv_path(0).stat().st_size
