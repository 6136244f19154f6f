"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.types import TypeDecorator

from pipeline.redaction import redact

__all__ = ["RedactedText", "UTCDateTime", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A ``timestamptz`` that always hands back aware UTC datetimes.

    SQLite has no time zones and silently drops them, so a naive value read back is UTC by construction.
    Naive values are refused on the way in: a naive timestamp would be read in whatever zone the server
    happens to run.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the pipeline stores only aware timestamps")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RedactedText(TypeDecorator[str]):
    """Text that is redacted on its way into the database: an error column.

    Run, fetch and request errors quote exceptions, which may quote a URL with its password or query token;
    masking them here, where every write passes (ORM and Core alike), is what keeps them out of the tables,
    the API answers and the CLI output that read them."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else redact(value)
