"""Running the demo: the embedded setup, the data set, the real actors on the in-memory broker, the ticks
triggered as an operator would."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.demo.progress import StageProgress, progress_feed
from pipeline.demo.report import LOG_NAME, DemoReport, build_report
from pipeline.demo.scenario import WRONG_CREDENTIALS, prepare_scenario

if TYPE_CHECKING:
    from dramatiq.brokers.stub import StubBroker

__all__ = ["run_demo"]

_QUEUES = ("csv-import", "import-processing", "session-processing")
_BATCH_QUEUE = "batch-processing"
#: How long the demo polls its batches at most (the emulator finishes them in well under a second).
_BATCH_WAIT_SECONDS = 60
#: A queue that has not drained after this long is reported, not waited for forever.
_JOIN_TIMEOUT_MS = 30 * 60 * 1000
_SECRET_KEY = "demo-secret"
_REQUESTED_BY = "livedash demo"


def _configure(workdir: Path, openai_url: str) -> None:
    """Point this process at the embedded setup; the settings are read after this, once."""
    os.environ.update(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'livedash.sqlite3'}",
            "BROKER": "memory",
            "SECRET_KEY": _SECRET_KEY,
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


@contextmanager
def _log_to(path: Path) -> Iterator[Counter[str]]:
    """Send warnings and errors to ``path`` instead of the terminal, counting them by level.

    The expected failures (the locked-out company's fetch) log a traceback; the report says what failed.
    """
    counts: Counter[str] = Counter()

    class _Counting(logging.FileHandler):
        def emit(self, record: logging.LogRecord) -> None:
            counts[record.levelname] += 1
            super().emit(record)

    handler = _Counting(path, encoding="utf-8", delay=True)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield counts
    finally:
        root.removeHandler(handler)
        handler.close()


def _join(broker: StubBroker, queue: str, problems: list[str]) -> None:
    import dramatiq

    try:
        # Failed messages are not raised here: they are dead letters, which the report lists and judges.
        broker.join(queue, timeout=_JOIN_TIMEOUT_MS, fail_fast=False)
    except dramatiq.QueueJoinTimeout:
        problems.append(f"queue {queue} did not drain within {_JOIN_TIMEOUT_MS // 1000} s")


def _open_batches(db: Session) -> int:
    from pipeline.db.models import AIBatchRequest
    from pipeline.stages.batch_check import OPEN_STATUSES

    return (
        db.scalar(
            select(func.count()).select_from(AIBatchRequest).where(AIBatchRequest.status.in_(OPEN_STATUSES))
        )
        or 0
    )


def _drive(broker: StubBroker) -> list[str]:
    """Trigger the ticks as an operator would and wait for every stage; returns what went wrong doing so."""
    from pipeline.db.engine import get_engine, get_session_factory
    from pipeline.scheduling.control import apply_action
    from pipeline.settings import get_settings

    problems: list[str] = []

    def trigger(scheduler_id: str) -> None:
        apply_action(
            get_engine(),
            get_settings(),
            "trigger",
            scheduler_id,
            publish=broker.enqueue,
            requested_by=_REQUESTED_BY,
        )

    def open_batches() -> int:
        with get_session_factory()() as db:
            return _open_batches(db)

    trigger("csv-import")
    for queue in _QUEUES:
        _join(broker, queue, problems)
    trigger("batch-processing")
    _join(broker, _BATCH_QUEUE, problems)
    deadline = time.monotonic() + _BATCH_WAIT_SECONDS
    while open_batches() and time.monotonic() < deadline:
        time.sleep(0.2)
        trigger("batch-processing-check")
        _join(broker, _BATCH_QUEUE, problems)
    if still_open := open_batches():
        problems.append(f"{still_open} batches still open after {_BATCH_WAIT_SECONDS} s")
    return problems


def run_demo(
    *,
    companies: int = 3,
    sessions: int = 100,
    seed: int = 0,
    workdir: Path | None = None,
    latency: float = 0.05,
    on_progress: Callable[[StageProgress], None] | None = None,
) -> DemoReport:
    """Run the pipeline over a generated data set and report what it stored. Call once per process.

    Without ``workdir`` the demo works in a temporary folder, removed afterwards unless something was
    unexpected (then it is kept for a look, and the report says where). ``on_progress`` is called about every
    0.2 s from a background thread while the pipeline runs.
    """
    if companies < 2:
        raise ValueError(
            "the demo needs at least 2 companies: one with broken rows, one with a wrong password"
        )
    if sessions < 1:
        raise ValueError("the demo needs at least 1 session per company")
    from pipeline.devtools.generate import generate_dataset
    from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
    from pipeline.devtools.source import SourceServer

    started = time.monotonic()
    kept = workdir is not None
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="livedash-demo-"))
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    knobs = Knobs(latency=latency, validating_seconds=0.1, in_progress_seconds=0.2, finalizing_seconds=0.1)
    with (
        _log_to(workdir / LOG_NAME) as log_counts,
        OpenAIEmulator(knobs=knobs) as emulator,
        SourceServer(data) as source,
    ):
        _configure(workdir, emulator.url)
        manifest = generate_dataset(
            data, companies=companies, sessions=sessions, seed=seed, base_url=source.url
        )
        scenario = prepare_scenario(data, manifest)

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
                wrong = scenario.roles[company.name] == WRONG_CREDENTIALS
                add_company(
                    db,
                    name=company.name,
                    csv_url=company.csv_url,
                    username=company.username,
                    password=company.password + "-stale" if wrong else company.password,
                    password_box=PasswordBox(_SECRET_KEY),
                    region=company.region,
                    timezone=company.timezone,
                )
        broker = actors.broker
        assert isinstance(broker, StubBroker), "BROKER=memory gives the in-memory broker"
        worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
        worker.start()
        try:
            with progress_feed(on_progress):
                problems = _drive(broker)
        finally:
            worker.stop()
        report = build_report(
            started, workdir, kept, sessions, scenario, broker, problems, sum(log_counts.values())
        )
        get_engine().dispose()
    if not kept and report.ok:
        shutil.rmtree(workdir, ignore_errors=True)
    return report
