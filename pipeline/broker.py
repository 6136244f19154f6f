"""Building the Dramatiq broker from the settings.

RabbitMQ in production, with publisher confirms (a publish that RabbitMQ did not accept raises instead of
vanishing), Prometheus metrics and periodiq's ``periodic`` actor option. The in-memory broker serves the
embedded demo and unit tests. Every default limit stays below RabbitMQ's consumer timeout (see
``pipeline.settings``), so no message is redelivered forever because an actor or a backoff outlived it.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
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
from pipeline.settings import Settings

__all__ = ["build_broker"]


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
    return RabbitmqBroker(
        url=settings.rabbitmq_url,
        confirm_delivery=True,
        middleware=_middleware(settings, with_prometheus=True),
    )
