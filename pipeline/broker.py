"""Building the Dramatiq broker from the settings.

RabbitMQ in production, with publisher confirms (a publish that RabbitMQ did not accept raises instead of
vanishing), Prometheus metrics and periodiq's ``periodic`` actor option. The in-memory broker serves the
embedded demo and unit tests. Every default limit stays below RabbitMQ's consumer timeout (see
``pipeline.settings``), so no message is redelivered forever because an actor or a backoff outlived it.

``RABBITMQ_URL`` may name several nodes of one cluster, comma-separated: every connection (publishers,
consumers, a consumer reconnecting after its node went away) tries them in order, so it lands on a survivor.
With ``RABBITMQ_QUEUE_TYPE=quorum`` every stage queue, its delay queue and its dead-letter queue are quorum
queues (see :mod:`pipeline.queue_arguments`).
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, xq_name
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from dramatiq.middleware.prometheus import Prometheus
from periodiq import PeriodiqMiddleware

from pipeline.logs import LogContext
from pipeline.queue_arguments import QueueKind, queue_arguments
from pipeline.settings import Settings

__all__ = ["PipelineRabbitmqBroker", "build_broker"]


class PipelineRabbitmqBroker(RabbitmqBroker):
    """Dramatiq's RabbitMQ broker, declaring its three queues per stage with our arguments (queue type,
    delivery limit, dead-letter strategy); everything else is Dramatiq's."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        urls = settings.rabbitmq_urls
        super().__init__(url=urls if len(urls) > 1 else urls[0], **options)
        self.settings = settings

    def _declare(self, name: str, canonical: str, kind: QueueKind) -> Any:
        return self.channel.queue_declare(
            queue=name, durable=True, arguments=queue_arguments(self.settings, canonical, kind)
        )

    def _declare_queue(self, queue_name: str) -> Any:
        return self._declare(queue_name, queue_name, "stage")

    def _declare_dq_queue(self, queue_name: str) -> Any:
        return self._declare(dq_name(queue_name), queue_name, "delay")

    def _declare_xq_queue(self, queue_name: str) -> Any:
        return self._declare(xq_name(queue_name), queue_name, "dead-letter")


def _middleware(settings: Settings, *, with_prometheus: bool) -> list[Middleware]:
    middleware: list[Middleware] = [
        AgeLimit(),
        TimeLimit(time_limit=settings.actor_time_limit_ms),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=settings.actor_max_retries,
            min_backoff=settings.actor_min_backoff_ms,
            max_backoff=settings.actor_max_backoff_ms,
        ),
        CurrentMessage(),
        LogContext(),
        PeriodiqMiddleware(),
    ]
    if with_prometheus:
        middleware.append(Prometheus())
    return middleware


def build_broker(settings: Settings) -> dramatiq.Broker:
    """A broker configured from ``settings``; it is not yet installed as the global broker."""
    if settings.broker == "memory":
        return StubBroker(middleware=_middleware(settings, with_prometheus=False))
    return PipelineRabbitmqBroker(
        settings, confirm_delivery=True, middleware=_middleware(settings, with_prometheus=True)
    )
