"""The bodies of the health and admin API: their models (the OpenAPI document's schemas) and builders.

The shapes are the ones the dashboard reads (``docs/health.md`` shows them); building them from a
:class:`~pipeline.health.aggregator.HealthReport` is all this module does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from pipeline.health.aggregator import HealthAggregator, HealthReport, QueueView, SchedulerHealth
from pipeline.health.rules import EndpointState, public_reason
from pipeline.redaction import redact
from pipeline.scheduling.control import SINGLE_ACTIONS, Action
from pipeline.scheduling.records import SchedulerRecord, scheduler_record
from pipeline.settings import Settings

__all__ = [
    "ActionDone",
    "ActionRequest",
    "Failure",
    "HealthBody",
    "HealthFailure",
    "Liveness",
    "Readiness",
    "RedactedJSONResponse",
    "SchedulerList",
    "failure_response",
    "health_body",
    "json_response",
    "scheduler_list",
]

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
    """The schedulers' health as the dashboard reads it, with a ``reasons`` list per scheduler."""

    healthy: bool
    status: Literal["healthy", "unhealthy"]
    timestamp: datetime
    schedulers: SchedulerCounts
    details: dict[str, SchedulerDetail]


class HealthFailure(BaseModel):
    """The answer when the health could not be computed at all (a bug, never a source failure)."""

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


class EndpointBody(BaseModel):
    """A metrics endpoint: ``unknown`` when none is configured or the metrics source is unreadable."""

    state: Literal["up", "down", "unknown"]
    answered: int
    total: int
    errors: list[str]


class SchedulerEntry(SchedulerRecord):
    """The scheduler's record (``livedash schedulers list --json`` prints the same) and its health."""

    status: StatusName
    healthy: bool
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


def health_body(report: HealthReport, *, detailed: bool) -> HealthBody:
    """The health object; without ``detailed`` (no admin token) each reason is its generic summary: no
    source error text, URL or stored run error."""
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
                reasons=[reason if detailed else public_reason(reason) for reason in scheduler.reasons],
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


def _queue_state(queue: QueueView | None) -> QueueState:
    if queue is None:
        return QueueState(
            depth=None, unacked=None, consumers=None, delayed=None, deadLetters=None, declared=None
        )
    return QueueState(
        depth=queue.ready,
        unacked=queue.unacked,
        consumers=queue.consumers,
        delayed=queue.delayed,
        deadLetters=queue.dead_letters,
        declared=queue.declared,
    )


def _entry(scheduler: SchedulerHealth, settings: Settings) -> SchedulerEntry:
    record = scheduler_record(scheduler.job, settings, scheduler.overview)
    return SchedulerEntry(
        # The last success is the newer of the run history and the worker pools' metrics.
        **{**dict(record), "lastSuccess": scheduler.last_success},
        status=scheduler.status.value,
        healthy=scheduler.healthy,
        queueStats=_queue_state(scheduler.queue),
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
        health=health_body(report, detailed=True),
        schedulers=[_entry(scheduler, aggregator.settings) for scheduler in report.schedulers],
        sources=sources,
        components={name: _endpoint_body(state) for name, state in report.components.items()},
    )


class RedactedJSONResponse(JSONResponse):
    """A JSON answer passed through :func:`~pipeline.redaction.redact`: a stored error or a source's
    message that carries a credential leaves the process masked."""

    def render(self, content: Any) -> bytes:
        return redact(super().render(content).decode()).encode()


def json_response(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return RedactedJSONResponse(
        model.model_dump(mode="json", exclude_none=isinstance(model, Failure)), status_code, headers
    )


def failure_response(status_code: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return json_response(Failure(success=False, error=error), status_code, headers)
