"""``POST /v1/chat/completions``, late and faulty as the knobs or the ``x-emulator-fault`` header ask."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from pipeline.devtools.openai_emulator import errors
from pipeline.devtools.openai_emulator.completions import complete
from pipeline.devtools.openai_emulator.knobs import AnswerFault, RequestFault, evenly_selected
from pipeline.devtools.openai_emulator.ledger import LedgerEntry
from pipeline.devtools.openai_emulator.schemas import ChatCompletionRequest
from pipeline.devtools.openai_emulator.store import Store
from pipeline.devtools.openai_emulator.web import StoreDep, request_id_of

__all__ = ["FAULT_HEADER", "router"]

#: Request header that forces one chat completion's outcome, whatever the knobs say.
FAULT_HEADER = "x-emulator-fault"

router = APIRouter()


@router.post("/chat/completions")
async def create_chat_completion(
    body: ChatCompletionRequest,
    request: Request,
    store: StoreDep,
    fault: Annotated[RequestFault | None, Header(alias=FAULT_HEADER)] = None,
) -> JSONResponse:
    store.chat_started()
    try:
        return await _answer(body, request, store, fault)
    finally:
        store.chat_ended()


async def _answer(
    body: ChatCompletionRequest, request: Request, store: Store, fault: RequestFault | None
) -> JSONResponse:
    number = store.count_chat_request()
    knobs = store.knobs
    if knobs.latency:
        await asyncio.sleep(knobs.latency)
    if fault == "rate_limit" or (fault is None and evenly_selected(number, knobs.rate_429)):
        raise errors.rate_limited(body.model, knobs.retry_after)
    if fault == "server_error" or (fault is None and evenly_selected(number, knobs.rate_500)):
        raise errors.server_error()
    completion = complete(body, knobs, time.time(), _answer_fault(fault))
    store.bill(
        LedgerEntry(
            kind="chat",
            custom_id=None,
            request_id=request_id_of(request),
            model=completion.model,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            session_id=completion.session_id,
            batch_id=None,
        )
    )
    return JSONResponse(completion.body)


def _answer_fault(fault: RequestFault | None) -> AnswerFault | None:
    match fault:
        case "invalid_json" | "schema_violation" | "refusal" | "wrong_session_id":
            return fault
        case _:
            return None
