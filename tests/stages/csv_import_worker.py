"""One company's CSV import in a process of its own, for tests that measure a worker's peak memory.

Usage: ``python csv_import_worker.py COMPANY_ID`` with the settings in the environment (``DATABASE_URL``...).
Prints a JSON object: the fetch's outcome, its bytes read, and this process's peak resident set in bytes.

The peak is VmHWM from /proc/self/status, the high-water mark of this process's own address space. Not
``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the peak of the address space that ``exec`` replaces
into it, and ``subprocess`` starts this script with vfork, so that address space is the test runner's: after
the rest of the suite it reported the runner's peak (503 MiB), not this import's (about 95 MiB).
"""

from __future__ import annotations

import json
import sys
import uuid

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from pipeline.db.engine import create_db_engine
from pipeline.db.models import CsvFetch
from pipeline.settings import load_settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages.csv_import import fetch_limits, import_company_csv


def peak_resident_bytes() -> int:
    """This process's peak resident set (VmHWM, in KiB in /proc/self/status), in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(company_id: uuid.UUID) -> None:
    settings = load_settings()
    engine = create_db_engine(settings)
    with Fetcher(fetch_limits(settings)) as fetcher:
        result = import_company_csv(engine, settings, company_id, fetcher=fetcher, hand_over=lambda ids: None)
    with sessionmaker(engine)() as db:
        bytes_read = db.scalar(select(CsvFetch.bytes_read).where(CsvFetch.id == result.fetch_id))
    engine.dispose()
    outcome = result.outcome.value if result.outcome else None
    print(json.dumps({"outcome": outcome, "bytes_read": bytes_read, "peak_rss": peak_resident_bytes()}))


if __name__ == "__main__":
    main(uuid.UUID(sys.argv[1]))
