"""Benchmark of hostile inputs (issue 15): what the worst case of each bounded input costs, next to ordinary
input measured in the same run.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/postgres .venv/bin/python bench/hostile_inputs.py

Transcripts (:func:`transcript_rows`): one import-processing chunk of ``--chunk`` ordinary transcripts (ten
turns, about 700 bytes each), then one chunk of as many worst-case transcripts (``TRANSCRIPT_MAX_BYTES`` of
``User: a`` lines each, 655,360 turns at the default 5 MiB), each chunk in a fresh process on a scratch
database with the default bounds. Printed: wall time, peak RSS of the process before and after the chunk,
and what came of the chunk (stored, waiting for a later chunk, messages stored, sessions truncated).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from common import scratch_database
from sqlalchemy import create_engine

from pipeline.db import migrate
from pipeline.devtools.hostile import ChunkFigures, measure_chunk, serving
from pipeline.settings import load_settings

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
    with serving() as server:
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--chunk", type=int, default=50, help="imports per chunk (IMPORT_PROCESSING_BATCH_SIZE)"
    )
    arguments = parser.parse_args()
    with scratch_database() as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        print_rows(
            "Import processing, one chunk each, default bounds:", transcript_rows(url, arguments.chunk)
        )


if __name__ == "__main__":
    main()
