"""Keyset pages of the operator lists, newest first: a page starts after the last entry of the previous one.

A page is read by walking an index from its cursor backwards, so the hundredth page costs what the first does
(an ``OFFSET`` reads and throws away every entry before it). The cursor is the last entry's time and id: many
entries share a time (one fetch's row errors, one batch's failures), and the id orders those.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, tuple_
from sqlalchemy.orm import InstrumentedAttribute

__all__ = ["Cursor", "older_than"]


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended; ``id`` None means "everything older than ``time``"."""

    time: datetime
    id: uuid.UUID | None = None

    def __str__(self) -> str:
        return f"{self.time.isoformat()},{self.id}" if self.id else self.time.isoformat()

    @classmethod
    def of(cls, time: datetime | None, id: uuid.UUID) -> str | None:
        """The cursor of an entry, as printed with it."""
        return str(cls(time, id)) if time is not None else None


def older_than(
    cursor: Cursor, time: InstrumentedAttribute[Any], id: InstrumentedAttribute[uuid.UUID]
) -> ColumnElement[bool]:
    """Entries after ``cursor`` in the order (time, id) descending; an index on (time, id) serves it."""
    if cursor.id is None:
        return time < cursor.time
    return tuple_(time, id) < tuple_(cursor.time, cursor.id)
