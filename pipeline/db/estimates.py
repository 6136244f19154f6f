"""Counting rows by value without reading a large table: exactly while it is small, from statistics after.

Operator views and gauges (``livedash status``, the batch gauges) used to count every row of tables that
grow for ever, so their cost grew with the history (1.4 s for ``status`` at a million sessions). The figures
that matter to an operator, the work still waiting or running, are few rows reached through partial or
leading-column indexes, and stay exact. The large, finished part (COMPLETED stage rows, processed batches) is
read from the statistics PostgreSQL keeps for its planner (``pg_class.reltuples`` times the value's share in
``pg_stats`` / ``pg_stats_ext``), refreshed by autovacuum's ``ANALYZE``; every such answer says it is an
estimate. Below ``EXACT_COUNT_ROWS`` rows, and on SQLite, everything is counted exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session

__all__ = ["EXACT_COUNT_ROWS", "Counts", "count_by", "estimated_rows", "large_table_rows", "value_shares"]

#: Tables with fewer rows than this (by the planner's estimate) are counted exactly: a few tens of ms at most.
EXACT_COUNT_ROWS = 200_000


@dataclass(frozen=True)
class Counts:
    """Rows per value (a tuple of values when grouped by several columns); ``estimated`` if any is."""

    rows: dict[tuple[str, ...], int]
    estimated: bool


def estimated_rows(db: Session, table: str) -> int | None:
    """The planner's row count of ``table``; None on SQLite and before the table's first ``ANALYZE``."""
    if db.get_bind().dialect.name != "postgresql":
        return None
    rows = db.scalar(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:table)"), {"table": table})
    return int(rows) if rows is not None and rows >= 0 else None


def large_table_rows(db: Session, table: str) -> int | None:
    """The planner's row count of ``table`` if it is too large to count (``EXACT_COUNT_ROWS``), else None."""
    rows = estimated_rows(db, table)
    return rows if rows is not None and rows >= EXACT_COUNT_ROWS else None


def value_shares(db: Session, table: str, columns: Sequence[str]) -> dict[tuple[str, ...], float]:
    """Each common value's share of ``table`` from the planner's statistics (one column, or a statistics
    object over several, created by the migrations); empty when there is none yet."""
    if len(columns) == 1:
        row = db.execute(
            text(
                "SELECT most_common_vals::text::text[], most_common_freqs FROM pg_stats "
                "WHERE schemaname = current_schema() AND tablename = :table AND attname = :column"
            ),
            {"table": table, "column": columns[0]},
        ).first()
        values: Iterable[Any] = ((value,) for value in (row[0] or ())) if row else ()
    else:
        row = db.execute(
            text(
                "SELECT most_common_vals, most_common_freqs FROM pg_stats_ext "
                "WHERE schemaname = current_schema() AND tablename = :table "
                "AND attnames = CAST(:columns AS name[])"
            ),
            {"table": table, "columns": list(columns)},
        ).first()
        values = (tuple(value) for value in (row[0] or ())) if row else ()
    if row is None or row[1] is None:
        return {}
    return {
        tuple(str(part) for part in value): float(share) for value, share in zip(values, row[1], strict=True)
    }


def _key(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(value.value if isinstance(value, StrEnum) else str(value) for value in values)


def count_by(
    db: Session,
    table: str,
    columns: Sequence[InstrumentedAttribute[Any]],
    *,
    exact: Sequence[StrEnum],
    leading: Sequence[StrEnum] = (),
) -> Counts:
    """Rows of ``table`` per value of ``columns``.

    Rows whose last column is one of ``exact`` (the few, indexed ones still at work) are always counted; the
    others while the table is small, and estimated after. ``leading``, when grouping by two columns, lists
    every value of the first, so that the exact count seeks each (first, last) pair in a two-column index
    instead of filtering all of it.
    """
    total = large_table_rows(db, table)
    grouped = select(*columns, func.count()).group_by(*columns)
    if total is None:
        return Counts({_key(row[:-1]): row[-1] for row in db.execute(grouped)}, estimated=False)
    counted = {member.value for member in exact}
    rows = {
        value: round(share * total)
        for value, share in value_shares(db, table, [column.key for column in columns]).items()
        if value[-1] not in counted
    }
    counting = grouped.where(columns[-1].in_(exact))
    if leading:
        counting = counting.where(columns[0].in_(leading))
    for row in db.execute(counting):
        rows[_key(row[:-1])] = row[-1]
    return Counts({value: count for value, count in rows.items() if count}, estimated=True)
