"""The ledger: an entry per answer the real API would have billed, so tests can prove none was paid twice."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["LedgerEntry"]


class LedgerEntry(BaseModel):
    """A billed answer: a chat completion answered 200, or a batch line in the output file.

    ``session_id`` is the one in the conversation asked about (None if it had none), whatever the answer said;
    ``custom_id`` and ``batch_id`` are set for batch lines only.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["chat", "batch"]
    custom_id: str | None
    request_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    session_id: str | None
    batch_id: str | None
