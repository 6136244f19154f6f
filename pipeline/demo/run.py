"""Running the demo: the embedded setup, the data set, the real actors on the in-memory broker, the ticks
triggered as an operator would."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.demo.progress import StageProgress, progress_feed
from pipeline.demo.report import LOG_NAME, BudgetEpisode, DemoReport, build_report
from pipeline.demo.scenario import WRONG_CREDENTIALS, Scenario, prepare_scenario
from pipeline.logs import RedactingFormatter
from pipeline.queues import BATCH_PROCESSING, CSV_IMPORT, IMPORT_PROCESSING, SESSION_PROCESSING
from pipeline.scheduling.jobs import BATCH_CHECK_JOB, BATCH_SUBMIT_JOB, CSV_IMPORT_JOB
from pipeline.settings import Settings, load_settings

if TYPE_CHECKING:
    from dramatiq.brokers.stub import StubBroker

    from pipeline.devtools.manifest import DatasetManifest
    from pipeline.stages.runtime import StageRuntime

__all__ = ["run_demo"]

_QUEUES = (CSV_IMPORT, IMPORT_PROCESSING, SESSION_PROCESSING)
#: How long the demo polls its batches at most (the emulator finishes them in well under a second).
_BATCH_WAIT_SECONDS = 60
#: A queue that has not drained after this long is reported, not waited for forever.
_JOIN_TIMEOUT_MS = 30 * 60 * 1000
_SECRET_KEY = "demo-secret"  # noqa: S105  the offline demo's own throw-away database
_REQUESTED_BY = "livedash demo"


def _demo_settings(workdir: Path, openai_url: str) -> Settings:
    """The embedded setup: SQLite in ``workdir``, the in-memory broker, the emulator, no cron ticks. The
    environment is read as usual and these win over it; nothing process-wide is changed."""
    return load_settings(
        database_url=f"sqlite:///{workdir / 'livedash.sqlite3'}",
        broker="memory",
        secret_key=_SECRET_KEY,
        csv_allow_private_networks=True,
        openai_base_url=openai_url,
        openai_api_key="demo",
        scheduler_enabled=False,
        session_processing_concurrency=16,
        ai_processing_mode="batch",
        batch_min_requests=1,
    )


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
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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


def _drive(broker: StubBroker, runtime: StageRuntime, budgeted: str) -> tuple[list[str], BudgetEpisode]:
    """Trigger the ticks as an operator would and wait for every stage; returns what went wrong doing so,
    and how company ``budgeted`` fared with a small AI budget, raised once it was reached."""
    from pipeline.demo.budget import RAISED_TO, limit_budget, raise_budget, waiting_at_budget
    from pipeline.scheduling.control import apply_action

    problems: list[str] = []

    def trigger(scheduler_id: str) -> None:
        apply_action(
            runtime.engine,
            runtime.settings,
            "trigger",
            scheduler_id,
            publish=broker.enqueue,
            requested_by=_REQUESTED_BY,
        )

    def open_batches() -> int:
        with runtime.session_factory() as db:
            return _open_batches(db)

    def submit_and_wait() -> None:
        trigger(BATCH_SUBMIT_JOB.id)
        _join(broker, BATCH_PROCESSING, problems)
        deadline = time.monotonic() + _BATCH_WAIT_SECONDS
        while open_batches() and time.monotonic() < deadline:
            time.sleep(0.2)
            trigger(BATCH_CHECK_JOB.id)
            _join(broker, BATCH_PROCESSING, problems)
        if still_open := open_batches():
            problems.append(f"{still_open} batches still open after {_BATCH_WAIT_SECONDS} s")

    trigger(CSV_IMPORT_JOB.id)
    for queue in _QUEUES:
        _join(broker, queue, problems)
    company_id, budget = limit_budget(runtime.session_factory, runtime.settings, budgeted)
    submit_and_wait()
    waited = waiting_at_budget(runtime.session_factory, company_id)
    spent = raise_budget(runtime.session_factory, company_id)
    submit_and_wait()
    return problems, BudgetEpisode(budgeted, str(budget), waited, str(spent), str(RAISED_TO))


def _add_companies(runtime: StageRuntime, manifest: DatasetManifest, scenario: Scenario) -> None:
    from pipeline.companies import add_company
    from pipeline.db.secrets import PasswordBox

    with runtime.session_factory.begin() as db:
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
                # The demo source serves plain http on 127.0.0.1.
                allow_http=True,
            )


def _run_pipeline(
    broker: StubBroker,
    runtime: StageRuntime,
    on_progress: Callable[[StageProgress], None] | None,
    budgeted: str,
) -> tuple[list[str], BudgetEpisode]:
    """The real actors on this run's own in-memory broker, with four worker threads."""
    import dramatiq

    from pipeline.stages.actors import declare_actors

    declare_actors(broker, runtime.settings, lambda: runtime)
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    try:
        with progress_feed(on_progress, runtime.session_factory):
            return _drive(broker, runtime, budgeted)
    finally:
        worker.stop()


def run_demo(
    *,
    companies: int = 3,
    sessions: int = 100,
    seed: int = 0,
    workdir: Path | None = None,
    latency: float = 0.05,
    on_progress: Callable[[StageProgress], None] | None = None,
) -> DemoReport:
    """Run the pipeline over a generated data set and report what it stored.

    Each run has its own settings, database, broker, actors and clients, and changes nothing process-wide (no
    environment variable, no cache), so a process can run the demo any number of times.

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
    from dramatiq.brokers.stub import StubBroker

    from pipeline.broker import build_broker
    from pipeline.db import migrate
    from pipeline.devtools.generate import generate_dataset
    from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
    from pipeline.devtools.source import SourceServer
    from pipeline.stages.runtime import BrokerDispatch, StageRuntime

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
        settings = _demo_settings(workdir, emulator.url)
        broker = build_broker(settings)
        assert isinstance(broker, StubBroker), "BROKER=memory gives the in-memory broker"
        runtime = StageRuntime(settings, dispatch=BrokerDispatch(broker.enqueue))
        manifest = generate_dataset(
            data, companies=companies, sessions=sessions, seed=seed, base_url=source.url
        )
        scenario = prepare_scenario(data, manifest)
        try:
            migrate.upgrade(runtime.engine)
            _add_companies(runtime, manifest, scenario)
            problems, budget = _run_pipeline(broker, runtime, on_progress, scenario.budgeted)
            report = build_report(
                started,
                workdir,
                kept,
                sessions,
                scenario,
                broker,
                problems,
                sum(log_counts.values()),
                runtime.session_factory,
                budget,
            )
        finally:
            runtime.close()
    if not kept and report.ok:
        shutil.rmtree(workdir, ignore_errors=True)
    return report
