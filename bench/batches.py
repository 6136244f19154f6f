"""Benchmark of the Batch path (issue 6), with its two references measured in the same run.

    .venv/bin/python bench/batches.py [--requests 50000]

``--requests`` sessions (five messages each) are queued for the Batch API (not timed). Then:

1. submit: submit ticks plan the batches and stream their JSONL to files, upload them to the OpenAI emulator
   (a process of its own, as OpenAI is another machine) over HTTP and create the batches
   (``BATCH_MAX_REQUESTS`` = the request count; OpenAI's 200 MB file limit sends what does not fit to a
   second batch);
2. ingest: the emulator completes the batches at once, and one check tick streams their output files and
   applies every line (request tokens and cost, session fields, questions, both AI stages).

References, on the same tables:

- floor: the writes of the ingest alone, with nothing read, parsed or validated. The values the ingest
  stored are read back and the rows it wrote are put back as they were before it (not timed); then the
  same values are written again, in the ingest's chunks, with its own statements (``write_chunk``: COPY
  into temporary tables, one ``UPDATE ... FROM`` for the requests, the sessions and their two AI stage rows,
  ``INSERT ... SELECT`` for the questions). The same rows go through the same changes, so no update is
  cheaper for writing a value that is already there. What a set-based ingest with free parsing would take.
- bulk: a plain bulk UPDATE of the same number of session rows (one statement setting the AI fields).

Target: ingest at least a third of the bulk rate. Each timed step starts after ``VACUUM ANALYZE`` of the
tables it writes, so none pays for the dead rows of the one before.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import datetime
from typing import Any

from common import emulator_process, scratch_database
from session_analysis import create_sessions
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import sessionmaker

from pipeline.analysis.openai_calls import openai_client
from pipeline.db.types import utcnow
from pipeline.settings import load_settings
from pipeline.stages.analysis_results import Answer
from pipeline.stages.batch_check import check_batches
from pipeline.stages.batch_enqueue import enqueue_for_batch
from pipeline.stages.batch_ingest import CHUNK_LINES, REQUEST_COLUMNS, write_chunk
from pipeline.stages.batch_submit import plan_batches, submit_batch

_ENQUEUE_CHUNK = 5000
_WRITTEN = ("ai_processing_request", "session", "session_processing_status", "question", "session_question")
#: The columns the ingest writes, by table: kept aside before it, put back before the floor.
_SAVED = {
    "ai_processing_request": list(REQUEST_COLUMNS),
    "session": ["language", "sentiment", "escalated", "forwarded_hr", "category", "summary", "updated_at"],
    "session_processing_status": [
        "status",
        "started_at",
        "completed_at",
        "error_message",
        "retry_count",
        "metadata",
        "lease_expires_at",
        "leased_by",
        "updated_at",
    ],
}
#: The request columns the ingest sets, except the completion time (the floor writes its own).
_STORED = [column for column in REQUEST_COLUMNS if column != "completed_at"]


def _vacuum(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM ANALYZE {', '.join(_WRITTEN)}"))


def _written(engine: Engine) -> tuple[int, ...]:
    """Counts that tell what was written: answered requests, completed stage rows, session questions."""
    with engine.connect() as connection:
        return tuple(
            connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM ai_processing_request WHERE success), "
                    "(SELECT count(*) FROM session_processing_status WHERE status = 'COMPLETED' "
                    "AND stage IN ('AI_ANALYSIS', 'QUESTION_EXTRACTION')), "
                    "(SELECT count(*) FROM session_question)"
                )
            ).one()
        )


def _save(engine: Engine) -> None:
    """Keep aside what the ingest is about to change."""
    with engine.begin() as connection:
        for table, columns in _SAVED.items():
            connection.execute(
                text(f"CREATE TABLE bench_saved_{table} AS SELECT id, {', '.join(columns)} FROM {table}")
            )


def _restore(engine: Engine) -> None:
    """Put back what the ingest changed: the requests, sessions and stage rows as before it, no questions."""
    with engine.begin() as connection:
        for table, columns in _SAVED.items():
            assignments = ", ".join(f"{column} = saved.{column}" for column in columns)
            connection.execute(
                text(
                    f"UPDATE {table} AS target SET {assignments} FROM bench_saved_{table} AS saved "
                    "WHERE target.id = saved.id"
                )
            )
        connection.execute(text("DELETE FROM session_question"))
        connection.execute(text("DELETE FROM question"))


def _stored_results(engine: Engine) -> tuple[list[tuple[Any, ...]], dict[uuid.UUID, Answer]]:
    """What the ingest wrote: the request rows (key and values) and the answers, as the ingest holds them."""
    with engine.connect() as connection:
        requests = connection.execute(
            text(f"SELECT id, {', '.join(_STORED)} FROM ai_processing_request ORDER BY id")
        ).all()
        questions: dict[uuid.UUID, list[str]] = {}
        for session_id, content in connection.execute(
            text(
                "SELECT listed.session_id, question.content FROM session_question AS listed "
                'JOIN question ON question.id = listed.question_id ORDER BY listed.session_id, listed."order"'
            )
        ):
            questions.setdefault(session_id, []).append(content)
        answers = {
            row.id: Answer(
                row.language,
                row.sentiment,
                row.escalated,
                row.forwarded_hr,
                row.category,
                row.summary,
                tuple(questions.get(row.id, ())),
                row.model,
                row.request_id,
            )
            for row in connection.execute(
                text(
                    "SELECT session.id, language, sentiment, escalated, forwarded_hr, category, summary, "
                    "status.metadata ->> 'model' AS model, status.metadata ->> 'requestId' AS request_id "
                    "FROM session JOIN session_processing_status AS status ON status.session_id = session.id "
                    "AND status.stage = 'AI_ANALYSIS' AND status.status = 'COMPLETED'"
                )
            )
        }
    return [tuple(row) for row in requests], answers


def _floor(engine: Engine, rows: list[tuple[Any, ...]], answers: dict[uuid.UUID, Answer]) -> float:
    """Seconds to write ``rows`` and ``answers`` again with the ingest's statements, in its chunks."""
    with engine.connect() as connection:
        sessions = {
            request_id: session_id
            for request_id, session_id in connection.execute(
                text("SELECT id, session_id FROM ai_processing_request")
            )
        }
    # Each chunk: its request rows and the answers of their sessions, as the ingest hands them over.
    chunks = [
        (
            rows[start : start + CHUNK_LINES],
            {
                sessions[row[0]]: answers[sessions[row[0]]]
                for row in rows[start : start + CHUNK_LINES]
                if sessions[row[0]] in answers
            },
        )
        for start in range(0, len(rows), CHUNK_LINES)
    ]
    factory = sessionmaker(engine)
    started = time.perf_counter()
    for chunk_rows, chunk_answers in chunks:
        now: datetime = utcnow()
        with factory.begin() as db:
            write_chunk(db, [(*row, now) for row in chunk_rows], chunk_answers, now)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()

    instant = {"validating_seconds": 0, "in_progress_seconds": 0, "finalizing_seconds": 0}
    with scratch_database() as url, emulator_process(**instant) as emulator_url:
        session_ids = create_sessions(url, args.requests)
        settings = load_settings(
            database_url=url,
            openai_base_url=emulator_url,
            openai_api_key="bench",
            batch_min_requests=1,
            batch_max_requests=min(args.requests, 50_000),
            # Every request in the batches of one round: the default cap on tokens in open batches (20M)
            # would hold most of them back for a later round, and the ingest would apply a fraction.
            openai_batch_enqueued_token_limit=10**12,
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
                    submit_batch(
                        engine, client, batch_id, max_prompt_tokens=settings.openai_max_prompt_tokens
                    )
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

            _save(engine)
            _vacuum(engine)
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
        rows, answers = _stored_results(engine)
        if len(rows) != args.requests or len(answers) != args.requests:
            raise SystemExit(f"{len(rows)} requests batched and {len(answers)} answers of {args.requests}")
        ingested = _written(engine)
        _restore(engine)
        if _written(engine) != (0, 0, 0):
            raise SystemExit(f"the ingest's writes were not all undone: {_written(engine)}")
        _vacuum(engine)
        floor_seconds = _floor(engine, rows, answers)
        if _written(engine) != ingested:
            raise SystemExit(f"the floor wrote {_written(engine)}, the ingest {ingested}")
        _vacuum(engine)
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
    floor_rate = len(rows) / floor_seconds
    bulk_rate = updated / bulk_seconds
    print(f"batches: {len(planned)} submitted, {check.ingested} ingested; {analysed} sessions analysed")
    print(f"submit (plan, write JSONL, upload, create): {submit_rate:,.0f} lines/s ({submit_seconds:.1f} s)")
    print(f"ingest (stream output, apply every line):   {ingest_rate:,.0f} lines/s ({ingest_seconds:.1f} s)")
    print(
        f"reference, floor: the ingest's writes alone for {len(rows)} lines: "
        f"{floor_rate:,.0f} lines/s ({floor_seconds:.2f} s)"
    )
    print(
        f"reference, plain bulk UPDATE of {updated} sessions: {bulk_rate:,.0f} rows/s ({bulk_seconds:.2f} s)"
    )
    print(f"ratio: ingest at {ingest_rate / bulk_rate:.2f} of the bulk rate (target >= 0.33)")
    print(
        f"ratio: ingest at {ingest_rate / floor_rate:.2f} of the floor; "
        f"the floor at {floor_rate / bulk_rate:.2f} of the bulk rate"
    )


if __name__ == "__main__":
    main()
