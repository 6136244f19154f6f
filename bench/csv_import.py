"""Benchmark of the CSV import stage (issue 3), with its reference measured in the same run.

    .venv/bin/python bench/csv_import.py [--rows 100000] [--memory-rows 1000000] [--repeat 3]

1. Rate: a ``--rows``-row CSV served over local HTTP by the demo source is imported into an empty PostgreSQL
   database by one real worker process (``dramatiq pipeline.actors --queues csv-import -p 1``). The rate is
   rows / (fetch finished - fetch started) as the worker recorded them. References: a plain PostgreSQL COPY
   of the same rows into a bare 16-column table (``write_row``), and of the raw file (``FORMAT csv``); and the
   floor: the same rows copied straight into ``session_import`` with no parsing at all.
   The rate and its floor are measured ``--repeat`` times, each pair on a new database, and the median ratio
   printed: on a shared 2-core machine one pair varies by half.
2. Memory: a ``--memory-rows``-row CSV imported the same way; prints the worker process's peak resident
   memory (VmHWM) next to that of an idle worker.

Needs PostgreSQL (``BENCH_DATABASE_URL``, default the local server) and RabbitMQ on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from common import (
    CACHE,
    add_served_company,
    enqueue,
    peak_rss_mb,
    scratch_database,
    worker_children,
    worker_pool,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pipeline.db import migrate
from pipeline.devtools.generate import generate_dataset
from pipeline.devtools.manifest import load_manifest
from pipeline.devtools.source import SourceServer

csv.field_size_limit(1 << 20)


def dataset(rows: int) -> Path:
    """A one-company data set of ``rows`` sessions, generated once and kept under bench/out."""
    directory = CACHE / f"csv-{rows}"
    if not (directory / "manifest.json").exists():
        generate_dataset(directory, companies=1, sessions=rows, seed=1, transcripts=False)
    return directory


def copy_references(url: str, csv_path: Path) -> dict[str, float]:
    """Rows per second of two plain COPYs of the same rows into a bare 16-column table.

    ``rows``: the rows, already split by the csv module (not timed), sent with ``write_row``: the client-side
    COPY rate. ``file``: the raw CSV bytes with ``COPY ... (FORMAT csv)``: the server's own parsing rate.
    """
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = [tuple(record[:16]) + ("",) * (16 - len(record[:16])) for record in csv.reader(f)]
    columns = ", ".join(f"c{index} text" for index in range(16))
    rates = {}
    with psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    ) as conn:
        for name in ("rows", "file"):
            conn.execute(f"CREATE TABLE bare ({columns})")
            started = time.perf_counter()
            with conn.cursor() as cursor:
                if name == "rows":
                    with cursor.copy("COPY bare FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    with cursor.copy("COPY bare FROM STDIN (FORMAT csv)") as copy, csv_path.open("rb") as f:
                        while chunk := f.read(1 << 16):
                            copy.write(chunk)
            conn.commit()
            rates[name] = len(rows) / (time.perf_counter() - started)
            conn.execute("DROP TABLE bare")
            conn.commit()
    return rates


#: (CSV field index, session_import column) of the text fields, for the floor reference.
TEXT_FIELDS = (
    (0, "external_session_id"),
    (1, "start_time_raw"),
    (2, "end_time_raw"),
    (3, "ip_address"),
    (4, "country_code"),
    (5, "language"),
    (7, "sentiment_raw"),
    (8, "escalated_raw"),
    (9, "forwarded_hr_raw"),
    (10, "full_transcript_url"),
    (14, "category"),
    (15, "initial_message"),
)


def floor_reference(url: str, csv_path: Path) -> float:
    """Rows per second of a COPY of the same rows straight into ``session_import`` for a new company: no
    parsing, no validation, no hashing, no merge, only the writes any correct design must make into the table
    with its keys, indexes and foreign key. An import cannot be faster than this."""
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = [record + [""] * (16 - len(record)) for record in csv.reader(f)]
    now = datetime.now(UTC)
    company_id = uuid.uuid4()
    columns = [column for _, column in TEXT_FIELDS] + [
        "id", "company_id", "row_hash", "derive_status", "derive_requested_at", "derive_attempts",
        "created_at", "updated_at",
    ]  # fmt: skip
    with psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    ) as conn:
        conn.execute(
            "INSERT INTO company (id, name, status, csv_url, max_users, timezone, created_at, updated_at) "
            "VALUES (%s, 'floor', 'ACTIVE', 'http://127.0.0.1/floor.csv', 10, 'UTC', now(), now())",
            (company_id,),
        )
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy(f"COPY session_import ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(
                    [row[index] for index, _ in TEXT_FIELDS]
                    + [uuid.uuid4(), company_id, "0" * 64, "PENDING", now, 0, now, now]
                )
        conn.commit()
        return len(rows) / (time.perf_counter() - started)


def import_with_worker(url: str, directory: Path) -> tuple[dict[str, Any], float, float]:
    """Import the data set's company with one worker process; the fetch row, idle and peak RSS (MB)."""
    engine = create_engine(url)
    migrate.upgrade(engine)
    company = load_manifest(directory).companies[0]
    with SourceServer(directory) as server:
        company_id = add_served_company(engine, server.url, company)
        with worker_pool(url, ["csv-import"], processes=1, threads=1) as worker:
            idle = max(peak_rss_mb(child) for child in worker_children(worker.pid))
            enqueue("csv-import", "import_company", [(str(company_id),)])
            fetch = None
            while fetch is None:
                time.sleep(0.2)
                with engine.connect() as connection:
                    fetch = (
                        connection.execute(
                            text(
                                "SELECT outcome, rows_total, rows_new, rows_invalid, bytes_read, error, "
                                "extract(epoch from finished_at - started_at) AS seconds FROM csv_fetch "
                                "WHERE outcome <> 'RUNNING'"
                            )
                        )
                        .mappings()
                        .first()
                    )
            peak = max(peak_rss_mb(child) for child in worker_children(worker.pid))
    engine.dispose()
    return dict(fetch), idle, peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--memory-rows", type=int, default=1_000_000, help="0 skips the memory run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of the rate and its floor, each on a new database"
    )
    args = parser.parse_args()

    directory = dataset(args.rows)
    csv_path = next(directory.glob("*/sessions.csv"))
    ratios = []
    for run in range(1, args.repeat + 1):
        with scratch_database() as url:
            fetch, _, peak = import_with_worker(url, directory)
            references = copy_references(url, csv_path)
            floor = floor_reference(url, csv_path)
        seconds = float(fetch["seconds"])
        rate = int(fetch["rows_total"]) / seconds
        ratios.append(rate / floor)
        print(f"run {run} of {args.repeat}:")
        print(
            f"  import: {fetch['outcome']} {fetch['rows_total']} rows ({fetch['rows_new']} new, "
            f"{fetch['rows_invalid']} invalid, {int(fetch['bytes_read']) / 1e6:.1f} MB) in {seconds:.2f} s"
        )
        print(f"  pipeline import rate: {rate:,.0f} rows/s (worker peak RSS {peak:.0f} MB)")
        print(f"  plain COPY of the same rows (write_row): {references['rows']:,.0f} rows/s")
        print(f"  plain COPY of the raw file (FORMAT csv): {references['file']:,.0f} rows/s")
        print(
            "  floor: COPY of the same rows straight into session_import (keys, indexes, foreign key; "
            f"no parsing): {floor:,.0f} rows/s = {floor / references['rows']:.2f} of the row COPY"
        )
        print(
            f"  ratio: {rate / references['rows']:.2f} of the row COPY (target >= 0.50), "
            f"{rate / floor:.2f} of the floor"
        )
    print(
        f"median of {args.repeat} runs: {statistics.median(ratios):.2f} of the floor (target >= 0.7); "
        f"each: {', '.join(f'{ratio:.2f}' for ratio in ratios)}"
    )

    if args.memory_rows:
        directory = dataset(args.memory_rows)
        with scratch_database() as url:
            fetch, idle, peak = import_with_worker(url, directory)
        print(
            f"memory run: {fetch['outcome']} {fetch['rows_total']} rows in {float(fetch['seconds']):.1f} s; "
            f"worker peak RSS {peak:.0f} MB (idle worker {idle:.0f} MB; target < 200 MB)"
        )


if __name__ == "__main__":
    main()
