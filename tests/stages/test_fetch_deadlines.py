"""The wall-clock deadline of the CSV stage's fetch, against a server that trickles its response headers.

(The transcript side is in test_import_processing.py; the Fetcher's own tests in tests/sources.)
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from pipeline.db.enums import CsvFetchOutcome
from pipeline.db.models import Company, CsvFetch
from pipeline.errors import is_transient
from pipeline.settings import Settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages.csv_import import CsvImportFailed, fetch_limits, import_company_csv
from tests.sources.httpserver import running_server, trickle_headers


@pytest.mark.postgres
def test_a_csv_server_trickling_its_headers_fails_the_fetch_at_the_import_timeout(
    pg_engine: Engine, pg_settings: Settings
) -> None:
    # Given a 1-second CSV_IMPORT_TIMEOUT, and a company whose CSV server sends its headers a byte at a
    # time (each byte well within the 30-second read timeout; the whole would take 80 s)
    settings = pg_settings.model_copy(update={"csv_import_timeout": 1000})
    with running_server() as slow:
        url = slow.route("/sessions.csv", trickle_headers(slow))
        with sessionmaker(pg_engine).begin() as db:
            company = Company(name="Acme", csv_url=url)
            db.add(company)
            db.flush()
            company_id = company.id

        # When its CSV is imported
        with Fetcher(fetch_limits(settings)) as fetcher, pytest.raises(CsvImportFailed) as failed:
            import_company_csv(pg_engine, settings, company_id, fetcher=fetcher, hand_over=lambda _: None)

    # Then the fetch fails at the deadline, transient, with that reason recorded
    assert is_transient(failed.value)
    assert failed.value.reason == "total timeout after 1.0s"
    with sessionmaker(pg_engine)() as db:
        [fetch] = db.scalars(select(CsvFetch).where(CsvFetch.company_id == company_id)).all()
    assert fetch.outcome is CsvFetchOutcome.FAILED
    assert fetch.error == "total timeout after 1.0s"
