"""The csv-import actors' retry policy and metrics: what is retried, what fails at once, what is counted."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY
from sqlalchemy import Engine

from pipeline.actors.csv_import import CAPACITY_RETRIES, _should_retry
from pipeline.settings import Settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages.csv_claims import ImportCapacityReached
from pipeline.stages.csv_import import CsvImportFailed, fetch_limits, import_company_csv
from tests.demo_source import Source, add_source_company


def test_transient_failures_retry_up_to_the_cap_and_permanent_ones_never() -> None:
    company = uuid.uuid4()
    transient = CsvImportFailed(company, "HTTP 503 Service Unavailable", transient=True)
    permanent = CsvImportFailed(company, "HTTP 401 Unauthorized", transient=False)

    # A 5xx or a timeout is retried with backoff, until the retry cap
    assert _should_retry(1, transient)
    assert not _should_retry(10_000, transient)
    # A 401/403/404 or an unparseable body is not retried at all
    assert not _should_retry(1, permanent)
    # Waiting for a free import slot is not a failure of the company: it gets many more turns
    assert _should_retry(CAPACITY_RETRIES - 1, ImportCapacityReached(5))
    assert not _should_retry(CAPACITY_RETRIES, ImportCapacityReached(5))


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
