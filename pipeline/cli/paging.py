"""``--before CURSOR`` of the operator lists: the ``cursor`` of the last entry of a page gives the next page.

See ``pipeline.db.paging`` for why pages are keyset pages.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pipeline.cli.errors import exit_with_usage_error

if TYPE_CHECKING:
    from pipeline.db.paging import Cursor

__all__ = ["BEFORE_HELP", "parse_before"]

BEFORE_HELP = (
    "The next page: entries after this cursor (the `cursor` of the last entry of a page, in --json), or "
    "older than an ISO 8601 time (UTC unless it says otherwise)."
)


def parse_before(value: str | None) -> Cursor | None:
    from pipeline.db.paging import Cursor

    if value is None:
        return None
    moment, _, key = value.partition(",")
    try:
        time = datetime.fromisoformat(moment)
        entry = uuid.UUID(key) if key else None
    except ValueError:
        exit_with_usage_error(f"--before {value!r} is neither a cursor nor an ISO 8601 time")
    return Cursor(time if time.tzinfo is not None else time.replace(tzinfo=UTC), entry)
