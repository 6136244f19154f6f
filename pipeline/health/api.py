"""The health and admin HTTP API (``livedash health``): the application, assembled from its routers.

- ``GET|HEAD /api/admin/schedulers/health``: 200 when healthy, 503 when not; no authentication (generic
  reasons; the full ones with the bearer token) (:mod:`pipeline.health.probes`).
- ``GET /api/admin/schedulers``: every scheduler with its figures, state and health (bearer token).
- ``POST /api/admin/schedulers`` ``{action, schedulerId?}``: trigger, pause, resume, start, stop, startAll,
  stopAll (bearer token) (:mod:`pipeline.health.admin`).
- ``GET /api/admin/costs``, ``GET|PUT /api/admin/companies/{companyId}/budget``: AI spend (bearer token)
  (:mod:`pipeline.health.spend`).
- ``/healthz`` (the process answers), ``/readyz`` (the database answers), ``/metrics`` (Prometheus).

The bodies are in :mod:`pipeline.health.bodies`; ``docs/health.md`` has the rules, the shapes and examples.
Every refusal, FastAPI's own included, is answered in the API's :class:`~pipeline.health.bodies.Failure`
shape, and a request that fails validation gets 400, never FastAPI's 422. Before the application sees a
request, :class:`~pipeline.health.gate.RequestGate` authenticates the admin path and caps the body; the health
report is computed once per ``HEALTH_CACHE_MS`` (:mod:`pipeline.health.cache`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from dramatiq import Message
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline import __version__
from pipeline.health.admin import AdminRefused, admin_router, guarded
from pipeline.health.aggregator import HealthAggregator, build_aggregator
from pipeline.health.bodies import Failure, failure_response, json_response
from pipeline.health.cache import CachedHealth
from pipeline.health.context import ApiContext
from pipeline.health.gate import RequestGate
from pipeline.health.probes import health_router, probes_router
from pipeline.health.spend import spend_router
from pipeline.metrics import HEALTH_COUNTERS, create_series
from pipeline.scheduling.ticks import Publish
from pipeline.settings import Settings

__all__ = ["create_app", "enqueue_on_pipeline_broker"]


def enqueue_on_pipeline_broker(message: Message[None]) -> Message[None]:
    """Publish by queue and actor name on a broker built at the first trigger (no actor is declared)."""
    from pipeline.publishing import enqueue_by_name

    return enqueue_by_name(message, role="health")


# --- refusals in the API's shape ---------------------------------------------------------------------------


def _error_text(location: tuple[Any, ...], message: str) -> str:
    path = ".".join(str(part) for part in location if part != "body")
    return f"{path or 'body'}: {message}"


async def _admin_refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AdminRefused)
    return failure_response(exc.status_code, exc.error, exc.headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's own refusals (a body that cannot be read, an unknown path or method) in our shape.
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        failure = Failure(success=False, error="Validation failed", errors=[f"body: {exc.detail}"])
    else:
        failure = Failure(success=False, error=str(exc.detail))
    return json_response(failure, exc.status_code, dict(exc.headers or {}))


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_error_text(tuple(error["loc"]), error["msg"]) for error in exc.errors()]
    return json_response(Failure(success=False, error="Validation failed", errors=errors), 400)


# --- the OpenAPI document ----------------------------------------------------------------------------------


def _without_422(schema: dict[str, Any]) -> dict[str, Any]:
    """The document as the API answers: validation failures are 400 (documented), never 422."""
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            if method == "head":  # no body, so no media type either
                for response in responses.values():
                    response.pop("content", None)
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    return schema


def _install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _without_422(
                get_openapi(
                    title=app.title, version=app.version, description=app.description, routes=app.routes
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# --- the application ---------------------------------------------------------------------------------------


def create_app(
    settings: Settings,
    *,
    engine: Engine,
    aggregator: HealthAggregator | None = None,
    publish: Publish = enqueue_on_pipeline_broker,
    registry: CollectorRegistry = REGISTRY,
) -> FastAPI:
    """The API over ``engine`` and the sources of ``settings`` (or ``aggregator``, for tests).

    ``publish`` sends a triggered tick (default: the pipeline's broker). Raises
    :class:`~pipeline.health.targets.TargetsError` when ``HEALTH_METRICS_TARGETS`` cannot be used."""
    create_series(settings, HEALTH_COUNTERS)
    health = aggregator or build_aggregator(settings, engine)
    context = ApiContext(
        settings=settings,
        engine=engine,
        health=health,
        reports=CachedHealth(health.evaluate, settings.health_cache_ms),
        publish=guarded(publish),
        registry=registry,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            context.health.close()

    app = FastAPI(
        title="LiveDash health and admin API",
        version=__version__,
        description="Scheduler health (no authentication) and scheduler control (bearer token). "
        "See docs/health.md.",
        lifespan=lifespan,
    )
    app.state.api = context
    app.add_middleware(RequestGate, context=context)
    app.add_exception_handler(AdminRefused, _admin_refused)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.include_router(health_router)
    app.include_router(admin_router)
    app.include_router(spend_router)
    app.include_router(probes_router)
    _install_openapi(app)
    return app
