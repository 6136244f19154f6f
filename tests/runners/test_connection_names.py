"""Every RabbitMQ connection is named for its role and host, as RabbitMQ's management API (and UI) show it:
a pool's after the queues it consumes, the scheduler's, the health API's."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pika
import pytest
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from pipeline.broker import build_broker, connection_name
from pipeline.health.api import enqueue_on_pipeline_broker
from pipeline.publishing import Publisher, _process_publisher
from pipeline.queues import CSV_IMPORT
from pipeline.settings import get_settings, load_settings
from tests.processes import free_port, running
from tests.services import RABBITMQ_URL, require_rabbitmq

MANAGEMENT = "http://127.0.0.1:15672"


def _connection_names(vhost: str) -> set[str]:
    response = httpx.get(
        f"{MANAGEMENT}/api/vhosts/{quote(vhost, safe='')}/connections",
        params={"columns": "name,client_properties.connection_name"},
        auth=("guest", "guest"),
        timeout=5,
    )
    response.raise_for_status()
    return {row.get("client_properties", {}).get("connection_name", "") for row in response.json()}


def _wait_for_names(vhost: str, wanted: set[str]) -> set[str]:
    """The connection names of ``vhost`` once they include ``wanted`` (the API refreshes every few seconds;
    at most 60 s)."""
    deadline = time.monotonic() + 60
    names = _connection_names(vhost)
    while not wanted <= names and time.monotonic() < deadline:
        time.sleep(1)
        names = _connection_names(vhost)
    return names


def test_a_connection_name_says_role_and_host() -> None:
    assert connection_name("csv-import pool") == f"csv-import pool@{socket.gethostname()}"


@pytest.fixture
def process_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process-wide settings (what the health API publishes with) pointed at the test's vhost."""
    monkeypatch.setenv("RABBITMQ_URL", RABBITMQ_URL)
    get_settings.cache_clear()
    _process_publisher.cache_clear()
    yield
    _process_publisher("health").close()
    _process_publisher.cache_clear()
    get_settings.cache_clear()


@pytest.mark.rabbitmq
@pytest.mark.usefixtures("process_settings")
def test_pool_scheduler_and_health_connections_are_named_in_the_management_api(tmp_path: Path) -> None:
    # Given a csv-import pool started by the plain dramatiq command, and the publishers of the scheduler and
    # of the health API, on this test's vhost
    require_rabbitmq()
    settings = load_settings(rabbitmq_url=RABBITMQ_URL)
    vhost = settings.rabbitmq_vhost
    pool = [sys.executable, "-m", "dramatiq", "pipeline.actors", "--queues", CSV_IMPORT, "-p", "1", "-t", "1"]
    env = {"RABBITMQ_URL": RABBITMQ_URL, "METRICS_HOST": "127.0.0.1", "METRICS_PORT": str(free_port())}
    scheduler = Publisher(settings, role="scheduler")
    with running(pool, env, tmp_path / "pool.log"):
        # When the scheduler and the health API each send a message
        message: Message[None] = Message(
            queue_name=CSV_IMPORT, actor_name="no_such_actor", args=(), kwargs={}, options={}
        )
        scheduler(message)
        enqueue_on_pipeline_broker(message)
        names = _wait_for_names(
            vhost, {connection_name(role) for role in ("csv-import pool", "scheduler", "health")}
        )
        scheduler.close()

    # Then RabbitMQ shows each connection with its role and host
    host = socket.gethostname()
    assert {f"csv-import pool@{host}", f"scheduler@{host}", f"health@{host}"} <= names, names


def test_a_broker_names_its_connections_after_its_role() -> None:
    broker = build_broker(load_settings(rabbitmq_url=RABBITMQ_URL), role="scheduler")
    assert isinstance(broker, RabbitmqBroker)
    assert isinstance(broker.parameters, pika.connection.Parameters)
    assert broker.parameters.client_properties["connection_name"] == connection_name("scheduler")
