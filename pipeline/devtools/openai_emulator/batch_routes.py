"""``/v1/batches``: create, retrieve, list (newest first, cursor pages) and cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from pipeline.devtools.openai_emulator.schemas import BatchCreateRequest
from pipeline.devtools.openai_emulator.web import StoreDep

__all__ = ["router"]

router = APIRouter()


@router.post("/batches")
def create_batch(body: BatchCreateRequest, store: StoreDep) -> JSONResponse:
    return JSONResponse(store.create_batch(body))


@router.get("/batches/{batch_id}")
def retrieve_batch(batch_id: str, store: StoreDep) -> JSONResponse:
    return JSONResponse(store.batch(batch_id))


@router.get("/batches")
def list_batches(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: str | None = None,
) -> JSONResponse:
    return JSONResponse(store.batches(limit, after))


@router.post("/batches/{batch_id}/cancel")
def cancel_batch(batch_id: str, store: StoreDep) -> JSONResponse:
    return JSONResponse(store.cancel_batch(batch_id))
