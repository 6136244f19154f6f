"""One company's CSV import in a process of its own, for tests that measure a worker's peak memory.

Usage: ``python csv_import_worker.py COMPANY_ID`` with the settings in the environment (``DATABASE_URL``...).
Prints a JSON object: the fetch's outcome, its bytes read, and this process's peak resident set in bytes.
"""

from __future__ import annotations

import json
import resource
import sys
import uuid

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from pipeline.db.engine import create_db_engine
from pipeline.db.models import CsvFetch
from pipeline.settings import load_settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages.csv_import import fetch_limits, import_company_csv


def main(company_id: uuid.UUID) -> None:
    settings = load_settings()
    engine = create_db_engine(settings)
    with Fetcher(fetch_limits(settings)) as fetcher:
        result = import_company_csv(engine, settings, company_id, fetcher=fetcher, hand_over=lambda ids: None)
    with sessionmaker(engine)() as db:
        bytes_read = db.scalar(select(CsvFetch.bytes_read).where(CsvFetch.id == result.fetch_id))
    engine.dispose()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    outcome = result.outcome.value if result.outcome else None
    print(json.dumps({"outcome": outcome, "bytes_read": bytes_read, "peak_rss": peak_kib * 1024}))


if __name__ == "__main__":
    main(uuid.UUID(sys.argv[1]))
