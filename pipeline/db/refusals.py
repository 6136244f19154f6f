"""Telling a write the database refused for the data in it from a database that failed.

A set-based write (one ``COPY`` or one ``UPDATE ... FROM`` for thousands of rows) fails whole when one row
holds what the database cannot take: a NUL in a text, a value too large for an index, a broken constraint.
Retrying it fails again, forever. A stage that writes in sets catches such a refusal, splits its set until
the refused row is alone, and records that row as failed with the database's reason; anything else (a lost
connection, a full disk, a bug) is no refusal and is raised as before, to be retried.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa_exc

__all__ = ["MAX_REASON_CHARS", "WRITE_ERRORS", "refusal_reason"]

#: Longest database message kept in a reason; the first line says what was refused.
MAX_REASON_CHARS = 300

#: What a write may raise: SQLAlchemy's errors, and the driver's under a raw ``COPY``.
WRITE_ERRORS = (sa_exc.DBAPIError, psycopg.Error)

#: SQLSTATE classes of a refusal of the data: data exception, integrity constraint violation, and program
#: limit exceeded (``index row size exceeds``).
_REFUSED_CLASSES = ("22", "23", "54")


def refusal_reason(error: BaseException) -> str | None:
    """The database's reason when ``error`` is a refusal of the data written, else ``None``.

    ``error`` is what SQLAlchemy raised, or what the driver raised under a raw ``COPY``.
    """
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return None
        driver_error: BaseException = error.orig or error
        # SQLite (the embedded mode) reports refusals with SQLAlchemy's own classes and no SQLSTATE.
        refused = isinstance(error, sa_exc.IntegrityError | sa_exc.DataError)
    else:
        driver_error, refused = error, False
    sqlstate = getattr(driver_error, "sqlstate", None)
    if isinstance(sqlstate, str):
        refused = sqlstate[:2] in _REFUSED_CLASSES
    elif isinstance(driver_error, psycopg.DataError | psycopg.IntegrityError):
        # Refused by the driver before sending, such as a NUL in a text parameter.
        refused = True
    if not refused:
        return None
    # The primary message only: PostgreSQL's DETAIL repeats the whole failing row, values included.
    diagnostics = getattr(driver_error, "diag", None)
    primary = getattr(diagnostics, "message_primary", None)
    first_line = primary or (str(driver_error).strip().splitlines() or [type(driver_error).__name__])[0]
    return str(first_line)[:MAX_REASON_CHARS]
