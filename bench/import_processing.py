"""Benchmark of the import-processing stage (issue 4), with its two references measured in the same run.

    .venv/bin/python bench/import_processing.py [--sessions 20000] [--processes 2] [--threads 8]

A data set of ``--sessions`` sessions (about ten messages each) is generated and its transcripts are served
over local HTTP by the demo source. Its CSV is imported (not timed); then the import ids are sent to a real
``dramatiq pipeline.actors --queues import-processing -p 2`` pool in chunks, and the clock runs until every
import is derived (session, stage rows, transcript fetched and parsed, messages stored, hand-over to
session-processing). References, same run: a plain client (httpx, a thread pool as wide as the pool's
fetch concurrency) fetching the same transcripts from the same server, and a plain COPY of the same messages
into a bare table. Target: at least half the slower reference, in sessions per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
from common import add_served_company, enqueue, purge, scratch_database, wait_for_count, worker_pool
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pipeline.db import migrate
from pipeline.devtools.generate import generate_dataset
from pipeline.devtools.source import SourceServer
from pipeline.settings import load_settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages.csv_import import fetch_limits, import_company_csv

CHUNK = 50


def plain_client_rate(urls: list[str], auth: tuple[str, str], concurrency: int) -> float:
    """Transcripts per second that a bare httpx client with ``concurrency`` threads fetches."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(auth=auth, limits=limits, timeout=30) as client:

        def fetch(url: str) -> int:
            response = client.get(url)
            response.raise_for_status()
            return len(response.content)

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            total = sum(pool.map(fetch, urls))
        elapsed = time.perf_counter() - started
    assert total > 0
    return len(urls) / elapsed


def copy_messages_rate(url: str) -> tuple[float, int]:
    """Messages per second of a plain COPY of the stored messages into a bare table, and their count."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute('SELECT session_id, "timestamp", role, content, "order" FROM message').fetchall()
        conn.execute(
            'CREATE TABLE bare (session_id uuid, "timestamp" timestamptz, role text, content text, '
            '"order" int)'
        )
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy("COPY bare FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bare")
        conn.commit()
    return len(rows) / elapsed, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="bench-transcripts-"))
    purge("import-processing", "session-processing")
    with SourceServer(directory) as server, scratch_database() as url:
        manifest = generate_dataset(
            directory, companies=1, sessions=args.sessions, seed=3, base_url=server.url
        )
        company = manifest.companies[0]
        settings = load_settings(database_url=url, secret_key="bench", csv_allow_private_networks=True)
        engine = create_engine(url)
        migrate.upgrade(engine)
        company_id = add_served_company(engine, server.url, company)
        import_ids: list[uuid.UUID] = []
        with Fetcher(fetch_limits(settings)) as fetcher:
            import_company_csv(engine, settings, company_id, fetcher=fetcher, hand_over=import_ids.extend)

        with worker_pool(url, ["import-processing"], args.processes, args.threads) as worker:
            started = time.perf_counter()
            enqueue(
                "import-processing",
                "process_imports",
                [([str(i) for i in import_ids[n : n + CHUNK]],) for n in range(0, len(import_ids), CHUNK)],
            )
            wait_for_count(
                engine,
                "SELECT count(*) FROM session_import WHERE derive_status IN ('COMPLETED', 'FAILED')",
                len(import_ids),
                worker,
            )
            elapsed = time.perf_counter() - started
        with engine.connect() as connection:
            failures = connection.execute(
                text(
                    "SELECT derive_error, count(*) FROM session_import WHERE derive_status = 'FAILED' "
                    "GROUP BY derive_error ORDER BY count(*) DESC"
                )
            ).all()
        failed = sum(count for _, count in failures)
        stage_rate = len(import_ids) / elapsed

        transcript_urls = [
            f"{server.url}/{company.slug}/transcripts/{path.stem}.txt"
            for path in (directory / company.slug / "transcripts").iterdir()
        ]
        concurrency = args.processes * settings.transcript_fetch_concurrency
        client_rate = plain_client_rate(transcript_urls, (company.username, company.password), concurrency)
        copy_rate, messages = copy_messages_rate(url)
        engine.dispose()
    purge("import-processing", "session-processing")

    per_session = messages / len(import_ids)
    copy_sessions = copy_rate / per_session
    slower = min(client_rate, copy_sessions)
    print(
        f"import processing: {len(import_ids)} sessions ({failed} failed), {messages} messages "
        f"({per_session:.1f} per session) in {elapsed:.1f} s with -p {args.processes} -t {args.threads}"
    )
    for reason, count in failures:
        print(f"  failed: {count} x {reason}")
    print(f"stage rate: {stage_rate:,.0f} sessions/s")
    print(
        f"reference, plain client fetching the same transcripts ({concurrency} threads): {client_rate:,.0f}/s"
    )
    print(
        f"reference, COPY of the same messages: {copy_rate:,.0f} messages/s = {copy_sessions:,.0f} sessions/s"
    )
    print(f"ratio: {stage_rate / slower:.2f} of the slower reference (target >= 0.50)")


if __name__ == "__main__":
    main()
