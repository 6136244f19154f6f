"""Benchmark of the CSV import stage (issue 3), with its reference measured in the same run.

    .venv/bin/python bench/csv_import.py [--rows 100000] [--memory-rows 1000000]

1. Rate: a ``--rows``-row CSV served over local HTTP by the demo source is imported into an empty PostgreSQL
   database by one real worker process (``dramatiq pipeline.actors --queues csv-import -p 1``). The rate is
   rows / (fetch finished - fetch started) as the worker recorded them. Reference: a plain PostgreSQL
   ``COPY ... (FORMAT csv)`` of the same file into a bare table of 16 text columns, through psycopg.
2. Memory: a ``--memory-rows``-row CSV imported the same way; prints the worker process's peak resident
   memory (VmHWM) next to that of an idle worker.

Needs PostgreSQL (``BENCH_DATABASE_URL``, default the local server) and RabbitMQ on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from dramatiq import Message
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pipeline.broker import build_broker
from pipeline.db import migrate
from pipeline.db.engine import normalize_database_url
from pipeline.devtools.generate import generate_dataset
from pipeline.devtools.source import SourceServer
from pipeline.settings import load_settings

SERVER_URL = normalize_database_url(
    os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
)
RABBITMQ_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
CACHE = Path(__file__).parent / "out"
csv.field_size_limit(1 << 20)


def dataset(rows: int) -> Path:
    """A one-company data set of ``rows`` sessions, generated once and kept under bench/out."""
    directory = CACHE / f"csv-{rows}"
    if not (directory / "manifest.json").exists():
        generate_dataset(directory, companies=1, sessions=rows, seed=1, transcripts=False)
    return directory


def scratch_database() -> str:
    name = f"livedash_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    admin = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def copy_references(url: str, csv_path: Path) -> dict[str, float]:
    """Rows per second of two plain COPYs of the same rows into a bare 16-column table.

    ``rows``: the rows, already split by the csv module (not timed), sent with ``write_row`` - the client-side
    COPY rate the issue's target refers to. ``file``: the raw CSV bytes with ``COPY ... (FORMAT csv)`` - the
    server's own parsing rate, an upper bound no client-side parser reaches.
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


def worker_children(pid: int) -> list[int]:
    result = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(line) for line in result.stdout.split()]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def import_with_worker(url: str, directory: Path) -> tuple[dict[str, object], float, float]:
    """Import the data set's company with one worker process; return the fetch row and peak RSS (MB)."""
    from pipeline.companies import add_company
    from pipeline.db.secrets import PasswordBox
    from pipeline.devtools.manifest import load_manifest

    engine = create_engine(url)
    migrate.upgrade(engine)
    company = load_manifest(directory).companies[0]
    prom = tempfile.mkdtemp(prefix="bench-prom-")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "RABBITMQ_URL": RABBITMQ_URL,
        "SECRET_KEY": "bench",
        "CSV_ALLOW_PRIVATE_NETWORKS": "true",
        "SCHEDULER_ENABLED": "false",
        "dramatiq_prom_db": prom,
        "PROMETHEUS_MULTIPROC_DIR": prom,
        "dramatiq_prom_port": "0",
        "LOG_LEVEL": "WARNING",
    }
    with SourceServer(directory) as server:
        from sqlalchemy.orm import sessionmaker

        with sessionmaker(engine).begin() as db:
            company_id = add_company(
                db,
                name=company.name,
                csv_url=f"{server.url}/{company.slug}/sessions.csv",
                username=company.username,
                password=company.password,
                password_box=PasswordBox("bench"),
            ).id
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dramatiq",
                "pipeline.actors",
                "--queues",
                "csv-import",
                "-p",
                "1",
                "-t",
                "1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            time.sleep(3)
            children = worker_children(worker.pid)
            idle_rss = max(peak_rss_mb(child) for child in children)
            broker = build_broker(load_settings(rabbitmq_url=RABBITMQ_URL))
            broker.declare_queue("csv-import")
            broker.enqueue(
                Message(
                    queue_name="csv-import",
                    actor_name="import_company",
                    args=(str(company_id),),
                    kwargs={},
                    options={},
                )
            )
            broker.close()
            fetch: dict[str, object] | None = None
            while fetch is None:
                time.sleep(0.2)
                with engine.connect() as connection:
                    row = (
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
                fetch = dict(row) if row is not None else None
            rss = max(peak_rss_mb(child) for child in worker_children(worker.pid))
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
    engine.dispose()
    return fetch, idle_rss, rss


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--memory-rows", type=int, default=1_000_000, help="0 skips the memory run")
    args = parser.parse_args()

    directory = dataset(args.rows)
    csv_path = directory / next(iter(directory.glob("*/sessions.csv"))).relative_to(directory)
    url = scratch_database()
    try:
        fetch, _, rss = import_with_worker(url, directory)
        references = copy_references(url, csv_path)
    finally:
        drop_database(url)
    seconds = float(fetch["seconds"])  # type: ignore[arg-type]
    rate = int(fetch["rows_total"]) / seconds  # type: ignore[call-overload]
    reference = references["rows"]
    print(
        f"import: {fetch['outcome']} {fetch['rows_total']} rows ({fetch['rows_new']} new, "
        f"{fetch['rows_invalid']} invalid, {int(fetch['bytes_read']) / 1e6:.1f} MB) in {seconds:.2f} s"
    )  # type: ignore[call-overload]
    print(f"pipeline import rate: {rate:,.0f} rows/s (worker peak RSS {rss:.0f} MB)")
    print(f"plain COPY of the same rows (write_row): {reference:,.0f} rows/s")
    print(f"plain COPY of the raw file (FORMAT csv): {references['file']:,.0f} rows/s")
    print(f"ratio: {rate / reference:.2f} of the row COPY (target >= 0.50)")

    if args.memory_rows:
        directory = dataset(args.memory_rows)
        url = scratch_database()
        try:
            fetch, idle, rss = import_with_worker(url, directory)
        finally:
            drop_database(url)
        print(
            f"memory run: {fetch['outcome']} {fetch['rows_total']} rows in {float(fetch['seconds']):.1f} s; "  # type: ignore[arg-type]
            f"worker peak RSS {rss:.0f} MB (idle worker {idle:.0f} MB; target < 200 MB)"
        )


if __name__ == "__main__":
    main()
