"""The tick ledger: each tick is sent once, skips are recorded, a failed publish loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline.db.enums import SchedulerRunStatus, TickOutcome
from pipeline.db.models import SchedulerRun, SchedulerTick
from pipeline.scheduling.control import apply_action
from pipeline.scheduling.jobs import find_job
from pipeline.scheduling.ticks import TickResult, due_tick, record_tick
from pipeline.settings import Settings
from tests.scheduling.conftest import RecordingPublisher

TICK = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OVERLAP = timedelta(hours=1)


def _record(
    engine: Engine, settings: Settings, publisher: RecordingPublisher, at: datetime = TICK
) -> TickResult:
    job = find_job(settings, "csv-import")
    return record_tick(
        engine, job, at, publish=publisher, instance_id="replica-a", overlap_timeout=OVERLAP
    ).result


def _finish_runs(engine: Engine) -> None:
    with Session(engine) as db, db.begin():
        for tick in db.scalars(select(SchedulerTick)):
            db.add(
                SchedulerRun(
                    job=tick.job,
                    tick_id=tick.id,
                    status=SchedulerRunStatus.SUCCEEDED,
                    instance_id="worker",
                    finished_at=tick.tick_at + timedelta(seconds=5),
                )
            )


def _outcomes(engine: Engine) -> list[tuple[datetime, TickOutcome]]:
    with Session(engine) as db:
        return [
            (tick.tick_at, tick.outcome) for tick in db.scalars(select(SchedulerTick).order_by("tick_at"))
        ]


def test_a_tick_is_sent_once_whoever_records_it(
    database: tuple[Engine, Settings], publisher: RecordingPublisher
) -> None:
    engine, settings = database
    # When two replicas record the same tick
    first = _record(engine, settings, publisher)
    second = _record(engine, settings, publisher)

    # Then one message carries the tick's id, and the other replica sent nothing
    assert (first, second) == (TickResult.ENQUEUED, TickResult.DUPLICATE)
    assert len(publisher.sent) == 1
    message = publisher.sent[0]
    assert (message.queue_name, message.actor_name) == ("csv-import", "csv_import_tick")
    assert "scheduled_at" not in message.options  # periodiq's middleware would drop it once the queue lags
    with Session(engine) as db:
        tick = db.scalars(select(SchedulerTick)).one()
    assert message.kwargs == {"tick_id": str(tick.id)}
    assert tick.message_id == message.message_id


def test_a_failed_publish_leaves_the_tick_due(
    database: tuple[Engine, Settings], publisher: RecordingPublisher
) -> None:
    engine, settings = database
    # Given RabbitMQ is down
    publisher.down = True

    # When the tick is recorded, the publish fails and nothing is kept
    with pytest.raises(ConnectionError):
        _record(engine, settings, publisher)
    assert _outcomes(engine) == []

    # Then once RabbitMQ is back the same tick is sent
    publisher.down = False
    assert _record(engine, settings, publisher) == TickResult.ENQUEUED
    assert len(publisher.sent) == 1


@pytest.mark.parametrize(
    ("action", "result"), [("pause", TickResult.SKIPPED_PAUSED), ("stop", TickResult.SKIPPED_STOPPED)]
)
def test_a_paused_or_stopped_scheduler_records_its_ticks_as_skipped(
    database: tuple[Engine, Settings], publisher: RecordingPublisher, action: str, result: TickResult
) -> None:
    engine, settings = database
    # Given an operator paused (or stopped) the scheduler
    apply_action(engine, settings, action, "csv-import", publish=publisher, requested_by="test")

    # When its tick comes, it is recorded as skipped and nothing is sent
    assert _record(engine, settings, publisher) == result
    assert publisher.sent == []
    assert _outcomes(engine) == [(TICK, TickOutcome.SKIPPED_PAUSED)]

    # Then after resume the next tick is sent again
    apply_action(engine, settings, "resume", "csv-import", publish=publisher, requested_by="test")
    assert _record(engine, settings, publisher, TICK + timedelta(minutes=10)) == TickResult.ENQUEUED


def test_a_tick_whose_previous_run_is_still_going_is_skipped_as_overlap(
    database: tuple[Engine, Settings], publisher: RecordingPublisher
) -> None:
    engine, settings = database
    # Given the 12:00 tick was sent and its run has not finished
    assert _record(engine, settings, publisher) == TickResult.ENQUEUED

    # When the 12:10 tick comes, it is skipped, with the reason
    assert _record(engine, settings, publisher, TICK + timedelta(minutes=10)) == TickResult.SKIPPED_OVERLAP
    with Session(engine) as db:
        skipped = db.scalars(
            select(SchedulerTick).where(SchedulerTick.tick_at == TICK + timedelta(minutes=10))
        ).one()
    assert skipped.detail == f"the run of the tick at {TICK.isoformat()} has not finished"

    # Then once the run finished, the 12:20 tick is sent
    _finish_runs(engine)
    assert _record(engine, settings, publisher, TICK + timedelta(minutes=20)) == TickResult.ENQUEUED
    assert len(publisher.sent) == 2


def test_an_unfinished_run_older_than_the_overlap_timeout_no_longer_blocks(
    database: tuple[Engine, Settings], publisher: RecordingPublisher
) -> None:
    engine, settings = database
    # Given a tick whose message was lost long ago (its run never started)
    assert _record(engine, settings, publisher) == TickResult.ENQUEUED

    # When a tick comes after the overlap timeout, then it is sent
    assert _record(engine, settings, publisher, TICK + OVERLAP + timedelta(minutes=1)) == TickResult.ENQUEUED


def test_an_operator_trigger_runs_even_when_paused_and_overlapping(
    database: tuple[Engine, Settings], publisher: RecordingPublisher
) -> None:
    engine, settings = database
    # Given a paused scheduler with a run still going
    assert _record(engine, settings, publisher) == TickResult.ENQUEUED
    apply_action(engine, settings, "pause", "csv-import", publish=publisher, requested_by="test")

    # When an operator triggers it, then a tick is sent at once and says who asked
    result = apply_action(engine, settings, "trigger", "csv-import", publish=publisher, requested_by="test")
    assert result.message == "Action 'trigger' completed successfully"
    assert [decision.result for decision in result.triggered] == [TickResult.ENQUEUED]
    assert result.triggered[0].detail == "triggered by test"
    assert len(publisher.sent) == 2


def test_a_message_without_a_ledger_entry_stands_for_the_newest_fire_time_before_it(
    sqlite_settings: Settings,
) -> None:
    job = find_job(sqlite_settings.model_copy(update={"csv_import_interval": "*/10 * * * *"}), "csv-import")
    sent = datetime(2026, 11, 26, 12, 10, 4, 500_000, tzinfo=UTC)
    window = timedelta(seconds=90)

    # A message sent seconds after a fire time (periodiq, a prompt manual send) stands for that tick
    assert due_tick(job, sent, timezone="UTC", window=window) == datetime(2026, 11, 26, 12, 10, tzinfo=UTC)
    # One sent further from any fire time than the window stands for a tick of its own, at its second
    later = sent + timedelta(minutes=5)
    assert due_tick(job, later, timezone="UTC", window=window) == later.replace(microsecond=0)
