"""Each stage's entry points do the same work whether its actors run them on a worker or
``livedash schedulers trigger --inline`` runs them in the calling process.

For every scheduler, the same starting state is built twice, in two databases: once the tick goes through
the real actors on an in-memory broker (workers on the job's queue), once through the inline path. Both must
end with the same stored state, the same calls to OpenAI, and the same messages handed to the next stage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dramatiq import Message
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import sessionmaker

from pipeline.db import migrate
from pipeline.db.engine import create_db_engine
from pipeline.db.models import (
    AIBatchRequest,
    AIProcessingRequest,
    CsvFetch,
    SessionImport,
    SessionProcessingStatus,
)
from pipeline.db.types import utcnow
from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
from pipeline.scheduling.jobs import find_job
from pipeline.settings import Settings, load_settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages.batch_enqueue import enqueue_for_batch
from pipeline.stages.batch_submit import plan_batches, submit_batch
from pipeline.stages.csv_import import fetch_limits, import_company_csv
from pipeline.stages.inline import run_inline
from tests.demo_source import Source, add_source_company, running_source
from tests.factories import make_analysable_session, make_company
from tests.stub_pipeline import stub_pipeline

#: OPENAI_MAX_PROMPT_TOKENS of the tests: every test transcript fits.
PROMPT_TOKENS = 16_000

TURNS = [("user", "When is my schedule for next week online?"), ("assistant", "On Friday, in the app.")]
INSTANT = {"validating_seconds": 0.0, "in_progress_seconds": 0.0, "finalizing_seconds": 0.0}

Setup = Callable[[Engine, Settings], None]


@dataclass(frozen=True)
class Outcome:
    """What a path left behind: row counts by state, OpenAI calls by kind, messages handed on."""

    stored: dict[str, Counter[str]]
    billed: Counter[str]
    handed: Counter[tuple[str, int]]


@pytest.fixture(scope="module")
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as running:
        yield running


@pytest.fixture
def chats(tmp_path: Path) -> Iterator[Source]:
    with running_source(tmp_path / "chats", companies=2, sessions=4, transcripts=True) as running:
        yield running


def _database(directory: Path, **changes: Any) -> tuple[Engine, Settings]:
    directory.mkdir()
    settings = load_settings(
        database_url=f"sqlite:///{directory / 'livedash.sqlite3'}",
        secret_key="test-secret",
        csv_allow_private_networks=True,
        broker="memory",
        **changes,
    )
    engine = create_db_engine(settings)
    migrate.upgrade(engine)
    return engine, settings


def _counts(engine: Engine, *columns: Any) -> Counter[str]:
    with sessionmaker(engine)() as db:
        rows = db.execute(select(*columns, func.count()).group_by(*columns)).all()
    return Counter({"/".join(str(value) for value in row[:-1]): row[-1] for row in rows})


def _stored(engine: Engine) -> dict[str, Counter[str]]:
    return {
        "fetches": _counts(engine, CsvFetch.outcome),
        "imports": _counts(engine, SessionImport.derive_status),
        "stages": _counts(engine, SessionProcessingStatus.stage, SessionProcessingStatus.status),
        "requests": _counts(engine, AIProcessingRequest.processing_status),
        "batches": _counts(engine, AIBatchRequest.status),
    }


def _handed(messages: list[Message[None]], own_queue: str) -> Counter[tuple[str, int]]:
    return Counter(
        (message.actor_name, len(message.args[0])) for message in messages if message.queue_name != own_queue
    )


def _by_actor(engine: Engine, settings: Settings, scheduler_id: str) -> list[Message[None]]:
    job = find_job(settings, scheduler_id)
    with stub_pipeline(settings, engine) as pipeline:
        pipeline.actors[job.actor_name].send()
        pipeline.drain(job.queue)
        return pipeline.sent


def _inline(engine: Engine, settings: Settings, scheduler_id: str) -> list[Message[None]]:
    published: list[Message[None]] = []

    def publish(message: Message[None]) -> Message[None]:
        published.append(message)
        return message

    run_inline(settings, scheduler_id, engine=engine, publish=publish)
    return published


def _both_paths(
    tmp_path: Path,
    scheduler_id: str,
    setup: Setup,
    emulator: OpenAIEmulator | None = None,
    knobs: Knobs | None = None,
    **changes: Any,
) -> tuple[Outcome, Outcome]:
    outcomes = []
    for path in (_by_actor, _inline):
        engine, settings = _database(tmp_path / path.__name__, **changes)
        if emulator is not None:
            emulator.reset()
            emulator.knobs = knobs or Knobs(**INSTANT)
        setup(engine, settings)
        sent = path(engine, settings, scheduler_id)
        billed = Counter[str](entry.kind for entry in emulator.ledger()) if emulator else Counter[str]()
        handed = _handed(sent, find_job(settings, scheduler_id).queue)
        outcomes.append(Outcome(_stored(engine), billed, handed))
        engine.dispose()
    return outcomes[0], outcomes[1]


def _overdue(engine: Engine) -> None:
    """Make every waiting item older than the sweeps' grace, so a worker's sweep takes it too."""
    long_ago = utcnow() - timedelta(hours=1)
    with sessionmaker(engine).begin() as db:
        db.execute(update(SessionImport).values(derive_requested_at=long_ago))
        db.execute(update(SessionProcessingStatus).values(updated_at=long_ago))


def _analysable_sessions(engine: Engine, count: int) -> list[Any]:
    with sessionmaker(engine).begin() as db:
        company = make_company(db)
        ids = [make_analysable_session(db, company, TURNS).id for _ in range(count)]
    _overdue(engine)
    return ids


def test_csv_import_runs_the_same_on_a_worker_and_inline(tmp_path: Path, chats: Source) -> None:
    def two_companies(engine: Engine, _settings: Settings) -> None:
        add_source_company(engine, chats, 0)
        add_source_company(engine, chats, 1)

    by_actor, inline = _both_paths(tmp_path, "csv-import", two_companies)

    assert by_actor == inline
    assert inline.stored["fetches"] == Counter({"IMPORTED": 2})
    assert inline.stored["imports"] == Counter({"PENDING": 8})
    assert inline.handed == Counter({("process_imports", 4): 2})


def test_import_processing_runs_the_same_on_a_worker_and_inline(tmp_path: Path, chats: Source) -> None:
    def imported_company(engine: Engine, settings: Settings) -> None:
        company_id = add_source_company(engine, chats, 0)
        with Fetcher(fetch_limits(settings)) as fetcher:
            import_company_csv(engine, settings, company_id, fetcher=fetcher, hand_over=lambda ids: None)
        _overdue(engine)

    by_actor, inline = _both_paths(tmp_path, "import-processing", imported_company)

    assert by_actor == inline
    assert inline.stored["imports"] == Counter({"COMPLETED": 4})
    assert inline.handed == Counter({("analyze_sessions", 4): 1})


@pytest.mark.parametrize("mode", ["sync", "batch"])
def test_session_processing_runs_the_same_on_a_worker_and_inline(
    tmp_path: Path, emulator: OpenAIEmulator, mode: str
) -> None:
    def sessions(engine: Engine, _settings: Settings) -> None:
        _analysable_sessions(engine, 3)

    by_actor, inline = _both_paths(
        tmp_path,
        "session-processing",
        sessions,
        emulator,
        ai_processing_mode=mode,
        openai_base_url=emulator.url,
    )

    assert by_actor == inline
    if mode == "sync":
        assert inline.billed == Counter({"chat": 3})
        assert inline.stored["requests"] == Counter({"PROCESSING_COMPLETE": 3})
    else:
        assert inline.billed == Counter()
        assert inline.stored["requests"] == Counter({"PENDING_BATCHING": 3})


def test_batch_processing_runs_the_same_on_a_worker_and_inline(
    tmp_path: Path, emulator: OpenAIEmulator
) -> None:
    def queued(engine: Engine, settings: Settings) -> None:
        enqueue_for_batch(engine, settings, _analysable_sessions(engine, 2))

    by_actor, inline = _both_paths(
        tmp_path, "batch-processing", queued, emulator, openai_base_url=emulator.url, batch_min_requests=1
    )

    assert by_actor == inline
    [(status, count)] = inline.stored["batches"].items()
    assert count == 1 and status not in {
        "PENDING",
        "UPLOADING",
    }  # created at OpenAI, by the submit actor's entry point


def test_batch_check_with_the_synchronous_fallback_runs_the_same_on_a_worker_and_inline(
    tmp_path: Path, emulator: OpenAIEmulator
) -> None:
    # Given the fallback on, one batch attempt allowed, and a batch of two sessions that fails at OpenAI
    def failed_batch(engine: Engine, settings: Settings) -> None:
        enqueue_for_batch(engine, settings, _analysable_sessions(engine, 2))
        from pipeline.analysis.openai_calls import openai_client

        with openai_client(settings) as client:
            for batch_id in plan_batches(engine, settings):
                submit_batch(engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)

    failing = Knobs(**INSTANT, batch_outcome="failed")
    by_actor, inline = _both_paths(
        tmp_path,
        "batch-processing-check",
        failed_batch,
        emulator,
        failing,
        openai_base_url=emulator.url,
        batch_min_requests=1,
        batch_sync_fallback=True,
        batch_max_attempts=1,
    )

    # Then both paths analyse the two sessions with one synchronous call each
    assert by_actor == inline
    assert inline.stored["batches"] == Counter({"FAILED": 1})
    assert inline.billed == Counter({"chat": 2})
    assert inline.stored["stages"]["AI_ANALYSIS/COMPLETED"] == 2
