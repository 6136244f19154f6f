"""Telling a refusal of the data written from a database that failed (pipeline.db.refusals)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc

from pipeline.db.refusals import MAX_REASON_CHARS, refusal_reason


def _wrapped(error: Exception, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    """``error`` as SQLAlchemy raises it around a driver error."""
    wrapped = sa_exc.DBAPIError.instance(
        "INSERT ...", {}, error, psycopg.Error, connection_invalidated=invalidated
    )
    assert isinstance(wrapped, sa_exc.DBAPIError)
    return wrapped


@pytest.mark.parametrize(
    "error",
    [
        pg_errors.CheckViolation(
            'new row violates check constraint "x"\nDETAIL: Failing row contains (secret)'
        ),
        pg_errors.UniqueViolation('duplicate key value violates unique constraint "y"'),
        pg_errors.ProgramLimitExceeded("index row size 3504 exceeds btree version 4 maximum 2704"),
        pg_errors.InvalidTextRepresentation("invalid input syntax for type uuid"),
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
    ],
)
def test_a_refusal_of_the_data_gives_the_first_line_of_its_reason(error: Exception) -> None:
    # Given a refusal of the data, raw (under COPY) or as SQLAlchemy wraps it
    for raised in (error, _wrapped(error)):
        # When it is classified
        reason = refusal_reason(raised)

        # Then its reason is the database's first line, without the DETAIL that may hold the row's values
        assert reason == str(error).splitlines()[0]


@pytest.mark.parametrize(
    "error",
    [
        pg_errors.AdminShutdown("terminating connection due to administrator command"),
        pg_errors.DiskFull("could not extend file"),
        pg_errors.SerializationFailure("could not serialize access"),
        psycopg.OperationalError("connection is lost"),
        psycopg.InterfaceError("the connection is closed"),
    ],
)
def test_an_outage_or_a_conflict_is_no_refusal(error: Exception) -> None:
    # Given a failure of the database rather than of the data
    # When it is classified
    # Then it is no refusal: the caller raises it, to be retried
    assert refusal_reason(error) is None
    assert refusal_reason(_wrapped(error)) is None


def test_a_lost_connection_is_no_refusal_whatever_the_error() -> None:
    # Given a refusal-looking error on a connection SQLAlchemy invalidated
    # When it is classified
    # Then it is no refusal
    assert refusal_reason(_wrapped(pg_errors.CheckViolation("x"), invalidated=True)) is None


def test_a_long_reason_is_clipped() -> None:
    assert len(refusal_reason(pg_errors.CheckViolation("x" * 5000)) or "") == MAX_REASON_CHARS


def test_sqlite_refusals_count_without_a_sqlstate() -> None:
    # Given SQLite's integrity error, as SQLAlchemy raises it (no SQLSTATE)
    wrapped = sa_exc.DBAPIError.instance(
        "INSERT ...", {}, sqlite3.IntegrityError("CHECK constraint failed: x"), sqlite3.Error
    )

    # When it is classified
    # Then it is a refusal with SQLite's reason
    assert refusal_reason(wrapped) == "CHECK constraint failed: x"
