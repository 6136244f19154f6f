"""Counting the SQL statements a piece of code sends, for the functions promised to query once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session

__all__ = ["recorded_statements"]


@contextmanager
def recorded_statements(db: Session) -> Iterator[list[str]]:
    """The statements sent through ``db``'s engine inside the block, in order."""
    statements: list[str] = []

    def record(*args: object) -> None:
        # before_cursor_execute(conn, cursor, statement, parameters, context, executemany)
        statements.append(str(args[2]))

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
