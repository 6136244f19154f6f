"""Counts by status: exact while a table is small; at scale the work in progress stays exact and the rest is
read from the planner's statistics, and the answer says so."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pipeline.db import estimates
from pipeline.devtools.seed import SeedPlan, default_now, seed_database
from pipeline.stages.csv_reports import company_import_status
from pipeline.stages.pipeline_reports import pipeline_status

pytestmark = pytest.mark.postgres


def _real_counts(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT stage, status, count(*) FROM session_processing_status GROUP BY stage, status")
        )
        return {(stage, status): count for stage, status, count in rows}


def test_below_the_limit_every_count_is_exact(pg_engine: Engine) -> None:
    # Given a small seeded database
    seed_database(pg_engine, SeedPlan(companies=3, sessions=1_000, now=default_now()))

    # When the pipeline status is read
    with Session(pg_engine) as db:
        status = pipeline_status(db)

    # Then it is exact and says so
    counted = {
        (stage, state): n for stage, states in status["pipeline"].items() for state, n in states.items()
    }
    assert counted == _real_counts(pg_engine)
    assert status["estimated"] is False


def test_at_scale_work_in_progress_is_counted_and_the_rest_estimated(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a seeded database taken as large (its statistics fresh from the seeding's ANALYZE)
    seed_database(pg_engine, SeedPlan(companies=3, sessions=6_000, now=default_now()))
    monkeypatch.setattr(estimates, "EXACT_COUNT_ROWS", 1)

    # When the pipeline status and the companies' import counts are read
    with Session(pg_engine) as db:
        status = pipeline_status(db)
        companies = company_import_status(db)

    # Then pending and running rows are exact, the completed ones close, and the answer says it is estimated
    real = _real_counts(pg_engine)
    assert status["estimated"] is True
    for (stage, state), count in real.items():
        shown = status["pipeline"][stage].get(state, 0)
        if state in ("PENDING", "IN_PROGRESS"):
            assert shown == count, (stage, state)
        elif state == "COMPLETED":
            assert abs(shown - count) <= 0.05 * count, (stage, state, shown, count)
    assert abs(status["totalSessions"] - 5_900) < 300
    assert all(company["imports_estimated"] for company in companies)
    assert sum(company["imports"] or 0 for company in companies) == pytest.approx(6_000, rel=0.05)
