"""The chaos run's progress figure, from which it reads each fault's recovery: the stages' work only."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from pipeline.db.enums import SchedulerRunStatus
from pipeline.db.models import Company, SchedulerRun
from pipeline.devtools.chaos.run import _progress
from tests.factories import make_analysable_session, make_company

TURNS = [("user", "When is my schedule for next week online?"), ("assistant", "On Friday, in the app.")]


def _ticks_ran(engine: Engine, runs: int) -> None:
    with sessionmaker(engine).begin() as db:
        db.add_all(
            SchedulerRun(job="session-processing", status=SchedulerRunStatus.SUCCEEDED, instance_id="ticker")
            for _ in range(runs)
        )


@pytest.mark.postgres
def test_the_progress_figure_grows_with_the_stages_work_and_never_with_the_ticks_alone(
    pg_engine: Engine,
) -> None:
    # Given a company, and ticks that ran with nothing to do
    with sessionmaker(pg_engine).begin() as db:
        company_id = make_company(db).id
    _ticks_ran(pg_engine, 3)
    before = _progress(pg_engine)

    # When more ticks run, and nothing else
    _ticks_ran(pg_engine, 5)

    # Then the pipeline is not taken for moving: ticks alone do not grow the figure
    assert before is not None
    assert _progress(pg_engine) == before

    # When a stage's work lands: a session imported, created with its messages
    with sessionmaker(pg_engine).begin() as db:
        make_analysable_session(db, db.get_one(Company, company_id), TURNS)

    # Then the figure grows: an import, a session, its messages and its completed stages
    after = _progress(pg_engine)
    assert after is not None and after > before
