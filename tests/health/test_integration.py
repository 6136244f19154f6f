"""The aggregator against a real worker pool, RabbitMQ's management API and PostgreSQL.

A pool of `import-processing` is started as in production (`dramatiq pipeline.actors`), with its
metrics on a free port. The API sees its consumers and its metrics endpoint, runs a triggered tick through
it, reports the dead worker once the pool is killed, and shows a paused scheduler as PAUSED.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from pipeline.broker import build_broker
from pipeline.health.api import create_app
from pipeline.settings import Settings, load_settings
from tests.health.conftest import TOKEN
from tests.services import RABBITMQ_URL, require_rabbitmq, service_unavailable

QUEUE = "import-processing"
MANAGEMENT_URL = os.environ.get("TEST_RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def purge() -> None:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    for queue in (QUEUE, f"{QUEUE}.DQ", f"{QUEUE}.XQ"):
        try:
            channel.queue_purge(queue)
        except pika.exceptions.ChannelClosedByBroker:
            channel = connection.channel()
    connection.close()


@pytest.fixture
def rabbitmq() -> Iterator[None]:
    require_rabbitmq()
    try:
        httpx.get(f"{MANAGEMENT_URL}/api/overview", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        service_unavailable("RabbitMQ's management API", exc)
    purge()
    yield
    purge()


def start_pool(settings: Settings, tmp_path: Path, metrics_port: int) -> subprocess.Popen[bytes]:
    metrics = tmp_path / "prometheus"
    metrics.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "RABBITMQ_URL": RABBITMQ_URL,
        "SCHEDULER_ENABLED": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "METRICS_PORT": str(metrics_port),
        "METRICS_HOST": "127.0.0.1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "pipeline.actors", "--queues", QUEUE, "-p", "1", "-t", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(pool: subprocess.Popen[bytes]) -> str:
    """SIGKILL the whole pool (main process, workers, metrics server) and return what it printed."""
    if pool.poll() is None:
        os.killpg(pool.pid, signal.SIGKILL)
    output, _ = pool.communicate(timeout=30)
    return output.decode(errors="replace")


def poll(
    client: TestClient, condition: Callable[[dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    """The import-processing entry of the scheduler list once ``condition`` holds (RabbitMQ's management
    statistics refresh every few seconds, so this waits with a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        listing = client.get("/api/admin/schedulers", headers=AUTH).json()
        entry = next(item for item in listing["schedulers"] if item["id"] == QUEUE)
        if condition(entry):
            return entry
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout} s; last seen: {entry}")


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_a_real_pool_is_seen_alive_then_dead_and_a_paused_scheduler_is_paused(
    rabbitmq: None, pg_engine: Engine, pg_settings: Settings, tmp_path: Path
) -> None:
    # Given an import-processing pool with its metrics on a free port, and the API pointed at it
    metrics_port = free_port()
    settings = load_settings(
        database_url=pg_settings.database_url,
        rabbitmq_url=RABBITMQ_URL,
        broker="rabbitmq",
        rabbitmq_management_url=MANAGEMENT_URL,
        health_metrics_targets=f"{QUEUE}=http://127.0.0.1:{metrics_port}/metrics",
        prometheus_url=None,
        admin_api_token=TOKEN,
        health_source_timeout_ms=3000,
        scheduler_enabled=True,
    )
    broker = build_broker(settings)
    pool = start_pool(settings, tmp_path, metrics_port)
    output = ""
    try:
        with TestClient(create_app(settings, engine=pg_engine, publish=broker.enqueue)) as client:
            # When the pool has started
            # Then the API sees its consumer and its metrics endpoint; it never ran: STARTING
            started = poll(
                client,
                lambda e: bool(e["queueStats"]["consumers"]) and e["metricsEndpoint"]["state"] == "up",
                timeout=60,
                what="the pool's consumer and metrics endpoint were not seen",
            )
            assert started["status"] == "STARTING"

            # When its tick is triggered through the API
            triggered = client.post(
                "/api/admin/schedulers", headers=AUTH, json={"action": "trigger", "schedulerId": QUEUE}
            )
            assert triggered.status_code == 200, triggered.text

            # Then the pool runs it: RUNNING, with a last success and the stage lag from its metrics
            running = poll(
                client,
                lambda e: e["status"] == "RUNNING" and e["lagSeconds"] is not None,
                timeout=60,
                what="the triggered tick did not run",
            )
            assert running["lastSuccess"] is not None
            assert running["metrics"]["successfulRuns"] == 1
            assert client.get("/api/admin/schedulers/health").json()["details"][QUEUE]["status"] == "RUNNING"
            # (The run is recorded before Dramatiq acknowledges the tick; killed in between, the broker would
            # deliver the tick again and it would wait in the queue. Wait until RabbitMQ holds nothing.)
            poll(
                client,
                lambda e: (
                    (e["queueStats"]["depth"], e["queueStats"]["unacked"], e["queueStats"]["delayed"])
                    == (0, 0, 0)
                ),
                timeout=60,
                what="the tick was not acknowledged",
            )

            # When the pool is killed (no graceful shutdown)
            output = kill(pool)

            # Then the scheduler is in ERROR because its queue has no consumer, and the health answers 503
            dead = poll(
                client,
                lambda e: e["status"] == "ERROR",
                timeout=60,
                what="the dead pool was not reported",
            )
            assert f"no consumers on queue {QUEUE}: its worker is down" in dead["reasons"], json.dumps(dead)
            assert dead["metricsEndpoint"]["state"] == "down"
            health = client.get("/api/admin/schedulers/health")
            assert health.status_code == 503
            assert health.json()["details"][QUEUE]["healthy"] is False

            # When the scheduler is paused through the API
            paused = client.post(
                "/api/admin/schedulers", headers=AUTH, json={"action": "pause", "schedulerId": QUEUE}
            )
            assert paused.status_code == 200, paused.text

            # Then the health shows it PAUSED (nothing waits in its queue, so a pause is not an error)
            detail = client.get("/api/admin/schedulers/health").json()["details"][QUEUE]
            assert detail["status"] == "PAUSED", detail
            assert detail["reasons"][0] == "paused by an operator"
    finally:
        output = output or kill(pool)
        broker.close()
    assert "Traceback" not in output, output
