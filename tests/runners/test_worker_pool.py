"""`livedash worker`: one stage's pool, its metrics, and SIGTERM while a message is in flight."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pika
import pytest
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from pipeline.broker import build_broker
from pipeline.db.enums import CsvFetchOutcome
from pipeline.db.models import CsvFetch, SessionImport
from pipeline.queues import CSV_IMPORT
from pipeline.settings import Settings, load_settings
from tests.demo_source import Source, add_source_company
from tests.services import RABBITMQ_URL, require_rabbitmq


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fetch_outcome(engine: Engine) -> CsvFetchOutcome | None:
    with sessionmaker(engine)() as db:
        return db.scalar(select(CsvFetch.outcome).order_by(CsvFetch.started_at.desc()).limit(1))


def test_worker_list_works_alone() -> None:
    # When the pool runner is asked for its schedulers with nothing configured or running
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "worker", "--list"], capture_output=True, text=True, check=False
    )
    # Then it lists every scheduler with its queue and cron setting
    assert result.returncode == 0, result.stderr
    assert "batch-processing-check   queue batch-processing" in result.stdout
    assert "CSV_IMPORT_INTERVAL=*/10 * * * *" in result.stdout


def test_an_unknown_scheduler_is_not_found() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "worker", "--scheduler", "csv"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 3
    assert "unknown scheduler 'csv' (known: csv-import" in result.stderr


def _pool(
    settings: Settings, metrics_dir: Path, metrics_port: int, processes: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "worker",
            "--scheduler",
            "csv-import",
            "-p",
            str(processes),
            "-t",
            "1",
        ],
        env={
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "RABBITMQ_URL": RABBITMQ_URL,
            "SECRET_KEY": "test-secret",
            "DEVELOPMENT_MODE": "true",  # a short test secret
            "CSV_ALLOW_PRIVATE_NETWORKS": "true",
            "SCHEDULER_ENABLED": "false",
            "METRICS_PORT": str(metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "WORKER_SHUTDOWN_GRACE_SECONDS": "60",
            "LOG_FORMAT": "json",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _enqueue_import(company_id: object) -> None:
    require_rabbitmq()
    broker = build_broker(load_settings(rabbitmq_url=RABBITMQ_URL))
    assert isinstance(broker, RabbitmqBroker)
    broker.declare_queue(CSV_IMPORT, ensure=True)
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    connection.channel().queue_purge(CSV_IMPORT)
    connection.close()
    broker.enqueue(
        Message(
            queue_name=CSV_IMPORT, actor_name="import_company", args=(str(company_id),), kwargs={}, options={}
        )
    )
    broker.close()


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_a_pool_of_two_processes_serves_everyones_metrics_without_stale_ones(
    pg_engine: Engine, pg_settings: Settings, source: Source, tmp_path: Path
) -> None:
    # Given a metrics directory holding a counter left by an earlier run (each run of a pool keeps its files
    # in a directory of its own, run-<main pid>-<token>; this one's main process is gone)
    metrics_dir = tmp_path / "metrics"
    stale = metrics_dir / "run-999999999-0123456789ab"
    stale.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-c", "from pipeline.metrics import CSV_FETCHES; CSV_FETCHES.labels('stale').inc()"],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(stale)},
        check=True,
    )
    assert list(stale.glob("counter_*.db"))
    # When a csv-import pool of two processes starts on it and imports a company
    company_id = add_source_company(pg_engine, source, 0)
    metrics_port = _free_port()
    pool = _pool(pg_settings, metrics_dir, metrics_port, processes=2)
    try:
        _enqueue_import(company_id)
        deadline = time.monotonic() + 60
        while _fetch_outcome(pg_engine) is not CsvFetchOutcome.IMPORTED and time.monotonic() < deadline:
            time.sleep(0.2)
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    finally:
        pool.send_signal(signal.SIGTERM)
        output, _ = pool.communicate(timeout=90)

    # Then its one metrics port serves the pipeline's counters and Dramatiq's, and the stale counter is gone
    assert _fetch_outcome(pg_engine) is CsvFetchOutcome.IMPORTED, output.decode(errors="replace")
    assert 'livedash_csv_fetches_total{outcome="imported"} 1.0' in metrics
    assert 'livedash_csv_rows_total{result="new"} 30.0' in metrics
    assert 'outcome="stale"' not in metrics
    assert not stale.exists()
    assert 'dramatiq_messages_total{actor_name="import_company",queue_name="csv-import"} 1.0' in metrics


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_sigterm_lets_the_message_in_flight_finish(
    pg_engine: Engine, pg_settings: Settings, source: Source, tmp_path: Path
) -> None:
    # Given a company whose CSV server takes 3 seconds to answer, and a csv-import pool of one process
    company_id = add_source_company(pg_engine, source, 0)
    source.add_fault(f"/{source.company(0).slug}/sessions.csv", "delay:3", times=1)
    metrics_port = _free_port()
    pool = _pool(pg_settings, tmp_path / "metrics", metrics_port, processes=1)
    try:
        _enqueue_import(company_id)
        # When SIGTERM arrives while the import is waiting for the slow server
        deadline = time.monotonic() + 60
        while _fetch_outcome(pg_engine) is not CsvFetchOutcome.RUNNING and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _fetch_outcome(pg_engine) is CsvFetchOutcome.RUNNING
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        pool.send_signal(signal.SIGTERM)
        output, _ = pool.communicate(timeout=90)
    finally:
        if pool.poll() is None:
            os.killpg(pool.pid, signal.SIGKILL)
    log = output.decode(errors="replace")

    # Then the pool finished the import before it stopped, and exited cleanly
    assert pool.returncode == 0, log
    assert _fetch_outcome(pg_engine) is CsvFetchOutcome.IMPORTED, log
    with sessionmaker(pg_engine)() as db:
        assert db.scalar(select(func.count()).select_from(SessionImport)) == 30
    # And its metrics endpoint served Dramatiq's metrics, and its log lines were JSON with the message context
    assert "dramatiq_messages_inprogress" in metrics
    assert f'"company_id": "{company_id}"' in log
