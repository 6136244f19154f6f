"""Keyset pages of the operator lists: pages chained by ``--before`` make the one long list, in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pipeline.cli.batches import newest_batches
from pipeline.cli.paging import parse_before
from pipeline.db.paging import Cursor
from pipeline.devtools.seed import SeedPlan, default_now, seed_database
from pipeline.stages.csv_reports import recent_row_errors
from pipeline.stages.pipeline_reports import failed_sessions

pytestmark = pytest.mark.postgres

Lister = Callable[[Session, int, Cursor | None], list[dict[str, Any]]]
LISTS: dict[str, tuple[Lister, str]] = {
    "batches list": (lambda db, limit, before: newest_batches(db, limit=limit, before=before), "created_at"),
    "sessions failed": (
        lambda db, limit, before: failed_sessions(db, limit=limit, before=before),
        "failed_at",
    ),
    "imports errors": (
        lambda db, limit, before: recent_row_errors(db, limit=limit, before=before),
        "created_at",
    ),
}


@pytest.mark.parametrize("name", list(LISTS))
def test_pages_chained_by_before_are_the_long_list(name: str, pg_engine: Engine) -> None:
    # Given a seeded database
    seed_database(pg_engine, SeedPlan(companies=3, sessions=3_000, now=default_now()))
    listing, time_key = LISTS[name]
    with Session(pg_engine) as db:
        # When three pages of 7 are read, each before the last entry of the previous one
        pages, before = [], None
        for _ in range(3):
            page = listing(db, 7, before)
            pages += page
            before = parse_before(page[-1]["cursor"])
        # Then they are the first 21 entries of one long list, newest first
        assert [entry["cursor"] for entry in pages] == [entry["cursor"] for entry in listing(db, 21, None)]
        # And a bare time as --before gives what is strictly older
        older = listing(db, 5, parse_before(pages[-1][time_key]))
        assert all(entry[time_key] < pages[-1][time_key] for entry in older)
    assert len(pages) == 21
