"""Benchmark of the Batch path (issue 6), with its reference measured in the same run.

    .venv/bin/python bench/batches.py [--requests 50000]

``--requests`` sessions (five messages each) are queued for the Batch API (not timed). Then:

1. submit: submit ticks plan the batches and stream their JSONL to files, upload them to the OpenAI emulator
   over HTTP and create the batches (``BATCH_MAX_REQUESTS`` = the request count; OpenAI's 200 MB file limit
   sends what does not fit to a second batch);
2. ingest: the emulator completes the batches at once, and one check tick streams their output files and
   applies every line (request tokens and cost, session fields, questions, both AI stages).

Reference: a plain bulk UPDATE of the same number of session rows (one statement setting the AI fields).
Target: ingest at least a third of that bulk rate.
"""

from __future__ import annotations

import argparse
import time

from common import scratch_database
from session_analysis import create_sessions
from sqlalchemy import create_engine, text

from pipeline.analysis.openai_calls import openai_client
from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
from pipeline.settings import load_settings
from pipeline.stages.batch_check import check_batches
from pipeline.stages.batch_enqueue import enqueue_for_batch
from pipeline.stages.batch_submit import plan_batches, submit_batch

_ENQUEUE_CHUNK = 5000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()

    instant = Knobs(validating_seconds=0, in_progress_seconds=0, finalizing_seconds=0)
    with scratch_database() as url, OpenAIEmulator(knobs=instant) as emulator:
        session_ids = create_sessions(url, args.requests)
        settings = load_settings(
            database_url=url,
            openai_base_url=emulator.url,
            openai_api_key="bench",
            batch_min_requests=1,
            batch_max_requests=min(args.requests, 50_000),
        )
        engine = create_engine(url)
        for start in range(0, len(session_ids), _ENQUEUE_CHUNK):
            enqueue_for_batch(engine, settings, session_ids[start : start + _ENQUEUE_CHUNK])

        with openai_client(settings) as client:
            # A second round takes what OpenAI's 200 MB file limit left out of the first batch.
            started = time.perf_counter()
            planned = []
            while batch_ids := plan_batches(engine, settings):
                for batch_id in batch_ids:
                    submit_batch(engine, client, batch_id)
                planned += batch_ids
            submit_seconds = time.perf_counter() - started

            # Let the emulator finish the batch first: its own work is not ours to time.
            with engine.connect() as connection:
                remote_ids = (
                    connection.execute(text("SELECT openai_batch_id FROM ai_batch_request")).scalars().all()
                )
            for remote_id in remote_ids:
                while client.batches.retrieve(remote_id).status != "completed":
                    time.sleep(0.1)

            started = time.perf_counter()
            check = check_batches(engine, settings, client)
            ingest_seconds = time.perf_counter() - started

        with engine.connect() as connection:
            analysed = connection.execute(
                text(
                    "SELECT count(*) FROM session_processing_status "
                    "WHERE stage = 'AI_ANALYSIS' AND status = 'COMPLETED'"
                )
            ).scalar_one()
        with engine.begin() as connection:
            started = time.perf_counter()
            updated = connection.execute(
                text(
                    "UPDATE session SET language = 'en', sentiment = 'NEUTRAL', escalated = false, "
                    "forwarded_hr = false, category = 'SCHEDULE_HOURS', summary = 'A plain bulk update.', "
                    "updated_at = now()"
                )
            ).rowcount
            bulk_seconds = time.perf_counter() - started
        engine.dispose()

    submit_rate = args.requests / submit_seconds
    ingest_rate = args.requests / ingest_seconds
    bulk_rate = updated / bulk_seconds
    print(f"batches: {len(planned)} submitted, {check.ingested} ingested; {analysed} sessions analysed")
    print(f"submit (plan, write JSONL, upload, create): {submit_rate:,.0f} lines/s ({submit_seconds:.1f} s)")
    print(f"ingest (stream output, apply every line):   {ingest_rate:,.0f} lines/s ({ingest_seconds:.1f} s)")
    print(
        f"reference, plain bulk UPDATE of {updated} sessions: {bulk_rate:,.0f} rows/s ({bulk_seconds:.2f} s)"
    )
    print(f"ratio: ingest at {ingest_rate / bulk_rate:.2f} of the bulk rate (target >= 0.33)")


if __name__ == "__main__":
    main()
