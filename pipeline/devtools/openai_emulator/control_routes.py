"""``/_emulator``: the test harness's side door, to set knobs, read the ledger and start afresh.

GET    /_emulator/knobs     the knobs
POST   /_emulator/knobs     change the knobs named in a JSON object, all or none; answers the knobs
DELETE /_emulator/knobs     back to the defaults; answers the knobs
GET    /_emulator/ledger    every billed answer, oldest first: {"object": "list", "data": [...]}
POST   /_emulator/reset     forget files, batches, ledger and request count (knobs stay); 204
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from pipeline.devtools.openai_emulator.batch_input import describe_validation_error
from pipeline.devtools.openai_emulator.errors import ApiError
from pipeline.devtools.openai_emulator.web import StoreDep

__all__ = ["router"]

router = APIRouter()


@router.get("/knobs")
def knobs(store: StoreDep) -> JSONResponse:
    return JSONResponse(store.knobs.model_dump(mode="json"))


@router.post("/knobs")
async def change_knobs(request: Request, store: StoreDep) -> JSONResponse:
    try:
        changes = json.loads(await request.body())
    except json.JSONDecodeError:
        changes = None
    if not isinstance(changes, dict):
        raise ApiError(400, "Send the knobs to change as a JSON object.")
    try:
        store.knobs.update(changes)
    except ValidationError as exc:
        where, what = describe_validation_error(exc)
        raise ApiError(400, f"{where}: {what}", param=where) from None
    return JSONResponse(store.knobs.model_dump(mode="json"))


@router.delete("/knobs")
def restore_knobs(store: StoreDep) -> JSONResponse:
    store.knobs.restore_defaults()
    return JSONResponse(store.knobs.model_dump(mode="json"))


@router.get("/ledger")
def ledger(store: StoreDep) -> JSONResponse:
    return JSONResponse({"object": "list", "data": [entry.model_dump() for entry in store.ledger()]})


@router.post("/reset", status_code=204)
def reset(store: StoreDep) -> Response:
    store.reset()
    return Response(status_code=204)
