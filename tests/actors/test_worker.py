"""A real worker pool: `dramatiq pipeline.actors --queues csv-import` against the local RabbitMQ."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from dramatiq import Message
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from pipeline.broker import build_broker
from pipeline.db.enums import CsvFetchOutcome, ProcessingStage, ProcessingStatus
from pipeline.db.models import (
    AIBatchRequest,
    AIProcessingRequest,
    CsvFetch,
    SessionImport,
    SessionProcessingStatus,
)
from pipeline.db.models import Message as MessageRow
from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
from pipeline.queues import ALL_QUEUES, BATCH_PROCESSING, CSV_IMPORT, IMPORT_PROCESSING, SESSION_PROCESSING
from pipeline.scheduling.jobs import all_actors
from pipeline.settings import Settings
from tests.demo_source import Source, add_source_company, running_source
from tests.factories import make_analysable_session, make_company
from tests.services import RABBITMQ_URL, require_rabbitmq

QUEUES = [
    f"{queue}{suffix}"
    for queue in (CSV_IMPORT, IMPORT_PROCESSING, SESSION_PROCESSING, BATCH_PROCESSING)
    for suffix in ("", ".DQ", ".XQ")
]


def _purge() -> dict[str, int]:
    """Empty the test's queues; returns how many messages each held."""
    counts: dict[str, int] = {}
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    for queue in QUEUES:
        try:
            counts[queue] = channel.queue_purge(queue).method.message_count
        except pika.exceptions.ChannelClosedByBroker:
            channel = connection.channel()
    connection.close()
    return counts


def _queue_depth(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


@pytest.fixture
def rabbitmq() -> Iterator[None]:
    require_rabbitmq()
    _purge()
    yield
    _purge()


def _start_worker(
    settings: Settings, tmp_path: Path, *queues: str, **extra_env: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "RABBITMQ_URL": RABBITMQ_URL,
        "SECRET_KEY": "test-secret",
        "CSV_ALLOW_PRIVATE_NETWORKS": "true",
        "SCHEDULER_ENABLED": "false",
        "METRICS_PORT": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        **extra_env,
    }
    (tmp_path / "prometheus").mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "pipeline.actors", "--queues", *queues, "-p", "1", "-t", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(worker: subprocess.Popen[bytes]) -> tuple[int, str]:
    worker.send_signal(signal.SIGTERM)
    try:
        output, _ = worker.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        output, _ = worker.communicate()
        pytest.fail(f"the worker did not stop on SIGTERM:\n{output.decode(errors='replace')}")
    return worker.returncode, output.decode(errors="replace")


def _publish(settings: Settings, queue: str, actor: str, *args: object) -> None:
    broker = build_broker(settings.model_copy(update={"rabbitmq_url": RABBITMQ_URL}))
    broker.declare_queue(queue)
    broker.enqueue(Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options={}))
    broker.close()


def _wait_for_stage(engine: Engine, stage: ProcessingStage, expected: int, timeout: float) -> int:
    """Poll until ``expected`` sessions have ``stage`` COMPLETED, or the timeout; return how many have."""
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline and done < expected:
        with sessionmaker(engine)() as db:
            done = (
                db.scalar(
                    select(func.count())
                    .select_from(SessionProcessingStatus)
                    .where(
                        SessionProcessingStatus.stage == stage,
                        SessionProcessingStatus.status == ProcessingStatus.COMPLETED,
                    )
                )
                or 0
            )
        time.sleep(0.2)
    return done


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_a_worker_imports_a_company_and_hands_its_rows_on_then_stops_on_sigterm(
    rabbitmq: None, pg_engine: Engine, pg_settings: Settings, source: Source, tmp_path: Path
) -> None:
    # Given a company, and a csv-import worker pool running against RabbitMQ and PostgreSQL
    company_id = add_source_company(pg_engine, source, 0)
    worker = _start_worker(pg_settings, tmp_path, CSV_IMPORT)
    try:
        # When an import message for the company is published
        _publish(pg_settings, CSV_IMPORT, "import_company", str(company_id))

        # Then the worker imports it
        deadline = time.monotonic() + 60
        outcome = None
        while time.monotonic() < deadline and outcome is None:
            with sessionmaker(pg_engine)() as db:
                outcome = db.scalars(
                    select(CsvFetch.outcome).where(
                        CsvFetch.company_id == company_id, CsvFetch.outcome != CsvFetchOutcome.RUNNING
                    )
                ).first()
            time.sleep(0.2)
    finally:
        returncode, output = _stop(worker)

    assert outcome is CsvFetchOutcome.IMPORTED, output
    with sessionmaker(pg_engine)() as db:
        assert len(db.scalars(select(SessionImport.id)).all()) == 30
    # And the new imports wait in the import-processing queue as one chunk message (50 ids fit one chunk)
    assert _queue_depth(IMPORT_PROCESSING) == 1
    # And SIGTERM stopped the pool cleanly
    assert returncode == 0, output


#: Run in a fresh interpreter: what importing pipeline.actors declares, and what it leaves for later.
_IMPORT_PROBE = """
import json, sys, threading
import pipeline.actors as a
from pipeline.db.engine import get_engine
from pipeline.stages.runtime import worker_runtime
print(json.dumps({
    "queues": sorted(a.broker.get_declared_queues()),
    "actors": sorted(a.broker.actors),
    "threads": threading.active_count(),
    "engines": get_engine.cache_info().currsize,
    "runtimes": worker_runtime.cache_info().currsize,
    "loaded": sorted(m for m in sys.modules if m == "openai" or m.startswith("pipeline.stages.csv_")),
}))
"""


def test_importing_the_actors_module_declares_the_broker_and_actors_and_nothing_else() -> None:
    # When pipeline.actors is imported in a fresh interpreter, against a RabbitMQ that does not answer
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/%2F", "BROKER": "rabbitmq"},
    )

    # Then it imports cleanly, with every actor of the registry on the stage queues
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["queues"] == sorted(ALL_QUEUES)
    assert probe["actors"] == sorted(actor.name for actor in all_actors())
    # And nothing else was made: no engine, no runtime, no thread, no stage or OpenAI code loaded
    assert (probe["threads"], probe["engines"], probe["runtimes"], probe["loaded"]) == (1, 0, 0, [])


_CLI_PROBE = """
import sys
from typer.testing import CliRunner
from pipeline.cli import app
result = CliRunner().invoke(app, ["schedulers", "trigger", "csv-import"])
print(result.output)
print("declared actors:", "pipeline.actors" in sys.modules)
"""


@pytest.mark.rabbitmq
def test_the_cli_sends_a_tick_by_name_without_declaring_any_actor(pg_settings: Settings) -> None:
    # When an operator triggers a tick for the workers
    result = subprocess.run(
        [sys.executable, "-c", _CLI_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "DATABASE_URL": pg_settings.database_url, "RABBITMQ_URL": RABBITMQ_URL},
    )

    # Then the tick is enqueued by queue and actor name, and no actor was declared in the CLI's process
    assert result.returncode == 0, result.stderr
    assert "enqueued csv-import tick as message" in result.stdout, result.stdout + result.stderr
    assert "declared actors: False" in result.stdout
    _purge()


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_workers_carry_a_company_from_its_csv_to_sessions_with_messages(
    rabbitmq: None, pg_engine: Engine, pg_settings: Settings, tmp_path: Path
) -> None:
    # Given a company whose sessions have transcripts, and csv-import and import-processing pools running
    with running_source(tmp_path / "chats", companies=1, sessions=20, transcripts=True) as chats:
        company_id = add_source_company(pg_engine, chats, 0)
        worker = _start_worker(pg_settings, tmp_path, CSV_IMPORT, IMPORT_PROCESSING)
        try:
            # When an import message for the company is published
            _publish(pg_settings, CSV_IMPORT, "import_company", str(company_id))

            # Then every session is created with its messages, without any sweep
            created = _wait_for_stage(pg_engine, ProcessingStage.SESSION_CREATION, 20, timeout=90)
        finally:
            returncode, output = _stop(worker)

    assert created == 20, output
    with sessionmaker(pg_engine)() as db:
        assert (db.scalar(select(func.count()).select_from(MessageRow)) or 0) > 20
    # And the sessions wait for AI analysis in the session-processing queue, as one chunk message
    assert _queue_depth(SESSION_PROCESSING) == 1
    assert returncode == 0, output


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_a_worker_analyses_sessions_through_the_openai_emulator_over_http(
    rabbitmq: None, pg_engine: Engine, pg_settings: Settings, tmp_path: Path
) -> None:
    # Given two sessions ready for analysis, the OpenAI emulator, and a session-processing pool pointed at it
    with sessionmaker(pg_engine).begin() as db:
        company = make_company(db)
        session_ids = [
            make_analysable_session(
                db, company, [("user", "How do I reset my password?"), ("assistant", "Via the app.")]
            ).id,
            make_analysable_session(db, company, [("user", "Ik wil mijn manager spreken!")]).id,
        ]
    with OpenAIEmulator() as emulator:
        worker = _start_worker(
            pg_settings,
            tmp_path,
            SESSION_PROCESSING,
            OPENAI_BASE_URL=emulator.url,
            OPENAI_API_KEY="test",
            AI_PROCESSING_MODE="sync",
        )
        try:
            # When their ids are published as one chunk
            _publish(pg_settings, SESSION_PROCESSING, "analyze_sessions", [str(s) for s in session_ids])

            # Then both are analysed
            done = _wait_for_stage(pg_engine, ProcessingStage.AI_ANALYSIS, 2, timeout=60)
            ledger = emulator.ledger()
        finally:
            returncode, output = _stop(worker)

    assert done == 2, output
    # And each answer was billed once
    assert sorted((entry.session_id for entry in ledger), key=str) == sorted(
        str(session_id) for session_id in session_ids
    )
    assert returncode == 0, output


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_workers_take_sessions_through_a_batch_round_trip(
    rabbitmq: None, pg_engine: Engine, pg_settings: Settings, tmp_path: Path
) -> None:
    # Given three sessions ready for analysis, the emulator (batches finish at once), and both AI pools
    with sessionmaker(pg_engine).begin() as db:
        company = make_company(db)
        session_ids = [
            make_analysable_session(db, company, [("user", f"Question {n}?")]).id for n in range(3)
        ]
    instant = Knobs(validating_seconds=0, in_progress_seconds=0, finalizing_seconds=0)
    with OpenAIEmulator(knobs=instant) as emulator:
        worker = _start_worker(
            pg_settings,
            tmp_path,
            SESSION_PROCESSING,
            BATCH_PROCESSING,
            OPENAI_BASE_URL=emulator.url,
            OPENAI_API_KEY="test",
            AI_PROCESSING_MODE="batch",
            BATCH_MIN_REQUESTS="1",
        )
        try:
            # When the sessions are handed over, then the submit tick and the check tick run
            _publish(pg_settings, SESSION_PROCESSING, "analyze_sessions", [str(s) for s in session_ids])
            _wait_for_requests(pg_engine, 3)
            _publish(pg_settings, BATCH_PROCESSING, "batch_submit_tick")
            _wait_for_batch_submitted(pg_engine)
            _publish(pg_settings, BATCH_PROCESSING, "batch_check_tick")

            # Then every session is analysed through one batch
            done = _wait_for_stage(pg_engine, ProcessingStage.AI_ANALYSIS, 3, timeout=60)
            ledger = emulator.ledger()
        finally:
            returncode, output = _stop(worker)

    assert done == 3, output
    assert sorted(entry.session_id or "" for entry in ledger) == sorted(map(str, session_ids))
    assert {entry.kind for entry in ledger} == {"batch"}
    assert returncode == 0, output


def _wait_for_requests(engine: Engine, expected: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sessionmaker(engine)() as db:
            if (db.scalar(select(func.count()).select_from(AIProcessingRequest)) or 0) >= expected:
                return
        time.sleep(0.2)


def _wait_for_batch_submitted(engine: Engine) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sessionmaker(engine)() as db:
            if db.scalar(
                select(AIBatchRequest.openai_batch_id).where(AIBatchRequest.openai_batch_id.is_not(None))
            ):
                return
        time.sleep(0.2)
