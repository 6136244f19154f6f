"""The broker: built from settings, with confirms, metrics, periodiq and limits under the consumer timeout."""

from __future__ import annotations

from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries, TimeLimit
from dramatiq.middleware.prometheus import Prometheus
from periodiq import PeriodiqMiddleware

from pipeline.broker import build_broker
from pipeline.settings import load_settings


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
