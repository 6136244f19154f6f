"""What every route module shares: the store of the app serving a request, and the request's id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pipeline.devtools.openai_emulator.store import Store

__all__ = ["StoreDep", "current_store", "request_id_of"]


def current_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def request_id_of(request: Request) -> str:
    """The id the app gave the request; it goes out as the ``x-request-id`` header."""
    request_id: str = request.state.request_id
    return request_id


StoreDep = Annotated[Store, Depends(current_store)]
