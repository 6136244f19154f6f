"""``livedash demo``: the whole pipeline in one process, with nothing installed but the package.

SQLite in a temporary folder, Dramatiq's in-memory broker with an in-process worker, the demo data source and
the OpenAI emulator on 127.0.0.1. The real actors run: the CSV import tick fans out per company, each import
hands its rows to import processing, which hands its sessions to AI analysis; those are queued for the Batch
API, and the batch ticks submit, poll and ingest the batches, exactly as on RabbitMQ.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

__all__ = ["DemoReport", "run_demo"]

#: The stage queues, in pipeline order; the demo waits for each to drain before the next.
_QUEUES = ("csv-import", "import-processing", "session-processing")
BATCH_PROCESSING = "batch-processing"
#: How long the demo polls its batches at most (the emulator finishes them in well under a second).
_BATCH_WAIT_SECONDS = 60


def _open_batches() -> int:
    from pipeline.db.engine import get_session_factory
    from pipeline.db.models import AIBatchRequest
    from pipeline.stages.batch_check import OPEN_STATUSES

    with get_session_factory()() as db:
        return (
            db.scalar(
                select(func.count())
                .select_from(AIBatchRequest)
                .where(AIBatchRequest.status.in_(OPEN_STATUSES))
            )
            or 0
        )


@dataclass(frozen=True)
class DemoReport:
    seconds: float
    companies: int
    imports: int
    sessions: int
    messages: int
    analysed: int
    batches: int
    cost_eur: float
    pipeline: dict[str, dict[str, int]]
    database: Path


def _configure(workdir: Path, openai_url: str) -> None:
    """Point this process at the embedded setup; the settings are read after this, once."""
    os.environ.update(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'livedash.sqlite3'}",
            "BROKER": "memory",
            "SECRET_KEY": "demo-secret",
            "CSV_ALLOW_PRIVATE_NETWORKS": "true",
            "OPENAI_BASE_URL": openai_url,
            "OPENAI_API_KEY": "demo",
            "SCHEDULER_ENABLED": "false",
            "SESSION_PROCESSING_CONCURRENCY": "16",
            "AI_PROCESSING_MODE": "batch",
            "BATCH_MIN_REQUESTS": "1",
        }
    )
    from pipeline.db.engine import get_engine, get_session_factory
    from pipeline.settings import get_settings

    get_settings.cache_clear()
    get_engine.cache_clear()
    get_session_factory.cache_clear()


def _report(started: float, workdir: Path) -> DemoReport:
    from pipeline.db.engine import get_session_factory
    from pipeline.db.models import (
        AIBatchRequest,
        AIProcessingRequest,
        ChatSession,
        Company,
        Message,
        SessionImport,
    )
    from pipeline.stages.pipeline_reports import pipeline_status

    with get_session_factory()() as db:

        def count(model: Any) -> int:
            return db.scalar(select(func.count()).select_from(model)) or 0

        status = pipeline_status(db)
        cost = db.scalar(select(func.coalesce(func.sum(AIProcessingRequest.total_cost_eur), 0.0))) or 0.0
        return DemoReport(
            seconds=time.monotonic() - started,
            companies=count(Company),
            imports=count(SessionImport),
            sessions=count(ChatSession),
            messages=count(Message),
            analysed=status["pipeline"]["AI_ANALYSIS"].get("COMPLETED", 0),
            batches=count(AIBatchRequest),
            cost_eur=float(cost),
            pipeline=status["pipeline"],
            database=workdir / "livedash.sqlite3",
        )


def run_demo(
    *,
    companies: int = 3,
    sessions: int = 100,
    seed: int = 0,
    workdir: Path | None = None,
    latency: float = 0.05,
) -> DemoReport:
    """Run the pipeline over a generated data set and report what it stored. Call once per process."""
    from pipeline.devtools.generate import generate_dataset
    from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
    from pipeline.devtools.source import SourceServer

    started = time.monotonic()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="livedash-demo-"))
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    knobs = Knobs(latency=latency, validating_seconds=0.1, in_progress_seconds=0.2, finalizing_seconds=0.1)
    with OpenAIEmulator(knobs=knobs) as emulator, SourceServer(data) as source:
        _configure(workdir, emulator.url)
        manifest = generate_dataset(
            data, companies=companies, sessions=sessions, seed=seed, base_url=source.url
        )

        import dramatiq
        from dramatiq.brokers.stub import StubBroker

        from pipeline import actors
        from pipeline.companies import add_company
        from pipeline.db import migrate
        from pipeline.db.engine import get_engine
        from pipeline.db.secrets import PasswordBox

        migrate.upgrade(get_engine())
        with sessionmaker(get_engine()).begin() as db:
            for company in manifest.companies:
                add_company(
                    db,
                    name=company.name,
                    csv_url=f"{source.url}/{company.slug}/sessions.csv",
                    username=company.username,
                    password=company.password,
                    password_box=PasswordBox("demo-secret"),
                    region=company.region,
                    timezone=company.timezone,
                )
        broker = actors.broker
        assert isinstance(broker, StubBroker), "BROKER=memory gives the in-memory broker"
        worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
        worker.start()
        try:
            actors.csv_import.csv_import_tick.send()
            for queue in _QUEUES:
                broker.join(queue, fail_fast=True)
            actors.batch_processing.batch_submit_tick.send()
            broker.join(BATCH_PROCESSING, fail_fast=True)
            deadline = time.monotonic() + _BATCH_WAIT_SECONDS
            while _open_batches() and time.monotonic() < deadline:
                time.sleep(0.2)
                actors.batch_processing.batch_check_tick.send()
                broker.join(BATCH_PROCESSING, fail_fast=True)
        finally:
            worker.stop()
        return _report(started, workdir)
