"""The run history written by tick actors: outcome, items and error of each run; one run per tick."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from dramatiq.middleware import Shutdown
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline.db.enums import SchedulerRunStatus, TickOutcome
from pipeline.db.models import SchedulerRun, SchedulerTick
from pipeline.db.types import utcnow
from pipeline.metrics import SCHEDULER_RUNS
from pipeline.scheduling.jobs import find_job
from pipeline.scheduling.runs import RunRecord, recorded_run
from pipeline.scheduling.ticks import record_tick
from pipeline.settings import Settings
from tests.scheduling.conftest import RecordingPublisher


def _a_sent_tick(engine: Engine, settings: Settings) -> str:
    publisher = RecordingPublisher()
    job = find_job(settings, "csv-import")
    record_tick(
        engine, job, utcnow(), publish=publisher, instance_id="replica", overlap_timeout=timedelta(hours=1)
    )
    return str(publisher.sent[0].kwargs["tick_id"])


def _runs(engine: Engine) -> list[SchedulerRun]:
    with Session(engine) as db:
        return list(db.scalars(select(SchedulerRun).order_by(SchedulerRun.started_at)))


def test_a_successful_run_records_its_items(database: tuple[Engine, Settings]) -> None:
    engine, _ = database
    # When a tick runs and handles 7 items
    with recorded_run(engine, "csv-import", None, "worker-1") as run:
        assert run is not None
        run.items = 7

    # Then its run is SUCCEEDED with the items, times and the worker's name
    [recorded] = _runs(engine)
    assert (recorded.job, recorded.status, recorded.items_processed) == (
        "csv-import",
        SchedulerRunStatus.SUCCEEDED,
        7,
    )
    assert recorded.instance_id == "worker-1"
    assert recorded.finished_at is not None and recorded.finished_at >= recorded.started_at


def test_a_failed_run_records_its_error_and_the_error_propagates(database: tuple[Engine, Settings]) -> None:
    engine, _ = database
    failures = SCHEDULER_RUNS.labels("import-processing", "failed")._value.get()
    with pytest.raises(RuntimeError), recorded_run(engine, "import-processing", None, "worker-1"):
        raise RuntimeError("database is gone")
    [recorded] = _runs(engine)
    assert recorded.status == SchedulerRunStatus.FAILED
    assert recorded.error == "RuntimeError: database is gone"
    assert SCHEDULER_RUNS.labels("import-processing", "failed")._value.get() == failures + 1


def test_a_tick_delivered_again_after_its_run_finished_does_not_run_again(
    database: tuple[Engine, Settings],
) -> None:
    engine, settings = database
    tick_id = _a_sent_tick(engine, settings)
    # Given a tick's run finished
    with recorded_run(engine, "csv-import", tick_id, "worker-1") as run:
        assert run is not None

    # When the same tick message is delivered again (a replayed dead letter, a redelivery)
    with recorded_run(engine, "csv-import", tick_id, "worker-2") as again:
        # Then the actor is told not to run
        assert again is None
    assert len(_runs(engine)) == 1


def test_a_run_cut_short_by_shutdown_is_taken_over_by_the_redelivery(
    database: tuple[Engine, Settings],
) -> None:
    engine, settings = database
    tick_id = _a_sent_tick(engine, settings)
    # Given a worker that stops in the middle of a tick's run
    with pytest.raises(Shutdown), recorded_run(engine, "csv-import", tick_id, "worker-1"):
        raise Shutdown()
    [interrupted] = _runs(engine)
    assert interrupted.status == SchedulerRunStatus.RUNNING

    # When RabbitMQ redelivers the tick to another worker, then that worker runs it, in the same run
    with recorded_run(engine, "csv-import", tick_id, "worker-2") as run:
        assert run is not None
    [finished] = _runs(engine)
    assert (finished.status, finished.instance_id) == (SchedulerRunStatus.SUCCEEDED, "worker-2")


def test_a_tick_sent_by_hand_without_a_recorded_tick_still_runs(
    database: tuple[Engine, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, _ = database
    monkeypatch.setattr("pipeline.scheduling.runs.TICK_COMMIT_WAIT_SECONDS", 0.1)
    # Given a tick message whose tick row does not exist (sent by hand, or the row was pruned)
    with recorded_run(engine, "csv-import", "8a0c9f5e-51a1-4f0e-9a53-0d8f3c1b2a77", "worker-1") as run:
        # Then it runs, as a run of its own
        assert run is not None
    [recorded] = _runs(engine)
    assert (recorded.tick_id, recorded.status) == (None, SchedulerRunStatus.SUCCEEDED)


def test_a_worker_faster_than_the_ticks_commit_still_records_its_run_against_the_tick(
    pg_engine: Engine, pg_settings: Settings
) -> None:
    # Given a tick whose transaction has published its message but not committed yet
    tick_id = uuid.uuid4()
    scheduler = Session(pg_engine)
    scheduler.begin()
    scheduler.add(
        SchedulerTick(
            id=tick_id,
            job="csv-import",
            tick_at=utcnow(),
            outcome=TickOutcome.ENQUEUED,
            instance_id="replica",
        )
    )
    scheduler.flush()

    # When a worker starts the tick's run meanwhile, and the tick commits a moment later
    started: list[RunRecord | None] = []

    def work() -> None:
        with recorded_run(pg_engine, "csv-import", str(tick_id), "worker-1") as run:
            started.append(run)

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(0.5)
    assert worker.is_alive()  # waiting on the tick's transaction
    scheduler.commit()
    scheduler.close()
    worker.join(timeout=30)

    # Then the run is recorded against its tick, so the tick counts as finished
    assert started and started[0] is not None
    [recorded] = _runs(pg_engine)
    assert (recorded.tick_id, recorded.status) == (tick_id, SchedulerRunStatus.SUCCEEDED)
