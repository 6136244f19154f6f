"""The emulator's FastAPI app: the API under ``/v1``, the control routes under ``/_emulator``.

Every error answers in the API's shape, unknown routes and invalid request bodies included (FastAPI's 422
becomes the API's 400), and every response carries an ``x-request-id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from pipeline.devtools.openai_emulator import batch_routes, chat_routes, control_routes, file_routes, ids
from pipeline.devtools.openai_emulator.errors import ApiError
from pipeline.devtools.openai_emulator.knobs import OUTAGE_HANG_SECONDS
from pipeline.devtools.openai_emulator.store import Store

__all__ = ["create_app"]


def create_app(store: Store) -> FastAPI:
    app = FastAPI(title="OpenAI emulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    for routes in (chat_routes, file_routes, batch_routes):
        app.include_router(routes.router, prefix="/v1")
    app.include_router(control_routes.router, prefix="/_emulator")
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.middleware("http")(_outage)
    app.middleware("http")(_tag_request)
    return app


async def _outage(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """The ``outage`` knob: the API (not the control routes) fails or hangs as a whole."""
    store: Store = request.app.state.store
    outage = store.knobs.outage
    if outage is None or not request.url.path.startswith("/v1/"):
        return await call_next(request)
    if outage == "timeout":
        await asyncio.sleep(OUTAGE_HANG_SECONDS)
        return await _api_error(request, ApiError(504, "The server timed out (emulated outage)."))
    return await _api_error(request, ApiError(500, "The server had an error (emulated outage)."))


async def _tag_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    request.state.request_id = ids.request_id()
    response = await call_next(request)
    response.headers["x-request-id"] = request.state.request_id
    return response


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    # FastAPI's locations start with where the value was ("body", "query", "header").
    where = ".".join(str(part) for part in first["loc"][1:])
    message = f"Invalid '{where}': {first['msg']}." if where else f"Invalid request: {first['msg']}."
    return await _api_error(request, ApiError(400, message, param=where or None))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (404, 405):
        message = f"Invalid URL ({request.method} {request.url.path})"
    else:
        message = str(exc.detail)
    return await _api_error(request, ApiError(exc.status_code, message))
