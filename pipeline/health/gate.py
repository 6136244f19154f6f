"""What every request to the API passes before anything reads its body (an ASGI middleware).

1. A request for an admin path (``/api/admin/...`` but the public health probe) is authenticated first:
   without ``ADMIN_API_TOKEN`` it is answered 401 (503 when the admin API is disabled) whatever it carries,
   so an anonymous client can neither make the process parse its body nor learn anything from a validation
   error.
2. Every body is capped at ``ADMIN_API_MAX_BODY_BYTES``: a declared ``Content-Length`` above it is answered
   413 without reading a byte; a body without one (chunked) is counted as it streams in, and refused with
   413 as soon as it passes the cap. uvicorn has no body limit of its own.

Both answers close the connection (``Connection: close``): the unread rest of the body is never read.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.health.admin import admin_refusal
from pipeline.health.bodies import failure_response
from pipeline.health.context import ApiContext
from pipeline.health.probes import HEALTH_PATH

__all__ = ["BodyTooLarge", "RequestGate"]

_CLOSE = {"Connection": "close"}
#: Every route under it needs the admin token, but the health probe.
_ADMIN_PREFIX = "/api/admin/"


def _is_admin_path(path: str) -> bool:
    path = path.rstrip("/")
    return (path + "/").startswith(_ADMIN_PREFIX) and path != HEALTH_PATH


class BodyTooLarge(HTTPException):
    """A body passed ``ADMIN_API_MAX_BODY_BYTES`` (FastAPI lets an HTTPException from the body through, and
    the API's handler answers it in its own shape)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than ADMIN_API_MAX_BODY_BYTES={limit}", _CLOSE)


class RequestGate:
    """Authentication of the admin path, then the body cap, before the application sees the request."""

    def __init__(self, app: ASGIApp, context: ApiContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.context.settings.admin_api_max_body_bytes
        if _is_admin_path(scope["path"]):
            refusal = admin_refusal(headers.get("authorization"), self.context.admin_token)
            if refusal is not None:
                response = failure_response(
                    refusal.status_code, refusal.error, {**(refusal.headers or {}), **_CLOSE}
                )
                await response(scope, receive, send)
                return
        if _declared_length(headers) > limit:
            error = BodyTooLarge(limit)
            await failure_response(413, error.detail, _CLOSE)(scope, receive, send)
            return
        await self.app(scope, _counted(receive, limit), send)


def _declared_length(headers: Headers) -> int:
    """The declared ``Content-Length`` (0 when absent; an unreadable one counts as too large)."""
    declared = headers.get("content-length")
    if declared is None:
        return 0
    try:
        return int(declared)
    except ValueError:
        return 2**63


def _counted(receive: Receive, limit: int) -> Receive:
    """``receive``, raising :class:`BodyTooLarge` once the body read so far passes ``limit`` bytes."""
    received = 0

    async def counted_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return counted_receive
