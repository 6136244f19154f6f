"""Quorum queues on the real RabbitMQ (the vhost of ``TEST_RABBITMQ_URL``): the three queues of a stage, the
broker's delivery limit against a message that kills its worker, retries through the delay queue, and
clients that skip a node which does not answer.

Each test uses queues of its own name, deleted afterwards: the stage queues of the shared test vhost may be
classic ones, and a queue cannot change its type.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import dramatiq
import httpx
import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from pipeline.broker import build_broker
from pipeline.dead_letters import DELIVERY_LIMIT_ERROR, list_dead_letters
from pipeline.health.sources import HttpSources
from pipeline.settings import Settings, load_settings, rabbitmq_vhost
from tests.services import RABBITMQ_URL, require_rabbitmq

MANAGEMENT_URL = "http://guest:guest@127.0.0.1:15672"
DYING_WORKER = Path(__file__).with_name("dying_worker.py")


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: a cluster node that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rabbitmq(settings: Settings) -> RabbitmqBroker:
    broker = build_broker(settings)
    assert isinstance(broker, RabbitmqBroker)
    return broker


def _quorum(**overrides: object) -> Settings:
    return load_settings(**{"rabbitmq_url": RABBITMQ_URL, "rabbitmq_queue_type": "quorum", **overrides})


def _depth(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


@pytest.fixture
def queue() -> Iterator[str]:
    """A fresh queue name; the queue, its delay and its dead-letter queue are deleted afterwards."""
    require_rabbitmq()
    name = f"test-quorum-{uuid.uuid4().hex[:10]}"
    yield name
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    for queue_name in (name, f"{name}.DQ", f"{name}.XQ"):
        connection.channel().queue_delete(queue_name)
    connection.close()


@pytest.mark.rabbitmq
def test_the_three_queues_of_a_stage_are_quorum_queues(queue: str) -> None:
    # When a quorum broker declares a stage queue
    broker = _rabbitmq(_quorum())
    broker.declare_queue(queue, ensure=True)
    broker.close()

    # Then RabbitMQ holds the stage, delay and dead-letter queues as quorum queues, the first two limited
    vhost = quote(rabbitmq_vhost(RABBITMQ_URL), safe="")
    for name, limited in ((queue, True), (f"{queue}.DQ", True), (f"{queue}.XQ", False)):
        answer = httpx.get(
            f"http://127.0.0.1:15672/api/queues/{vhost}/{name}", auth=("guest", "guest")
        ).json()
        assert answer["type"] == "quorum", name
        assert ("x-delivery-limit" in answer["arguments"]) is limited, name


@pytest.mark.rabbitmq
def test_a_message_that_kills_its_worker_each_time_is_dead_lettered_after_the_delivery_limit(
    queue: str,
) -> None:
    # Given a quorum queue with a delivery limit of 2, and a message whose actor kills its worker process
    broker = _rabbitmq(_quorum(rabbitmq_delivery_limit=2))
    broker.declare_queue(queue, ensure=True)
    broker.enqueue(dramatiq.Message(queue_name=queue, actor_name="crash", args=(), kwargs={}, options={}))
    broker.close()

    # When a worker is started again each time it died, until the queue is empty
    deaths = 0
    while _depth(queue) and deaths < 6:
        worker = subprocess.run(
            [sys.executable, str(DYING_WORKER), RABBITMQ_URL, queue, "2"], timeout=120, check=False
        )
        assert worker.returncode == -9
        deaths += 1

    # Then RabbitMQ delivered it three times (the first and two redeliveries), then dead-lettered it
    assert deaths == 3
    assert _depth(queue) == 0
    # And the dead letter is listed with the reason: its worker never acknowledged it
    [letter] = list_dead_letters(RABBITMQ_URL, [queue])
    assert (letter.actor, letter.error) == ("crash", DELIVERY_LIMIT_ERROR)


@pytest.mark.rabbitmq
def test_a_retry_waits_in_the_quorum_delay_queue_and_comes_back(queue: str) -> None:
    # Given a quorum broker and an actor that fails its first attempt
    broker = _rabbitmq(_quorum(actor_min_backoff_ms=100, actor_max_backoff_ms=200))
    attempts: list[float] = []

    def flaky() -> None:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")

    actor = dramatiq.actor(broker=broker, queue_name=queue, actor_name="flaky", max_retries=3)(flaky)
    worker = dramatiq.Worker(broker, queues={queue, f"{queue}.DQ"}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        # When it is sent
        actor.send()
        deadline = time.monotonic() + 60
        while len(attempts) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        broker.join(queue, min_successes=2, timeout=30_000)
    finally:
        worker.stop()
        broker.close()

    # Then the retry went through the delay queue after its backoff and succeeded; nothing was dead-lettered
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= 0.1
    assert _depth(f"{queue}.DQ") == _depth(f"{queue}.XQ") == 0


@pytest.mark.rabbitmq
def test_an_existing_classic_queue_cannot_become_a_quorum_queue_in_place(queue: str) -> None:
    # Given a stage queue declared classic, as today's deployments have it
    classic = _rabbitmq(load_settings(rabbitmq_url=RABBITMQ_URL))
    classic.declare_queue(queue, ensure=True)
    classic.close()

    # When a quorum broker declares it, then RabbitMQ refuses: the migration is explicit (docs/operations.md)
    quorum = _rabbitmq(_quorum())
    with pytest.raises(dramatiq.errors.ConnectionClosed, match="PRECONDITION_FAILED"):
        quorum.declare_queue(queue, ensure=True)
    quorum.close()


@pytest.mark.rabbitmq
def test_publishers_consumers_and_the_health_api_skip_a_node_that_does_not_answer(queue: str) -> None:
    # Given broker addresses whose first node is down
    down = _closed_port()
    vhost_path = RABBITMQ_URL.rsplit("/", 1)[1]
    settings = _quorum(
        rabbitmq_url=f"amqp://guest:guest@127.0.0.1:{down}/{vhost_path},{RABBITMQ_URL}",
        rabbitmq_management_url=f"http://guest:guest@127.0.0.1:{down},{MANAGEMENT_URL}",
    )
    broker = build_broker(settings)
    done: list[str] = []
    actor = dramatiq.actor(broker=broker, queue_name=queue, actor_name="record")(done.append)
    worker = dramatiq.Worker(broker, queues={queue}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        # When a message is published and consumed
        actor.send("hello")
        deadline = time.monotonic() + 60
        while not done and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        broker.close()
    # Then both went through the node that answers
    assert done == ["hello"]
    # And the health API reads the queues from it, and the dead letters can be listed through it
    sources = HttpSources(settings)
    try:
        assert sources.queues([queue])[queue].ready == 0
    finally:
        sources.close()
    assert list_dead_letters(settings.rabbitmq_url, [queue]) == []
