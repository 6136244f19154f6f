"""Benchmark of the pipeline on messy and hostile inputs (issue 15), next to clean input in the same run.

    .venv/bin/python bench/hostile_inputs.py [--rows 50000] [--long-line-mb 20] [--chunk 50]

CSV: two corpora of ``--rows`` records each, served over local HTTP (a thread of this process) and imported
in this process by the CSV import stage (``import_company_csv``) into a scratch PostgreSQL database. The clean
corpus is well-formed; the messy one holds the same records with one in four damaged the way real exports
are: each unreadable number form (text, decimal comma, thousands separator, currency, exponent, NaN,
negative, overflow), Latin-1 initial messages, over-long IP addresses, NULs, a record without a session id
every 100 lines, and one ``--long-line-mb`` MB line. Printed: rows per second of each, their ratio, the
warnings and row errors recorded, and this process's peak resident memory.

Transcripts (:func:`transcript_rows`): one import-processing chunk of ``--chunk`` ordinary transcripts (ten
turns, about 700 bytes each), then one chunk of as many worst-case transcripts (``TRANSCRIPT_MAX_BYTES`` of
``User: a`` lines each, 655,360 turns at the default 5 MiB), each chunk in a fresh process with the default
bounds. Printed: wall time, peak RSS of that process before and after the chunk, and what came of the chunk
(stored, left for a later chunk, messages stored, sessions whose messages were cut).

Needs PostgreSQL (``BENCH_DATABASE_URL``, default the local server).
"""

from __future__ import annotations

import argparse
import random
import resource
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

from common import scratch_database
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import sessionmaker

from pipeline.companies import add_company
from pipeline.db import migrate
from pipeline.db.models import CsvFetch
from pipeline.devtools.hostile import ChunkFigures, measure_chunk
from pipeline.devtools.hostile import serving as serving_transcripts
from pipeline.settings import load_settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages.csv_import import fetch_limits, import_company_csv

#: Damage done to one field of a messy record: (column index, value as written in the file, bytes).
DAMAGE: tuple[tuple[int, bytes], ...] = (
    (6, b"twelve"),
    (6, b"-3"),
    (12, b"99999999999"),
    (12, b"1e3"),
    (12, b'"6,537"'),
    (13, b'"0,0010"'),
    (11, b'"1.234,5"'),
    (13, "€0.0010".encode()),
    (11, b"NaN"),
    (13, b"Infinity"),
    (3, b'"192.168.100.101, 10.20.30.40, 172.16.254.1, 203.0.113.195"'),
    (15, '"Goedendag, één vraag over mijn rooster"'.encode("latin-1")),
    (15, b"hi\x00there"),
)


def _fields(number: int, rng: random.Random) -> list[bytes]:
    start = f"{1 + number % 28:02d}.05.2025 {number % 24:02d}:{number % 60:02d}:14"
    return [
        f"{uuid.UUID(int=rng.getrandbits(128))}".encode(),
        start.encode(),
        start.encode(),
        f"31.176.{number % 256}.{rng.randrange(256)}".encode(),
        b"BA",
        rng.choice([b"english", b"Dutch", b"turkish"]),
        str(rng.randrange(1, 30)).encode(),
        rng.choice([b"happy", b"neutral", b"sad"]),
        b"no",
        b"no",
        f"https://proto.example/chats/{number}.txt".encode(),
        f"{rng.uniform(0.5, 9):.3f}".encode(),
        str(rng.randrange(1000, 90000)).encode(),
        f"{rng.uniform(0, 0.02):.4f}".encode(),
        rng.choice([b"Greeting", b"Onboarding", b"Schedule"]),
        rng.choice([b"Good day", b"whats up", b'"Hello, I have a question about my contract"']),
    ]


def corpus(rows: int, *, messy: bool, long_line_mb: int) -> bytes:
    rng = random.Random(15)
    lines = []
    for number in range(rows):
        fields = _fields(number, rng)
        if messy and number % 4 == 1:
            column, value = DAMAGE[(number // 4) % len(DAMAGE)]
            fields[column] = value
        if messy and number % 100 == 50:
            fields[0] = b""
        lines.append(b",".join(fields) + b"\r\n")
    if messy:
        lines.insert(rows // 2, b"long," + b"x" * (long_line_mb * 1024 * 1024) + b"\r\n")
    return b"".join(lines)


@contextmanager
def serving(bodies: dict[str, bytes]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies[self.path]
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def import_rate(engine: Engine, url: str, database_url: str) -> tuple[float, CsvFetch]:
    settings = load_settings(database_url=database_url, csv_allow_private_networks=True, secret_key="bench")
    with sessionmaker(engine).begin() as db:
        company_id = add_company(db, name=f"bench-{uuid.uuid4().hex[:6]}", csv_url=url).id
    started = time.perf_counter()
    with Fetcher(fetch_limits(settings)) as fetcher:
        result = import_company_csv(engine, settings, company_id, fetcher=fetcher, hand_over=lambda ids: None)
    seconds = time.perf_counter() - started
    with sessionmaker(engine)() as db:
        fetch = db.scalars(select(CsvFetch).where(CsvFetch.id == result.fetch_id)).one()
    return fetch.rows_total / seconds, fetch


#: Settings of the measured processes: the defaults, with the test server on 127.0.0.1 allowed.
_OVERRIDES = {"secret_key": "bench-secret", "csv_allow_private_networks": True}


@dataclass(frozen=True)
class Row:
    """One printed line: what was measured, and its figures."""

    name: str
    figures: ChunkFigures


def transcript_rows(database_url: str, chunk: int) -> list[Row]:
    """An ordinary chunk of transcripts and a worst-case one, each processed in a process of its own."""
    size = load_settings(**_OVERRIDES).transcript_max_bytes
    with serving_transcripts() as server:
        normal = measure_chunk(database_url, [server.normal_url(n) for n in range(chunk)], _OVERRIDES)
        flood = measure_chunk(database_url, [server.flood_url(size, n) for n in range(chunk)], _OVERRIDES)
    return [
        Row(f"{chunk} ordinary transcripts (10 turns)", normal),
        Row(f"{chunk} x {size // 1024 // 1024} MiB of `User: a` turns", flood),
    ]


def print_rows(title: str, rows: list[Row]) -> None:
    print(title)
    print(
        f"  {'chunk':<42} {'seconds':>8} {'RSS before':>11} {'RSS peak':>9} "
        f"{'stored':>7} {'later':>6} {'messages':>9} {'cut':>4}"
    )
    for row in rows:
        figures = row.figures
        print(
            f"  {row.name:<42} {figures.seconds:>8.2f} {figures.baseline_rss_mib:>8.0f} MiB "
            f"{figures.peak_rss_mib:>5.0f} MiB {figures.completed:>7} {figures.retrying:>6} "
            f"{figures.messages:>9} {figures.truncated:>4}"
        )
        for reason in figures.reasons:
            print(f"    reason: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--long-line-mb", type=int, default=20)
    parser.add_argument(
        "--chunk", type=int, default=50, help="imports per chunk (IMPORT_PROCESSING_BATCH_SIZE)"
    )
    args = parser.parse_args()

    bodies = {
        "/clean.csv": corpus(args.rows, messy=False, long_line_mb=0),
        "/messy.csv": corpus(args.rows, messy=True, long_line_mb=args.long_line_mb),
    }
    with scratch_database() as database_url, serving(bodies) as base:
        engine = create_engine(database_url)
        migrate.upgrade(engine)
        results = {
            name: import_rate(engine, f"{base}/{name}.csv", database_url) for name in ("clean", "messy")
        }
        engine.dispose()
        transcripts = transcript_rows(database_url, args.chunk)
    for name, (rate, fetch) in results.items():
        size = fetch.bytes_read / 1e6
        print(
            f"CSV {name}: {fetch.outcome.value} {fetch.rows_total} records ({size:.1f} MB): "
            f"{fetch.rows_new} stored, {fetch.rows_invalid} refused, {fetch.field_warnings} field warnings; "
            f"{rate:,.0f} records/s"
        )
    clean, messy = results["clean"][0], results["messy"][0]
    print(f"CSV messy/clean rate: {messy / clean:.2f}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print_rows("Import processing, one chunk each in a process of its own, default bounds:", transcripts)


if __name__ == "__main__":
    main()
