"""The health and admin HTTP API (``livedash health``), with the seed's paths and response shapes.

- ``GET|HEAD /api/admin/schedulers/health``: 200 when healthy, 503 when not; no authentication.
- ``GET /api/admin/schedulers``: every scheduler with its figures, state and health (bearer token).
- ``POST /api/admin/schedulers`` ``{action, schedulerId?}``: trigger, pause, resume, start, stop, startAll,
  stopAll (bearer token).
- ``/healthz`` (the process answers), ``/readyz`` (the database answers), ``/metrics`` (Prometheus).

``docs/health.md`` has the rules, the shapes and examples.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from dramatiq import Message
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline import __version__
from pipeline.db.types import utcnow
from pipeline.health.aggregator import (
    HealthAggregator,
    HealthReport,
    SchedulerHealth,
    build_aggregator,
    describe_error,
)
from pipeline.health.rules import EndpointState
from pipeline.scheduling.control import SINGLE_ACTIONS, Action, InvalidAction, apply_action
from pipeline.scheduling.jobs import UnknownScheduler
from pipeline.scheduling.ticks import Publish
from pipeline.settings import Settings

__all__ = ["create_app", "enqueue_on_pipeline_broker"]

logger = logging.getLogger(__name__)

HEALTH_PATH = "/api/admin/schedulers/health"
ADMIN_PATH = "/api/admin/schedulers"
ADMIN_DISABLED = "admin API disabled: ADMIN_API_TOKEN is not set"
MISSING_SCHEDULER_ID = f"schedulerId is required for {', '.join(SINGLE_ACTIONS)} actions"

StatusName = Literal["RUNNING", "STARTING", "PAUSED", "STOPPED", "ERROR"]


# --- response and request bodies (they are the OpenAPI document's schemas) --------------------------------


class SchedulerDetail(BaseModel):
    status: StatusName
    healthy: bool
    lastSuccess: datetime | None
    reasons: list[str]


class SchedulerCounts(BaseModel):
    total: int
    running: int
    errors: int


class HealthBody(BaseModel):
    """The seed's health shape, with a ``reasons`` list per scheduler."""

    healthy: bool
    status: Literal["healthy", "unhealthy"]
    timestamp: datetime
    schedulers: SchedulerCounts
    details: dict[str, SchedulerDetail]


class HealthFailure(BaseModel):
    """The seed's answer when the health could not be computed at all (a bug, never a source failure)."""

    healthy: Literal[False]
    status: Literal["error"]
    timestamp: datetime
    error: str


class QueueState(BaseModel):
    """The scheduler's queue as RabbitMQ's management API saw it (nulls: RabbitMQ unreadable)."""

    depth: int | None = Field(description="messages ready")
    unacked: int | None
    consumers: int | None
    delayed: int | None = Field(description="messages in the delay queue (<queue>.DQ): retries, delays")
    deadLetters: int | None = Field(description="messages in the dead-letter queue (<queue>.XQ)")
    declared: bool | None


class RunFigures(BaseModel):
    """Runs started in the last 24 hours (nulls: database unreadable)."""

    window: Literal["24h"]
    totalRuns: int | None
    successfulRuns: int | None
    failedRuns: int | None
    averageRunSeconds: float | None


class EndpointBody(BaseModel):
    """A metrics endpoint: ``unknown`` when none is configured or the metrics source is unreadable."""

    state: Literal["up", "down", "unknown"]
    answered: int
    total: int
    errors: list[str]


class SchedulerEntry(BaseModel):
    id: str
    name: str
    queue: str
    cron: str
    timezone: str
    status: StatusName
    healthy: bool
    control: Literal["ACTIVE", "PAUSED", "STOPPED"] | None
    enabled: bool
    runningNow: bool | None
    lastRun: datetime | None
    lastRunStatus: str | None
    lastSuccess: datetime | None
    lastError: str | None
    lastErrorAt: datetime | None
    lastTick: datetime | None
    lastTickOutcome: str | None
    nextRun: datetime | None
    consecutiveFailures: int | None
    metrics: RunFigures
    queueStats: QueueState
    lagSeconds: float | None
    metricsEndpoint: EndpointBody
    reasons: list[str]


class SourceState(BaseModel):
    ok: bool
    error: str | None


class SchedulerList(BaseModel):
    success: Literal[True]
    timestamp: datetime
    health: HealthBody
    schedulers: list[SchedulerEntry]
    sources: dict[str, SourceState]
    components: dict[str, EndpointBody]


class ActionRequest(BaseModel):
    # The document says what the validator below checks: the single actions need a schedulerId.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"action": {"enum": list(SINGLE_ACTIONS)}}, "required": ["action"]},
            "then": {
                "required": ["schedulerId"],
                "properties": {"schedulerId": {"type": "string", "minLength": 1}},
            },
        }
    )

    action: Action
    schedulerId: str | None = Field(default=None, validate_default=True)

    @field_validator("schedulerId")
    @classmethod
    def _required_for_single_actions(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("action") in SINGLE_ACTIONS and not value:
            raise PydanticCustomError("scheduler_id_required", MISSING_SCHEDULER_ID)
        return value


class ActionDone(BaseModel):
    success: Literal[True]
    message: str
    timestamp: datetime


class Failure(BaseModel):
    success: Literal[False]
    error: str
    errors: list[str] | None = None


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    error: str | None = None


# --- building the bodies -----------------------------------------------------------------------------------


def health_body(report: HealthReport) -> HealthBody:
    return HealthBody(
        healthy=report.healthy,
        status="healthy" if report.healthy else "unhealthy",
        timestamp=report.timestamp,
        schedulers=SchedulerCounts(
            total=len(report.schedulers), running=report.running, errors=report.errors
        ),
        details={
            scheduler.job.id: SchedulerDetail(
                status=scheduler.status.value,
                healthy=scheduler.healthy,
                lastSuccess=scheduler.last_success,
                reasons=list(scheduler.reasons),
            )
            for scheduler in report.schedulers
        },
    )


def _endpoint_body(state: EndpointState | None) -> EndpointBody:
    if state is None or state.total == 0:
        return EndpointBody(state="unknown", answered=0, total=0, errors=[])
    return EndpointBody(
        state="up" if state.up else "down",
        answered=state.answered,
        total=state.total,
        errors=list(state.failures),
    )


def _entry(scheduler: SchedulerHealth, settings: Settings) -> SchedulerEntry:
    overview = scheduler.overview
    queue = scheduler.queue
    control = overview.control if overview else None
    return SchedulerEntry(
        id=scheduler.job.id,
        name=scheduler.job.name,
        queue=scheduler.job.queue,
        cron=scheduler.job.cron,
        timezone=settings.scheduler_timezone,
        status=scheduler.status.value,
        healthy=scheduler.healthy,
        control=control if control in ("ACTIVE", "PAUSED", "STOPPED") else None,
        enabled=settings.scheduler_enabled,
        runningNow=overview.running_now if overview else None,
        lastRun=overview.last_run_at if overview else None,
        lastRunStatus=overview.last_run_status if overview else None,
        lastSuccess=scheduler.last_success,
        lastError=overview.last_error if overview else None,
        lastErrorAt=overview.last_error_at if overview else None,
        lastTick=overview.last_tick_at if overview else None,
        lastTickOutcome=overview.last_tick_outcome if overview else None,
        nextRun=overview.next_run_at if overview else None,
        consecutiveFailures=overview.consecutive_failures if overview else None,
        metrics=RunFigures(
            window="24h",
            totalRuns=overview.recent_runs if overview else None,
            successfulRuns=overview.recent_successes if overview else None,
            failedRuns=overview.recent_failures if overview else None,
            averageRunSeconds=overview.average_run_seconds if overview else None,
        ),
        queueStats=QueueState(
            depth=queue.ready if queue else None,
            unacked=queue.unacked if queue else None,
            consumers=queue.consumers if queue else None,
            delayed=queue.delayed if queue else None,
            deadLetters=queue.dead_letters if queue else None,
            declared=queue.declared if queue else None,
        ),
        lagSeconds=scheduler.lag_seconds,
        metricsEndpoint=_endpoint_body(scheduler.metrics_endpoint),
        reasons=list(scheduler.reasons),
    )


def scheduler_list(report: HealthReport, aggregator: HealthAggregator) -> SchedulerList:
    metrics_source = "prometheus" if aggregator.prometheus_mode else "metrics"
    sources = {
        name: SourceState(ok=name not in report.source_errors, error=report.source_errors.get(name))
        for name in ("database", "rabbitmq", metrics_source)
    }
    return SchedulerList(
        success=True,
        timestamp=report.timestamp,
        health=health_body(report),
        schedulers=[_entry(scheduler, aggregator.settings) for scheduler in report.schedulers],
        sources=sources,
        components={name: _endpoint_body(state) for name, state in report.components.items()},
    )


def _json(model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        model.model_dump(mode="json", exclude_none=isinstance(model, Failure)), status_code, headers
    )


def _failure(status_code: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return _json(Failure(success=False, error=error), status_code, headers)


# --- the application ---------------------------------------------------------------------------------------


class _AdminRefused(Exception):
    def __init__(self, status_code: int, error: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.headers = headers


class _BrokerUnavailable(Exception):
    pass


def enqueue_on_pipeline_broker(message: Message[None]) -> Message[None]:
    """Publish by queue and actor name on a broker built at the first trigger (no actor is declared)."""
    from pipeline.publishing import enqueue_by_name

    return enqueue_by_name(message)


def _guarded(publish: Publish) -> Publish:
    def guarded(message: Message[None]) -> Message[None]:
        try:
            return publish(message)
        except Exception as exc:
            raise _BrokerUnavailable(describe_error(exc)) from exc

    return guarded


def _error_text(location: tuple[Any, ...], message: str) -> str:
    path = ".".join(str(part) for part in location if part != "body")
    return f"{path or 'body'}: {message}"


#: The ``Authorization: Bearer`` credentials, if any (module level: FastAPI resolves annotations here).
BearerCredentials = Annotated[
    HTTPAuthorizationCredentials | None,
    Depends(HTTPBearer(auto_error=False, description="ADMIN_API_TOKEN")),
]

FAILURES: dict[int | str, dict[str, Any]] = {
    401: {"model": Failure, "description": "No bearer token, or not ADMIN_API_TOKEN"},
    503: {"model": Failure, "description": ADMIN_DISABLED},
}


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
    health = aggregator or build_aggregator(settings, engine)
    publish_tick = _guarded(publish)
    admin_token = settings.admin_api_token.get_secret_value().encode()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            health.close()

    app = FastAPI(
        title="LiveDash health and admin API",
        version=__version__,
        description="Scheduler health (no authentication) and scheduler control (bearer token). "
        "See docs/health.md.",
        lifespan=lifespan,
    )

    async def require_admin(credentials: BearerCredentials) -> None:
        if not admin_token:
            raise _AdminRefused(503, ADMIN_DISABLED)
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, admin_token):
            raise _AdminRefused(
                401, "unauthorized: a valid bearer token is required", {"WWW-Authenticate": "Bearer"}
            )

    @app.exception_handler(_AdminRefused)
    async def admin_refused(_request: Request, exc: _AdminRefused) -> JSONResponse:
        return _failure(exc.status_code, exc.error, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body that cannot be read, an unknown path or method) in our shape.
        if exc.status_code == 400:
            failure = Failure(success=False, error="Validation failed", errors=[f"body: {exc.detail}"])
        else:
            failure = Failure(success=False, error=str(exc.detail))
        return _json(failure, exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_error_text(tuple(error["loc"]), error["msg"]) for error in exc.errors()]
        return _json(Failure(success=False, error="Validation failed", errors=errors), 400)

    async def report_or_failure() -> HealthReport | JSONResponse:
        try:
            return await health.evaluate()
        except Exception:
            logger.exception("scheduler health could not be computed")
            failure = HealthFailure(
                healthy=False,
                status="error",
                timestamp=utcnow(),
                error="Failed to get scheduler health status",
            )
            return _json(failure, 500)

    @app.get(
        HEALTH_PATH,
        response_model=None,
        tags=["health"],
        responses={
            200: {"model": HealthBody, "description": "Every scheduler is healthy"},
            503: {"model": HealthBody, "description": "At least one scheduler is in ERROR"},
            500: {"model": HealthFailure, "description": "The health could not be computed"},
        },
    )
    async def scheduler_health() -> Response:
        """The schedulers' health: 200 when none is in ERROR, 503 otherwise. No authentication."""
        report = await report_or_failure()
        if isinstance(report, Response):
            return report
        return _json(health_body(report), 200 if report.healthy else 503)

    @app.head(
        HEALTH_PATH,
        response_model=None,
        tags=["health"],
        responses={
            200: {"description": "Every scheduler is healthy"},
            503: {"description": "At least one scheduler is in ERROR"},
            500: {"description": "The health could not be computed"},
        },
    )
    async def scheduler_health_head() -> Response:
        """The status code of ``GET`` without its body."""
        report = await report_or_failure()
        status_code = report.status_code if isinstance(report, Response) else 200 if report.healthy else 503
        return Response(status_code=status_code)

    @app.get(
        ADMIN_PATH,
        response_model=None,
        tags=["admin"],
        dependencies=[Depends(require_admin)],
        responses={200: {"model": SchedulerList, "description": "Every scheduler"}, **FAILURES},
    )
    async def list_schedulers() -> Response:
        """Every scheduler with its run figures, control state, queue, lag, health and reasons."""
        report = await health.evaluate()
        return _json(scheduler_list(report, health))

    @app.post(
        ADMIN_PATH,
        response_model=None,
        tags=["admin"],
        dependencies=[Depends(require_admin)],
        responses={
            200: {"model": ActionDone, "description": "The action was carried out"},
            400: {"model": Failure, "description": "Validation failed"},
            404: {"model": Failure, "description": "No such scheduler"},
            **FAILURES,
            503: {"model": Failure, "description": f"{ADMIN_DISABLED}; or the broker or database is down"},
        },
    )
    async def control_schedulers(request: ActionRequest) -> Response:
        """Carry out ``action``: trigger, pause, resume, start, stop ``schedulerId``; startAll, stopAll."""

        def act() -> str:
            result = apply_action(
                engine,
                settings,
                request.action,
                request.schedulerId,
                publish=publish_tick,
                requested_by="admin API",
            )
            return result.message

        try:
            message = await run_in_threadpool(act)
        except UnknownScheduler as exc:
            return _failure(404, str(exc))
        except InvalidAction as exc:
            return _json(Failure(success=False, error="Validation failed", errors=[str(exc)]), 400)
        except _BrokerUnavailable as exc:
            logger.warning(
                "admin API: %s %s: broker unavailable: %s", request.action, request.schedulerId, exc
            )
            return _failure(503, f"broker unavailable, nothing was sent: {exc}")
        except SQLAlchemyError as exc:
            logger.warning(
                "admin API: %s %s: database unavailable: %s", request.action, request.schedulerId, exc
            )
            return _failure(503, f"database unavailable: {describe_error(exc)}")
        logger.info("admin API: %s %s", request.action, request.schedulerId or "(all)")
        return _json(ActionDone(success=True, message=message, timestamp=utcnow()))

    @app.get("/healthz", tags=["probes"], response_model=Liveness)
    async def healthz() -> Liveness:
        """The process answers."""
        return Liveness(status="ok")

    @app.get(
        "/readyz",
        tags=["probes"],
        response_model=None,
        responses={
            200: {"model": Readiness, "description": "The database answers"},
            503: {"model": Readiness, "description": "The database does not answer"},
        },
    )
    async def readyz() -> Response:
        """The database answers within ``HEALTH_SOURCE_TIMEOUT_MS``."""

        def ping() -> None:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        outcome = await health.read("database", "database", ping)
        if outcome.error is not None:
            return _json(Readiness(status="unavailable", error=outcome.error), 503)
        return _json(Readiness(status="ready"))

    @app.get(
        "/metrics",
        tags=["probes"],
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
    )
    async def metrics() -> Response:
        """Prometheus metrics; each scrape evaluates the health first, so the gauges are current."""
        await report_or_failure()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        # Requests that fail validation are answered 400 in the seed's shape, never FastAPI's 422.
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            for operations in schema.get("paths", {}).values():
                for method, operation in operations.items():
                    operation.get("responses", {}).pop("422", None)
                    if method == "head":  # no body, so no media type either
                        for response in operation.get("responses", {}).values():
                            response.pop("content", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
