"""The admin routes (bearer token): list the schedulers, and act on them.

Authentication is :func:`admin_refusal`: ``ADMIN_API_TOKEN`` empty answers 503 (the admin API is disabled), a
missing or wrong token 401. :class:`~pipeline.health.gate.RequestGate` applies it to every request for
:data:`ADMIN_PATH` before anything reads the body; the router's :func:`require_admin` dependency applies it
again (and documents it in the OpenAPI document).
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from dramatiq import Message
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from pipeline.db.types import utcnow
from pipeline.health.aggregator import describe_error
from pipeline.health.bodies import (
    ActionDone,
    ActionRequest,
    Failure,
    SchedulerList,
    failure_response,
    json_response,
    scheduler_list,
)
from pipeline.health.context import ApiContext, Context
from pipeline.scheduling.control import InvalidAction, apply_action
from pipeline.scheduling.jobs import UnknownScheduler
from pipeline.scheduling.ticks import Publish

__all__ = [
    "ADMIN_DISABLED",
    "ADMIN_PATH",
    "AdminRefused",
    "BearerCredentials",
    "BrokerUnavailable",
    "admin_refusal",
    "admin_router",
    "bearer_header",
    "guarded",
    "require_admin",
]

logger = logging.getLogger(__name__)

ADMIN_PATH = "/api/admin/schedulers"
ADMIN_DISABLED = "admin API disabled: ADMIN_API_TOKEN is not set"


class AdminRefused(Exception):
    """The request may not use the admin API; answered ``status_code`` with ``error``."""

    def __init__(self, status_code: int, error: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.headers = headers


class BrokerUnavailable(Exception):
    """A triggered tick could not be published."""


def guarded(publish: Publish) -> Publish:
    """``publish``, raising :class:`BrokerUnavailable` (with a safe description) when it fails."""

    def guarded_publish(message: Message[None]) -> Message[None]:
        try:
            return publish(message)
        except Exception as exc:
            raise BrokerUnavailable(describe_error(exc)) from exc

    return guarded_publish


#: The ``Authorization: Bearer`` credentials, if any (module level: FastAPI resolves annotations here).
BearerCredentials = Annotated[
    HTTPAuthorizationCredentials | None,
    Depends(HTTPBearer(auto_error=False, description="ADMIN_API_TOKEN")),
]


def admin_refusal(authorization: str | None, admin_token: bytes) -> AdminRefused | None:
    """Why a request with this ``Authorization`` header may not use the admin API; ``None``: it may.

    The token is compared in constant time."""
    if not admin_token:
        return AdminRefused(503, ADMIN_DISABLED)
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), admin_token):
        return AdminRefused(
            401, "unauthorized: a valid bearer token is required", {"WWW-Authenticate": "Bearer"}
        )
    return None


def bearer_header(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The ``Authorization`` header as FastAPI's :class:`HTTPBearer` parsed it."""
    return f"{credentials.scheme} {credentials.credentials}" if credentials is not None else None


async def require_admin(credentials: BearerCredentials, context: Context) -> None:
    """Refuse the request unless it carries ``ADMIN_API_TOKEN`` as its bearer token."""
    refusal = admin_refusal(bearer_header(credentials), context.admin_token)
    if refusal is not None:
        raise refusal


FAILURES: dict[int | str, dict[str, Any]] = {
    401: {"model": Failure, "description": "No bearer token, or not ADMIN_API_TOKEN"},
    503: {"model": Failure, "description": ADMIN_DISABLED},
}

admin_router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])


@admin_router.get(
    ADMIN_PATH,
    response_model=None,
    responses={200: {"model": SchedulerList, "description": "Every scheduler"}, **FAILURES},
)
async def list_schedulers(context: Context) -> Response:
    """Every scheduler with its run figures, control state, queue, lag, health and reasons."""
    report = await context.reports.report()
    return json_response(scheduler_list(report, context.health))


def _act(context: ApiContext, request: ActionRequest) -> str:
    result = apply_action(
        context.engine,
        context.settings,
        request.action,
        request.schedulerId,
        publish=context.publish,
        requested_by="admin API",
    )
    return result.message


def _refusal(request: ActionRequest, exc: Exception) -> Response:
    """The answer to an action that could not be carried out."""
    if isinstance(exc, UnknownScheduler):
        return failure_response(404, str(exc))
    if isinstance(exc, InvalidAction):
        return json_response(Failure(success=False, error="Validation failed", errors=[str(exc)]), 400)
    if isinstance(exc, BrokerUnavailable):
        logger.warning("admin API: %s %s: broker unavailable: %s", request.action, request.schedulerId, exc)
        return failure_response(503, f"broker unavailable, nothing was sent: {exc}")
    logger.warning("admin API: %s %s: database unavailable: %s", request.action, request.schedulerId, exc)
    return failure_response(503, f"database unavailable: {describe_error(exc)}")


@admin_router.post(
    ADMIN_PATH,
    response_model=None,
    responses={
        200: {"model": ActionDone, "description": "The action was carried out"},
        400: {"model": Failure, "description": "Validation failed"},
        404: {"model": Failure, "description": "No such scheduler"},
        **FAILURES,
        503: {"model": Failure, "description": f"{ADMIN_DISABLED}; or the broker or database is down"},
    },
)
async def control_schedulers(request: ActionRequest, context: Context) -> Response:
    """Carry out ``action``: trigger, pause, resume, start, stop ``schedulerId``; startAll, stopAll."""
    try:
        message = await run_in_threadpool(_act, context, request)
    except (UnknownScheduler, InvalidAction, BrokerUnavailable, SQLAlchemyError) as exc:
        return _refusal(request, exc)
    finally:
        context.reports.forget()  # the action may have changed a scheduler's state
    logger.info("admin API: %s %s", request.action, request.schedulerId or "(all)")
    return json_response(ActionDone(success=True, message=message, timestamp=utcnow()))
