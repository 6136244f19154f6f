"""Pruning the tick ledger and the run history: old rows go, recent ones and their links stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from pipeline.db.enums import CsvFetchOutcome, SchedulerRunStatus, TickOutcome
from pipeline.db.models import CsvFetch, CsvRowError, SchedulerRun, SchedulerTick
from pipeline.scheduling import history
from pipeline.scheduling.history import prune_history
from pipeline.scheduling.loop import SchedulerLoop
from pipeline.settings import Settings
from tests.factories import make_company
from tests.scheduling.conftest import RecordingPublisher

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _history(engine: Engine, days_ago: list[int]) -> None:
    with Session(engine) as db, db.begin():
        for days in days_ago:
            at = NOW - timedelta(days=days)
            tick = SchedulerTick(job="csv-import", tick_at=at, outcome=TickOutcome.ENQUEUED, instance_id="a")
            db.add(tick)
            db.flush()
            db.add(
                SchedulerRun(
                    job="csv-import",
                    tick_id=tick.id,
                    status=SchedulerRunStatus.SUCCEEDED,
                    instance_id="w",
                    started_at=at,
                    finished_at=at,
                )
            )


def _ages(engine: Engine) -> tuple[list[int], int]:
    with Session(engine) as db:
        ticks = [
            (NOW - tick_at).days for tick_at in db.scalars(select(SchedulerTick.tick_at).order_by("tick_at"))
        ]
        runs = db.scalar(select(func.count()).select_from(SchedulerRun)) or 0
    return ticks, runs


def test_rows_older_than_the_retention_are_deleted_in_batches(
    database: tuple[Engine, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, _ = database
    # Given ticks and runs from 1, 20, 40 and 90 days ago, and batches of one row
    _history(engine, [90, 40, 20, 1])
    monkeypatch.setattr(history, "PRUNE_BATCH", 1)

    # When history older than 30 days is pruned
    pruned = prune_history(engine, NOW, timedelta(days=30))

    # Then the two old ticks and their runs are gone, the recent ones kept with their runs
    assert (pruned.runs, pruned.ticks) == (2, 2)
    assert _ages(engine) == ([20, 1], 2)


def test_the_loop_prunes_at_most_once_an_hour(database: tuple[Engine, Settings]) -> None:
    engine, settings = database
    loop = SchedulerLoop(
        engine, settings.model_copy(update={"scheduler_history_days": 30}), RecordingPublisher()
    )
    _history(engine, [40])
    loop.prune_if_due(NOW)
    assert _ages(engine) == ([], 0)

    # Within the hour a new old row is left for the next prune
    _history(engine, [50])
    loop.prune_if_due(NOW + timedelta(minutes=30))
    assert _ages(engine) == ([50], 1)
    loop.prune_if_due(NOW + timedelta(minutes=61))
    assert _ages(engine) == ([], 0)


def test_the_hourly_prune_also_applies_the_retention_settings(database: tuple[Engine, Settings]) -> None:
    engine, settings = database
    # Given a company with a CSV row error and two fetches from 40 and 35 days ago
    with Session(engine) as db, db.begin():
        company = make_company(db)
        fetches = [
            CsvFetch(
                company_id=company.id, outcome=CsvFetchOutcome.IMPORTED, started_at=NOW - timedelta(days=d)
            )
            for d in (40, 35)
        ]
        db.add_all(fetches)
        db.flush()
        db.add(
            CsvRowError(fetch_id=fetches[1].id, company_id=company.id, line_number=2, reason="bad",
                        created_at=NOW - timedelta(days=35))
        )  # fmt: skip
    loop = SchedulerLoop(engine, settings, RecordingPublisher())

    # When the loop's hourly prune runs (retention: 30 days)
    loop.prune_if_due(NOW)

    # Then the row error and the older fetch are gone, and the company's newest fetch is kept
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(CsvRowError)) == 0
        assert list(db.scalars(select(CsvFetch.started_at))) == [NOW - timedelta(days=35)]
