"""The public routes: the schedulers' health (no authentication), liveness, readiness and metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from pipeline.db.types import utcnow
from pipeline.health.admin import admin_refusal
from pipeline.health.aggregator import HealthReport
from pipeline.health.bodies import HealthBody, HealthFailure, Liveness, Readiness, health_body, json_response
from pipeline.health.cache import CachedHealth
from pipeline.health.context import Context
from pipeline.redaction import redact

__all__ = ["HEALTH_PATH", "health_router", "probes_router"]

logger = logging.getLogger(__name__)

HEALTH_PATH = "/api/admin/schedulers/health"

health_router = APIRouter(tags=["health"])
probes_router = APIRouter(tags=["probes"])


async def report_or_failure(reports: CachedHealth) -> HealthReport | Response:
    """The health report, or the 500 answer when it could not be computed at all (a bug)."""
    try:
        return await reports.report()
    except Exception:
        logger.exception("scheduler health could not be computed")
        failure = HealthFailure(
            healthy=False, status="error", timestamp=utcnow(), error="Failed to get scheduler health status"
        )
        return json_response(failure, 500)


def _status_code(report: HealthReport) -> int:
    return 200 if report.healthy else 503


@health_router.get(
    HEALTH_PATH,
    response_model=None,
    responses={
        200: {"model": HealthBody, "description": "Every scheduler is healthy"},
        503: {"model": HealthBody, "description": "At least one scheduler is in ERROR"},
        500: {"model": HealthFailure, "description": "The health could not be computed"},
    },
)
async def scheduler_health(context: Context, request: Request) -> Response:
    """The schedulers' health: 200 when none is in ERROR, 503 otherwise. No authentication: each reason is
    then its generic summary; with the admin bearer token, the full reasons (source errors, run errors)."""
    report = await report_or_failure(context.reports)
    if isinstance(report, Response):
        return report
    # Read by hand, not as a security dependency: the endpoint stays open in the OpenAPI document.
    detailed = admin_refusal(request.headers.get("authorization"), context.admin_token) is None
    return json_response(health_body(report, detailed=detailed), _status_code(report))


@health_router.head(
    HEALTH_PATH,
    response_model=None,
    responses={
        200: {"description": "Every scheduler is healthy"},
        503: {"description": "At least one scheduler is in ERROR"},
        500: {"description": "The health could not be computed"},
    },
)
async def scheduler_health_head(context: Context) -> Response:
    """The status code of ``GET`` without its body."""
    report = await report_or_failure(context.reports)
    status_code = report.status_code if isinstance(report, Response) else _status_code(report)
    return Response(status_code=status_code)


@probes_router.get("/healthz", response_model=Liveness)
async def healthz() -> Liveness:
    """The process answers."""
    return Liveness(status="ok")


@probes_router.get(
    "/readyz",
    response_model=None,
    responses={
        200: {"model": Readiness, "description": "The database answers"},
        503: {"model": Readiness, "description": "The database does not answer"},
    },
)
async def readyz(context: Context) -> Response:
    """The database answers within ``HEALTH_SOURCE_TIMEOUT_MS``."""

    def ping() -> None:
        with context.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    outcome = await context.health.read("database", "database", ping)
    if outcome.error is not None:
        return json_response(Readiness(status="unavailable", error=outcome.error), 503)
    return json_response(Readiness(status="ready"))


@probes_router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
async def metrics(context: Context) -> Response:
    """Prometheus metrics; each scrape evaluates the health first, so the gauges are current."""
    await report_or_failure(context.reports)
    exposition = redact(generate_latest(context.registry).decode())
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)
