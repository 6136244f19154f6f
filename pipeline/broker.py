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

import socket
from collections.abc import Callable
from typing import Any

import dramatiq
import pika
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
from pipeline.pool_metrics import serve_pool_metrics
from pipeline.queue_arguments import QueueKind, queue_arguments
from pipeline.settings import Settings

__all__ = [
    "NamedConnections",
    "PipelineRabbitmqBroker",
    "PoolPrometheus",
    "build_broker",
    "connection_name",
    "name_connections",
]


def connection_name(role: str) -> str:
    """How a connection shows in RabbitMQ's management UI: its role and host (``scheduler@host-1``)."""
    return f"{role}@{socket.gethostname()}"


def name_connections(
    parameters: pika.ConnectionParameters | list[pika.ConnectionParameters], role: str
) -> None:
    """Name every connection opened with ``parameters`` (pika's ``connection_name`` client property)."""
    for each in parameters if isinstance(parameters, list) else [parameters]:
        each.client_properties = {**(each.client_properties or {}), "connection_name": connection_name(role)}


class NamedConnections(Middleware):
    """Names a worker's connections after the queues it consumes (``csv-import pool@host``) before its
    consumers connect."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if isinstance(broker, RabbitmqBroker):
            queues = sorted(worker.consumer_whitelist or broker.get_declared_queues())
            name_connections(broker.parameters, f"{','.join(queues)} pool")


class PoolPrometheus(Prometheus):
    """Dramatiq's Prometheus middleware, served by the pool's own exposition process
    (``pipeline.pool_metrics``: this run's directory, ``METRICS_HOST``/``METRICS_PORT``, a port in use in one
    line), with its counters created at zero for every actor of the queues a worker consumes, so that the
    first error or retry of a process is an increase."""

    @property
    def forks(self) -> list[Callable[[], int]]:
        return [serve_pool_metrics]

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not hasattr(self, "total_messages"):  # a worker started without Dramatiq's process boot (tests)
            return
        consumed = worker.consumer_whitelist
        for actor in broker.actors.values():
            if consumed and actor.queue_name not in consumed:
                continue
            labels = (actor.queue_name, actor.actor_name)
            for counter in (
                self.total_messages,
                self.total_errored_messages,
                self.total_retried_messages,
                self.total_rejected_messages,
            ):
                counter.labels(*labels).inc(0)
            self.inprogress_messages.labels(*labels).set(0)
            self.inprogress_delayed_messages.labels(*labels).set(0)
            self.message_durations.labels(*labels)


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
        middleware += [PoolPrometheus(), NamedConnections()]
    return middleware


def build_broker(settings: Settings, *, role: str = "livedash") -> dramatiq.Broker:
    """A broker configured from ``settings``, its connections named ``<role>@<host>`` (a worker's get the
    queues it consumes); it is not yet installed as the global broker."""
    if settings.broker == "memory":
        return StubBroker(middleware=_middleware(settings, with_prometheus=False))
    broker = PipelineRabbitmqBroker(
        settings, confirm_delivery=True, middleware=_middleware(settings, with_prometheus=True)
    )
    name_connections(broker.parameters, role)
    return broker
