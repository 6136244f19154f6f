"""What every route of the health and admin API works with, made once by ``create_app``.

A route asks for it with the :data:`Context` dependency; it lives on ``app.state``, so a middleware (or a
test) reaches the same one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from pipeline.health.aggregator import HealthAggregator
from pipeline.health.cache import CachedHealth
from pipeline.scheduling.ticks import Publish
from pipeline.settings import Settings

__all__ = ["ApiContext", "Context", "api_context"]


@dataclass(frozen=True)
class ApiContext:
    """The settings, the database, the health sources (and their cached report), the tick publisher and
    the metrics registry."""

    settings: Settings
    engine: Engine
    health: HealthAggregator
    reports: CachedHealth
    publish: Publish
    registry: CollectorRegistry

    @property
    def admin_token(self) -> bytes:
        """``ADMIN_API_TOKEN``; empty when the admin API is disabled."""
        return self.settings.admin_api_token.get_secret_value().encode()


def api_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.api
    return context


#: The API's context, as a route parameter.
Context = Annotated[ApiContext, Depends(api_context)]
