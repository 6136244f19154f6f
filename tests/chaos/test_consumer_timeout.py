"""RabbitMQ's consumer timeout on quorum queues, on a node of the test's own with ``consumer_timeout`` at
3 s: a delivery held unacknowledged past it is taken back and delivered again, and that delivery counts
against ``RABBITMQ_DELIVERY_LIMIT``. Outside CI (RabbitMQ checks the timeout about once a minute)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import dramatiq
import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from pipeline.broker import build_broker
from pipeline.devtools.rabbitmq_nodes import RabbitCluster, RabbitNodeError
from pipeline.settings import load_settings
from tests.services import service_unavailable


@pytest.fixture
def node_with_a_short_consumer_timeout() -> Iterator[RabbitCluster]:
    cluster = RabbitCluster(1, config="consumer_timeout = 3000\n")
    try:
        cluster.start()
    except RabbitNodeError as exc:
        cluster.close()
        service_unavailable("an own RabbitMQ node", exc)
    yield cluster
    cluster.close()


@pytest.mark.chaos
@pytest.mark.long
def test_a_delivery_held_past_the_consumer_timeout_comes_back_and_counts(
    node_with_a_short_consumer_timeout: RabbitCluster,
) -> None:
    url = node_with_a_short_consumer_timeout.urls()
    # Given a message on a quorum queue, taken by a consumer that never acknowledges it
    broker = build_broker(load_settings(rabbitmq_url=url, rabbitmq_queue_type="quorum"))
    assert isinstance(broker, RabbitmqBroker)
    broker.declare_queue("slow", ensure=True)
    broker.enqueue(dramatiq.Message(queue_name="slow", actor_name="slow", args=(), kwargs={}, options={}))
    broker.close()
    holder = pika.BlockingConnection(pika.URLParameters(url))
    channel = holder.channel()
    channel.basic_qos(prefetch_count=1)
    method, _, _ = next(channel.consume("slow", inactivity_timeout=5))
    assert method is not None

    # When the consumer keeps it past the consumer timeout (the connection itself stays up)
    other = pika.BlockingConnection(pika.URLParameters(url))
    deadline = time.monotonic() + 150
    taken = None
    while taken is None and time.monotonic() < deadline:
        holder.process_data_events(time_limit=1)
        got, properties, _ = other.channel().basic_get("slow", auto_ack=True)
        taken = (got, properties) if got is not None else None

    # Then RabbitMQ took it back and delivered it again, counting that delivery
    assert taken is not None
    got, properties = taken
    assert got.redelivered
    assert properties.headers["x-delivery-count"] == 1
    other.close()
    with contextlib.suppress(pika.exceptions.AMQPError):
        holder.close()
