"""The broker: built from settings, with confirms, metrics, periodiq and limits under the consumer timeout;
classic or quorum queues, one broker address or several."""

from __future__ import annotations

import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries, TimeLimit
from dramatiq.middleware.prometheus import Prometheus
from periodiq import PeriodiqMiddleware

from pipeline.broker import build_broker
from pipeline.queue_arguments import queue_arguments
from pipeline.settings import SettingsError, load_settings


def _middleware(broker: object, kind: type) -> object:
    return next(m for m in broker.middleware if isinstance(m, kind))  # type: ignore[attr-defined]


def test_the_rabbitmq_broker_confirms_publishes_and_carries_our_middleware() -> None:
    # Given the default settings
    settings = load_settings(broker="rabbitmq")

    # When the broker is built (it connects lazily, so no server is needed here)
    broker = build_broker(settings)

    # Then publishes are confirmed, and metrics and periodic actors are available
    assert isinstance(broker, RabbitmqBroker)
    assert broker.confirm_delivery is True
    assert _middleware(broker, Prometheus)
    assert _middleware(broker, PeriodiqMiddleware)


def test_default_limits_stay_below_the_rabbitmq_consumer_timeout() -> None:
    # Given the default settings
    settings = load_settings(broker="rabbitmq")

    # When the broker is built
    broker = build_broker(settings)

    # Then time limits and backoff come from the settings, all under RabbitMQ's 30-minute consumer timeout
    time_limit = _middleware(broker, TimeLimit)
    retries = _middleware(broker, Retries)
    assert time_limit.time_limit == settings.actor_time_limit_ms < 30 * 60 * 1000  # type: ignore[attr-defined]
    assert retries.max_backoff == settings.actor_max_backoff_ms < 30 * 60 * 1000  # type: ignore[attr-defined]
    assert retries.max_retries == settings.actor_max_retries  # type: ignore[attr-defined]


def test_the_embedded_mode_gets_an_in_memory_broker() -> None:
    # Given the embedded mode
    settings = load_settings(broker="memory")

    # When the broker is built
    broker = build_broker(settings)

    # Then it is in memory, with the same limits and periodiq, without a metrics exposition
    assert isinstance(broker, StubBroker)
    assert _middleware(broker, PeriodiqMiddleware)
    assert not any(isinstance(m, Prometheus) for m in broker.middleware)


def test_quorum_queues_carry_the_type_the_delivery_limit_and_safe_dead_lettering() -> None:
    # Given quorum queues with a delivery limit of 3
    settings = load_settings(broker="rabbitmq", rabbitmq_queue_type="quorum", rabbitmq_delivery_limit=3)

    # When the arguments of a stage's three queues are read
    stage, delay, dead = (
        queue_arguments(settings, "csv-import", kind) for kind in ("stage", "delay", "dead-letter")
    )

    # Then all three are quorum queues; the stage and delay queues dead-letter to .XQ, at least once, after 3
    assert (
        stage
        == delay
        == {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "csv-import.XQ",
            "x-queue-type": "quorum",
            "x-delivery-limit": 3,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
    )
    # And the dead-letter queue keeps its messages for Dramatiq's seven days
    assert dead == {"x-message-ttl": 7 * 86_400_000, "x-queue-type": "quorum"}


def test_classic_queues_keep_dramatiqs_own_arguments() -> None:
    # Given the default queue type, and Dramatiq's own broker
    settings = load_settings(broker="rabbitmq")
    dramatiqs = RabbitmqBroker(url=settings.rabbitmq_url)
    # Dramatiq's own (untyped) method is the reference here
    expected = dramatiqs._build_queue_arguments("csv-import")  # type: ignore[no-untyped-call]

    # Then the stage and delay queues are declared as Dramatiq declares them: existing queues stay valid
    assert settings.rabbitmq_queue_type == "classic"
    assert queue_arguments(settings, "csv-import", "stage") == expected
    assert queue_arguments(settings, "csv-import", "delay") == expected
    assert queue_arguments(settings, "csv-import", "dead-letter") == {"x-message-ttl": 7 * 86_400_000}


def test_several_broker_addresses_become_connection_parameters_tried_in_order() -> None:
    # Given a cluster of three nodes in RABBITMQ_URL
    settings = load_settings(
        broker="rabbitmq",
        rabbitmq_url="amqp://u:p@10.0.0.1:5672/v, amqp://u:p@10.0.0.2:5672/v,amqp://u:p@10.0.0.3:5672/v",
    )

    # When the broker is built
    broker = build_broker(settings)

    # Then its connections try the three nodes in order
    assert isinstance(broker, RabbitmqBroker)
    assert [parameters.host for parameters in broker.parameters] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert {parameters.virtual_host for parameters in broker.parameters} == {"v"}
    # And the health API and the dashboards read the vhost of those nodes, not a path spanning the list
    assert settings.rabbitmq_vhost == "v"


def test_a_bad_address_among_several_is_named_without_its_password() -> None:
    # When one of the addresses is not an AMQP URL
    with pytest.raises(SettingsError) as raised:
        load_settings(rabbitmq_url="amqp://u:secret@a:5672/v,http://u:secret@b:5672/v")

    # Then the error names the variable and the address, and never the password
    assert "RABBITMQ_URL: 'http://u:***@b:5672/v' is not an amqp:// or amqps:// URL" in str(raised.value)
    assert "secret" not in str(raised.value)
