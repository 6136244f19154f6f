"""The run history written by tick actors: outcome, items and error of each run; one run per tick."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from dramatiq.middleware import Shutdown
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline.db.enums import SchedulerRunStatus, TickOutcome
from pipeline.db.models import SchedulerRun, SchedulerTick
from pipeline.db.types import utcnow
from pipeline.metrics import SCHEDULER_RUNS
from pipeline.scheduling.jobs import find_job
from pipeline.scheduling.runs import ClaimTick, RunRecord, recorded_run
from pipeline.scheduling.ticks import claim_tick, record_tick
from pipeline.settings import Settings
from tests.scheduling.conftest import RecordingPublisher, ledger_tick_only


def _a_sent_tick(engine: Engine, settings: Settings) -> str:
    publisher = RecordingPublisher()
    job = find_job(settings, "csv-import")
    record_tick(
        engine, job, utcnow(), publish=publisher, instance_id="replica", overlap_timeout=timedelta(hours=1)
    )
    return str(publisher.sent[0].kwargs["tick_id"])


def _own_tick(
    engine: Engine,
    settings: Settings,
    job_id: str = "csv-import",
    *,
    sent_at: datetime | None = None,
    message_id: str = "message",
) -> ClaimTick:
    """The claim of a tick message sent at ``sent_at`` without a ledger entry."""

    def claim() -> uuid.UUID | None:
        decision = claim_tick(
            engine,
            find_job(settings, job_id),
            sent_at or utcnow(),
            message_id=message_id,
            timezone="UTC",
            window=timedelta(hours=1),
            instance_id="worker",
            overlap_timeout=timedelta(0),
        )
        return decision.tick_id

    return claim


def _runs(engine: Engine) -> list[SchedulerRun]:
    with Session(engine) as db:
        return list(db.scalars(select(SchedulerRun).order_by(SchedulerRun.started_at)))


def test_a_successful_run_records_its_items(database: tuple[Engine, Settings]) -> None:
    engine, settings = database
    # When a tick runs and handles 7 items
    with recorded_run(engine, "csv-import", None, "worker-1", claim=_own_tick(engine, settings)) as run:
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
    engine, settings = database
    failures = SCHEDULER_RUNS.labels("import-processing", "failed")._value.get()
    claim = _own_tick(engine, settings, "import-processing")
    with (
        pytest.raises(RuntimeError),
        recorded_run(engine, "import-processing", None, "worker-1", claim=claim),
    ):
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
    with recorded_run(engine, "csv-import", tick_id, "worker-1", claim=ledger_tick_only) as run:
        assert run is not None

    # When the same tick message is delivered again (a replayed dead letter, a redelivery)
    with recorded_run(engine, "csv-import", tick_id, "worker-2", claim=ledger_tick_only) as again:
        # Then the actor is told not to run
        assert again is None
    assert len(_runs(engine)) == 1


def test_a_run_cut_short_by_shutdown_is_taken_over_by_the_redelivery(
    database: tuple[Engine, Settings],
) -> None:
    engine, settings = database
    tick_id = _a_sent_tick(engine, settings)
    # Given a worker that stops in the middle of a tick's run
    with (
        pytest.raises(Shutdown),
        recorded_run(engine, "csv-import", tick_id, "worker-1", claim=ledger_tick_only),
    ):
        raise Shutdown()
    [interrupted] = _runs(engine)
    assert interrupted.status == SchedulerRunStatus.RUNNING

    # When RabbitMQ redelivers the tick to another worker, then that worker runs it, in the same run
    with recorded_run(engine, "csv-import", tick_id, "worker-2", claim=ledger_tick_only) as run:
        assert run is not None
    [finished] = _runs(engine)
    assert (finished.status, finished.instance_id) == (SchedulerRunStatus.SUCCEEDED, "worker-2")


def test_a_tick_sent_by_hand_without_a_recorded_tick_claims_its_tick_and_runs(
    database: tuple[Engine, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, settings = database
    monkeypatch.setattr("pipeline.scheduling.runs.TICK_COMMIT_WAIT_SECONDS", 0.1)
    # Given a tick message whose tick row does not exist (sent by hand, or the row was pruned)
    claim = _own_tick(engine, settings)
    with recorded_run(
        engine, "csv-import", "8a0c9f5e-51a1-4f0e-9a53-0d8f3c1b2a77", "worker-1", claim=claim
    ) as run:
        # Then it runs, against the tick it claimed in the ledger
        assert run is not None
    [recorded] = _runs(engine)
    assert recorded.status == SchedulerRunStatus.SUCCEEDED
    with Session(engine) as db:
        tick = db.get(SchedulerTick, recorded.tick_id)
    assert tick is not None and tick.job == "csv-import"


def test_two_messages_without_a_ledger_entry_for_the_same_tick_run_once(
    database: tuple[Engine, Settings],
) -> None:
    engine, settings = database
    # Given two senders' messages for the csv-import tick of 12:10 (say periodiq and a manual send)
    sent_at = datetime(2026, 11, 26, 12, 10, 0, tzinfo=UTC)

    # When both arrive, one after the other
    runs = []
    for message_id in ("first", "second"):
        claim = _own_tick(engine, settings, sent_at=sent_at, message_id=message_id)
        with recorded_run(engine, "csv-import", None, "worker-1", claim=claim) as run:
            runs.append(run)

    # Then the first runs the tick and the second is told not to
    assert runs[0] is not None and runs[1] is None
    [recorded] = _runs(engine)
    with Session(engine) as db:
        tick = db.get(SchedulerTick, recorded.tick_id)
    assert tick is not None
    assert (tick.tick_at.replace(tzinfo=UTC), tick.message_id) == (sent_at, "first")


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
        with recorded_run(pg_engine, "csv-import", str(tick_id), "worker-1", claim=ledger_tick_only) as run:
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
