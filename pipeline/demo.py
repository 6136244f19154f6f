"""``livedash demo``: the whole pipeline in one process, with nothing installed but the package.

SQLite in a work folder, Dramatiq's in-memory broker with an in-process worker, the demo data source and
the OpenAI emulator on free ports of 127.0.0.1. The real actors run: the CSV import tick fans out per
company, each import hands its rows to import processing, which hands its sessions to AI analysis; those are
queued for the Batch API, and the batch ticks submit, poll and ingest the batches, exactly as on RabbitMQ.
The ticks go through the scheduling layer (an operator's trigger), so every run is in the run history.

The data set has two deliberate faults, and the demo checks that the pipeline copes with them as designed:

* the first company's CSV has a few broken rows between its good ones: each must become a CSV row error with
  its line number and reason, and every good row of that file must still be imported;
* the last company is registered with a wrong password: its fetch must fail with HTTP 401, be recorded as a
  failed fetch, not be retried (a 401 is not transient), and stop nobody else.

:func:`run_demo` returns a :class:`DemoReport`; its ``unexpected`` lists every way the run differed from that.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from dramatiq.brokers.stub import StubBroker

    from pipeline.devtools.manifest import DatasetManifest

__all__ = [
    "CompanyOutcome",
    "DemoReport",
    "FetchFailure",
    "InjectedRow",
    "RowErrorRecord",
    "SchedulerRunRecord",
    "SessionFailure",
    "StageProgress",
    "read_progress",
    "run_demo",
]

#: The stage queues before the batches, in pipeline order; the demo waits for each to drain before the next.
_QUEUES = ("csv-import", "import-processing", "session-processing")
_BATCH_QUEUE = "batch-processing"
#: How long the demo polls its batches at most (the emulator finishes them in well under a second).
_BATCH_WAIT_SECONDS = 60
#: A queue that has not drained after this long is reported, not waited for forever.
_JOIN_TIMEOUT_MS = 30 * 60 * 1000
#: How often the progress callback is fed with fresh counts.
_PROGRESS_SECONDS = 0.2
_SECRET_KEY = "demo-secret"
_REQUESTED_BY = "livedash demo"
_LOG_NAME = "demo.log"

BROKEN_ROWS = "broken rows"
WRONG_CREDENTIALS = "wrong password"
CLEAN = "clean"


@dataclass(frozen=True)
class InjectedRow:
    """A broken row written into a company's CSV: where it is, what is wrong, and the column it must blame."""

    line: int
    problem: str
    column: str


@dataclass(frozen=True)
class StageProgress:
    """Counts for the progress display: how far each stage is, read from the database."""

    companies: int = 0
    companies_fetched: int = 0
    imports: int = 0
    imports_derived: int = 0
    sessions: int = 0
    sessions_analysed: int = 0
    batches_submitted: int = 0
    batches_processed: int = 0


@dataclass(frozen=True)
class CompanyOutcome:
    name: str
    scenario: str
    fetch: str | None
    http_status: int | None
    rows: int
    imported: int
    row_errors: int
    sessions: int
    analysed: int


@dataclass(frozen=True)
class FetchFailure:
    company: str
    http_status: int | None
    error: str | None
    #: Fetches of the company: 1 means the failure was taken as permanent and not retried.
    attempts: int


@dataclass(frozen=True)
class RowErrorRecord:
    company: str
    line: int
    reason: str
    #: The injected problem this row error accounts for, if it is one of them.
    injected: str | None


@dataclass(frozen=True)
class SessionFailure:
    stage: str
    company: str
    session_id: str | None
    import_id: str | None
    error: str | None


@dataclass(frozen=True)
class SchedulerRunRecord:
    job: str
    status: str
    items: int
    seconds: float | None
    tick: str | None
    error: str | None


@dataclass(frozen=True)
class DemoReport:
    seconds: float
    workdir: Path
    kept: bool
    sessions_per_company: int
    companies: list[CompanyOutcome]
    good_rows: int
    injected: list[InjectedRow]
    imported: int
    sessions: int
    messages: int
    analysed: int
    sentiment: dict[str, int]
    categories: dict[str, int]
    questions: int
    cost_eur: float
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    batches_submitted: int
    batches_processed: int
    scheduler_runs: list[SchedulerRunRecord]
    fetch_failures: list[FetchFailure]
    row_errors: list[RowErrorRecord]
    session_failures: list[SessionFailure]
    #: Failures of no session in particular: dead-lettered messages, failed batches and AI requests.
    other_failures: list[str]
    pipeline: dict[str, dict[str, int]]
    log_records: int
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unexpected

    @property
    def database(self) -> Path:
        return self.workdir / "livedash.sqlite3"

    @property
    def log(self) -> Path:
        return self.workdir / _LOG_NAME

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "unexpected": self.unexpected,
            "seconds": round(self.seconds, 3),
            "sessions_per_company": self.sessions_per_company,
            # Left behind when asked for (--keep) or when something was unexpected; otherwise removed.
            "workdir": str(self.workdir) if self.workdir.exists() else None,
            "companies": [company.__dict__ for company in self.companies],
            "sessions": {
                "good_rows": self.good_rows,
                "imported": self.imported,
                "created": self.sessions,
                "messages": self.messages,
                "analysed": self.analysed,
            },
            "sentiment": self.sentiment,
            "categories": self.categories,
            "questions": self.questions,
            "cost": {
                "eur": round(self.cost_eur, 6),
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens,
            },
            "batches": {"submitted": self.batches_submitted, "processed": self.batches_processed},
            "scheduler_runs": [run.__dict__ for run in self.scheduler_runs],
            "failures": {
                "fetches": [failure.__dict__ for failure in self.fetch_failures],
                "csv_rows": [error.__dict__ for error in self.row_errors],
                "sessions": [failure.__dict__ for failure in self.session_failures],
                "other": self.other_failures,
            },
            "injected": [row.__dict__ for row in self.injected],
            "pipeline": self.pipeline,
            "log_records": self.log_records,
        }


@dataclass(frozen=True)
class _Scenario:
    """What the data set was made to contain, and so what the pipeline must end with."""

    roles: dict[str, str]  # company name -> BROKEN_ROWS, WRONG_CREDENTIALS or CLEAN
    injected: list[InjectedRow]
    good_ids: dict[str, frozenset[str]]  # company name -> session ids of its good rows

    @property
    def broken(self) -> str:
        return next(name for name, role in self.roles.items() if role == BROKEN_ROWS)

    @property
    def locked_out(self) -> str:
        return next(name for name, role in self.roles.items() if role == WRONG_CREDENTIALS)

    @property
    def good_rows(self) -> int:
        return sum(len(ids) for name, ids in self.good_ids.items() if self.roles[name] != WRONG_CREDENTIALS)


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


# --- the data set's faults ---------------------------------------------------------------------------------

#: A forwarded-for list where one address belongs: 57 characters in a column of at most 45.
_LONG_IP = "192.168.100.101, 10.20.30.40, 172.16.254.1, 203.0.113.195"


def _broken_records(template: list[str]) -> list[tuple[list[str], str, str]]:
    """Bad rows made from a good one, each wrong in one field: (record, problem, column blamed)."""
    empty_id = template.copy()
    empty_id[0] = ""
    not_a_number = template.copy()
    not_a_number[0], not_a_number[6] = "broken-row-messages-sent", "twelve"
    too_long = template.copy()
    too_long[0], too_long[3] = "broken-row-ip-address", _LONG_IP
    return [
        (empty_id, "empty session id", "column 0 (externalSessionId)"),
        (not_a_number, "messages sent is not a number", "column 6 (messagesSent)"),
        (too_long, "IP address over 45 characters", "column 3 (ipAddress)"),
    ]


def _csv_text(record: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(record)
    return buffer.getvalue()


def _read_records(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _inject_broken_rows(path: Path) -> list[InjectedRow]:
    """Write bad rows into the CSV at ``path``: after its first row, in its middle and at its end.

    The good rows are written back byte for byte (the generator writes with the same csv writer); the line
    numbers are counted on the text written, so a record spanning lines would be counted right.
    """
    good = _read_records(path)
    bad = _broken_records(good[0])
    places = (min(1, len(good)), len(good) // 2, len(good))
    pending = sorted(zip(places, bad, strict=True), key=lambda item: item[0])
    injected: list[InjectedRow] = []
    line = 1
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:

        def write(record: list[str]) -> int:
            text = _csv_text(record)
            handle.write(text)
            return text.count("\n")

        for index in range(len(good) + 1):
            while pending and pending[0][0] == index:
                record, problem, column = pending.pop(0)[1]
                injected.append(InjectedRow(line, problem, column))
                line += write(record)
            if index < len(good):
                line += write(good[index])
    os.replace(partial, path)
    return injected


def _prepare(data: Path, manifest: DatasetManifest) -> _Scenario:
    """Break the first company's CSV and lock the last company out; return what the run must show."""
    roles = {company.name: CLEAN for company in manifest.companies}
    roles[manifest.companies[0].name] = BROKEN_ROWS
    roles[manifest.companies[-1].name] = WRONG_CREDENTIALS
    good_ids = {
        company.name: frozenset(record[0] for record in _read_records(data / company.csv_path))
        for company in manifest.companies
    }
    injected = _inject_broken_rows(data / manifest.companies[0].csv_path)
    return _Scenario(roles, injected, good_ids)


# --- running it --------------------------------------------------------------------------------------------


def read_progress(db: Session) -> StageProgress:
    """How far each stage has got, by database counts."""
    from pipeline.db.enums import AIBatchRequestStatus, CsvFetchOutcome, ProcessingStage, ProcessingStatus
    from pipeline.db.models import (
        AIBatchRequest,
        ChatSession,
        Company,
        CsvFetch,
        SessionImport,
        SessionProcessingStatus,
    )

    done = (ProcessingStatus.COMPLETED, ProcessingStatus.FAILED)
    finished_batches = (
        AIBatchRequestStatus.PROCESSED,
        AIBatchRequestStatus.FAILED,
        AIBatchRequestStatus.CANCELLED,
    )

    def count(model: Any, *where: Any) -> int:
        return db.scalar(select(func.count()).select_from(model).where(*where)) or 0

    return StageProgress(
        companies=count(Company),
        companies_fetched=db.scalar(
            select(func.count(func.distinct(CsvFetch.company_id))).where(
                CsvFetch.outcome != CsvFetchOutcome.RUNNING
            )
        )
        or 0,
        imports=count(SessionImport),
        imports_derived=count(SessionImport, SessionImport.derive_status.in_(done)),
        sessions=count(ChatSession),
        sessions_analysed=count(
            SessionProcessingStatus,
            SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
            SessionProcessingStatus.status.in_(done),
        ),
        batches_submitted=count(AIBatchRequest),
        batches_processed=count(AIBatchRequest, AIBatchRequest.status.in_(finished_batches)),
    )


@contextmanager
def _progress_feed(on_progress: Callable[[StageProgress], None] | None) -> Iterator[None]:
    """Feed ``on_progress`` fresh counts from a background thread while the block runs, and once after."""
    if on_progress is None:
        yield
        return
    from pipeline.db.engine import get_session_factory

    def poll() -> None:
        with get_session_factory()() as db:
            on_progress(read_progress(db))

    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(_PROGRESS_SECONDS):
            poll()

    thread = threading.Thread(target=loop, name="demo-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        poll()


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
        _log_to(workdir / _LOG_NAME) as log_counts,
        OpenAIEmulator(knobs=knobs) as emulator,
        SourceServer(data) as source,
    ):
        _configure(workdir, emulator.url)
        manifest = generate_dataset(
            data, companies=companies, sessions=sessions, seed=seed, base_url=source.url
        )
        scenario = _prepare(data, manifest)

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
            with _progress_feed(on_progress):
                problems = _drive(broker)
        finally:
            worker.stop()
        report = _report(
            started, workdir, kept, sessions, scenario, broker, problems, sum(log_counts.values())
        )
        get_engine().dispose()
    if not kept and report.ok:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


# --- the report --------------------------------------------------------------------------------------------


def _dead_letters(broker: StubBroker) -> list[str]:
    """Every dead-lettered message, with its error: none is expected (a 401 is recorded, not raised)."""
    failures: list[str] = []
    for message in broker.dead_letters:
        exception = getattr(message, "_exception", None)
        error = f"{type(exception).__name__}: {exception}" if exception is not None else "unknown error"
        failures.append(
            f"{message.queue_name} message {message.actor_name}{tuple(message.args)!r} failed: {error}"
        )
    return failures


def _report(
    started: float,
    workdir: Path,
    kept: bool,
    sessions_per_company: int,
    scenario: _Scenario,
    broker: StubBroker,
    problems: list[str],
    log_records: int,
) -> DemoReport:
    from pipeline.db.engine import get_session_factory
    from pipeline.db.enums import (
        AIBatchRequestStatus,
        AIRequestStatus,
        CsvFetchOutcome,
        ProcessingStage,
        ProcessingStatus,
        SchedulerRunStatus,
    )
    from pipeline.db.models import (
        AIBatchRequest,
        AIProcessingRequest,
        ChatSession,
        Company,
        CsvFetch,
        CsvRowError,
        Message,
        SchedulerRun,
        SchedulerTick,
        SessionImport,
        SessionProcessingStatus,
        SessionQuestion,
    )
    from pipeline.stages.pipeline_reports import failed_sessions, pipeline_status

    with get_session_factory()() as db:

        def count(model: Any, *where: Any) -> int:
            return db.scalar(select(func.count()).select_from(model).where(*where)) or 0

        names = dict(db.execute(select(Company.id, Company.name)).tuples().all())
        ids = {name: company_id for company_id, name in names.items()}
        analysed_ids = select(SessionProcessingStatus.session_id).where(
            SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
            SessionProcessingStatus.status == ProcessingStatus.COMPLETED,
        )

        def per_company(column: Any, *where: Any) -> dict[uuid.UUID, int]:
            statement = select(column, func.count()).where(*where).group_by(column)
            return dict(db.execute(statement).tuples().all())

        imported_by = per_company(SessionImport.company_id)
        errors_by = per_company(CsvRowError.company_id)
        sessions_by = per_company(ChatSession.company_id)
        analysed_by = per_company(ChatSession.company_id, ChatSession.id.in_(analysed_ids))
        fetches = db.scalars(select(CsvFetch).order_by(CsvFetch.started_at)).all()
        last_fetch = {fetch.company_id: fetch for fetch in fetches}
        attempts = Counter(fetch.company_id for fetch in fetches)

        companies = [
            CompanyOutcome(
                name=name,
                scenario=scenario.roles[name],
                fetch=last_fetch[company_id].outcome.value if company_id in last_fetch else None,
                http_status=last_fetch[company_id].http_status if company_id in last_fetch else None,
                rows=last_fetch[company_id].rows_total if company_id in last_fetch else 0,
                imported=imported_by.get(company_id, 0),
                row_errors=errors_by.get(company_id, 0),
                sessions=sessions_by.get(company_id, 0),
                analysed=analysed_by.get(company_id, 0),
            )
            for name, company_id in ((name, ids[name]) for name in scenario.roles)
        ]

        other_failures = _dead_letters(broker)
        fetch_failures = [
            FetchFailure(
                company=names[fetch.company_id],
                http_status=fetch.http_status,
                error=fetch.error,
                attempts=attempts[fetch.company_id],
            )
            for fetch in fetches
            if fetch.outcome is CsvFetchOutcome.FAILED
        ]

        injected_at = {(scenario.broken, row.line): row for row in scenario.injected}
        row_errors = [
            RowErrorRecord(
                company=names[error.company_id],
                line=error.line_number,
                reason=error.reason,
                injected=(
                    injected.problem
                    if (injected := injected_at.get((names[error.company_id], error.line_number)))
                    else None
                ),
            )
            for error in db.scalars(
                select(CsvRowError).order_by(CsvRowError.company_id, CsvRowError.line_number)
            )
        ]

        session_failures = [
            SessionFailure(
                stage=row["stage"],
                company=row["company"],
                session_id=row["session_id"],
                import_id=row["import_id"],
                error=row["error"],
            )
            for row in failed_sessions(db, limit=1000)
        ]

        for batch in db.scalars(
            select(AIBatchRequest).where(
                AIBatchRequest.status.in_((AIBatchRequestStatus.FAILED, AIBatchRequestStatus.CANCELLED))
            )
        ):
            other_failures.append(f"batch {batch.id} {batch.status.value}: {batch.error_message}")
        failed_requests = count(
            AIProcessingRequest, AIProcessingRequest.processing_status == AIRequestStatus.PROCESSING_FAILED
        )
        if failed_requests:
            other_failures.append(f"{failed_requests} AI requests failed")

        def by_label(column: Any) -> dict[str, int]:
            rows = db.execute(
                select(column, func.count()).where(ChatSession.id.in_(analysed_ids)).group_by(column)
            ).tuples()
            counts = {(label.value if label is not None else "none"): number for label, number in rows}
            return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

        prompt, completion, total, cost = db.execute(
            select(
                func.coalesce(func.sum(AIProcessingRequest.prompt_tokens), 0),
                func.coalesce(func.sum(AIProcessingRequest.completion_tokens), 0),
                func.coalesce(func.sum(AIProcessingRequest.total_tokens), 0),
                func.coalesce(func.sum(AIProcessingRequest.total_cost_eur), 0.0),
            ).where(AIProcessingRequest.success.is_(True))
        ).one()

        runs = [
            SchedulerRunRecord(
                job=run.job,
                status=run.status.value,
                items=run.items_processed,
                seconds=(
                    round((run.finished_at - run.started_at).total_seconds(), 3) if run.finished_at else None
                ),
                tick=detail,
                error=run.error,
            )
            for run, detail in db.execute(
                select(SchedulerRun, SchedulerTick.detail)
                .outerjoin(SchedulerTick, SchedulerTick.id == SchedulerRun.tick_id)
                .order_by(SchedulerRun.started_at)
            ).tuples()
        ]
        if any(run.status == SchedulerRunStatus.RUNNING.value for run in runs):
            problems.append("a scheduler run is still RUNNING after the demo")

        report = DemoReport(
            seconds=time.monotonic() - started,
            workdir=workdir,
            kept=kept,
            sessions_per_company=sessions_per_company,
            companies=companies,
            good_rows=scenario.good_rows,
            injected=scenario.injected,
            imported=count(SessionImport),
            sessions=count(ChatSession),
            messages=count(Message),
            analysed=count(ChatSession, ChatSession.id.in_(analysed_ids)),
            sentiment=by_label(ChatSession.sentiment),
            categories=by_label(ChatSession.category),
            questions=db.scalar(select(func.count(func.distinct(SessionQuestion.question_id)))) or 0,
            cost_eur=float(cost),
            prompt_tokens=int(prompt),
            completion_tokens=int(completion),
            total_tokens=int(total),
            batches_submitted=count(AIBatchRequest),
            batches_processed=count(AIBatchRequest, AIBatchRequest.status == AIBatchRequestStatus.PROCESSED),
            scheduler_runs=runs,
            fetch_failures=fetch_failures,
            row_errors=row_errors,
            session_failures=session_failures,
            other_failures=other_failures,
            pipeline=pipeline_status(db)["pipeline"],
            log_records=log_records,
        )
        imported_ids = {
            (names[company_id], external_id)
            for company_id, external_id in db.execute(
                select(SessionImport.company_id, SessionImport.external_session_id)
            ).tuples()
        }
    report.unexpected.extend(problems)
    report.unexpected.extend(_judge(report, scenario, imported_ids))
    return report


def _judge(report: DemoReport, scenario: _Scenario, imported_ids: set[tuple[str, str]]) -> list[str]:
    """Every way the run differs from what the data set must produce."""
    wrong: list[str] = []
    expected_ids = {
        (name, session_id)
        for name, session_ids in scenario.good_ids.items()
        if scenario.roles[name] != WRONG_CREDENTIALS
        for session_id in session_ids
    }
    if missing := expected_ids - imported_ids:
        wrong.append(f"{len(missing)} good CSV rows were not imported, e.g. {min(missing)}")
    if extra := imported_ids - expected_ids:
        wrong.append(f"{len(extra)} rows were imported that should not have been, e.g. {min(extra)}")

    for company in report.companies:
        if company.scenario != WRONG_CREDENTIALS and company.fetch != "IMPORTED":
            wrong.append(f"the fetch of {company.name} ended {company.fetch}, not IMPORTED")

    found = {(error.company, error.line): error for error in report.row_errors}
    for row in scenario.injected:
        error = found.pop((scenario.broken, row.line), None)
        if error is None:
            wrong.append(
                f"the broken row at line {row.line} of {scenario.broken} ({row.problem}) was not recorded"
            )
        elif not error.reason.startswith(row.column):
            wrong.append(
                f"line {row.line} of {scenario.broken} ({row.problem}) was refused for {error.reason!r}, "
                f"not for its {row.column}"
            )
    for (name, line), error in sorted(found.items()):
        wrong.append(f"unexpected CSV row error at line {line} of {name}: {error.reason}")

    locked_out = [failure for failure in report.fetch_failures if failure.company == scenario.locked_out]
    others = [failure for failure in report.fetch_failures if failure.company != scenario.locked_out]
    if not locked_out:
        wrong.append(f"{scenario.locked_out} (wrong password) has no failed fetch")
    for failure in locked_out:
        if failure.http_status != 401:
            wrong.append(
                f"{scenario.locked_out} (wrong password) failed with {failure.error!r}, not HTTP 401"
            )
        if failure.attempts != 1:
            wrong.append(
                f"{scenario.locked_out} (wrong password) was retried as if transient: "
                f"{failure.attempts} fetches"
            )
    wrong.extend(f"the fetch of {failure.company} failed: {failure.error}" for failure in others)

    if report.sessions != report.good_rows:
        wrong.append(f"{report.sessions} sessions were created from {report.good_rows} good rows")
    if report.analysed != report.good_rows:
        wrong.append(f"{report.analysed} of {report.good_rows} sessions were analysed")
    if report.analysed and report.cost_eur <= 0:
        wrong.append("the analyses cost nothing: no price was applied")
    if report.batches_processed != report.batches_submitted or not report.batches_submitted:
        wrong.append(f"{report.batches_processed} of {report.batches_submitted} batches were processed")
    wrong.extend(
        f"{failure.company}: session {failure.session_id or failure.import_id} failed {failure.stage}: "
        f"{failure.error}"
        for failure in report.session_failures
    )
    wrong.extend(report.other_failures)

    jobs = {run.job for run in report.scheduler_runs}
    for job in ("csv-import", "batch-processing", "batch-processing-check"):
        if job not in jobs:
            wrong.append(f"no run of the {job} scheduler was recorded")
    for run in report.scheduler_runs:
        if run.status == "FAILED":
            wrong.append(f"a run of the {run.job} scheduler failed: {run.error}")
        if run.tick is None:
            wrong.append(f"a run of the {run.job} scheduler has no recorded tick")
    return wrong
