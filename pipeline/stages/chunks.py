"""Handing ids on in chunks: a message names a chunk of ids, never a single row."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

__all__ = ["send_in_chunks"]


def send_in_chunks(ids: Sequence[uuid.UUID], size: int, send: Callable[[list[uuid.UUID]], None]) -> None:
    for start in range(0, len(ids), size):
        send(list(ids[start : start + size]))
