"""Benchmark of the synchronous AI analysis (issue 5), with its ideal rate printed in the same run.

    .venv/bin/python bench/session_analysis.py [--sessions 2000] [--concurrency 32] [--latency 0.2]

``--sessions`` sessions with messages are analysed by a real ``dramatiq pipeline.actors --queues
session-processing`` worker process (``-p 1``) with ``SESSION_PROCESSING_CONCURRENCY=--concurrency``,
through the real openai SDK against the project's OpenAI emulator over HTTP, which answers each call after
``--latency`` seconds. The clock runs from publishing the chunks until every session's AI_ANALYSIS is
finished (validated answer applied, questions stored, request and cost recorded).
Ideal: concurrency / latency. Target: 80 % of it.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

from common import enqueue, purge, scratch_database, wait_for_count, worker_pool
from sqlalchemy import create_engine, insert, text

from pipeline.db import migrate
from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.models import ChatSession, Company, Message, SessionProcessingStatus
from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator

CHUNK = 50
TURNS = [
    ("user", "Hi, when will my schedule for next week be online?"),
    ("assistant", "It is published on Friday in the app."),
    ("user", "Can I swap my Saturday shift with a colleague?"),
    ("assistant", "Yes, ask your team leader to approve the swap."),
    ("user", "Thanks, that helps!"),
]


def create_sessions(url: str, count: int) -> list[uuid.UUID]:
    """``count`` sessions whose messages exist and whose AI analysis is pending, inserted in bulk."""
    engine = create_engine(url)
    migrate.upgrade(engine)
    start = datetime(2025, 5, 1, 9, tzinfo=UTC)
    company_id = uuid.uuid4()
    session_ids = [uuid.uuid4() for _ in range(count)]
    with engine.begin() as connection:
        connection.execute(
            insert(Company), [{"id": company_id, "name": "Bench", "csv_url": "https://b.example"}]
        )
        connection.execute(
            insert(ChatSession),
            [
                {"id": session_id, "company_id": company_id, "start_time": start, "end_time": start}
                for session_id in session_ids
            ],
        )
        connection.execute(
            insert(Message),
            [
                {
                    "id": uuid.uuid4(),
                    "session_id": session_id,
                    "role": role,
                    "content": content,
                    "order": order,
                    "timestamp": start + timedelta(seconds=order),
                }
                for session_id in session_ids
                for order, (role, content) in enumerate(TURNS)
            ],
        )
        done = {
            ProcessingStage.CSV_IMPORT,
            ProcessingStage.TRANSCRIPT_FETCH,
            ProcessingStage.SESSION_CREATION,
        }
        connection.execute(
            insert(SessionProcessingStatus),
            [
                {
                    "id": uuid.uuid4(),
                    "session_id": session_id,
                    "stage": stage,
                    "status": ProcessingStatus.COMPLETED if stage in done else ProcessingStatus.PENDING,
                }
                for session_id in session_ids
                for stage in ProcessingStage
            ],
        )
    engine.dispose()
    return session_ids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=8, help="worker threads: chunks in flight at once")
    args = parser.parse_args()

    purge("session-processing")
    with scratch_database() as url, OpenAIEmulator(knobs=Knobs(latency=args.latency)) as emulator:
        session_ids = create_sessions(url, args.sessions)
        engine = create_engine(url)
        environment = {
            "OPENAI_BASE_URL": emulator.url,
            "OPENAI_API_KEY": "bench",
            "AI_PROCESSING_MODE": "sync",
            "SESSION_PROCESSING_CONCURRENCY": str(args.concurrency),
        }
        with worker_pool(
            url, ["session-processing"], processes=1, threads=args.threads, **environment
        ) as worker:
            started = time.perf_counter()
            enqueue(
                "session-processing",
                "analyze_sessions",
                [([str(s) for s in session_ids[n : n + CHUNK]],) for n in range(0, len(session_ids), CHUNK)],
            )
            wait_for_count(
                engine,
                "SELECT count(*) FROM session_processing_status "
                "WHERE stage = 'AI_ANALYSIS' AND status IN ('COMPLETED', 'FAILED')",
                len(session_ids),
                worker,
            )
            elapsed = time.perf_counter() - started
        with engine.connect() as connection:
            failed = connection.execute(
                text(
                    "SELECT count(*) FROM session_processing_status "
                    "WHERE stage = 'AI_ANALYSIS' AND status = 'FAILED'"
                )
            ).scalar_one()
        billed = len(emulator.ledger())
        engine.dispose()
    purge("session-processing")

    rate = len(session_ids) / elapsed
    ideal = args.concurrency / args.latency
    print(
        f"analysis: {len(session_ids)} sessions ({failed} failed, {billed} answers billed) "
        f"in {elapsed:.1f} s, "
        f"concurrency {args.concurrency}, emulator latency {args.latency * 1000:.0f} ms"
    )
    print(f"stage rate: {rate:,.1f} sessions/s")
    print(f"ideal (concurrency / latency): {ideal:,.1f} sessions/s")
    print(f"ratio: {rate / ideal:.2f} of the ideal (target >= 0.80)")


if __name__ == "__main__":
    main()
